using Newtonsoft.Json.Linq;
using Npgsql;

namespace Workflow.Jobs.EntityFrameworkCore;

/// <summary>
/// One execution of a run on one dedicated connection. The guard is a session-level advisory lock on
/// that connection: it is released when the execution ends, or by PostgreSQL when the process or the
/// connection dies. Every checkpoint runs on the same connection, so a lost guard (connection gone)
/// also means no further checkpoint of this execution can be written.
/// </summary>
/// <remarks>
/// Pooled connections are not reset when returned (no <c>DISCARD ALL</c>; see
/// <see cref="WorkflowNpgsqlOptions.ResetSessionOnClose"/>), so the lock must never go back to the pool:
/// it is unlocked explicitly, and when that cannot be confirmed the pool is cleared, which closes this
/// connection (ending its session, and the lock with it) instead of reusing it.
/// </remarks>
internal sealed partial class NpgsqlRunExecution : IRunExecution
{
    private const string RunsTable = NpgsqlWorkflowStore.RunsTable;
    private const string ClearWaits = NpgsqlWorkflowStore.ClearWaitsSql;
    private const string StepsTable = NpgsqlWorkflowStore.StepsTable;
    private const string AttemptsTable = NpgsqlWorkflowStore.AttemptsTable;

    private static readonly string StartSql =
        $"""
        UPDATE {RunsTable} SET status = '{WorkflowTransitions.For(RunOperation.Start).To}', attempts = attempts + @attempt_count, modified = @now,
                               {ClearWaits}
        WHERE uuid = @run AND NOT is_removed AND status IN {WorkflowTransitions.For(RunOperation.Start).SqlFrom};
        """;

    private static readonly string InsertStepSql =
        $"""
        INSERT INTO {StepsTable} (uuid, workflow_record_uuid, preceding_step_uuid, step_name, status, input_data, created, modified, started_at, is_removed, attempts)
        SELECT @step, @run, @preceding, @name, 'Running', @input, @now, @now, @now, false, @attempt
        WHERE EXISTS (SELECT 1 FROM {RunsTable} WHERE uuid = @run AND status = 'Running');
        """;

    private static readonly string RestartStepSql =
        $"""
        UPDATE {StepsTable} SET status = 'Running', attempts = @attempt, started_at = @now, modified = @now
        WHERE uuid = @step AND EXISTS (SELECT 1 FROM {RunsTable} WHERE uuid = @run AND status = 'Running');
        """;

    // The step's open attempt ends with it, in the same statement.
    private static readonly string StepSucceededSql =
        $"""
        WITH attempt AS (UPDATE {AttemptsTable} SET status = 'Succeeded', finished_at = @now WHERE step_uuid = @done AND finished_at IS NULL)
        UPDATE {StepsTable} SET status = 'Succeeded', output_data = @output, succeeded_at = @now, modified = @now WHERE uuid = @done;
        """;

    // A step's attempt starts only when the step did (it reads the step row the statement before wrote). An earlier attempt
    // still open ended without an outcome: its execution died (process or connection) before it could write one. Starting
    // an attempt again (same number) starts it afresh.
    private static readonly string AttemptStartedSql =
        $"""
        WITH abandoned AS (
            UPDATE {AttemptsTable} SET status = 'Pending', finished_at = @now, exception_message = @abandoned
            WHERE step_uuid = @step AND finished_at IS NULL AND attempt < @attempt)
        INSERT INTO {AttemptsTable} (step_uuid, attempt, started_at, status, job_id, server_name)
        SELECT @step, @attempt, @now, 'Running', @job, @server
        WHERE EXISTS (SELECT 1 FROM {StepsTable} WHERE uuid = @step AND status = 'Running' AND attempts = @attempt)
        ON CONFLICT (step_uuid, attempt) DO UPDATE
        SET started_at = excluded.started_at, finished_at = NULL, status = 'Running', exception_message = NULL, exception_type = NULL,
            stack_trace = NULL, job_id = excluded.job_id, server_name = excluded.server_name;
        """;

    /// <summary>What an attempt that ended without writing an outcome (its execution died) reads as.</summary>
    internal const string AbandonedMessage =
        "Abandoned: the execution ended without recording an outcome (its process or database connection died).";

    /// <summary>What an attempt interrupted by a shutdown or a cancel reads as.</summary>
    internal const string InterruptedMessage =
        "Interrupted: the execution was stopped during the step (server shutdown, or the run was cancelled or its job deleted).";

