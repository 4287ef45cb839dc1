using System.Diagnostics;
using System.Globalization;
using Hangfire;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace Workflow.Jobs.Benchmarks;

/// <summary>One measured round: what was enqueued and processed, what it cost, how long processing took.</summary>
internal sealed record RoundResult(string Label, int Units, int Jobs, StatsSnapshot Cost, long OwnTransactions, TimeSpan Processing, double WorkerCpuMilliseconds = 0,
    double PostgresCpuMilliseconds = 0)
{
    /// <summary>CPU of the worker process and the PostgreSQL cluster per unit (step), in milliseconds.</summary>
    public double CpuPerUnit => Units > 0 ? (WorkerCpuMilliseconds + PostgresCpuMilliseconds) / Units : 0;

    /// <summary>Commits of everything but the orchestrator's own bookkeeping.</summary>
    public long Commits => Cost.Commits - OwnTransactions;

    public double UnitsPerSecond => Processing > TimeSpan.Zero ? Units / Processing.TotalSeconds : 0;
}

/// <summary>
/// The orchestrator: creates the databases, starts the worker child process, runs every scenario in
/// one go against the same PostgreSQL with the same worker count, and returns the figures.
/// </summary>
internal sealed class BenchmarkRunner
{
    private readonly BenchmarkSettings _settings;
    private readonly TextWriter _log;
    private readonly BenchmarkReport _report;

    public BenchmarkRunner(BenchmarkSettings settings, TextWriter log)
    {
        _settings = settings;
        _log = log;
        _report = new BenchmarkReport(settings);
    }

    public async Task<BenchmarkReport> RunAsync(CancellationToken cancellationToken)
    {
        var stamp = DateTime.UtcNow.ToString("yyyyMMdd_HHmmss", CultureInfo.InvariantCulture) + "_" + Guid.NewGuid().ToString("N")[..4];
        await using var probe = await PostgresProbe.OpenAsync(_settings.ServerConnectionString, cancellationToken).ConfigureAwait(false);
        await _report.DescribeMachineAsync(probe, cancellationToken).ConfigureAwait(false);
        var databases = new List<BenchDatabase>();
        var worker = WorkerClient.Start(_settings.Workers, _settings.QueuePollInterval, _settings.CancellationCheckInterval, _settings.QueueMode,
            _settings.SchedulePollingInterval);
        try
        {
            Log($"database wjbench_{stamp} (worker process {worker.ProcessId}, {_settings.Workers} workers, poll {_settings.QueuePollInterval.TotalMilliseconds} ms)");
            var main = await BenchDatabase.CreateAsync(probe, _settings.ServerConnectionString, $"wjbench_{stamp}", _settings.QueueMode,
                _settings.QueuePollInterval, cancellationToken).ConfigureAwait(false);
            databases.Add(main);

            if (!_settings.Smoke)
            {
                // A warm-up round: JIT, first connections, Hangfire's start-up housekeeping. Not reported.
                await WorkflowRoundAsync(worker, probe, main, "warm-up", 50, _settings.ChainLength, cancellationToken).ConfigureAwait(false);
            }

            _report.RoundOverhead = (await IdleRoundAsync(worker, probe, main, TimeSpan.Zero, cancellationToken).ConfigureAwait(false)).Commits;
            _report.HousekeepingShort = await HousekeepingRoundAsync(worker, probe, main, _settings.HousekeepingDuration / 4, cancellationToken).ConfigureAwait(false);
            _report.HousekeepingLong = await HousekeepingRoundAsync(worker, probe, main, _settings.HousekeepingDuration, cancellationToken).ConfigureAwait(false);
            if (_settings.Runs("idle"))
            {
                _report.IdleShort = await IdleRoundAsync(worker, probe, main, _settings.IdleDuration / 6, cancellationToken).ConfigureAwait(false);
                _report.IdleLong = await IdleRoundAsync(worker, probe, main, _settings.IdleDuration, cancellationToken).ConfigureAwait(false);
                Log(string.Create(CultureInfo.InvariantCulture,
                    $"idle server: {_report.IdleCommitsPerSecond:0.00} commits/s ({_report.IdleShort.Commits} commits in {_report.IdleShort.Processing.TotalSeconds:0.0} s, " +
                    $"{_report.IdleLong.Commits} in {_report.IdleLong.Processing.TotalSeconds:0.0} s, start and stop included in both)"));
            }

            if (_settings.Runs("stranded"))
            {
                await StrandedDequeuesAsync(main, cancellationToken).ConfigureAwait(false);
            }

            await main.ExecuteAsync(
                "CREATE TABLE bench_raw (id uuid PRIMARY KEY, data jsonb NOT NULL, created timestamptz NOT NULL, modified timestamptz NOT NULL)",
                cancellationToken).ConfigureAwait(false);
            for (var round = 0; round < _settings.Rounds; round++)
            {
                if (_settings.Runs("raw"))
                {
                    _report.Raw.Add(await RawCommitsAsync(main, pipelined: false, cancellationToken).ConfigureAwait(false));
                    _report.RawPipelined.Add(await RawCommitsAsync(main, pipelined: true, cancellationToken).ConfigureAwait(false));
                }

                if (_settings.Runs("empty"))
                {
                    _report.EmptyJobs.Add(await EmptyJobsRoundAsync(worker, probe, main, cancellationToken).ConfigureAwait(false));
                }

                if (_settings.Runs("continuations"))
                {
                    _report.Continuations.Add(await ContinuationsRoundAsync(worker, probe, main, cancellationToken).ConfigureAwait(false));
                }

                if (_settings.Runs("one"))
                {
                    _report.OneStep.Add(await WorkflowRoundAsync(worker, probe, main, "workflow 1-step", _settings.OneStepRuns, 1, cancellationToken).ConfigureAwait(false));
                }

                if (_settings.Runs("ten"))
                {
                    _report.TenStep.Add(await WorkflowRoundAsync(worker, probe, main, $"workflow {_settings.ChainLength}-step", _settings.TenStepRuns, _settings.ChainLength,
                        cancellationToken).ConfigureAwait(false));
                }
            }

            if (_settings.Runs("latency"))
            {
                await LatencyAsync(worker, main, cancellationToken).ConfigureAwait(false);
            }

            if (_settings.Runs("batch"))
            {
                // Its own database and host, no server: the worker process idles meanwhile.
                _report.BatchEnqueue = await BatchEnqueueBenchmark.MeasureAsync(_settings.ServerConnectionString, _settings.BatchRuns, _settings.EnqueueConcurrency,
                    cancellationToken).ConfigureAwait(false);
                Log(_report.BatchEnqueue.Describe(_settings.EnqueueConcurrency) + string.Create(CultureInfo.InvariantCulture, $" ({_settings.BatchRuns} runs each)"));
            }

            if (_settings.Runs("history"))
            {
                await HistoryAsync(worker, probe, stamp, databases, cancellationToken).ConfigureAwait(false);
            }

            _report.PeakRssMegabytes = double.Parse(await worker.SendAsync("rss", TimeSpan.FromSeconds(30)).ConfigureAwait(false), CultureInfo.InvariantCulture);
            _report.Date = DateTimeOffset.UtcNow;
            return _report;
        }
        finally
        {
            // Every host on the databases goes before they are dropped: the worker process, then each enqueuing host.
            await worker.DisposeAsync().ConfigureAwait(false);
            foreach (var database in databases)
            {
                await database.DisposeAsync().ConfigureAwait(false);
                if (!_settings.KeepDatabases)
                {
                    await probe.ExecuteAsync($"DROP DATABASE IF EXISTS \"{database.Name}\" WITH (FORCE)", CancellationToken.None).ConfigureAwait(false);
                }
            }
        }
    }

