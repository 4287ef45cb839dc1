using Npgsql;
using NpgsqlTypes;

namespace Workflow.Jobs.EntityFrameworkCore;

/// <summary>
/// Child runs: the parent's wake when its last child finishes, the cancel of a cancelled parent's children, and the reads
/// of the parent's step and of the run page.
/// </summary>
/// <remarks>
/// Lock order, everywhere: a child's row before its parent's. A finishing child holds its own row (its status change) and
/// then locks its parent's before it looks at its siblings, in a statement of its own, so two siblings finishing at once
/// are serialised on the parent and the second sees the first one finished; a parking parent locks its row before it looks
/// at its children, so either it sees the last child finished (and does not park), or that child sees it Waiting (and wakes
/// it). A cancel commits the parent's change first and cancels the children in a transaction of its own, deepest first.
/// </remarks>
internal sealed partial class NpgsqlWorkflowStore
{
    /// <summary>The finished statuses as a SQL list.</summary>
    internal static readonly string FinishedSql = "(" + string.Join(", ", WorkflowTransitions.Finished.Order().Select(s => "'" + s + "'")) + ")";

    /// <summary>Locks the parents of the runs <c>@children</c> (a <c>uuid[]</c>), in a fixed order.</summary>
    internal static readonly string LockParentsSql =
        $"""
        SELECT 1 FROM {RunsTable} p
        WHERE p.uuid IN (SELECT c.parent_uuid FROM {RunsTable} c WHERE c.uuid = ANY(@children) AND c.parent_uuid IS NOT NULL)
        ORDER BY p.uuid FOR UPDATE OF p
        """;

    /// <summary>
    /// Wakes (<see cref="RunOperation.Wake"/>, recording the job write) each parent of the finished runs <c>@children</c> that
    /// waits for its children and has no unfinished child left; returns the woken parents' job writes. Runs after
    /// <see cref="LockParentsSql"/> in the same transaction, so it sees every sibling that finished before it.
    /// </summary>
    internal static readonly string WakeParentsSql =
        $"""
        WITH woken AS (
            UPDATE {RunsTable} p SET status = '{WorkflowTransitions.For(RunOperation.Wake).To}', {ClearWaitsSql}, modified = @now,
                                    job_request = '{JobRequestText(JobRequestKind.Wake)}'
            WHERE p.uuid IN (SELECT c.parent_uuid FROM {RunsTable} c WHERE c.uuid = ANY(@children) AND c.status IN {FinishedSql})
              AND p.status IN {WorkflowTransitions.For(RunOperation.Wake).SqlFrom} AND p.waiting_for = '{WaitKinds.Children}' AND NOT p.is_removed
              AND NOT EXISTS (SELECT 1 FROM {RunsTable} s WHERE s.parent_uuid = p.uuid AND s.status NOT IN {FinishedSql} AND NOT s.is_removed)
            RETURNING p.uuid, p.workflow_name, p.queue, p.job_id, p.not_before),
        marked AS (
            UPDATE {StepWaitsTable} w SET woken_at = @now FROM woken WHERE w.run_uuid = woken.uuid AND w.woken_at IS NULL)
        SELECT uuid, workflow_name, queue, job_id, not_before FROM woken
        """;

    /// <summary>The two commands that wake the parents of <paramref name="children"/> (appended to the batch that finished them).</summary>
    internal static IEnumerable<NpgsqlBatchCommand> WakeParentsCommands(Guid[] children, DateTimeOffset now)
    {
        yield return new NpgsqlBatchCommand(LockParentsSql) { Parameters = { new("children", children) } };
        yield return new NpgsqlBatchCommand(WakeParentsSql) { Parameters = { new("children", children), new("now", now) } };
    }

