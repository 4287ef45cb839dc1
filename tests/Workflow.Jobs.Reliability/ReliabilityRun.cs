using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace Workflow.Jobs.Reliability;

/// <summary>A worker process killed on purpose.</summary>
public sealed record KillRecord(string Worker, int Pid, DateTimeOffset KilledAt);

/// <summary>
/// The orchestrator: prepares the database, keeps <see cref="ReliabilitySettings.Processes"/> worker
/// processes alive, enqueues the runs at a steady rate through <see cref="IWorkflowClient"/>, kills
/// workers with SIGKILL and restarts PostgreSQL while they work, waits for every run, then checks.
/// </summary>
public sealed class ReliabilityRun
{
    private const string KeyPrefix = "rel-";
    private readonly ReliabilitySettings _settings;
    private readonly TextWriter _output;
    private readonly Random _random;
    private readonly List<WorkerProcess> _all = [];
    private readonly List<WorkerProcess> _live = [];
    private readonly List<KillRecord> _kills = [];
    private readonly List<string> _enqueueErrors = [];
    private readonly List<string> _signalErrors = [];
    private readonly PriorityQueue<PendingSignal, TimeSpan> _signals = new();
    private bool _enqueueDone;
    private readonly Stopwatch _clock = new();
    private string _connectionString = "";
    private int _generation;
    private int _workerCrashes;
    private int _workerStartFailures;
    private int _enqueued;
    private volatile bool _restarting;
    private DatabaseRestart? _restart;

    public ReliabilityRun(ReliabilitySettings settings, TextWriter output)
    {
        ArgumentNullException.ThrowIfNull(settings);
        settings.Validate();
        _settings = settings;
        _output = output;
        _random = new Random(settings.Seed);
    }

    public async Task<ReliabilityReport> RunAsync(CancellationToken cancellationToken)
    {
        _connectionString = await PrepareDatabaseAsync(cancellationToken);
        await using var queries = NpgsqlDataSource.Create(_connectionString);
        using var client = await StartClientHostAsync(queries, cancellationToken);
        await using (var command = queries.CreateCommand(Ledger.SchemaSql))
        {
            await command.ExecuteNonQueryAsync(cancellationToken);
        }

        try
        {
            for (var slot = 0; slot < _settings.Processes; slot++)
            {
                StartWorker();
            }

            await Task.WhenAll(_live.Select(w => w.Ready)).WaitAsync(TimeSpan.FromSeconds(120), cancellationToken);
            Log($"{_settings.Processes} worker processes x {_settings.WorkersPerProcess} Hangfire workers ready; enqueuing {_settings.Runs} runs over {_settings.LoadSeconds:0} s");
            _clock.Start();

            var workflowClient = client.Services.GetRequiredService<IWorkflowClient>();
            var loadDeadline = TimeSpan.FromSeconds(_settings.LoadSeconds + _settings.DeadlineSeconds);
            var enqueue = EnqueueAllAsync(workflowClient, loadDeadline, cancellationToken);
            var signal = SignalAllAsync(workflowClient, queries, loadDeadline, cancellationToken);
            await ChaosAsync(queries, cancellationToken);
            await enqueue;
            await signal;
            var finished = await WaitForRunsAsync(queries, loadDeadline, cancellationToken);
            if (!finished)
            {
                Log($"deadline passed ({loadDeadline.TotalSeconds:0} s) before every run finished");
            }

            await RecordKillsAsync(queries, cancellationToken);
            var duration = _clock.Elapsed;
            var report = await ReliabilityReport.ComputeAsync(queries, new ReliabilityFacts(
                _settings.Runs, _kills.Count, _restart is { Succeeded: true } ? 1 : 0, _restart, _enqueueErrors.Count,
                _enqueueErrors.Distinct().ToList(), _workerCrashes, _workerStartFailures, duration)
            {
                SignalErrors = _signalErrors.Count,
                SignalErrorKinds = _signalErrors.Distinct().ToList(),
            }, cancellationToken);
            return report;
        }
        finally
        {
            await Task.WhenAll(_live.Select(w => w.StopAsync(TimeSpan.FromSeconds(20))));
            foreach (var worker in _all)
            {
                worker.Dispose();
            }
        }
    }