    /// <summary>The most characters of an exception's text kept with a failed attempt.</summary>
    internal const int MaxStackTraceLength = 16_000;

    private static readonly string RunProgressSql =
        $"""
        UPDATE {RunsTable} SET completed_steps = @completed, modified = @now WHERE uuid = @run AND status = 'Running';
        """;

    private static readonly string RunSucceededSql =
        $"""
        UPDATE {RunsTable} SET status = '{WorkflowTransitions.For(RunOperation.Succeed).To}', output_data = @run_output, succeeded_at = @now, modified = @now,
                               completed_steps = @completed
        WHERE uuid = @run AND status IN {WorkflowTransitions.For(RunOperation.Succeed).SqlFrom};
        """;

    private readonly NpgsqlConnection _connection;
    private readonly NpgsqlDataSource _dataSource;
    private readonly Guid _runId;
    private readonly long _lockKey;
    private readonly int _timeout;

    // Whether this session may hold the guard: set before asking for it, cleared only on a clear "no".
    private bool _mayHoldLock;

    // Whether this session may hold flow-control slots: set before asking for them, cleared when they were given back.
    private bool _mayHoldSlots;

    private readonly TimeSpan _guardCheckInterval;

    // The job and server recorded with each attempt this execution starts.
    private readonly string? _jobId;
    private readonly string? _serverName;

    // The guard connection takes one command at a time: the guard watch's probes and the item checkpoints written while
    // a step body runs take turns through this.
    private readonly SemaphoreSlim _connectionTurn = new(1, 1);

    // The watch of the step body running now, if any (an item checkpoint that finds the connection gone marks it lost).
    private GuardWatch? _watch;

    public NpgsqlRunExecution(NpgsqlConnection connection, NpgsqlDataSource dataSource, Guid runId, int commandTimeoutSeconds, TimeSpan guardCheckInterval = default,
        string? jobId = null, string? serverName = null)
    {
        // Bounded to their columns: a long server name must never make a checkpoint fail.
        _jobId = Bounded(jobId, 100);
        _serverName = Bounded(serverName, 200);
        _guardCheckInterval = guardCheckInterval;
        _connection = connection;
        _dataSource = dataSource;
        _runId = runId;
        _lockKey = LockKey(runId);
        _timeout = commandTimeoutSeconds;
    }

    public RunRecord? Run { get; private set; }

    public IReadOnlyList<StepRecord> Steps { get; private set; } = [];

    public JobRequest? ParentWake { get; private set; }

    /// <summary>The advisory-lock key of a run: 64 bits of its uuid (a collision only serialises two runs).</summary>
    internal static long LockKey(Guid runId)
    {
        Span<byte> bytes = stackalloc byte[16];
        runId.TryWriteBytes(bytes);
        return BitConverter.ToInt64(bytes[..8]) ^ BitConverter.ToInt64(bytes[8..]);
    }

    /// <summary>Tries the guard and, in the same round trip, loads the run and its live steps.</summary>
    public async Task<bool> TryAcquireAndLoadAsync(CancellationToken cancellationToken)
    {
        await using var batch = new NpgsqlBatch(_connection)
        {
            BatchCommands =
            {
                new NpgsqlBatchCommand("SELECT pg_try_advisory_lock(@key)") { Parameters = { new("key", _lockKey) } },
                new NpgsqlBatchCommand($"SELECT workflow_name, status, input_data::text, output_data::text, step_names, attempts, waiting_for, wake_at, compensation_requested_at IS NOT NULL, parent_uuid, concurrency_key, created FROM {RunsTable} WHERE uuid = @run AND NOT is_removed")
                {
                    Parameters = { new("run", _runId) },
                },
                StepsCommand(),
            },
            Timeout = _timeout,
        };
        _mayHoldLock = true;
        await using var reader = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
        if (!reader.GetBoolean(0))
        {
            _mayHoldLock = false;
            return false;
        }

        await reader.NextResultAsync(cancellationToken).ConfigureAwait(false);
        if (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            Run = new RunRecord(
                _runId,
                reader.GetString(0),
                Enum.Parse<WorkflowStatus>(reader.GetString(1)),
                NpgsqlWorkflowStore.ParseJson(reader.GetString(2)),
                await reader.IsDBNullAsync(3, cancellationToken).ConfigureAwait(false) ? null : NpgsqlWorkflowStore.ParseJson(reader.GetString(3)),
                await reader.GetFieldValueAsync<string[]>(4, cancellationToken).ConfigureAwait(false),
                reader.GetInt32(5))
            {
                WaitingFor = await reader.IsDBNullAsync(6, cancellationToken).ConfigureAwait(false) ? null : reader.GetString(6),
                WakeAt = await reader.IsDBNullAsync(7, cancellationToken).ConfigureAwait(false) ? null : await reader.GetFieldValueAsync<DateTimeOffset>(7, cancellationToken).ConfigureAwait(false),
                CompensationRequested = reader.GetBoolean(8),
                ParentId = await reader.IsDBNullAsync(9, cancellationToken).ConfigureAwait(false) ? null : reader.GetGuid(9),
                ConcurrencyKey = await reader.IsDBNullAsync(10, cancellationToken).ConfigureAwait(false) ? null : reader.GetString(10),
                Created = await reader.GetFieldValueAsync<DateTimeOffset>(11, cancellationToken).ConfigureAwait(false),
            };
        }

        await reader.NextResultAsync(cancellationToken).ConfigureAwait(false);
        Steps = await ReadStepsAsync(reader, cancellationToken).ConfigureAwait(false);
        return true;
    }

