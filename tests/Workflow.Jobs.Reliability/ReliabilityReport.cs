using System.Globalization;
using Npgsql;

namespace Workflow.Jobs.Reliability;

/// <summary>What the orchestrator knows that the database does not.</summary>
public sealed record ReliabilityFacts(
    int Runs,
    int Kills,
    int DatabaseRestarts,
    DatabaseRestart? Restart,
    int EnqueueErrors,
    IReadOnlyList<string> EnqueueErrorKinds,
    int WorkerCrashes,
    int WorkerStartFailures,
    TimeSpan Duration)
{
    /// <summary>Signal calls that failed (database down) and were retried.</summary>
    public int SignalErrors { get; init; }

    /// <summary>The distinct errors the signaller saw.</summary>
    public IReadOnlyList<string> SignalErrorKinds { get; init; } = [];
}

/// <summary>
/// The figures of a reliability run, all computed from the database after every run finished (the
/// ledger, the checkpoint audit written by a trigger, the library's tables and Hangfire's).
/// </summary>
public sealed record ReliabilityReport
{
    public required ReliabilityFacts Facts { get; init; }

    /// <summary>Checkpointed (Succeeded) step records.</summary>
    public long Steps { get; init; }

    /// <summary>Runs that are not Succeeded (or were never enqueued).</summary>
    public long Lost { get; init; }

    /// <summary>Step records whose Succeeded state was written more than once.</summary>
    public long RepeatedCheckpointWrites { get; init; }

    /// <summary>(run, step) pairs with more than one live step record.</summary>
    public long RepeatedStepRecords { get; init; }

    /// <summary>Step bodies that started after their step was checkpointed.</summary>
    public long BodiesAfterCheckpoint { get; init; }

    /// <summary>The sum of the three above: a checkpointed step written or run again.</summary>
    public long DuplicateCheckpoints => RepeatedCheckpointWrites + RepeatedStepRecords + BodiesAfterCheckpoint;

    /// <summary>Pairs of ledger rows of one run whose intervals overlap (a killed body ends at its kill).</summary>
    public long OverlappingExecutions { get; init; }

    /// <summary>Step bodies that ran again because the previous body of the same step was killed.</summary>
    public long ReexecutedAfterKill { get; init; }

    /// <summary>Step bodies that ran again for another reason than an injected failure or a kill (the database restart).</summary>
    public long ReexecutedOther { get; init; }

    /// <summary>Ledger rows (step bodies started).</summary>
    public long LedgerRows { get; init; }

    /// <summary>Bodies that failed on purpose (each one retried).</summary>
    public long InjectedFailures { get; init; }

    /// <summary>Seconds from a kill to the next body, in another process, of each run that had a body in flight in the killed process.</summary>
    public IReadOnlyList<double> RecoverySeconds { get; init; } = [];

    /// <summary>Runs with a body in flight in a killed process that never ran again.</summary>
    public long Unrecovered { get; init; }

    /// <summary>Runs without a Hangfire job, or whose job does not exist.</summary>
    public long RunsWithoutJob { get; init; }

    /// <summary>Workflow jobs without a run.</summary>
    public long JobsWithoutRun { get; init; }

    /// <summary>Runs beyond one per idempotency key enqueued.</summary>
    public long ExtraRuns { get; init; }

    /// <summary>Succeeded runs whose final output is not the value chain of their seed.</summary>
    public long WrongOutputs { get; init; }

    /// <summary>Runs given a durable wait: a sleep or an event wait.</summary>
    public long WaitingRuns { get; init; }

    /// <summary>Runs given a durable sleep.</summary>
    public long SleepingRuns { get; init; }

    /// <summary>Runs given an event wait.</summary>
    public long EventRuns { get; init; }

    /// <summary>Waits on which a step parked its run (an event sent before its wait is consumed without parking).</summary>
    public long ParkedWaits { get; init; }

    /// <summary>Events the driver sent (one per event run, each stored once).</summary>
    public long EventsSent { get; init; }

    /// <summary>Events stored in the library's table.</summary>
    public long EventsStored { get; init; }

    /// <summary>Stored events marked consumed by a wait.</summary>
    public long EventsConsumed { get; init; }

    /// <summary>
    /// Events consumed by two waits (a nonce returned to two step records, or two consumer marks on one wait) plus waits
    /// that got two events (a step record whose wait returned different nonces across its re-runs).
    /// </summary>
    public long DoubleConsumedEvents { get; init; }

    /// <summary>Waits that returned an event sent to another run.</summary>
    public long WrongEvents { get; init; }

    /// <summary>Event runs whose waiting step succeeded without its wait returning the run's event.</summary>
    public long EventRunsWithoutEvent { get; init; }

