using Npgsql;

namespace Workflow.Jobs.EntityFrameworkCore;

/// <summary>Flow control: the offer of freed slots, by the leader and by an execution that gave its slots back (admission itself runs on an execution's guard connection).</summary>
internal sealed partial class NpgsqlWorkflowStore
{
    /// <summary>At most this many runs of a workflow are woken per pass when a limit was removed from its definition.</summary>
    private const int OfferBatch = 500;

    private static readonly string OfferSql = NpgsqlFlowControl.OfferSql(WorkflowTransitions.For(RunOperation.Wake), JobRequestText(JobRequestKind.Wake));

    public async Task<IReadOnlyList<JobRequest>> OfferFreeSlotsAsync(string workflowName, int? maxConcurrency, int? maxConcurrencyPerKey, DateTimeOffset now,
        CancellationToken cancellationToken)
    {
        await using var connection = await OpenUnenlistedAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(OfferSql, connection) { CommandTimeout = _npgsql.CommandTimeoutSeconds };
        command.Parameters.Add(Text("name", workflowName));
        command.Parameters.AddWithValue("n_w", maxConcurrency ?? 0);
        command.Parameters.AddWithValue("n_k", maxConcurrencyPerKey ?? 0);
        command.Parameters.AddWithValue("batch", (long)OfferBatch);
        command.Parameters.Add(Text("w_group", NpgsqlFlowControl.WorkflowGroup(workflowName)));
        command.Parameters.Add(Text("k_prefix", NpgsqlFlowControl.KeyGroupPrefix(workflowName)));
        command.Parameters.AddWithValue("now", now);
        var woken = new List<JobRequest>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            woken.Add(new JobRequest(reader.GetGuid(0), JobRequestKind.Wake, reader.GetString(1),
                await reader.IsDBNullAsync(2, cancellationToken).ConfigureAwait(false) ? null : reader.GetString(2),
                await reader.IsDBNullAsync(3, cancellationToken).ConfigureAwait(false) ? null : reader.GetString(3),
                await reader.IsDBNullAsync(4, cancellationToken).ConfigureAwait(false) ? null : await reader.GetFieldValueAsync<DateTimeOffset>(4, cancellationToken).ConfigureAwait(false)));
        }

        return woken;
    }
}
