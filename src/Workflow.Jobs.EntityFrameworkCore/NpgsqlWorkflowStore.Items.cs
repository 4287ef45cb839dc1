using Microsoft.EntityFrameworkCore;
using Npgsql;

namespace Workflow.Jobs.EntityFrameworkCore;

/// <summary>Reading the fan-out items of steps (the run page and the step JSON).</summary>
internal sealed partial class NpgsqlWorkflowStore
{
    public async Task<IReadOnlyList<WorkflowStepItem>> GetStepItemsAsync(Guid stepId, WorkflowStatus? status, int offset, int limit,
        CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        ArgumentOutOfRangeException.ThrowIfLessThan(limit, 1);
        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        // A range of the primary key (step, call, index), in its order.
        await using var command = new NpgsqlCommand(
            $"""
            SELECT call_number, item_index, status, exception_message, attempt, finished_at FROM {NpgsqlRunExecution.ItemsTable}
            WHERE step_uuid = @step AND (@status::text IS NULL OR status = @status)
            ORDER BY call_number, item_index LIMIT @limit OFFSET @offset
            """, connection) { CommandTimeout = _npgsql.CommandTimeoutSeconds };
        command.Parameters.AddWithValue("step", stepId);
        command.Parameters.Add(Text("status", status?.ToString()));
        command.Parameters.AddWithValue("limit", limit);
        command.Parameters.AddWithValue("offset", offset);
        var items = new List<WorkflowStepItem>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            items.Add(new WorkflowStepItem(
                reader.GetInt32(0),
                reader.GetInt32(1),
                Enum.Parse<WorkflowStatus>(reader.GetString(2)),
                await reader.IsDBNullAsync(3, cancellationToken).ConfigureAwait(false) ? null : reader.GetString(3),
                await reader.IsDBNullAsync(4, cancellationToken).ConfigureAwait(false) ? null : reader.GetInt32(4),
                await reader.IsDBNullAsync(5, cancellationToken).ConfigureAwait(false) ? null : await reader.GetFieldValueAsync<DateTimeOffset>(5, cancellationToken).ConfigureAwait(false)));
        }

        return items;
    }

    /// <summary>The run with the item counts of its steps that fanned out (one grouped read of the items' key range).</summary>
    private static async Task<WorkflowRun> WithItemSummariesAsync(WorkflowDbContext db, WorkflowRun run, CancellationToken cancellationToken)
    {
        var stepIds = run.Steps.Select(s => s.Id).ToList();
        var summaries = await db.StepItems.AsNoTracking()
            .Where(i => stepIds.Contains(i.StepId))
            .GroupBy(i => i.StepId)
            .Select(g => new
            {
                StepId = g.Key,
                Total = g.Count(),
                Succeeded = g.Count(i => i.Status == WorkflowStatus.Succeeded),
                Failed = g.Count(i => i.Status == WorkflowStatus.Failed),
                Calls = g.Max(i => i.CallNumber),
            })
            .ToDictionaryAsync(s => s.StepId, cancellationToken).ConfigureAwait(false);
        if (summaries.Count == 0)
        {
            return run;
        }

        return run with
        {
            Steps = run.Steps.Select(step => summaries.TryGetValue(step.Id, out var s)
                ? step with { Items = new WorkflowItemSummary { Total = s.Total, Succeeded = s.Succeeded, Failed = s.Failed, Calls = s.Calls } }
                : step).ToList(),
        };
    }
}