    private async Task<string> PrepareDatabaseAsync(CancellationToken cancellationToken)
    {
        if (_settings.CreateDatabase is not { } name)
        {
            return _settings.ConnectionString;
        }

        if (!name.All(c => char.IsAsciiLetterOrDigit(c) || c == '_'))
        {
            throw new ArgumentException($"Database name '{name}' must be letters, digits and underscores.");
        }

        await using (var connection = new NpgsqlConnection(_settings.ConnectionString))
        {
            await connection.OpenAsync(cancellationToken);
            await using var drop = new NpgsqlCommand($"DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)", connection);
            await drop.ExecuteNonQueryAsync(cancellationToken);
            await using var create = new NpgsqlCommand($"CREATE DATABASE \"{name}\"", connection);
            await create.ExecuteNonQueryAsync(cancellationToken);
        }

        return new NpgsqlConnectionStringBuilder(_settings.ConnectionString) { Database = name }.ConnectionString;
    }

    /// <summary>The enqueuing side: the library without a Hangfire server. Starting it migrates both schemas.</summary>
    private async Task<IHost> StartClientHostAsync(NpgsqlDataSource queries, CancellationToken cancellationToken)
    {
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        // Hangfire's log provider is static and points at the ILoggerFactory of the last host that configured Hangfire;
        // a factory that disposing a host cannot break keeps the other hosts of the process (the smoke test runs this in a test process) working.
        builder.Services.AddSingleton<ILoggerFactory>(Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance);
        builder.Services.AddSingleton(new Ledger(queries, new WorkerIdentity("orchestrator")));
        builder.Services.AddWorkflowJobs(o => o.UseNpgsql(_connectionString))
            .AddWorkflow<ReliabilityWorkflow>()
            .AddHangfireJobs(o => o.RunServer = false);
        var host = builder.Build();
        await host.StartAsync(cancellationToken);
        // Hangfire's schema is created with the storage.
        _ = host.Services.GetRequiredService<global::Hangfire.JobStorage>();
        return host;
    }

    private WorkerProcess StartWorker()
    {
        var label = $"w{_generation++}";
        var worker = WorkerProcess.Start(_settings, _connectionString, label);
        _all.Add(worker);
        _live.Add(worker);
        return worker;
    }

    private async Task EnqueueAllAsync(IWorkflowClient client, TimeSpan deadline, CancellationToken cancellationToken)
    {
        for (var i = 0; i < _settings.Runs; i++)
        {
            var due = TimeSpan.FromSeconds(_settings.LoadSeconds * i / _settings.Runs);
            if (due > _clock.Elapsed)
            {
                await Task.Delay(due - _clock.Elapsed, cancellationToken);
            }

            var seed = _random.NextInt64();
            var wait = _random.Next(100);
            var sleepMilliseconds = wait < _settings.SleepPercent
                ? _random.Next(_settings.MaxSleepMilliseconds / 3, _settings.MaxSleepMilliseconds + 1)
                : 0;
            var waitForEvent = wait >= _settings.SleepPercent && wait < _settings.SleepPercent + _settings.EventPercent;
            var signalDelay = TimeSpan.FromMilliseconds(_random.Next(_settings.MaxSignalDelayMilliseconds + 1));
            var input = ReliabilityWorkflow.Input(seed, _settings.MaxWorkMilliseconds, _settings.FailurePercent, sleepMilliseconds, waitForEvent);
            var options = new EnqueueOptions { IdempotencyKey = KeyPrefix + i.ToString(CultureInfo.InvariantCulture) };
            while (true)
            {
                try
                {
                    using var attempt = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                    attempt.CancelAfter(TimeSpan.FromSeconds(30));
                    var runId = await client.EnqueueAsync<ReliabilityWorkflow>(input, options, attempt.Token);
                    Interlocked.Increment(ref _enqueued);
                    if (waitForEvent)
                    {
                        lock (_signals)
                        {
                            // Random delay from 0: some events are sent before the run reaches its wait (kept), most after (woken).
                            _signals.Enqueue(new PendingSignal(runId, options.IdempotencyKey + "-" + ReliabilityWorkflow.EventName), _clock.Elapsed + signalDelay);
                        }
                    }

                    break;
                }
                catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
                {
                    // The database is down (restart): the call fails and leaves nothing; the same key is retried.
                    lock (_enqueueErrors)
                    {
                        _enqueueErrors.Add(Describe(ex));
                    }

                    if (_clock.Elapsed > deadline)
                    {
                        Log($"giving up enqueuing {options.IdempotencyKey}: {ex.Message}");
                        break;
                    }

                    await Task.Delay(500, cancellationToken);
                }
            }
        }

        Log($"enqueued {_enqueued}/{_settings.Runs} runs ({_enqueueErrors.Count} failed enqueue calls)");
        lock (_signals)
        {
            _enqueueDone = true;
        }
    }