    /// <summary>Sleeping steps whose body started before the sleep's end.</summary>
    public long EarlyWakes { get; init; }

    /// <summary>Worker processes alive through the database restart that ran step bodies after it.</summary>
    public int WorkersBackAfterRestart { get; init; }

    public double? P99RecoverySeconds => Percentile(0.99);

    public double? MaxRecoverySeconds => RecoverySeconds.Count == 0 ? null : RecoverySeconds.Max();

    /// <summary>The suite passes: nothing lost, nothing checkpointed twice, no overlap, nothing half-written, outputs right.</summary>
    public bool Passed => Lost == 0 && DuplicateCheckpoints == 0 && OverlappingExecutions == 0
                          && RunsWithoutJob == 0 && JobsWithoutRun == 0 && ExtraRuns == 0 && WrongOutputs == 0 && Unrecovered == 0
                          && DoubleConsumedEvents == 0 && WrongEvents == 0 && EventRunsWithoutEvent == 0 && EarlyWakes == 0
                          && EventsSent == EventRuns && EventsStored == EventsSent && EventsConsumed == EventsSent;

    /// <summary>The final line, in the form docs/reliability.md documents.</summary>
    public string FinalLine => string.Create(CultureInfo.InvariantCulture,
        $"reliability: runs={Facts.Runs} steps={Steps} kills={Facts.Kills} db_restarts={Facts.DatabaseRestarts} lost={Lost} " +
        $"duplicate_checkpoints={DuplicateCheckpoints} overlapping_executions={OverlappingExecutions} reexecuted_steps={ReexecutedAfterKill} " +
        $"p99_recovery_s={Format(P99RecoverySeconds)} waiting_runs={WaitingRuns} events_sent={EventsSent} events_consumed={EventsConsumed} " +
        $"double_consumed_events={DoubleConsumedEvents}");

    /// <summary>The details behind the final line.</summary>
    public IEnumerable<string> DetailLines()
    {
        yield return string.Create(CultureInfo.InvariantCulture,
            $"details: duration_s={Facts.Duration.TotalSeconds:0} ledger_rows={LedgerRows} injected_failures={InjectedFailures} " +
            $"reexecuted_after_db_restart={ReexecutedOther} recovered_runs={RecoverySeconds.Count} unrecovered={Unrecovered} " +
            $"max_recovery_s={Format(MaxRecoverySeconds)} worker_crashes={Facts.WorkerCrashes} worker_start_failures={Facts.WorkerStartFailures}");
        yield return string.Create(CultureInfo.InvariantCulture,
            $"details: checkpoint_writes_repeated={RepeatedCheckpointWrites} step_records_repeated={RepeatedStepRecords} bodies_after_checkpoint={BodiesAfterCheckpoint} " +
            $"runs_without_job={RunsWithoutJob} jobs_without_run={JobsWithoutRun} extra_runs={ExtraRuns} wrong_outputs={WrongOutputs}");
        yield return string.Create(CultureInfo.InvariantCulture,
            $"details: sleeping_runs={SleepingRuns} event_runs={EventRuns} parked_waits={ParkedWaits} early_wakes={EarlyWakes} events_stored={EventsStored} " +
            $"wrong_events={WrongEvents} event_runs_without_event={EventRunsWithoutEvent} signal_errors={Facts.SignalErrors}");
        if (Facts.Restart is { } restart)
        {
            yield return string.Create(CultureInfo.InvariantCulture,
                $"details: db_restart_s={(restart.Ended - restart.Started).TotalSeconds:0.0} enqueue_errors={Facts.EnqueueErrors} " +
                $"workers_back_after_restart={WorkersBackAfterRestart}/{restart.WorkersAlive.Count}");
        }

        foreach (var error in Facts.EnqueueErrorKinds.Take(5))
        {
            yield return "details: enqueue error: " + error.ReplaceLineEndings(" ");
        }

        foreach (var error in Facts.SignalErrorKinds.Take(5))
        {
            yield return "details: signal error: " + error.ReplaceLineEndings(" ");
        }
    }