    public async Task ReloadStepsAsync(CancellationToken cancellationToken)
    {
        await using var batch = NewBatch();
        batch.BatchCommands.Add(StepsCommand());
        await using var reader = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        Steps = await ReadStepsAsync(reader, cancellationToken).ConfigureAwait(false);
    }

    private NpgsqlBatchCommand StepsCommand()
        => new($"SELECT uuid, step_name, status, output_data::text, attempts, compensated_at IS NOT NULL FROM {StepsTable} WHERE workflow_record_uuid = @run AND NOT is_removed")
        {
            Parameters = { new("run", _runId) },
        };

    private static async Task<List<StepRecord>> ReadStepsAsync(NpgsqlDataReader reader, CancellationToken cancellationToken)
    {
        var steps = new List<StepRecord>();
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            steps.Add(new StepRecord(
                reader.GetGuid(0),
                reader.GetString(1),
                Enum.Parse<WorkflowStatus>(reader.GetString(2)),
                await reader.IsDBNullAsync(3, cancellationToken).ConfigureAwait(false) ? null : NpgsqlWorkflowStore.ParseJson(reader.GetString(3)),
                reader.GetInt32(4))
            {
                Compensated = reader.GetBoolean(5),
            });
        }

        return steps;
    }

    public async Task<bool> BeginCompensationAsync(DateTimeOffset now, CancellationToken cancellationToken)
    {
        var begin = WorkflowTransitions.For(RunOperation.BeginCompensation);
        await using var batch = NewBatch();
        batch.BatchCommands.Add(Command(
            $"""
            UPDATE {RunsTable} SET status = '{begin.To}', compensation_requested_at = COALESCE(compensation_requested_at, @now), modified = @now,
                                   {ClearWaits}
            WHERE uuid = @run AND NOT is_removed AND status IN {begin.SqlFrom}
            """,
            RunParameter(), Now(now)));
        await batch.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        return batch.BatchCommands[0].RecordsAffected == 1;
    }

    public async Task CompensateStepAsync(Guid stepId, DateTimeOffset now, CancellationToken cancellationToken)
    {
        // One commit per compensation: once it is recorded, no execution runs this compensation again.
        await using var batch = NewBatch();
        batch.BatchCommands.Add(Command($"UPDATE {StepsTable} SET compensated_at = @now, modified = @now WHERE uuid = @step AND compensated_at IS NULL",
            new NpgsqlParameter("step", stepId), Now(now)));
        batch.BatchCommands.Add(Command($"UPDATE {RunsTable} SET modified = @now WHERE uuid = @run", RunParameter(), Now(now)));
        await batch.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    public async Task FailCompensationAsync(Guid stepId, string message, bool final, DateTimeOffset now, CancellationToken cancellationToken)
    {
        await using var batch = NewBatch();
        batch.BatchCommands.Add(Command($"UPDATE {StepsTable} SET compensation_error = @message, modified = @now WHERE uuid = @step",
            new NpgsqlParameter("step", stepId), Now(now), NpgsqlWorkflowStore.Text("message", message)));
        batch.BatchCommands.Add(Command($"UPDATE {RunsTable} SET compensation_error = @message, modified = @now WHERE uuid = @run",
            RunParameter(), Now(now), NpgsqlWorkflowStore.Text("message", message)));
        if (final)
        {
            // The run's exception_message keeps the original failure (when there was one); the compensation's is beside it.
            var fail = WorkflowTransitions.For(RunOperation.Fail);
            batch.BatchCommands.Add(Command(
                $"UPDATE {RunsTable} SET status = '{fail.To}', failed_at = @now, exception_message = COALESCE(exception_message, @message), modified = @now, {ClearWaits} WHERE uuid = @run AND status IN {fail.SqlFrom}",
                RunParameter(), Now(now), NpgsqlWorkflowStore.Text("message", message)));
        }

        await batch.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    public async Task CompleteCompensationAsync(DateTimeOffset now, CancellationToken cancellationToken)
    {
        var compensate = WorkflowTransitions.For(RunOperation.Compensate);
        await using var batch = NewBatch();
        batch.BatchCommands.Add(Command($"UPDATE {RunsTable} SET status = '{compensate.To}', modified = @now, {ClearWaits} WHERE uuid = @run AND status IN {compensate.SqlFrom}",
            RunParameter(), Now(now)));
        await batch.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    public async Task<bool> StartAsync(StepStart firstStep, DateTimeOffset now, CancellationToken cancellationToken)
    {
        await using var batch = NewBatch();
        // A step resuming after a wait is not a new attempt of the run.
        batch.BatchCommands.Add(Command(StartSql, RunParameter(), Now(now), new NpgsqlParameter("attempt_count", firstStep.AfterWait ? 0 : 1)));
        batch.BatchCommands.Add(StepStartCommand(firstStep, now));
        batch.BatchCommands.Add(AttemptStartCommand(firstStep, now));
        await batch.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        return batch.BatchCommands[1].RecordsAffected == 1;
    }

    public async Task SucceedRunAsync(JObject output, int completedSteps, DateTimeOffset now, CancellationToken cancellationToken)
    {
        await using var batch = NewBatch();
        batch.BatchCommands.Add(Command(RunSucceededSql, RunParameter(), Now(now), NpgsqlWorkflowStore.Jsonb("run_output", output), new NpgsqlParameter("completed", completedSteps)));
        await ExecuteFinishingAsync(batch, now, cancellationToken).ConfigureAwait(false);
    }

    public async Task<bool> CompleteStepAsync(Guid stepId, JObject output, StepStart? next, JObject? runOutput, int completedSteps, DateTimeOffset now,
        CancellationToken cancellationToken)
    {
        // One round trip, one transaction: the step's checkpoint, the run's progress, and the next
        // step's start (or the run's success).
        await using var batch = NewBatch();
        batch.BatchCommands.Add(Command(StepSucceededSql, new NpgsqlParameter("done", stepId), NpgsqlWorkflowStore.Jsonb("output", output), Now(now)));
        if (next is null)
        {
            batch.BatchCommands.Add(Command(RunSucceededSql, RunParameter(), Now(now), NpgsqlWorkflowStore.Jsonb("run_output", runOutput), new NpgsqlParameter("completed", completedSteps)));
            await ExecuteFinishingAsync(batch, now, cancellationToken).ConfigureAwait(false);
            return true;
        }

        batch.BatchCommands.Add(Command(RunProgressSql, RunParameter(), Now(now), new NpgsqlParameter("completed", completedSteps)));
        batch.BatchCommands.Add(StepStartCommand(next, now));
        batch.BatchCommands.Add(AttemptStartCommand(next, now));
        await batch.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        return batch.BatchCommands[2].RecordsAffected == 1;
    }

    public async Task FailStepAsync(Guid stepId, Exception exception, RunOperation runOperation, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var message = exception.Message;
        await using var batch = NewBatch();
        batch.BatchCommands.Add(Command(
            $"UPDATE {StepsTable} SET status = 'Failed', failed_at = @now, exception_message = @message, modified = @now WHERE uuid = @step",
            new NpgsqlParameter("step", stepId), Now(now), NpgsqlWorkflowStore.Text("message", message)));
        batch.BatchCommands.Add(Command(
            $"""
            UPDATE {AttemptsTable} SET status = 'Failed', finished_at = @now, exception_message = @message, exception_type = @type, stack_trace = @stack
            WHERE step_uuid = @step AND finished_at IS NULL
            """,
            new NpgsqlParameter("step", stepId), Now(now), NpgsqlWorkflowStore.Text("message", message),
            NpgsqlWorkflowStore.Text("type", Bounded(exception.GetType().FullName, 500)), NpgsqlWorkflowStore.Text("stack", StackText(exception))));
        batch.BatchCommands.Add(FailRunCommand(message, now, runOperation));
        if (WorkflowTransitions.IsFinished(WorkflowTransitions.For(runOperation).To))
        {
            await ExecuteFinishingAsync(batch, now, cancellationToken).ConfigureAwait(false);
            return;
        }

        await batch.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    public async Task<ParkResult> WaitAsync(ParkRequest park, DateTimeOffset now, CancellationToken cancellationToken)
    {
        // One transaction. The run's row is locked first, so a signal (which locks it too before storing its event)
        // either committed before the event check below, which then sees its event, or runs after this commit and
        // sees the run Waiting for it: a wake is never lost between the two.
        var wait = WorkflowTransitions.For(RunOperation.Wait);
        await using var batch = NewBatch();
        batch.BatchCommands.Add(Command($"SELECT 1 FROM {RunsTable} WHERE uuid = @run FOR UPDATE", RunParameter()));
        batch.BatchCommands.Add(Command(
            $"""
            INSERT INTO {NpgsqlWorkflowStore.StepWaitsTable} (step_uuid, wait_number, run_uuid, kind, name, deadline, event_type, created)
            VALUES (@step, @number, @run, @kind, @name, @deadline, @event_type, @now)
            ON CONFLICT (step_uuid, wait_number) DO UPDATE SET woken_at = NULL, event_type = EXCLUDED.event_type
            """,
            new NpgsqlParameter("step", park.StepId), new NpgsqlParameter("number", park.Number), RunParameter(), NpgsqlWorkflowStore.Text("kind", park.Kind),
            NpgsqlWorkflowStore.Text("name", park.Name), Deadline(park.Deadline), NpgsqlWorkflowStore.Text("event_type", park.EventType), Now(now)));
        batch.BatchCommands.Add(Command(
            $"""
            UPDATE {RunsTable} SET status = '{wait.To}', waiting_for = @waiting_for, wake_at = @deadline, modified = @now
            WHERE uuid = @run AND status IN {wait.SqlFrom}
              AND NOT EXISTS (SELECT 1 FROM {NpgsqlWorkflowStore.EventsTable} WHERE run_uuid = @run AND name = @name AND consumed_step_uuid IS NULL)
              AND (NOT @children OR EXISTS (SELECT 1 FROM {RunsTable} c WHERE c.parent_uuid = @run AND c.status NOT IN {NpgsqlWorkflowStore.FinishedSql} AND NOT c.is_removed))
            """,
            RunParameter(), NpgsqlWorkflowStore.Text("waiting_for", park.WaitingFor), Deadline(park.Deadline), Now(now), NpgsqlWorkflowStore.Text("name", park.Name),
            new NpgsqlParameter("children", park.Kind == WaitKinds.Children)));
        batch.BatchCommands.Add(Command(
            $"UPDATE {StepsTable} SET status = 'Waiting', modified = @now WHERE uuid = @step AND EXISTS (SELECT 1 FROM {RunsTable} WHERE uuid = @run AND status = 'Waiting')",
            new NpgsqlParameter("step", park.StepId), RunParameter(), Now(now)));
        batch.BatchCommands.Add(Command($"SELECT status FROM {RunsTable} WHERE uuid = @run", RunParameter()));
        string? status = null;
        await using (var reader = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
        {
            // Results: the lock (a row), then the status.
            await reader.NextResultAsync(cancellationToken).ConfigureAwait(false);
            if (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                status = reader.GetString(0);
            }
        }

        if (batch.BatchCommands[2].RecordsAffected == 1)
        {
            return ParkResult.Parked;
        }

        return status == nameof(WorkflowStatus.Running) ? ParkResult.EventArrived : ParkResult.NotRunning;
    }

    public async Task<SlotAdmission> TryTakeSlotsAsync(SlotRequest request, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(NpgsqlFlowControl.AdmitSql, _connection) { CommandTimeout = _timeout };
        command.Parameters.Add(RunParameter());
        command.Parameters.Add(NpgsqlWorkflowStore.Text("name", request.WorkflowName));
        command.Parameters.Add(NpgsqlWorkflowStore.Text("key", request.ConcurrencyKey));
        command.Parameters.Add(new NpgsqlParameter("created", request.Created));
        command.Parameters.Add(new NpgsqlParameter("offered", request.Offered));
        command.Parameters.Add(new NpgsqlParameter("ignore_queue", request.IgnoreQueue));
        command.Parameters.Add(new NpgsqlParameter("n_w", request.MaxConcurrency ?? 0));
        command.Parameters.Add(new NpgsqlParameter("n_k", request.MaxConcurrencyPerKey ?? 0));
        command.Parameters.Add(NpgsqlWorkflowStore.Text("w_group", NpgsqlFlowControl.WorkflowGroup(request.WorkflowName)));
        command.Parameters.Add(NpgsqlWorkflowStore.Text("k_group", NpgsqlFlowControl.KeyGroup(request.WorkflowName, request.ConcurrencyKey ?? "")));

        // A lock attempt may have succeeded even when reading its result fails: from here on, the session may hold slots.
        _mayHoldSlots = true;
        string? queued;
        long? keySlot;
        long? workflowSlot;
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
        {
            await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            queued = await reader.IsDBNullAsync(0, cancellationToken).ConfigureAwait(false) ? null : reader.GetString(0);
            keySlot = await reader.IsDBNullAsync(1, cancellationToken).ConfigureAwait(false) ? null : reader.GetInt64(1);
            workflowSlot = await reader.IsDBNullAsync(2, cancellationToken).ConfigureAwait(false) ? null : reader.GetInt64(2);
        }

        var needKey = request.MaxConcurrencyPerKey is not null;
        var needWorkflow = request.MaxConcurrency is not null;
        if (queued is null && (!needKey || keySlot is not null) && (!needWorkflow || workflowSlot is not null))
        {
            return SlotAdmission.Yes;
        }

        // Not admitted: whatever was taken is given back at once (a slot is held only by a run that starts).
        foreach (var slot in new[] { keySlot, workflowSlot }.OfType<long>())
        {
            await using var unlock = new NpgsqlCommand("SELECT pg_advisory_unlock(@slot)", _connection) { CommandTimeout = _timeout };
            unlock.Parameters.AddWithValue("slot", slot);
            await unlock.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        _mayHoldSlots = false;
        var blocked = queued is not null ? NpgsqlFlowControl.ParseGroup(queued)
            : needKey && keySlot is null ? SlotGroup.Key
            : SlotGroup.Workflow;
        return new SlotAdmission(false, blocked);
    }

    public async Task<ParkResult> WaitForSlotAsync(SlotGroup blockedOn, DateTimeOffset now, CancellationToken cancellationToken)
    {
        // A run that has not started (Pending), or whose execution died (Running), waits; one already waiting for a slot
        // (its job ran from a stale queue entry) only records which group it found full.
        var wait = WorkflowTransitions.For(RunOperation.Wait);
        await using var command = new NpgsqlCommand(
            $"""
            UPDATE {RunsTable} SET status = '{wait.To}', waiting_for = '{FlowControl.WaitingFor}', wake_at = NULL, concurrency_wait = @group, modified = @now
            WHERE uuid = @run AND (status IN {wait.SqlFrom} OR (status = '{wait.To}' AND waiting_for = '{FlowControl.WaitingFor}'))
            """, _connection) { CommandTimeout = _timeout };
        command.Parameters.Add(RunParameter());
        command.Parameters.Add(Now(now));
        command.Parameters.Add(NpgsqlWorkflowStore.Text("group", NpgsqlFlowControl.GroupText(blockedOn)));
        return await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) == 1 ? ParkResult.Parked : ParkResult.NotRunning;
    }

    private static NpgsqlParameter Deadline(DateTimeOffset? deadline)
        => new("deadline", NpgsqlTypes.NpgsqlDbType.TimestampTz) { Value = (object?)deadline?.ToUniversalTime() ?? DBNull.Value };

    public async Task FailRunAsync(string message, DateTimeOffset now, CancellationToken cancellationToken)
    {
        await using var batch = NewBatch();
        batch.BatchCommands.Add(FailRunCommand(message, now, RunOperation.Fail));
        await ExecuteFinishingAsync(batch, now, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Executes a batch that finishes the run. A child run's batch also wakes its parent when this was the parent's last
    /// unfinished child (same transaction: the parent's row is locked after this run's status change, then its children are
    /// checked); the parent's job write is kept in <see cref="ParentWake"/>. A run without a parent pays nothing more.
    /// </summary>
    private async Task ExecuteFinishingAsync(NpgsqlBatch batch, DateTimeOffset now, CancellationToken cancellationToken)
    {
        if (Run?.ParentId is null)
        {
            await batch.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            return;
        }

        foreach (var command in NpgsqlWorkflowStore.WakeParentsCommands([_runId], now))
        {
            batch.BatchCommands.Add(command);
        }

        await using var reader = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        var wakes = await NpgsqlWorkflowStore.ReadParentWakesAsync(reader, cancellationToken).ConfigureAwait(false);
        ParentWake = wakes.Count > 0 ? wakes[0] : null;
    }

    public async Task InterruptAsync(Guid? stepId, DateTimeOffset now, CancellationToken cancellationToken)
    {
        if (_connection.State != System.Data.ConnectionState.Open)
        {
            return;
        }

        await using var batch = NewBatch();
        if (stepId is { } step)
        {
            batch.BatchCommands.Add(Command($"UPDATE {StepsTable} SET status = 'Pending', modified = @now WHERE uuid = @step AND status = 'Running'",
                new NpgsqlParameter("step", step), Now(now)));
            batch.BatchCommands.Add(Command(
                $"UPDATE {AttemptsTable} SET status = 'Pending', finished_at = @now, exception_message = @message WHERE step_uuid = @step AND finished_at IS NULL",
                new NpgsqlParameter("step", step), Now(now), NpgsqlWorkflowStore.Text("message", InterruptedMessage)));
        }

        var interrupt = WorkflowTransitions.For(RunOperation.Interrupt);
        batch.BatchCommands.Add(Command($"UPDATE {RunsTable} SET status = '{interrupt.To}', modified = @now WHERE uuid = @run AND status IN {interrupt.SqlFrom}",
            RunParameter(), Now(now)));
        await batch.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    public IGuardWatch WatchGuard() => _watch = new GuardWatch(_connection, _guardCheckInterval, _connectionTurn);

    public async ValueTask DisposeAsync()
    {
        try
        {
            if ((_mayHoldLock || _mayHoldSlots) && _connection.State == System.Data.ConnectionState.Open)
            {
                // Released after every write has committed, so the next holder sees them. (A broken
                // connection is never pooled: PostgreSQL releases the lock with its session.) The connection is this
                // execution's alone: with flow-control slots, every advisory lock of the session goes at once.
                await using var unlock = new NpgsqlCommand(_mayHoldSlots ? "SELECT pg_advisory_unlock_all()" : "SELECT pg_advisory_unlock(@key)", _connection)
                {
                    CommandTimeout = _timeout,
                };
                if (!_mayHoldSlots)
                {
                    unlock.Parameters.AddWithValue("key", _lockKey);
                }

                await unlock.ExecuteNonQueryAsync(CancellationToken.None).ConfigureAwait(false);
                _mayHoldLock = false;
                _mayHoldSlots = false;
            }
        }
        // Whatever the failure, the outcome is the same: the session must not be reused.
        catch (Exception)
        {
        }
        finally
        {
            if ((_mayHoldLock || _mayHoldSlots) && _connection.State == System.Data.ConnectionState.Open)
            {
                // The unlock was not confirmed on a live connection: clearing the pool closes this
                // connection when it is returned below, instead of pooling a session that holds the guard.
                _dataSource.Clear();
            }

            await _connection.DisposeAsync().ConfigureAwait(false);
            _connectionTurn.Dispose();
        }
    }

    private NpgsqlBatchCommand FailRunCommand(string message, DateTimeOffset now, RunOperation operation)
    {
        var transition = WorkflowTransitions.For(operation);
        // A run that fails for good waits for nothing any more (one that failed before its start may still have been
        // queued for a flow-control slot); one failing for a retry keeps its place.
        var waits = WorkflowTransitions.IsFinished(transition.To) ? ", " + ClearWaits : "";
        return Command(
            $"UPDATE {RunsTable} SET status = '{transition.To}', failed_at = @now, exception_message = @message, modified = @now{waits} WHERE uuid = @run AND status IN {transition.SqlFrom}",
            RunParameter(), Now(now), NpgsqlWorkflowStore.Text("message", message));
    }

    private NpgsqlBatchCommand StepStartCommand(StepStart step, DateTimeOffset now)
    {
        var command = Command(step.Exists ? RestartStepSql : InsertStepSql,
            new NpgsqlParameter("step", step.StepId), RunParameter(), Now(now), new NpgsqlParameter("attempt", step.Attempt));
        if (!step.Exists)
        {
            command.Parameters.Add(new NpgsqlParameter("preceding", NpgsqlTypes.NpgsqlDbType.Uuid) { Value = (object?)step.PrecedingStepId ?? DBNull.Value });
            command.Parameters.Add(NpgsqlWorkflowStore.Text("name", step.StepName));
            command.Parameters.Add(NpgsqlWorkflowStore.Jsonb("input", step.Input));
        }

        return command;
    }

    private NpgsqlBatchCommand AttemptStartCommand(StepStart step, DateTimeOffset now)
        => Command(AttemptStartedSql, new NpgsqlParameter("step", step.StepId), new NpgsqlParameter("attempt", step.Attempt), Now(now),
            NpgsqlWorkflowStore.Text("job", _jobId), NpgsqlWorkflowStore.Text("server", _serverName), NpgsqlWorkflowStore.Text("abandoned", AbandonedMessage));

    /// <summary>The exception as .NET prints it (type, message, stack, inner exceptions), bounded.</summary>
    internal static string StackText(Exception exception) => Bounded(exception.ToString(), MaxStackTraceLength)!;

    /// <summary>The text cut to at most <paramref name="length"/> characters (ending with an ellipsis when cut).</summary>
    internal static string? Bounded(string? text, int length)
        => text is null || text.Length <= length ? text : string.Concat(text.AsSpan(0, length - 1), "…");

    private NpgsqlBatch NewBatch() => new(_connection) { Timeout = _timeout };

    private NpgsqlParameter RunParameter() => new("run", _runId);

    private static NpgsqlParameter Now(DateTimeOffset now) => new("now", now);

    private static NpgsqlBatchCommand Command(string sql, params NpgsqlParameter[] parameters)
    {
        var command = new NpgsqlBatchCommand(sql);
        command.Parameters.AddRange(parameters);
        return command;
    }

    /// <summary>
    /// Probes the guard connection at an interval while a step body runs. A probe that fails means the
    /// session (and the advisory lock with it) is gone: the step body is cancelled before a recovering host
    /// can requeue the run, so two bodies of one run never overlap for long.
    /// </summary>
    private sealed class GuardWatch : IGuardWatch
    {
        /// <summary>The shortest time a probe waits for the server's answer.</summary>
        internal const int ProbeTimeoutSeconds = 10;

        private readonly CancellationTokenSource _lost = new();
        private readonly CancellationTokenSource _stop = new();
        private readonly SemaphoreSlim _turn;
        private readonly Task _loop;
        private int _disposed;

        public GuardWatch(NpgsqlConnection connection, TimeSpan interval, SemaphoreSlim turn)
        {
            _turn = turn;
            _loop = interval <= TimeSpan.Zero ? Task.CompletedTask : WatchAsync(connection, interval);
        }

        public CancellationToken Lost => _lost.Token;

        public Exception? Reason { get; private set; }

        private async Task WatchAsync(NpgsqlConnection connection, TimeSpan interval)
        {
            // A dead session fails the probe at once (the socket is closed or reset); the timeout is only for a server
            // that does not answer. It is generous: under load a live server can take seconds to answer, and a
            // guard declared lost cancels a healthy step body (the run then resumes as a new attempt).
            var timeout = Math.Max(ProbeTimeoutSeconds, (int)Math.Ceiling(interval.TotalSeconds * 2));
            try
            {
                while (true)
                {
                    await Task.Delay(interval, _stop.Token).ConfigureAwait(false);
                    await _turn.WaitAsync(_stop.Token).ConfigureAwait(false);
                    try
                    {
                        await using var probe = new NpgsqlCommand("SELECT 1", connection) { CommandTimeout = timeout };
                        await probe.ExecuteScalarAsync(_stop.Token).ConfigureAwait(false);
                    }
                    finally
                    {
                        _turn.Release();
                    }
                }
            }
            catch (OperationCanceledException) when (_stop.IsCancellationRequested)
            {
            }
            // Any failure of the probe means the guard can no longer be trusted.
            catch (Exception ex)
            {
                await LoseAsync(ex).ConfigureAwait(false);
            }
        }

        /// <summary>Marks the guard lost (a probe, or another command on the guard's connection, found it gone).</summary>
        public async Task LoseAsync(Exception reason)
        {
            if (Volatile.Read(ref _disposed) != 0)
            {
                return;
            }

            Reason ??= reason;
            await _lost.CancelAsync().ConfigureAwait(false);
        }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync().ConfigureAwait(false);
#pragma warning disable VSTHRD003 // _loop is this object's own probe loop, started in its constructor; no JoinableTaskFactory context exists to deadlock.
            await _loop.ConfigureAwait(false);
#pragma warning restore VSTHRD003
            Volatile.Write(ref _disposed, 1);
            _stop.Dispose();
            _lost.Dispose();
        }
    }
}