    /// <summary>
    /// The signaller: sends each waiting run's one event from this process (not a worker) when its time comes, through
    /// <see cref="IWorkflowClient.SignalAsync(Guid, string, WorkflowData, CancellationToken)"/>, while workers are killed and
    /// the database restarts. A failed call is retried only when its event was not stored, so one event per run is sent.
    /// </summary>
    private async Task SignalAllAsync(IWorkflowClient client, NpgsqlDataSource queries, TimeSpan deadline, CancellationToken cancellationToken)
    {
        var sent = 0;
        while (true)
        {
            PendingSignal? next = null;
            lock (_signals)
            {
                if (_signals.TryPeek(out var pending, out var due) && due <= _clock.Elapsed)
                {
                    next = _signals.Dequeue();
                }
                else if (_signals.Count == 0 && _enqueueDone)
                {
                    break;
                }
            }

            if (next is null)
            {
                await Task.Delay(50, cancellationToken);
                continue;
            }

            var retry = false;
            while (true)
            {
                try
                {
                    using var attempt = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                    attempt.CancelAfter(TimeSpan.FromSeconds(30));
                    // After a failed call whose commit may have happened (connection lost during COMMIT), look before sending again.
                    if (!retry || !await EventStoredAsync(queries, next, attempt.Token))
                    {
                        await client.SignalAsync(next.RunId, ReliabilityWorkflow.EventName, new ReliabilityEvent { Nonce = next.Nonce }, attempt.Token);
                    }

                    await RecordSignalAsync(queries, next, attempt.Token);
                    sent++;
                    break;
                }
                catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
                {
                    retry = true;
                    lock (_signalErrors)
                    {
                        _signalErrors.Add(Describe(ex));
                    }

                    if (_clock.Elapsed > deadline)
                    {
                        Log($"giving up signalling {next.Nonce}: {ex.Message}");
                        break;
                    }

                    await Task.Delay(500, cancellationToken);
                }
            }
        }

        Log($"signalled {sent} waiting runs ({_signalErrors.Count} failed signal calls)");
    }

    private static async Task<bool> EventStoredAsync(NpgsqlDataSource queries, PendingSignal signal, CancellationToken cancellationToken)
    {
        await using var command = queries.CreateCommand("SELECT EXISTS (SELECT 1 FROM workflow.workflow_events WHERE run_uuid = $1 AND payload->>'nonce' = $2)");
        command.Parameters.Add(new NpgsqlParameter { Value = signal.RunId });
        command.Parameters.Add(new NpgsqlParameter { Value = signal.Nonce });
        return (bool)(await command.ExecuteScalarAsync(cancellationToken))!;
    }

