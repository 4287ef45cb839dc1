using System.Transactions;
using Newtonsoft.Json.Linq;
using Npgsql;

namespace Workflow.Jobs.EntityFrameworkCore;

/// <summary>Durable waits and events: the store's side of sleeps, signals and wakes.</summary>
internal sealed partial class NpgsqlWorkflowStore
{
    public async Task<StepWaitState> LoadStepWaitsAsync(Guid stepId, CancellationToken cancellationToken)
    {
        await using var connection = await OpenUnenlistedAsync(cancellationToken).ConfigureAwait(false);
        await using var batch = new NpgsqlBatch(connection)
        {
            BatchCommands =
            {
                new NpgsqlBatchCommand($"SELECT wait_number, kind, name, deadline, woken_at IS NOT NULL FROM {StepWaitsTable} WHERE step_uuid = @step")
                {
                    Parameters = { new("step", stepId) },
                },
                new NpgsqlBatchCommand($"SELECT consumed_wait, payload::text FROM {EventsTable} WHERE consumed_step_uuid = @step")
                {
                    Parameters = { new("step", stepId) },
                },
            },
            Timeout = _npgsql.CommandTimeoutSeconds,
        };
        var waits = new Dictionary<int, StepWaitRecord>();
        var consumed = new Dictionary<int, JObject>();
        await using var reader = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            var number = reader.GetInt32(0);
            waits[number] = new StepWaitRecord(number, reader.GetString(1),
                await reader.IsDBNullAsync(2, cancellationToken).ConfigureAwait(false) ? null : reader.GetString(2),
                await reader.IsDBNullAsync(3, cancellationToken).ConfigureAwait(false) ? null : await reader.GetFieldValueAsync<DateTimeOffset>(3, cancellationToken).ConfigureAwait(false),
                reader.GetBoolean(4));
        }