    public static async Task<ReliabilityReport> ComputeAsync(NpgsqlDataSource db, ReliabilityFacts facts, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(db);
        ArgumentNullException.ThrowIfNull(facts);
        async Task<long> ScalarAsync(string sql)
        {
            await using var command = db.CreateCommand(sql);
            return Convert.ToInt64(await command.ExecuteScalarAsync(cancellationToken), CultureInfo.InvariantCulture);
        }

        const string Sleeping = "COALESCE((input_data->'r2_input'->>'sleep_ms')::int, 0) > 0";
        const string Waiting = "COALESCE((input_data->'r4_input'->>'wait_event')::boolean, false)";
        const string Kills = "k AS (SELECT worker, min(killed_at) AS killed_at FROM reliability.kills GROUP BY worker)";

        var succeeded = await ScalarAsync("SELECT count(*) FROM workflow.workflow_runs WHERE status = 'Succeeded' AND idempotency_key LIKE 'rel-%'");
        var totalRuns = await ScalarAsync("SELECT count(*) FROM workflow.workflow_runs");
        var keys = await ScalarAsync("SELECT count(DISTINCT idempotency_key) FROM workflow.workflow_runs WHERE idempotency_key LIKE 'rel-%'");

        long afterKill = 0, other = 0;
        await using (var command = db.CreateCommand(
            $"""
            WITH {Kills},
            ordered AS (
                SELECT l.id,
                       lag(l.id) OVER w AS prev_id, lag(l.outcome) OVER w AS prev_outcome,
                       lag(l.ended_at) OVER w AS prev_ended, lag(l.worker) OVER w AS prev_worker
                FROM reliability.ledger l
                WINDOW w AS (PARTITION BY l.run_id, l.step_name ORDER BY l.started_at, l.id))
            SELECT count(*) FILTER (WHERE prev_ended IS NULL AND prev_worker IN (SELECT worker FROM k)),
                   count(*) FILTER (WHERE NOT (prev_ended IS NULL AND prev_worker IN (SELECT worker FROM k)))
            FROM ordered WHERE prev_id IS NOT NULL AND prev_outcome IS DISTINCT FROM 'Failed'
            """))
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken))
        {
            await reader.ReadAsync(cancellationToken);
            (afterKill, other) = (reader.GetInt64(0), reader.GetInt64(1));
        }

        var recovery = new List<double>();
        long unrecovered = 0;
        await using (var command = db.CreateCommand(
            $"""
            WITH {Kills}
            SELECT DISTINCT l.run_id, k.killed_at,
                   (SELECT min(n.started_at) FROM reliability.ledger n WHERE n.run_id = l.run_id AND n.started_at > k.killed_at AND n.worker <> k.worker)
            FROM reliability.ledger l JOIN k ON k.worker = l.worker
            WHERE l.ended_at IS NULL
            """))
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken))
        {
            while (await reader.ReadAsync(cancellationToken))
            {
                if (await reader.IsDBNullAsync(2, cancellationToken))
                {
                    unrecovered++;
                }
                else
                {
                    recovery.Add((await reader.GetFieldValueAsync<DateTimeOffset>(2, cancellationToken) - await reader.GetFieldValueAsync<DateTimeOffset>(1, cancellationToken)).TotalSeconds);
                }
            }
        }

        long wrong = 0;
        await using (var command = db.CreateCommand(
            "SELECT (input_data->'r1_input'->>'seed')::bigint, (output_data->'r5_output'->>'value')::bigint FROM workflow.workflow_runs WHERE status = 'Succeeded'"))
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken))
        {
            while (await reader.ReadAsync(cancellationToken))
            {
                if (await reader.IsDBNullAsync(1, cancellationToken) || reader.GetInt64(1) != ReliabilityWorkflow.ExpectedValue(reader.GetInt64(0)))
                {
                    wrong++;
                }
            }
        }

        var workersBack = 0;
        if (facts.Restart is { } restart)
        {
            await using var command = db.CreateCommand("SELECT count(DISTINCT worker) FROM reliability.ledger WHERE started_at > $1 AND worker = ANY($2)");
            command.Parameters.Add(new NpgsqlParameter { Value = restart.Ended });
            command.Parameters.Add(new NpgsqlParameter { Value = restart.WorkersAlive.ToArray() });
            workersBack = (int)(long)(await command.ExecuteScalarAsync(cancellationToken))!;
        }

        return new ReliabilityReport
        {
            Facts = facts,
            Steps = await ScalarAsync("SELECT count(*) FROM workflow.workflow_steps WHERE status = 'Succeeded' AND NOT is_removed"),
            Lost = facts.Runs - succeeded,
            RepeatedCheckpointWrites = await ScalarAsync("SELECT count(*) FROM (SELECT step_id FROM reliability.checkpoints GROUP BY step_id HAVING count(*) > 1) d"),
            RepeatedStepRecords = await ScalarAsync(
                "SELECT count(*) FROM (SELECT 1 FROM workflow.workflow_steps WHERE NOT is_removed GROUP BY workflow_record_uuid, step_name HAVING count(*) > 1) d"),
            BodiesAfterCheckpoint = await ScalarAsync(
                """
                SELECT count(DISTINCT l.id) FROM reliability.ledger l
                JOIN reliability.checkpoints c ON c.run_id = l.run_id AND c.step_name = l.step_name AND l.started_at > c.at
                """),
            OverlappingExecutions = await ScalarAsync(
                $"""
                WITH {Kills},
                l AS (SELECT l.id, l.run_id, l.started_at, COALESCE(l.ended_at, k.killed_at, 'infinity'::timestamptz) AS ended_at
                      FROM reliability.ledger l LEFT JOIN k ON k.worker = l.worker)
                SELECT count(*) FROM l a JOIN l b ON a.run_id = b.run_id AND a.id < b.id
                WHERE a.started_at < b.ended_at AND b.started_at < a.ended_at
                """),
            ReexecutedAfterKill = afterKill,
            ReexecutedOther = other,
            LedgerRows = await ScalarAsync("SELECT count(*) FROM reliability.ledger"),
            InjectedFailures = await ScalarAsync("SELECT count(*) FROM reliability.ledger WHERE outcome = 'Failed'"),
            RecoverySeconds = recovery,
            Unrecovered = unrecovered,
            RunsWithoutJob = await ScalarAsync(
                "SELECT count(*) FROM workflow.workflow_runs r WHERE r.job_id IS NULL OR NOT EXISTS (SELECT 1 FROM hangfire.job j WHERE j.id = r.job_id::bigint)"),
            JobsWithoutRun = await ScalarAsync(
                """
                SELECT (SELECT count(*) FROM hangfire.job WHERE invocationdata::text LIKE '%WorkflowJob%')
                     - (SELECT count(*) FROM workflow.workflow_runs r JOIN hangfire.job j ON j.id = r.job_id::bigint)
                """),
            ExtraRuns = totalRuns - keys,
            WrongOutputs = wrong,
            WorkersBackAfterRestart = workersBack,
            SleepingRuns = await ScalarAsync($"SELECT count(*) FROM workflow.workflow_runs WHERE {Sleeping}"),
            EventRuns = await ScalarAsync($"SELECT count(*) FROM workflow.workflow_runs WHERE {Waiting}"),
            WaitingRuns = await ScalarAsync($"SELECT count(*) FROM workflow.workflow_runs WHERE {Sleeping} OR {Waiting}"),
            ParkedWaits = await ScalarAsync("SELECT count(*) FROM workflow.workflow_step_waits"),
            EventsSent = await ScalarAsync("SELECT count(*) FROM reliability.signals"),
            EventsStored = await ScalarAsync("SELECT count(*) FROM workflow.workflow_events"),
            EventsConsumed = await ScalarAsync("SELECT count(*) FROM workflow.workflow_events WHERE consumed_step_uuid IS NOT NULL"),
            DoubleConsumedEvents = await ScalarAsync(
                """
                SELECT (SELECT count(*) FROM (SELECT nonce FROM reliability.received GROUP BY nonce HAVING count(DISTINCT step_id) > 1) d)
                     + (SELECT count(*) FROM (SELECT step_id FROM reliability.received GROUP BY step_id HAVING count(DISTINCT nonce) > 1) d)
                     + (SELECT count(*) FROM (SELECT 1 FROM workflow.workflow_events WHERE consumed_step_uuid IS NOT NULL
                                              GROUP BY consumed_step_uuid, consumed_wait HAVING count(*) > 1) d)
                """),
            WrongEvents = await ScalarAsync(
                "SELECT count(*) FROM reliability.received r WHERE NOT EXISTS (SELECT 1 FROM reliability.signals s WHERE s.nonce = r.nonce AND s.run_id = r.run_id)"),
            EventRunsWithoutEvent = await ScalarAsync(
                $"SELECT count(*) FROM workflow.workflow_runs wr WHERE wr.status = 'Succeeded' AND {Waiting} AND NOT EXISTS (SELECT 1 FROM reliability.received r WHERE r.run_id = wr.uuid)"),
            EarlyWakes = await ScalarAsync(
                """
                SELECT count(DISTINCT l.id) FROM workflow.workflow_step_waits w
                JOIN reliability.ledger l ON l.step_id = w.step_uuid
                WHERE w.kind = 'sleep' AND l.started_at < w.deadline
                """),
        };
    }

    private double? Percentile(double p)
    {
        if (RecoverySeconds.Count == 0)
        {
            return null;
        }

        var sorted = RecoverySeconds.Order().ToList();
        var rank = (int)Math.Ceiling(p * sorted.Count);
        return sorted[Math.Clamp(rank - 1, 0, sorted.Count - 1)];
    }

    private static string Format(double? seconds)
        => seconds is { } s ? s.ToString("0.0", CultureInfo.InvariantCulture) : "n/a";
}