    /// <summary>
    /// The commit rate of single-row insert + update transactions from <see cref="BenchmarkSettings.Workers"/>
    /// connections: the ordinary way (INSERT, UPDATE, COMMIT: three round trips), which is
    /// <c>raw_commits_per_s</c>, or pipelined (both statements in one round trip, one implicit
    /// transaction, the shape of a checkpoint), printed beside it.
    /// </summary>
    private async Task<double> RawCommitsAsync(BenchDatabase database, bool pipelined, CancellationToken cancellationToken)
    {
        var builder = new NpgsqlConnectionStringBuilder(database.ConnectionString) { ApplicationName = "wjbench-raw", MaxAutoPrepare = 32 };
        await using var dataSource = NpgsqlDataSource.Create(builder.ConnectionString);
        var warmUp = TimeSpan.FromSeconds(_settings.Smoke ? 0.2 : 1);
        var end = warmUp + _settings.RawDuration;
        var counted = new long[_settings.Workers];
        // Every connection is open before the clock starts: on a loaded machine opening them can take
        // longer than a smoke run's whole window.
        var connections = await Task.WhenAll(Enumerable.Range(0, _settings.Workers)
            .Select(_ => dataSource.OpenConnectionAsync(cancellationToken).AsTask())).ConfigureAwait(false);
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, _settings.Workers).Select(async worker =>
        {
            await using var connection = connections[worker];
            while (clock.Elapsed < end)
            {
                var id = Guid.CreateVersion7();
                if (!pipelined)
                {
                    // The ordinary way: a transaction, one statement at a time, then COMMIT.
                    await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
                    await using (var insert = new NpgsqlCommand("INSERT INTO bench_raw (id, data, created, modified) VALUES (@id, @data, @now, @now)", connection, transaction))
                    {
                        insert.Parameters.Add(new NpgsqlParameter("id", id));
                        insert.Parameters.Add(new NpgsqlParameter("data", NpgsqlTypes.NpgsqlDbType.Jsonb) { Value = "{\"value\": 0}" });
                        insert.Parameters.Add(new NpgsqlParameter("now", DateTimeOffset.UtcNow));
                        await insert.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                    }

                    await using (var update = new NpgsqlCommand("UPDATE bench_raw SET data = @data, modified = @now WHERE id = @id", connection, transaction))
                    {
                        update.Parameters.Add(new NpgsqlParameter("id", id));
                        update.Parameters.Add(new NpgsqlParameter("data", NpgsqlTypes.NpgsqlDbType.Jsonb) { Value = "{\"value\": 1}" });
                        update.Parameters.Add(new NpgsqlParameter("now", DateTimeOffset.UtcNow));
                        await update.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                    }

                    await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
                    if (clock.Elapsed is var done && done >= warmUp && done < end)
                    {
                        counted[worker]++;
                    }

                    continue;
                }

                // Pipelined: both statements in one round trip, one implicit transaction (a checkpoint's shape).
                await using var batch = new NpgsqlBatch(connection)
                {
                    BatchCommands =
                    {
                        new NpgsqlBatchCommand("INSERT INTO bench_raw (id, data, created, modified) VALUES (@id, @data, @now, @now)")
                        {
                            Parameters =
                            {
                                new NpgsqlParameter("id", id),
                                new NpgsqlParameter("data", NpgsqlTypes.NpgsqlDbType.Jsonb) { Value = "{\"value\": 0}" },
                                new NpgsqlParameter("now", DateTimeOffset.UtcNow),
                            },
                        },
                        new NpgsqlBatchCommand("UPDATE bench_raw SET data = @data, modified = @now WHERE id = @id")
                        {
                            Parameters =
                            {
                                new NpgsqlParameter("id", id),
                                new NpgsqlParameter("data", NpgsqlTypes.NpgsqlDbType.Jsonb) { Value = "{\"value\": 1}" },
                                new NpgsqlParameter("now", DateTimeOffset.UtcNow),
                            },
                        },
                    },
                };
                await batch.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                var at = clock.Elapsed;
                if (at >= warmUp && at < end)
                {
                    counted[worker]++;
                }
            }
        })).ConfigureAwait(false);
        var rate = counted.Sum() / _settings.RawDuration.TotalSeconds;
        Log($"raw{(pipelined ? " (pipelined)" : "")}: {rate:0} commits/s ({_settings.Workers} connections, insert + update per transaction)");
        return rate;
    }

    /// <summary>The server started, left without jobs for <paramref name="idle"/>, stopped; Processing is the idle time.</summary>
    private async Task<RoundResult> IdleRoundAsync(WorkerClient worker, PostgresProbe probe, BenchDatabase database, TimeSpan idle, CancellationToken cancellationToken)
    {
        var result = await RoundAsync(worker, probe, database, idle > TimeSpan.Zero ? $"idle server for {idle.TotalSeconds:0.#} s" : "idle (server start + stop)", 0, 0,
            _ => Task.CompletedTask, cancellationToken, ct => Task.Delay(idle, ct)).ConfigureAwait(false);
        return result with { Processing = idle };
    }

    /// <summary>
    /// Dequeues of the hosts' storage (the queue mode of the run) in bursts: <see cref="BenchmarkSettings.Workers"/>
    /// threads each loop fetch → remove from queue; the orchestrator enqueues one job per thread in one
    /// transaction, then waits until all of them came back from the fetch. A job not back within
    /// <see cref="BenchmarkSettings.StrandedAfter"/> while nothing else is enqueued is stranded: its
    /// queue row is marked fetched, so no other worker takes it, and its worker does not run it. The
    /// queue rows need no job (a fetch reads only the queue table).
    /// </summary>
    private async Task StrandedDequeuesAsync(BenchDatabase database, CancellationToken cancellationToken)
    {
        // A host of its own, disposed at the end: with the wake-up its fetches open a LISTEN connection, which must
        // not outlive this section (the rounds wait until every connection of the database has closed).
        using var host = await BenchmarkHosts.StartClientAsync(database.ConnectionString, _settings.QueueMode, _settings.QueuePollInterval, cancellationToken)
            .ConfigureAwait(false);
        try
        {
            await StrandedDequeuesAsync(database, host.Services.GetRequiredService<JobStorage>(), cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            await host.StopAsync(CancellationToken.None).ConfigureAwait(false);
        }
    }

    private async Task StrandedDequeuesAsync(BenchDatabase database, JobStorage storage, CancellationToken cancellationToken)
    {
        var burst = _settings.Workers;
        var bursts = Math.Max(1, _settings.Dequeues / burst);
        var pending = new CountdownEvent[bursts];
        for (var i = 0; i < bursts; i++)
        {
            pending[i] = new CountdownEvent(burst);
        }

        var firstJobId = 1_000_000_000L;
        using var stop = new CancellationTokenSource();
        var threads = Enumerable.Range(0, _settings.Workers).Select(index => new Thread(() =>
        {
            using var connection = storage.GetConnection();
            string[] queues = [BenchmarkQueueModes.DequeueQueue];
            while (!stop.IsCancellationRequested)
            {
                global::Hangfire.Storage.IFetchedJob fetched;
                try
                {
                    fetched = connection.FetchNextJob(queues, stop.Token);
                }
                catch (OperationCanceledException)
                {
                    return;
                }

                fetched.RemoveFromQueue();
                fetched.Dispose();
                var job = long.Parse(fetched.JobId, CultureInfo.InvariantCulture) - firstJobId;
                pending[job / burst].Signal();
            }
        })
        { IsBackground = true, Name = "wjbench-dequeue-" + index }).ToArray();
        foreach (var thread in threads)
        {
            thread.Start();
        }

        var clock = Stopwatch.StartNew();
        var stranded = 0;
        var dequeued = 0;
        try
        {
            using var connection = storage.GetConnection();
            for (var b = 0; b < bursts; b++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                using (var transaction = connection.CreateWriteTransaction())
                {
                    for (var i = 0; i < burst; i++)
                    {
                        transaction.AddToQueue(BenchmarkQueueModes.DequeueQueue, (firstJobId + ((long)b * burst) + i).ToString(CultureInfo.InvariantCulture));
                    }

                    transaction.Commit();
                }

                if (!pending[b].Wait(_settings.StrandedAfter, cancellationToken))
                {
                    stranded += pending[b].CurrentCount;
                    Log($"stranded dequeues: {pending[b].CurrentCount} of burst {b} not back after {_settings.StrandedAfter.TotalSeconds:0} s");
                }

                dequeued += burst;
            }
        }
        finally
        {
            await stop.CancelAsync().ConfigureAwait(false);
            // A thread stranded in a long-polling fetch wakes only on a notification.
            for (var i = 0; i < 5 && threads.Any(t => t.IsAlive); i++)
            {
                if (_settings.QueueMode == QueueMode.LongPoll)
                {
                    await database.ExecuteAsync("NOTIFY new_job", CancellationToken.None).ConfigureAwait(false);
                }

                threads.FirstOrDefault(t => t.IsAlive)?.Join(TimeSpan.FromSeconds(1));
            }
        }

        _report.StrandedDequeues = stranded;
        _report.DequeuesCounted = dequeued;
        Log(string.Create(CultureInfo.InvariantCulture,
            $"stranded dequeues: {stranded} of {dequeued} ({BenchmarkQueueModes.Name(_settings.QueueMode)}, bursts of {burst}, {dequeued / clock.Elapsed.TotalSeconds:0}/s)"));
    }

    /// <summary>Every worker busy for a while on a job that does no database work: the server's own commits per second.</summary>
    private Task<RoundResult> HousekeepingRoundAsync(WorkerClient worker, PostgresProbe probe, BenchDatabase database, TimeSpan duration,
        CancellationToken cancellationToken)
    {
        var jobs = database.Client.Services.GetRequiredService<IBackgroundJobClientV2>();
        var milliseconds = (int)duration.TotalMilliseconds;
        return RoundAsync(worker, probe, database, "housekeeping (busy workers, no database work)", 0, _settings.Workers,
            ct => ForEachAsync(_settings.Workers, _ =>
            {
                jobs.Enqueue<BusyJob>(j => j.RunAsync(milliseconds, CancellationToken.None));
                return Task.CompletedTask;
            }, ct), cancellationToken);
    }

    private Task<RoundResult> EmptyJobsRoundAsync(WorkerClient worker, PostgresProbe probe, BenchDatabase database, CancellationToken cancellationToken)
    {
        var jobs = database.Client.Services.GetRequiredService<IBackgroundJobClientV2>();
        return RoundAsync(worker, probe, database, "hangfire empty jobs", _settings.EmptyJobs, _settings.EmptyJobs,
            ct => ForEachAsync(_settings.EmptyJobs, _ =>
            {
                jobs.Enqueue<EmptyJob>(j => j.Run());
                return Task.CompletedTask;
            }, ct), cancellationToken);
    }

    /// <summary>The naive baseline: one Hangfire job per step, each step a continuation of the previous one.</summary>
    private Task<RoundResult> ContinuationsRoundAsync(WorkerClient worker, PostgresProbe probe, BenchDatabase database, CancellationToken cancellationToken)
    {
        var jobs = database.Client.Services.GetRequiredService<IBackgroundJobClientV2>();
        var length = _settings.ChainLength;
        return RoundAsync(worker, probe, database, $"hangfire {length}-job continuations", _settings.Chains * length, _settings.Chains * length,
            ct => ForEachAsync(_settings.Chains, chain =>
            {
                var previous = jobs.Enqueue<NaiveStepJob>(j => j.Run(chain, 0));
                for (var step = 1; step < length; step++)
                {
                    var current = step;
                    previous = jobs.ContinueJobWith<NaiveStepJob>(previous, j => j.Run(chain, current));
                }

                return Task.CompletedTask;
            }, ct), cancellationToken);
    }

    private Task<RoundResult> WorkflowRoundAsync(WorkerClient worker, PostgresProbe probe, BenchDatabase database, string label, int runs, int steps,
        CancellationToken cancellationToken)
    {
        var client = database.Client.Services.GetRequiredService<IWorkflowClient>();
        return RoundAsync(worker, probe, database, label, runs * steps, runs,
            ct => ForEachAsync(runs, async _ =>
            {
                if (steps == 1)
                {
                    await client.EnqueueAsync<OneStepWorkflow>(new WorkflowInput(), cancellationToken: ct).ConfigureAwait(false);
                }
                else
                {
                    await client.EnqueueAsync<TenStepWorkflow>(new WorkflowInput(), cancellationToken: ct).ConfigureAwait(false);
                }
            }, ct), cancellationToken);
    }

    /// <summary>
    /// One round: counters still → enqueue everything (no server running) → start the worker's server →
    /// wait until every job of the round has succeeded → stop the server → counters still. Commits cover
    /// the whole round (enqueue, processing, the server's start and stop) minus the orchestrator's own
    /// polling; time covers processing only (first job started → last job succeeded).
    /// </summary>
    private async Task<RoundResult> RoundAsync(WorkerClient worker, PostgresProbe probe, BenchDatabase database, string label, int units, int jobs,
        Func<CancellationToken, Task> enqueue, CancellationToken cancellationToken, Func<CancellationToken, Task>? whileRunning = null)
    {
        var afterJob = await database.MaxJobIdAsync(cancellationToken).ConfigureAwait(false);
        if (_settings.Profile)
        {
            await probe.ExecuteAsync("SELECT pg_stat_statements_reset()", cancellationToken).ConfigureAwait(false);
        }

        var before = await probe.QuiesceAsync(database, cancellationToken).ConfigureAwait(false);
        var postgresCpuBefore = await probe.ClusterCpuMillisecondsAsync(cancellationToken).ConfigureAwait(false);
        var ownBefore = database.OwnTransactions;

        var enqueueClock = Stopwatch.StartNew();
        await enqueue(cancellationToken).ConfigureAwait(false);
        var enqueueTime = enqueueClock.Elapsed;

        var cpuBefore = double.Parse(await worker.SendAsync("cpu", TimeSpan.FromSeconds(30)).ConfigureAwait(false), CultureInfo.InvariantCulture);
        await worker.SendAsync("start " + database.ConnectionString, TimeSpan.FromSeconds(60)).ConfigureAwait(false);
        if (whileRunning is not null)
        {
            await whileRunning(cancellationToken).ConfigureAwait(false);
        }

        var deadline = Stopwatch.StartNew();
        while (true)
        {
            var (succeeded, failed) = await database.JobProgressAsync(afterJob, cancellationToken).ConfigureAwait(false);
            if (failed > 0)
            {
                throw new InvalidOperationException($"{label}: {failed} jobs failed; see the worker's log.");
            }

            if (succeeded >= jobs)
            {
                break;
            }

            if (deadline.Elapsed > _settings.RoundTimeout)
            {
                throw new TimeoutException($"{label}: only {succeeded} of {jobs} jobs succeeded within {_settings.RoundTimeout.TotalSeconds:0} s.");
            }

            // Often: once the last job is done, idle workers poll (each poll a transaction) until the
            // server is stopped, and that tail is noise in the commit counts. These checks are counted
            // and taken out exactly.
            await Task.Delay(20, cancellationToken).ConfigureAwait(false);
        }

        await worker.SendAsync("stop", TimeSpan.FromSeconds(120)).ConfigureAwait(false);
        var cpu = double.Parse(await worker.SendAsync("cpu", TimeSpan.FromSeconds(30)).ConfigureAwait(false), CultureInfo.InvariantCulture) - cpuBefore;
        var after = await probe.QuiesceAsync(database, cancellationToken).ConfigureAwait(false);
        var postgresCpu = await probe.ClusterCpuMillisecondsAsync(cancellationToken).ConfigureAwait(false) - postgresCpuBefore;
        var own = database.OwnTransactions - ownBefore;
        var processing = jobs == 0 ? TimeSpan.Zero : await database.ProcessingWindowAsync(afterJob, cancellationToken).ConfigureAwait(false);
        var result = new RoundResult(label, units, jobs, after.Minus(before), own, processing, cpu, postgresCpu);
        Log(string.Create(CultureInfo.InvariantCulture,
            $"{label}: {units} units, {jobs} jobs, enqueue {enqueueTime.TotalSeconds:0.00} s, processing {processing.TotalSeconds:0.00} s " +
            $"({result.UnitsPerSecond:0.0}/s), {result.Commits} commits ({(jobs == 0 ? 0 : (double)result.Commits / jobs):0.00}/job), " +
            $"{result.Cost.WalSyncs} WAL syncs, worker CPU {(jobs == 0 ? 0 : cpu / jobs):0.00} ms/job, PostgreSQL CPU {(jobs == 0 ? 0 : postgresCpu / jobs):0.00} ms/job"));
        if (_settings.Profile && jobs > 0)
        {
            await _log.WriteLineAsync(await probe.StatementsAsync(database.Name, jobs, cancellationToken).ConfigureAwait(false)).ConfigureAwait(false);
        }

        return result;
    }

    /// <summary>Enqueue → Succeeded of 1-step runs at low load, enqueued from this process while the worker process runs them.</summary>
    private async Task LatencyAsync(WorkerClient worker, BenchDatabase database, CancellationToken cancellationToken)
    {
        var client = database.Client.Services.GetRequiredService<IWorkflowClient>();
        var random = new Random(20261127);
        await worker.SendAsync("start " + database.ConnectionString, TimeSpan.FromSeconds(60)).ConfigureAwait(false);
        try
        {
            var samples = new List<(Guid Id, DateTimeOffset Enqueued)>();
            var warmup = new List<(Guid Id, DateTimeOffset Enqueued)>();
            var enqueueCalls = new List<double>();
            for (var i = 0; i < _settings.LatencyWarmup + _settings.LatencyRuns; i++)
            {
                var enqueued = DateTimeOffset.UtcNow;
                var call = Stopwatch.StartNew();
                var id = await client.EnqueueAsync<OneStepWorkflow>(new WorkflowInput(), cancellationToken: cancellationToken).ConfigureAwait(false);
                if (i >= _settings.LatencyWarmup)
                {
                    samples.Add((id, enqueued));
                    enqueueCalls.Add(call.Elapsed.TotalMilliseconds);
                }
                else
                {
                    warmup.Add((id, enqueued));
                }

                await Task.Delay(random.Next(_settings.LatencyMinGapMs, _settings.LatencyMaxGapMs + 1), cancellationToken).ConfigureAwait(false);
            }

            var ids = samples.Concat(warmup).Select(s => s.Id).ToArray();
            var deadline = Stopwatch.StartNew();
            Dictionary<Guid, DateTimeOffset> done;
            while (true)
            {
                done = await SucceededAtAsync(database, ids, cancellationToken).ConfigureAwait(false);
                if (done.Count == ids.Length)
                {
                    break;
                }

                if (deadline.Elapsed > _settings.RoundTimeout)
                {
                    throw new TimeoutException($"latency: only {done.Count} of {ids.Length} runs succeeded.");
                }

                await Task.Delay(100, cancellationToken).ConfigureAwait(false);
            }

            var latencies = samples.Select(s => (done[s.Id] - s.Enqueued).TotalMilliseconds).Order().ToArray();
            var warm = warmup.Select(s => (done[s.Id] - s.Enqueued).TotalMilliseconds).Order().ToArray();
            var picked = await PickedUpAtAsync(database, ids, cancellationToken).ConfigureAwait(false);
            var waits = samples.Where(s => picked.ContainsKey(s.Id)).Select(s => (picked[s.Id] - s.Enqueued).TotalMilliseconds).Order().ToArray();
            var work = samples.Where(s => picked.ContainsKey(s.Id)).Select(s => (done[s.Id] - picked[s.Id]).TotalMilliseconds).Order().ToArray();
            _report.LatencyP50 = Percentile(latencies, 0.50);
            _report.LatencyP95 = Percentile(latencies, 0.95);
            _report.LatencyP99 = Percentile(latencies, 0.99);
            _report.LatencyMax = latencies[^1];
            Log(string.Create(CultureInfo.InvariantCulture,
                $"latency: {latencies.Length} runs, p50 {_report.LatencyP50:0.0} ms, p95 {_report.LatencyP95:0.0} ms, p99 {_report.LatencyP99:0.0} ms, max {_report.LatencyMax:0.0} ms; " +
                $"enqueue call p50 {Percentile(enqueueCalls.Order().ToArray(), 0.5):0.0} / p99 {Percentile(enqueueCalls.Order().ToArray(), 0.99):0.0} ms, enqueue → picked up p50 {Percentile(waits, 0.5):0.0} / p99 {Percentile(waits, 0.99):0.0} ms, picked up → succeeded p50 {Percentile(work, 0.5):0.0} / p99 {Percentile(work, 0.99):0.0} ms; " +
                $"the {warm.Length} warm-up runs before them (not measured): p50 {Percentile(warm, 0.5):0.0} / p99 {Percentile(warm, 0.99):0.0} ms"));
        }
        finally
        {
            await worker.SendAsync("stop", TimeSpan.FromSeconds(120)).ConfigureAwait(false);
        }
    }

    /// <summary>When a worker took each run's job: its Processing state (stamped by the worker).</summary>
    private static async Task<Dictionary<Guid, DateTimeOffset>> PickedUpAtAsync(BenchDatabase database, Guid[] ids, CancellationToken cancellationToken)
    {
        var result = new Dictionary<Guid, DateTimeOffset>();
        var row = await database.QueryRowAsync(
            """
            SELECT array_agg(r.uuid), array_agg(p.createdat)
            FROM workflow.workflow_runs r
            JOIN LATERAL (SELECT min(s.createdat) AS createdat FROM hangfire.state s WHERE s.jobid = r.job_id::bigint AND s.name = 'Processing') p ON true
            WHERE r.uuid = ANY(@ids) AND p.createdat IS NOT NULL
            """, cancellationToken, ("ids", ids)).ConfigureAwait(false);
        if (row?[0] is Guid[] found && row[1] is DateTime[] times)
        {
            for (var i = 0; i < found.Length; i++)
            {
                result[found[i]] = new DateTimeOffset(DateTime.SpecifyKind(times[i], DateTimeKind.Utc));
            }
        }

        return result;
    }

    private static async Task<Dictionary<Guid, DateTimeOffset>> SucceededAtAsync(BenchDatabase database, Guid[] ids, CancellationToken cancellationToken)
    {
        var result = new Dictionary<Guid, DateTimeOffset>();
        var row = await database.QueryRowAsync(
            "SELECT array_agg(uuid), array_agg(succeeded_at) FROM workflow.workflow_runs WHERE uuid = ANY(@ids) AND status = 'Succeeded'",
            cancellationToken, ("ids", ids)).ConfigureAwait(false);
        if (row?[0] is Guid[] found && row[1] is DateTime[] times)
        {
            for (var i = 0; i < found.Length; i++)
            {
                result[found[i]] = new DateTimeOffset(DateTime.SpecifyKind(times[i], DateTimeKind.Utc));
            }
        }

        return result;
    }

    /// <summary>
    /// Per-step cost with <see cref="BenchmarkSettings.HistorySteps"/> historical step rows against an
    /// empty database: two fresh databases, one filled, rounds alternating between them.
    /// </summary>
    private async Task HistoryAsync(WorkerClient worker, PostgresProbe probe, string stamp, List<BenchDatabase> databases, CancellationToken cancellationToken)
    {
        var empty = await BenchDatabase.CreateAsync(probe, _settings.ServerConnectionString, $"wjbench_{stamp}_empty", _settings.QueueMode,
            _settings.QueuePollInterval, cancellationToken).ConfigureAwait(false);
        databases.Add(empty);
        var filled = await BenchDatabase.CreateAsync(probe, _settings.ServerConnectionString, $"wjbench_{stamp}_history", _settings.QueueMode,
            _settings.QueuePollInterval, cancellationToken).ConfigureAwait(false);
        databases.Add(filled);
        var clock = Stopwatch.StartNew();
        await HistoryFiller.FillAsync(filled, _settings.HistorySteps, _settings.ChainLength, cancellationToken).ConfigureAwait(false);
        foreach (var database in new[] { empty, filled })
        {
            await database.ExecuteAsync("VACUUM ANALYZE", cancellationToken).ConfigureAwait(false);
        }

        Log($"history: {_settings.HistorySteps} step rows inserted and vacuumed in {clock.Elapsed.TotalSeconds:0.0} s");
        for (var round = 0; round < _settings.HistoryRounds; round++)
        {
            var (withoutHistory, withHistory) = await PairedRoundAsync(worker, probe, empty, filled, cancellationToken).ConfigureAwait(false);
            _report.HistoryEmpty.Add(withoutHistory);
            _report.HistoryFilled.Add(withHistory);
        }
    }

    /// <summary>
    /// The same 10-step workload in both databases at once, each with its own worker host (the worker
    /// count of every scenario), so that whatever else loads the machine loads both alike. Per-step
    /// cost is compared over the time both were processing: steps checkpointed in that window per second.
    /// </summary>
    private async Task<(RoundResult Empty, RoundResult Filled)> PairedRoundAsync(WorkerClient worker, PostgresProbe probe, BenchDatabase empty,
        BenchDatabase filled, CancellationToken cancellationToken)
    {
        var runs = _settings.HistoryRunsPerRound;
        var pair = new[] { empty, filled };
        var afterJobs = new long[2];
        var before = new StatsSnapshot[2];
        var ownBefore = new long[2];
        for (var i = 0; i < 2; i++)
        {
            afterJobs[i] = await pair[i].MaxJobIdAsync(cancellationToken).ConfigureAwait(false);
            before[i] = await probe.QuiesceAsync(pair[i], cancellationToken).ConfigureAwait(false);
            ownBefore[i] = pair[i].OwnTransactions;
            var client = pair[i].Client.Services.GetRequiredService<IWorkflowClient>();
            await ForEachAsync(runs, async _ => await client.EnqueueAsync<TenStepWorkflow>(new WorkflowInput(), cancellationToken: cancellationToken).ConfigureAwait(false),
                cancellationToken).ConfigureAwait(false);
        }

        // Alternate which host starts first; the comparison window starts when both run anyway.
        var order = _report.HistoryEmpty.Count % 2 == 0 ? new[] { 0, 1 } : new[] { 1, 0 };
        foreach (var i in order)
        {
            await worker.SendAsync("start " + pair[i].ConnectionString, TimeSpan.FromSeconds(60)).ConfigureAwait(false);
        }

        var deadline = Stopwatch.StartNew();
        for (var i = 0; i < 2; i++)
        {
            while ((await pair[i].JobProgressAsync(afterJobs[i], cancellationToken).ConfigureAwait(false)).Succeeded < runs)
            {
                if (deadline.Elapsed > _settings.RoundTimeout)
                {
                    throw new TimeoutException($"history: runs of {pair[i].Name} did not finish within {_settings.RoundTimeout.TotalSeconds:0} s.");
                }

                await Task.Delay(50, cancellationToken).ConfigureAwait(false);
            }
        }

        await worker.SendAsync("stop", TimeSpan.FromSeconds(120)).ConfigureAwait(false);
        var results = new RoundResult[2];
        var windows = new (DateTime First, DateTime Last)[2];
        for (var i = 0; i < 2; i++)
        {
            var after = await probe.QuiesceAsync(pair[i], cancellationToken).ConfigureAwait(false);
            var own = pair[i].OwnTransactions - ownBefore[i];
            var row = await pair[i].QueryRowAsync(
                """
                SELECT min(createdat) FILTER (WHERE name = 'Processing'), max(createdat) FILTER (WHERE name = 'Succeeded')
                FROM hangfire.state WHERE jobid > @after
                """, cancellationToken, ("after", afterJobs[i])).ConfigureAwait(false);
            windows[i] = ((DateTime)row![0]!, (DateTime)row[1]!);
            results[i] = new RoundResult(pair[i].Name, runs * _settings.ChainLength, runs, after.Minus(before[i]), own, TimeSpan.Zero);
        }

        var from = windows.Max(w => w.First);
        var to = windows.Min(w => w.Last);
        for (var i = 0; i < 2; i++)
        {
            // Steps checkpointed while both databases were being worked on.
            var row = await pair[i].QueryRowAsync(
                """
                SELECT count(*) FROM workflow.workflow_steps s JOIN workflow.workflow_runs r ON r.uuid = s.workflow_record_uuid
                WHERE r.job_id::bigint > @after AND s.succeeded_at >= @from AND s.succeeded_at < @to
                """, cancellationToken, ("after", afterJobs[i]), ("from", new DateTimeOffset(from, TimeSpan.Zero)), ("to", new DateTimeOffset(to, TimeSpan.Zero)))
                .ConfigureAwait(false);
            var steps = Convert.ToInt32(row![0], CultureInfo.InvariantCulture);
            results[i] = results[i] with { Units = steps, Processing = to > from ? to - from : TimeSpan.Zero };
        }

        if (results.Any(r => r.Units == 0 || r.Processing <= TimeSpan.Zero))
        {
            // Too few runs to overlap (a smoke run): each database over its own processing time instead.
            for (var i = 0; i < 2; i++)
            {
                results[i] = results[i] with { Units = runs * _settings.ChainLength, Processing = windows[i].Last - windows[i].First };
            }
        }

        Log(string.Create(CultureInfo.InvariantCulture,
            $"history: both databases processed together for {(to - from).TotalSeconds:0.00} s: empty {results[0].UnitsPerSecond:0.0} steps/s, " +
            $"with history {results[1].UnitsPerSecond:0.0} steps/s (cost ratio {results[0].UnitsPerSecond / Math.Max(0.001, results[1].UnitsPerSecond):0.000}); " +
            $"commits/run {(double)results[0].Commits / runs:0.00} and {(double)results[1].Commits / runs:0.00}"));
        return (results[0], results[1]);
    }

    private async Task ForEachAsync(int count, Func<int, Task> body, CancellationToken cancellationToken)
    {
        await Parallel.ForEachAsync(Enumerable.Range(0, count),
            new ParallelOptions { MaxDegreeOfParallelism = _settings.EnqueueConcurrency, CancellationToken = cancellationToken },
            async (i, _) => await body(i).ConfigureAwait(false)).ConfigureAwait(false);
    }

    internal static double Percentile(double[] sorted, double p)
    {
        if (sorted.Length == 0)
        {
            return 0;
        }

        // Nearest rank.
        var rank = (int)Math.Ceiling(p * sorted.Length);
        return sorted[Math.Clamp(rank - 1, 0, sorted.Length - 1)];
    }

    private void Log(string message) => _log.WriteLine($"[{DateTime.UtcNow:HH:mm:ss}] {message}");
}