        await reader.NextResultAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            consumed[reader.GetInt32(0)] = ParseJson(reader.GetString(1));
        }

        return waits.Count == 0 && consumed.Count == 0 ? StepWaitState.Empty : new StepWaitState(waits, consumed);
    }

    public async Task<JObject?> ConsumeEventAsync(Guid runId, Guid stepId, int waitNumber, string name, DateTimeOffset now, CancellationToken cancellationToken)
    {
        // One statement: the payload this wait already consumed, or the oldest unconsumed event of that name, taken for
        // this wait. The unique index on (consumed_step_uuid, consumed_wait) keeps one event per wait whatever happens.
        await using var connection = await OpenUnenlistedAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(
            $"""
            WITH already AS (
                SELECT payload FROM {EventsTable} WHERE consumed_step_uuid = @step AND consumed_wait = @number),
            next AS (
                SELECT uuid FROM {EventsTable}
                WHERE run_uuid = @run AND name = @name AND consumed_step_uuid IS NULL AND NOT EXISTS (SELECT 1 FROM already)
                ORDER BY created, uuid LIMIT 1 FOR UPDATE SKIP LOCKED),
            taken AS (
                UPDATE {EventsTable} e SET consumed_step_uuid = @step, consumed_wait = @number, consumed_at = @now
                FROM next WHERE e.uuid = next.uuid
                RETURNING e.payload)
            SELECT payload::text FROM already UNION ALL SELECT payload::text FROM taken
            """, connection) { CommandTimeout = _npgsql.CommandTimeoutSeconds };
        command.Parameters.AddWithValue("run", runId);
        command.Parameters.AddWithValue("step", stepId);
        command.Parameters.AddWithValue("number", waitNumber);
        command.Parameters.Add(Text("name", name));
        command.Parameters.AddWithValue("now", now);
        var payload = await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) as string;
        return payload is null ? null : ParseJson(payload);
    }

    public async Task<bool> HasPendingEventAsync(Guid runId, string name, CancellationToken cancellationToken)
    {
        await using var connection = await OpenUnenlistedAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(
            $"SELECT EXISTS (SELECT 1 FROM {EventsTable} WHERE run_uuid = @run AND name = @name AND consumed_step_uuid IS NULL)", connection)
        {
            CommandTimeout = _npgsql.CommandTimeoutSeconds,
        };
        command.Parameters.AddWithValue("run", runId);
        command.Parameters.Add(Text("name", name));
        return (bool)(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
    }

    public async Task<RunWaitInfo?> GetWaitInfoAsync(Guid runId, CancellationToken cancellationToken)
    {
        try
        {
            return await ReadWaitInfoAsync(runId, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (NpgsqlErrors.IsUnavailable(ex))
        {
            throw NpgsqlErrors.Unavailable($"Workflow run {runId} was not read", ex);
        }
    }

    private async Task<RunWaitInfo?> ReadWaitInfoAsync(Guid runId, CancellationToken cancellationToken)
    {
        await using var connection = await OpenUnenlistedAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(
            $"""
            SELECT r.status, r.workflow_name, r.waiting_for, r.wake_at,
                   (SELECT w.event_type FROM {StepWaitsTable} w WHERE w.run_uuid = r.uuid AND w.kind = '{WaitKinds.Event}' AND w.name = r.waiting_for
                    ORDER BY w.created DESC LIMIT 1)
            FROM {RunsTable} r WHERE r.uuid = @run AND NOT r.is_removed
            """, connection) { CommandTimeout = _npgsql.CommandTimeoutSeconds };
        command.Parameters.AddWithValue("run", runId);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        if (!await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            return null;
        }

        return new RunWaitInfo(
            Enum.Parse<WorkflowStatus>(reader.GetString(0)),
            reader.GetString(1),
            await reader.IsDBNullAsync(2, cancellationToken).ConfigureAwait(false) ? null : reader.GetString(2),
            await reader.IsDBNullAsync(3, cancellationToken).ConfigureAwait(false) ? null : await reader.GetFieldValueAsync<DateTimeOffset>(3, cancellationToken).ConfigureAwait(false),
            await reader.IsDBNullAsync(4, cancellationToken).ConfigureAwait(false) ? null : reader.GetString(4));
    }

    public async Task<SignalResult?> SignalAsync(Guid runId, string name, JObject payload, DateTimeOffset now, CancellationToken cancellationToken)
    {
        try
        {
            // Joins the caller's ambient transaction (the connection enlists in it); otherwise a transaction of its own.
            await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            await using var transaction = Transaction.Current is null
                ? await connection.BeginTransactionAsync(System.Data.IsolationLevel.ReadCommitted, cancellationToken).ConfigureAwait(false)
                : null;
            var result = await SignalCoreAsync(connection, runId, name, payload, now, cancellationToken).ConfigureAwait(false);
            if (transaction is not null && result is { Stored: true })
            {
                await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
            }

            return result;
        }
        catch (Exception ex) when (NpgsqlErrors.IsUnavailable(ex))
        {
            throw NpgsqlErrors.Unavailable($"The event '{name}' was not sent to workflow run {runId}", ex);
        }
    }

    private async Task<SignalResult?> SignalCoreAsync(NpgsqlConnection connection, Guid runId, string name, JObject payload, DateTimeOffset now,
        CancellationToken cancellationToken)
    {
        // The run's row is locked first: a parking execution locks it too before it checks for this event (see
        // NpgsqlRunExecution.WaitAsync), so either it sees the event, or this sees the run Waiting and wakes it.
        WorkflowStatus status;
        string? waitingFor;
        await using (var read = new NpgsqlCommand($"SELECT status, waiting_for FROM {RunsTable} WHERE uuid = @run AND NOT is_removed FOR UPDATE", connection))
        {
            read.CommandTimeout = _npgsql.CommandTimeoutSeconds;
            read.Parameters.AddWithValue("run", runId);
            await using var reader = await read.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            if (!await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                return null;
            }

            status = Enum.Parse<WorkflowStatus>(reader.GetString(0));
            waitingFor = await reader.IsDBNullAsync(1, cancellationToken).ConfigureAwait(false) ? null : reader.GetString(1);
        }

        if (WorkflowTransitions.IsFinished(status))
        {
            return new SignalResult(status, Stored: false, Wake: null);
        }

        var wakes = status == WorkflowStatus.Waiting && waitingFor == name;
        var wake = WorkflowTransitions.For(RunOperation.Wake);
        await using var batch = new NpgsqlBatch(connection) { Timeout = _npgsql.CommandTimeoutSeconds };
        batch.BatchCommands.Add(new NpgsqlBatchCommand(
            $"INSERT INTO {EventsTable} (uuid, run_uuid, name, payload, created) VALUES (@id, @run, @name, @payload, @now)")
        {
            Parameters = { new("id", Guid.CreateVersion7()), new("run", runId), Text("name", name), Jsonb("payload", payload), new("now", now) },
        });
        if (wakes)
        {
            batch.BatchCommands.Add(new NpgsqlBatchCommand($"UPDATE {StepWaitsTable} SET woken_at = @now WHERE run_uuid = @run AND woken_at IS NULL")
            {
                Parameters = { new("run", runId), new("now", now) },
            });
            batch.BatchCommands.Add(new NpgsqlBatchCommand(
                $"""
                UPDATE {RunsTable} SET status = '{wake.To}', {ClearWaitsSql}, modified = @now, job_request = @request
                WHERE uuid = @run AND status IN {wake.SqlFrom}
                RETURNING workflow_name, queue, job_id, not_before
                """)
            {
                Parameters = { new("run", runId), new("now", now), Text("request", JobRequestText(JobRequestKind.Wake)) },
            });
        }

        JobRequest? request = null;
        await using (var reader = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
        {
            if (wakes && await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                request = new JobRequest(runId, JobRequestKind.Wake, reader.GetString(0),
                    await reader.IsDBNullAsync(1, cancellationToken).ConfigureAwait(false) ? null : reader.GetString(1),
                    await reader.IsDBNullAsync(2, cancellationToken).ConfigureAwait(false) ? null : reader.GetString(2),
                    await reader.IsDBNullAsync(3, cancellationToken).ConfigureAwait(false) ? null : await reader.GetFieldValueAsync<DateTimeOffset>(3, cancellationToken).ConfigureAwait(false));
            }
        }

        return new SignalResult(status, Stored: true, request);
    }

    public async Task<IReadOnlyDictionary<string, long>> CountWaitingRunsAsync(CancellationToken cancellationToken)
    {
        await using var connection = await OpenUnenlistedAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(
            $"SELECT workflow_name, count(*) FROM {RunsTable} WHERE status = 'Waiting' AND NOT is_removed GROUP BY workflow_name", connection)
        {
            CommandTimeout = _npgsql.CommandTimeoutSeconds,
        };
        var counts = new Dictionary<string, long>(StringComparer.Ordinal);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            counts[reader.GetString(0)] = reader.GetInt64(1);
        }

        return counts;
    }

    /// <summary>A connection that never joins a caller's transaction (the engine's and the job filters' own reads and writes).</summary>
    private async Task<NpgsqlConnection> OpenUnenlistedAsync(CancellationToken cancellationToken)
    {
        using (new TransactionScope(TransactionScopeOption.Suppress, TransactionScopeAsyncFlowOption.Enabled))
        {
            return await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        }
    }
}
