using System.Globalization;

namespace Workflow.Jobs.Benchmarks;

/// <summary>What one benchmark run does. Full-size by default; <c>--smoke</c> shrinks every count.</summary>
public sealed class BenchmarkSettings
{
    /// <summary>Server-level connection string (the benchmark creates and drops its own databases).</summary>
    public string ServerConnectionString { get; set; } = "";

    /// <summary>Where the JSON results go.</summary>
    public string OutputPath { get; set; } = "bench-results.json";

    /// <summary>Tiny counts, same code paths: a check that the benchmark still works, not a measurement.</summary>
    public bool Smoke { get; set; }

    /// <summary>Keep the benchmark databases afterwards (for inspection).</summary>
    public bool KeepDatabases { get; set; }

    /// <summary>
    /// Hangfire workers of the worker process, and connections of the raw commit measurement. 8: the
    /// figure the Hangfire reference numbers were taken with, and enough concurrent transactions to keep
    /// PostgreSQL's group commit busy on 2 cores; more only adds context switches.
    /// </summary>
    public int Workers { get; set; } = 8;

    /// <summary>
    /// Hangfire queue poll interval of the hosts (<c>--poll-ms</c>); default the library's for the queue mode (a
    /// 5 s fallback with the wake-up, 50 ms for the plain poll).
    /// </summary>
    public TimeSpan QueuePollInterval
    {
        get => _queuePollInterval ?? new WorkflowHangfireOptions { WakeWorkersOnEnqueue = QueueMode != QueueMode.Poll }.EffectiveQueuePollInterval;
        set => _queuePollInterval = value;
    }

    private TimeSpan? _queuePollInterval;

    /// <summary>How often the worker's server checks its running jobs for deletion (the library's default).</summary>
    public TimeSpan CancellationCheckInterval { get; set; } = new WorkflowHangfireOptions().CancellationCheckInterval;

    /// <summary>
    /// How the hosts fetch jobs (<c>--queue notify|poll|longpoll</c>): the library's default (the wake-up on
    /// enqueue), the library with the wake-up off (the short poll), or Hangfire.PostgreSql's long polling (docs/benchmarks.md).
    /// </summary>
    public QueueMode QueueMode { get; set; } = QueueMode.Notify;

    /// <summary>Dequeues of the stranded-dequeue count (in bursts of <see cref="Workers"/> jobs).</summary>
    public int Dequeues { get; set; } = 20_000;