    private static async Task RecordSignalAsync(NpgsqlDataSource queries, PendingSignal signal, CancellationToken cancellationToken)
    {
        await using var command = queries.CreateCommand("INSERT INTO reliability.signals (run_id, nonce) VALUES ($1, $2) ON CONFLICT DO NOTHING");
        command.Parameters.Add(new NpgsqlParameter { Value = signal.RunId });
        command.Parameters.Add(new NpgsqlParameter { Value = signal.Nonce });
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    private sealed record PendingSignal(Guid RunId, string Nonce);

    private async Task ChaosAsync(NpgsqlDataSource queries, CancellationToken cancellationToken)
    {
        var events = new List<(double At, bool Kill)>();
        for (var i = 0; i < _settings.Kills; i++)
        {
            events.Add((_settings.LoadSeconds * (0.1 + (0.8 * (i + 0.5) / _settings.Kills)), true));
        }

        if (_settings.DatabaseRestartCommand is not null)
        {
            events.Add((_settings.LoadSeconds * 0.55, false));
        }

        foreach (var (at, kill) in events.OrderBy(e => e.At))
        {
            while (_clock.Elapsed.TotalSeconds < at)
            {
                ReplaceCrashedWorkers();
                await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(1000, Math.Max(10, (at - _clock.Elapsed.TotalSeconds) * 1000))), cancellationToken);
            }

            if (kill)
            {
                // Not while the workers are still reconnecting after the restart: that would measure the restart twice.
                while (_restart is { } restart && DateTimeOffset.UtcNow - restart.Ended < TimeSpan.FromSeconds(5))
                {
                    await Task.Delay(200, cancellationToken);
                }

                await KillOneAsync(queries, cancellationToken);
            }
            else
            {
                await RestartDatabaseAsync(cancellationToken);
            }
        }
    }

    private async Task KillOneAsync(NpgsqlDataSource queries, CancellationToken cancellationToken)
    {
        // Kill a process with step bodies in flight, so that the kill interrupts work; wait a little for one.
        // Processes that started less than 10 s ago are spared while others are busy: killing a replacement
        // that has just picked up the previous victim's runs measures two kills as one recovery.
        var waitUntil = _clock.Elapsed + TimeSpan.FromSeconds(30);
        List<WorkerProcess> candidates;
        while (true)
        {
            ReplaceCrashedWorkers();
            var busy = await BusyWorkersAsync(queries, cancellationToken);
            candidates = _live.Where(w => !w.HasExited && busy.Contains(w.Label)).ToList();
            var settled = candidates.Where(w => DateTime.UtcNow - w.ReadyAt >= TimeSpan.FromSeconds(10)).ToList();
            if (settled.Count > 0)
            {
                candidates = settled;
            }

            if (candidates.Count > 0 || _clock.Elapsed > waitUntil)
            {
                break;
            }

            await Task.Delay(100, cancellationToken);
        }

        if (candidates.Count == 0)
        {
            candidates = _live.Where(w => !w.HasExited).ToList();
        }

        var victim = candidates[_random.Next(candidates.Count)];
        var killedAt = DateTimeOffset.UtcNow;
        victim.Kill();
        _kills.Add(new KillRecord(victim.Label, victim.Pid, killedAt));
        _live.Remove(victim);
        var replacement = StartWorker();
        Log($"SIGKILL {victim.Label} (pid {victim.Pid}); replacement {replacement.Label} started");
        _ = replacement.Ready.ContinueWith(
            t => Log(t.IsCompletedSuccessfully ? $"replacement {replacement.Label} ready" : $"replacement {replacement.Label} did not start: {t.Exception?.InnerException?.Message}"),
            CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
    }

    private static async Task<HashSet<string>> BusyWorkersAsync(NpgsqlDataSource queries, CancellationToken cancellationToken)
    {
        var busy = new HashSet<string>(StringComparer.Ordinal);
        try
        {
            await using var command = queries.CreateCommand("SELECT DISTINCT worker FROM reliability.ledger WHERE ended_at IS NULL");
            await using var reader = await command.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                busy.Add(reader.GetString(0));
            }
        }
        catch (NpgsqlException)
        {
            // Database restarting: nobody looks busy.
        }

        return busy;
    }

    private async Task RestartDatabaseAsync(CancellationToken cancellationToken)
    {
        _restarting = true;
        var alive = _live.Where(w => w.Ready.IsCompletedSuccessfully && !w.HasExited).Select(w => w.Label).ToList();
        var started = DateTimeOffset.UtcNow;
        var start = new ProcessStartInfo("/bin/bash") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add(_settings.DatabaseRestartCommand!);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync(cancellationToken);
        var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
        await process.WaitForExitAsync(cancellationToken);
        var ended = DateTimeOffset.UtcNow;
        _restart = new DatabaseRestart(started, ended, process.ExitCode == 0, alive);
        _restarting = false;
        Log($"PostgreSQL restarted in {(ended - started).TotalSeconds:0.0} s (exit {process.ExitCode})" +
            (process.ExitCode == 0 ? "" : $": {(await stderr).Trim()} {(await stdout).Trim()}"));
    }

    private void ReplaceCrashedWorkers()
    {
        if (_restarting)
        {
            return;
        }

        foreach (var worker in _live.Where(w => w.HasExited && !w.Expected).ToList())
        {
            // A process that dies before it is ready could not start (database down); one that dies later crashed.
            var started = worker.Ready.IsCompletedSuccessfully;
            if (started)
            {
                _workerCrashes++;
            }
            else
            {
                _workerStartFailures++;
            }

            _live.Remove(worker);
            var replacement = StartWorker();
            Log($"worker {worker.Label} {(started ? "exited on its own" : "could not start")}; replacement {replacement.Label} started");
        }
    }

    private async Task<bool> WaitForRunsAsync(NpgsqlDataSource queries, TimeSpan deadline, CancellationToken cancellationToken)
    {
        var lastProgress = TimeSpan.Zero;
        while (true)
        {
            ReplaceCrashedWorkers();
            long succeeded = -1, failedForGood = -1, total = -1;
            try
            {
                await using var command = queries.CreateCommand(
                    """
                    SELECT count(*) FILTER (WHERE r.status = 'Succeeded'),
                           count(*) FILTER (WHERE r.status IN ('Failed', 'Cancelled') AND (j.statename IS NULL OR j.statename IN ('Failed', 'Deleted', 'Succeeded'))),
                           count(*)
                    FROM workflow.workflow_runs r LEFT JOIN hangfire.job j ON j.id = r.job_id::bigint
                    """);
                await using var reader = await command.ExecuteReaderAsync(cancellationToken);
                await reader.ReadAsync(cancellationToken);
                (succeeded, failedForGood, total) = (reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2));
            }
            catch (NpgsqlException)
            {
                // Database restarting: ask again.
            }

            if (_clock.Elapsed - lastProgress >= TimeSpan.FromSeconds(10))
            {
                lastProgress = _clock.Elapsed;
                Log($"progress: runs={total} succeeded={succeeded} failed_for_good={failedForGood} live_workers={_live.Count(w => !w.HasExited)}");
            }

            if (succeeded >= 0 && succeeded + failedForGood >= _enqueued)
            {
                Log($"every run finished: succeeded={succeeded} failed_for_good={failedForGood}");
                return true;
            }

            if (_clock.Elapsed > deadline)
            {
                return false;
            }

            await Task.Delay(1000, cancellationToken);
        }
    }

    private async Task RecordKillsAsync(NpgsqlDataSource queries, CancellationToken cancellationToken)
    {
        foreach (var kill in _kills)
        {
            await using var command = queries.CreateCommand("INSERT INTO reliability.kills (worker, pid, killed_at) VALUES ($1, $2, $3)");
            command.Parameters.Add(new NpgsqlParameter { Value = kill.Worker });
            command.Parameters.Add(new NpgsqlParameter { Value = kill.Pid });
            command.Parameters.Add(new NpgsqlParameter { Value = kill.KilledAt });
            await command.ExecuteNonQueryAsync(cancellationToken);
        }
    }

    /// <summary>What a caller sees: the exception, and the database error underneath when it is wrapped.</summary>
    private static string Describe(Exception exception)
    {
        var inner = exception;
        while (inner.InnerException is not null)
        {
            inner = inner.InnerException;
        }

        var outer = $"{exception.GetType().Name}: {exception.Message}";
        return ReferenceEquals(inner, exception) ? outer : $"{outer} <- {inner.GetType().Name}: {inner.Message}";
    }

    private void Log(string message)
    {
        lock (_output)
        {
            _output.WriteLine($"[{_clock.Elapsed.TotalSeconds,6:0.0}s] {message}");
        }
    }
}

/// <summary>The database restart: when, whether it worked, and which worker processes were alive through it.</summary>
public sealed record DatabaseRestart(DateTimeOffset Started, DateTimeOffset Ended, bool Succeeded, IReadOnlyList<string> WorkersAlive);