/// <summary>Historical rows written with one set-based statement per table.</summary>
internal static class HistoryFiller
{
    public static async Task FillAsync(BenchDatabase database, int stepRows, int stepsPerRun, CancellationToken cancellationToken)
    {
        var runs = Math.Max(1, stepRows / stepsPerRun);
        var stepNames = new TenStepWorkflow().Steps.Select(WorkflowRegistry.NameOf).Take(stepsPerRun).ToArray();
        var names = "ARRAY[" + string.Join(", ", stepNames.Select(n => $"'{n}'")) + "]::text[]";
        var workflowName = WorkflowRegistry.NameOf(typeof(TenStepWorkflow));
        // uuid v7 like the library's (Guid.CreateVersion7): 48-bit millisecond timestamp, version 7, so
        // historical keys sort before new ones exactly as they would in a database that grew over time.
        await database.ExecuteAsync(
            """
            CREATE FUNCTION pg_temp.uuid7(ts timestamptz) RETURNS uuid LANGUAGE sql VOLATILE AS $$
              SELECT encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid())
                       PLACING substring(int8send(floor(extract(epoch FROM ts) * 1000)::bigint) FROM 3) FROM 1 FOR 6), 52, 1), 53, 1), 'hex')::uuid
            $$
            """, cancellationToken).ConfigureAwait(false);
        await database.ExecuteAsync(
            $$"""
            INSERT INTO workflow.workflow_runs (uuid, workflow_name, status, input_data, output_data, created, modified, is_removed, succeeded_at,
                                               step_names, completed_steps, attempts, job_id)
            SELECT pg_temp.uuid7(ts), '{{workflowName}}', 'Succeeded', '{}', '{"bench_output_01": {"value": 1} }', ts, ts + interval '40 ms', false,
                   ts + interval '40 ms', {{names}}, {{stepsPerRun}}, 1, i::text
            FROM (SELECT i, now() - interval '90 days' + i * (interval '90 days' / {{runs}}) AS ts FROM generate_series(1, {{runs}}) i) s
            """, cancellationToken).ConfigureAwait(false);
        await database.ExecuteAsync(
            $$"""
            INSERT INTO workflow.workflow_steps (uuid, workflow_record_uuid, preceding_step_uuid, step_name, status, input_data, output_data, created,
                                                modified, started_at, is_removed, succeeded_at, attempts)
            SELECT uuid, run, lag(uuid) OVER (PARTITION BY run ORDER BY k), name, 'Succeeded', '{}', '{"value": 1}', ts, ts, ts, false, ts, 1
            FROM (SELECT pg_temp.uuid7(r.created + k * interval '3 ms') AS uuid, r.uuid AS run, k, r.step_names[k] AS name, r.created + k * interval '3 ms' AS ts
                  FROM workflow.workflow_runs r CROSS JOIN generate_series(1, {{stepsPerRun}}) k) s
            """, cancellationToken).ConfigureAwait(false);
    }
}