    /// <summary>Reads the woken parents' job writes: the last result set of a batch that ends with <see cref="WakeParentsCommands"/>.</summary>
    internal static async Task<List<JobRequest>> ReadParentWakesAsync(NpgsqlDataReader reader, CancellationToken cancellationToken)
    {
        var wakes = new List<JobRequest>();
        do
        {
            if (reader.FieldCount != 5)
            {
                continue;
            }

            wakes.Clear();
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                wakes.Add(new JobRequest(reader.GetGuid(0), JobRequestKind.Wake, reader.GetString(1),
                    await reader.IsDBNullAsync(2, cancellationToken).ConfigureAwait(false) ? null : reader.GetString(2),
                    await reader.IsDBNullAsync(3, cancellationToken).ConfigureAwait(false) ? null : reader.GetString(3),
                    await reader.IsDBNullAsync(4, cancellationToken).ConfigureAwait(false) ? null : await reader.GetFieldValueAsync<DateTimeOffset>(4, cancellationToken).ConfigureAwait(false)));
            }
        }
        while (await reader.NextResultAsync(cancellationToken).ConfigureAwait(false));

        return wakes;
    }

    /// <summary>In one transaction of their own: wakes the parents of runs that just finished (the store's status changes).</summary>
    private async Task<IReadOnlyList<JobRequest>> WakeParentsAsync(Guid[] finished, DateTimeOffset now, CancellationToken cancellationToken)
    {
        if (finished.Length == 0)
        {
            return [];
        }

        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var batch = new NpgsqlBatch(connection) { Timeout = _npgsql.CommandTimeoutSeconds };
        foreach (var command in WakeParentsCommands(finished, now))
        {
            batch.BatchCommands.Add(command);
        }

        await using var reader = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        return await ReadParentWakesAsync(reader, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Cancels the unfinished descendants of cancelled runs (children, their children, ...) in one transaction, locking
    /// the deepest first; each gets its job deleted (the returned writes; the outbox does what is left).
    /// </summary>
    private async Task<IReadOnlyList<JobRequest>> CancelDescendantsAsync(Guid[] roots, DateTimeOffset now, CancellationToken cancellationToken)
    {
        if (roots.Length == 0)
        {
            return [];
        }

        var cancel = WorkflowTransitions.For(RunOperation.Cancel);
        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(
            $"""
            WITH RECURSIVE tree(uuid, depth) AS (
                SELECT uuid, 1 FROM {RunsTable} WHERE parent_uuid = ANY(@roots)
                UNION ALL
                SELECT r.uuid, t.depth + 1 FROM {RunsTable} r JOIN tree t ON r.parent_uuid = t.uuid WHERE t.depth < 32),
            chosen AS (
                SELECT r.uuid FROM {RunsTable} r JOIN tree t ON r.uuid = t.uuid
                WHERE r.status IN {cancel.SqlFrom} AND NOT r.is_removed
                ORDER BY t.depth DESC, r.uuid FOR UPDATE OF r)
            UPDATE {RunsTable} r
            SET status = '{cancel.To}', modified = @now, {ClearWaitsSql},
                job_request = CASE WHEN r.job_id IS NULL THEN NULL ELSE '{JobRequestText(JobRequestKind.Delete)}' END
            FROM chosen WHERE r.uuid = chosen.uuid
            RETURNING r.uuid, r.job_request, r.workflow_name, r.queue, r.job_id, r.not_before
            """, connection) { CommandTimeout = _npgsql.CommandTimeoutSeconds };
        command.Parameters.AddWithValue("roots", roots);
        command.Parameters.AddWithValue("now", now);
        var deletes = new List<JobRequest>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            if (await reader.IsDBNullAsync(1, cancellationToken).ConfigureAwait(false))
            {
                continue;
            }

            deletes.Add(new JobRequest(reader.GetGuid(0), JobRequestKind.Delete, reader.GetString(2),
                await reader.IsDBNullAsync(3, cancellationToken).ConfigureAwait(false) ? null : reader.GetString(3),
                await reader.IsDBNullAsync(4, cancellationToken).ConfigureAwait(false) ? null : reader.GetString(4),
                await reader.IsDBNullAsync(5, cancellationToken).ConfigureAwait(false) ? null : await reader.GetFieldValueAsync<DateTimeOffset>(5, cancellationToken).ConfigureAwait(false)));
        }

        return deletes;
    }

    /// <summary>What follows a committed status change of <paramref name="runs"/>: their children cancelled, or their parents woken.</summary>
    private async Task<IReadOnlyList<JobRequest>> AfterStatusChangeAsync(RunOperation operation, Guid[] runs, DateTimeOffset now, CancellationToken cancellationToken)
    {
        if (runs.Length == 0 || !WorkflowTransitions.IsFinished(WorkflowTransitions.For(operation).To))
        {
            return [];
        }

        var related = new List<JobRequest>();
        if (operation == RunOperation.Cancel)
        {
            related.AddRange(await CancelDescendantsAsync(runs, now, cancellationToken).ConfigureAwait(false));
        }

        related.AddRange(await WakeParentsAsync(runs, now, cancellationToken).ConfigureAwait(false));
        return related;
    }

    public async Task<IReadOnlyList<ChildRunState>> LoadChildrenAsync(Guid parentStepId, CancellationToken cancellationToken)
    {
        await using var connection = await OpenUnenlistedAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(
            $"""
            SELECT child_index, uuid, status, output_data::text, exception_message FROM {RunsTable}
            WHERE parent_uuid = (SELECT workflow_record_uuid FROM {StepsTable} WHERE uuid = @step) AND parent_step_uuid = @step AND NOT is_removed
            ORDER BY child_index
            """, connection) { CommandTimeout = _npgsql.CommandTimeoutSeconds };
        command.Parameters.AddWithValue("step", parentStepId);
        var children = new List<ChildRunState>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            children.Add(new ChildRunState(reader.GetInt32(0), reader.GetGuid(1), Enum.Parse<WorkflowStatus>(reader.GetString(2)),
                await reader.IsDBNullAsync(3, cancellationToken).ConfigureAwait(false) ? null : ParseJson(reader.GetString(3)),
                await reader.IsDBNullAsync(4, cancellationToken).ConfigureAwait(false) ? null : reader.GetString(4)));
        }

        return children;
    }

    /// <summary>The progress of a run's children (the run page, the API); null when it has none.</summary>
    private async Task<WorkflowChildrenSummary?> LoadChildrenSummaryAsync(Guid parentId, CancellationToken cancellationToken)
    {
        await using var connection = await OpenUnenlistedAsync(cancellationToken).ConfigureAwait(false);
        await using var batch = new NpgsqlBatch(connection)
        {
            BatchCommands =
            {
                new NpgsqlBatchCommand(
                    $"""
                    SELECT count(*)::int, (count(*) FILTER (WHERE status = 'Succeeded'))::int, (count(*) FILTER (WHERE status IN {FinishedSql}))::int
                    FROM {RunsTable} WHERE parent_uuid = @parent AND NOT is_removed
                    """) { Parameters = { new("parent", parentId) } },
                new NpgsqlBatchCommand(
                    $"""
                    SELECT uuid, child_index, status, exception_message FROM {RunsTable}
                    WHERE parent_uuid = @parent AND NOT is_removed AND status IN {FinishedSql} AND status <> 'Succeeded'
                    ORDER BY child_index LIMIT 100
                    """) { Parameters = { new("parent", parentId) } },
            },
            Timeout = _npgsql.CommandTimeoutSeconds,
        };
        await using var reader = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
        var total = reader.GetInt32(0);
        if (total == 0)
        {
            return null;
        }

        var succeeded = reader.GetInt32(1);
        var finished = reader.GetInt32(2);
        await reader.NextResultAsync(cancellationToken).ConfigureAwait(false);
        var failed = new List<WorkflowChildFailure>();
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            failed.Add(new WorkflowChildFailure(reader.GetGuid(0), await reader.IsDBNullAsync(1, cancellationToken).ConfigureAwait(false) ? -1 : reader.GetInt32(1),
                Enum.Parse<WorkflowStatus>(reader.GetString(2)), await reader.IsDBNullAsync(3, cancellationToken).ConfigureAwait(false) ? null : reader.GetString(3)));
        }

        return new WorkflowChildrenSummary { Total = total, Succeeded = succeeded, Finished = finished, Failed = failed };
    }

    private static NpgsqlParameter NullableUuids(string name, IEnumerable<Guid?> values)
        => new(name, NpgsqlDbType.Array | NpgsqlDbType.Uuid) { Value = values.Select(v => (object?)v ?? DBNull.Value).ToArray() };

    private static NpgsqlParameter NullableInts(string name, IEnumerable<int?> values)
        => new(name, NpgsqlDbType.Array | NpgsqlDbType.Integer) { Value = values.Select(v => (object?)v ?? DBNull.Value).ToArray() };
}