    /// <summary>A job fetched but not returned to its worker within this time counts as stranded.</summary>
    public TimeSpan StrandedAfter { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// How long the longer of the two idle rounds keeps the server running without jobs (the shorter one
    /// a sixth of it): the idle server's commits per second are the slope between the two.
    /// </summary>
    public TimeSpan IdleDuration { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How often the worker's server polls for due scheduled and recurring jobs (the library's default).</summary>
    public TimeSpan SchedulePollingInterval { get; set; } = new WorkflowHangfireOptions().SchedulePollingInterval;

    /// <summary>Length of the raw commit measurement.</summary>
    public TimeSpan RawDuration { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// How long the longer of the two housekeeping rounds keeps every worker busy without database work
    /// (the shorter one a quarter of it), to measure what a busy server commits per second on its own
    /// (ownership checks, schedule poll, heartbeat): the slope between the two.
    /// </summary>
    public TimeSpan HousekeepingDuration { get; set; } = TimeSpan.FromSeconds(8);

    /// <summary>Empty Hangfire jobs per round.</summary>
    public int EmptyJobs { get; set; } = 600;

    /// <summary>Chains of <see cref="ChainLength"/> continuation jobs per round (the naive baseline).</summary>
    public int Chains { get; set; } = 60;

    /// <summary>Steps of a chain and of a multi-step run.</summary>
    public int ChainLength { get; set; } = 10;

    /// <summary>1-step runs per round (as many as 10-step runs, so that per-round costs cancel in commits per step).</summary>
    public int OneStepRuns { get; set; } = 1000;

    /// <summary>10-step runs per round.</summary>
    public int TenStepRuns { get; set; } = 1000;

    /// <summary>Rounds of the throughput and commit measurements (figures are medians over rounds).</summary>
    public int Rounds { get; set; } = 3;

    /// <summary>Measured 1-step runs of the latency scenario (after <see cref="LatencyWarmup"/> unmeasured ones).</summary>
    public int LatencyRuns { get; set; } = 400;

    /// <summary>
    /// Unmeasured runs before the latency measurement (about 5 s at the default gaps): the worker's host is started for
    /// the scenario, and its first seconds are JIT tier-up and connection warm-up, not the steady state measured.
    /// </summary>
    public int LatencyWarmup { get; set; } = 100;

    /// <summary>Gap between two latency enqueues: uniform in [min, max] milliseconds (low load).</summary>
    public int LatencyMinGapMs { get; set; } = 20;

    /// <summary>See <see cref="LatencyMinGapMs"/>.</summary>
    public int LatencyMaxGapMs { get; set; } = 80;

    /// <summary>Historical step rows (10 per historical run) of the history-growth comparison.</summary>
    public int HistorySteps { get; set; } = 1_000_000;

    /// <summary>Alternating rounds (empty database, then the one with history) of the history comparison.</summary>
    public int HistoryRounds { get; set; } = 3;

    /// <summary>10-step runs per history round.</summary>
    public int HistoryRunsPerRound { get; set; } = 300;

    /// <summary>Runs created one at a time, and again in batches, by the batch-enqueue scenario (its own database, no server).</summary>
    public int BatchRuns { get; set; } = 5_000;

    /// <summary>Concurrent enqueuers filling the queue before a throughput round (and the single enqueuers of the batch scenario).</summary>
    public int EnqueueConcurrency { get; set; } = 8;

    /// <summary>Longest a round may take before the benchmark gives up.</summary>
    public TimeSpan RoundTimeout { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// Scenarios to run (raw, empty, continuations, one, ten, latency, idle, stranded, batch, history); all when empty. A
    /// partial run is for profiling: its JSON misses the figures of the scenarios left out.
    /// </summary>
    public HashSet<string> Only { get; } = new(StringComparer.Ordinal);

    /// <summary>After each round, print the statements PostgreSQL ran per job (needs pg_stat_statements).</summary>
    public bool Profile { get; set; }

    /// <summary>Whether a scenario runs.</summary>
    public bool Runs(string scenario) => Only.Count == 0 || Only.Contains(scenario);

    /// <summary>Shrinks every count for a smoke run.</summary>
    public void ApplySmoke()
    {
        Smoke = true;
        RawDuration = TimeSpan.FromSeconds(0.5);
        HousekeepingDuration = TimeSpan.FromSeconds(1);
        Dequeues = 400;
        IdleDuration = TimeSpan.FromSeconds(3);
        EmptyJobs = 10;
        Chains = 3;
        OneStepRuns = 10;
        TenStepRuns = 10;
        Rounds = 1;
        LatencyRuns = 8;
        LatencyWarmup = 2;
        HistorySteps = 1_000;
        BatchRuns = 200;
        HistoryRounds = 1;
        HistoryRunsPerRound = 3;
        RoundTimeout = TimeSpan.FromMinutes(2);
    }

    /// <summary>Parses the command line (after the mode, if any).</summary>
    public static BenchmarkSettings Parse(IReadOnlyList<string> args)
    {
        var settings = new BenchmarkSettings
        {
            ServerConnectionString = Environment.GetEnvironmentVariable("WORKFLOW_BENCH_CONNECTION")
                                     ?? Environment.GetEnvironmentVariable("WORKFLOW_JOBS_TEST_CONNECTION") ?? "",
        };
        var smoke = args.Contains("--smoke");
        if (smoke)
        {
            settings.ApplySmoke();
        }

        for (var i = 0; i < args.Count; i++)
        {
            string Next() => i + 1 < args.Count ? args[++i] : throw new ArgumentException($"{args[i]} needs a value.");
            int NextInt() => int.Parse(Next(), CultureInfo.InvariantCulture);
            switch (args[i])
            {
                case "--smoke": break;
                case "--connection": settings.ServerConnectionString = Next(); break;
                case "--output": settings.OutputPath = Next(); break;
                case "--keep": settings.KeepDatabases = true; break;
                case "--workers": settings.Workers = NextInt(); break;
                case "--poll-ms": settings.QueuePollInterval = TimeSpan.FromMilliseconds(NextInt()); break;
                case "--cancel-check-ms": settings.CancellationCheckInterval = TimeSpan.FromMilliseconds(NextInt()); break;
                case "--raw-seconds": settings.RawDuration = TimeSpan.FromSeconds(NextInt()); break;
                case "--empty-jobs": settings.EmptyJobs = NextInt(); break;
                case "--chains": settings.Chains = NextInt(); break;
                case "--one-step-runs": settings.OneStepRuns = NextInt(); break;
                case "--ten-step-runs": settings.TenStepRuns = NextInt(); break;
                case "--rounds": settings.Rounds = NextInt(); break;
                case "--latency-runs": settings.LatencyRuns = NextInt(); break;
                case "--latency-warmup": settings.LatencyWarmup = NextInt(); break;
                case "--history-steps": settings.HistorySteps = NextInt(); break;
                case "--history-rounds": settings.HistoryRounds = NextInt(); break;
                case "--history-runs": settings.HistoryRunsPerRound = NextInt(); break;
                case "--only": settings.Only.UnionWith(Next().Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)); break;
                case "--profile": settings.Profile = true; break;
                case "--queue": settings.QueueMode = BenchmarkQueueModes.Parse(Next()); break;
                case "--dequeues": settings.Dequeues = NextInt(); break;
                case "--batch-runs": settings.BatchRuns = NextInt(); break;
                case "--schedule-ms": settings.SchedulePollingInterval = TimeSpan.FromMilliseconds(NextInt()); break;
                case "--idle-seconds": settings.IdleDuration = TimeSpan.FromSeconds(NextInt()); break;
                default: throw new ArgumentException($"Unknown argument '{args[i]}'.");
            }
        }

        if (string.IsNullOrWhiteSpace(settings.ServerConnectionString))
        {
            throw new ArgumentException("No PostgreSQL connection: pass --connection or set WORKFLOW_BENCH_CONNECTION (deploy/benchmark.sh does).");
        }

        return settings;
    }
}
