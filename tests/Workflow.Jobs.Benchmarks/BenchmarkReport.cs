using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;

namespace Workflow.Jobs.Benchmarks;

/// <summary>The figures of one benchmark run, the table printed and the JSON written.</summary>
internal sealed class BenchmarkReport
{
    /// <summary>The figure keys of <c>bench-results.json</c>, in order (besides machine, settings and date).</summary>
    public static readonly IReadOnlyList<string> FigureKeys =
    [
        "raw_commits_per_s", "continuations_steps_per_s", "steps_per_s", "runs_per_s_1step", "commits_per_step", "commits_per_run",
        "commits_per_hangfire_job", "speedup_vs_continuations", "fraction_of_raw_commit_rate", "latency_p50_ms", "latency_p95_ms",
        "latency_p99_ms", "history_cost_ratio", "peak_rss_mb", "idle_commits_per_s", "stranded_dequeues", "cpu_ratio_vs_continuations",
        "commit_bound_ceiling", "fraction_of_reachable", "batch_enqueue_speedup",
    ];

    private readonly BenchmarkSettings _settings;
    private readonly Dictionary<string, string> _machine = new(StringComparer.Ordinal);

    public BenchmarkReport(BenchmarkSettings settings) => _settings = settings;

    public List<double> Raw { get; } = [];
    public List<double> RawPipelined { get; } = [];
    public double RawCommitsPerSecond => Median(Raw);
    public long RoundOverhead { get; set; }
    public RoundResult? HousekeepingShort { get; set; }
    public RoundResult? HousekeepingLong { get; set; }
    public List<RoundResult> EmptyJobs { get; } = [];
    public List<RoundResult> Continuations { get; } = [];
    public List<RoundResult> OneStep { get; } = [];
    public List<RoundResult> TenStep { get; } = [];
    public List<RoundResult> HistoryEmpty { get; } = [];
    public List<RoundResult> HistoryFilled { get; } = [];
    public double LatencyP50 { get; set; }
    public double LatencyP95 { get; set; }
    public double LatencyP99 { get; set; }
    public double LatencyMax { get; set; }
    public double PeakRssMegabytes { get; set; }
    public RoundResult? IdleShort { get; set; }
    public RoundResult? IdleLong { get; set; }
    public int StrandedDequeues { get; set; }
    public BatchEnqueueResult? BatchEnqueue { get; set; }
    public int DequeuesCounted { get; set; }
    public DateTimeOffset Date { get; set; } = DateTimeOffset.UtcNow;

    public double StepsPerSecond => Median(TenStep.Select(r => r.UnitsPerSecond));
    public double ContinuationStepsPerSecond => Median(Continuations.Select(r => r.UnitsPerSecond));
    public double RunsPerSecondOneStep => Median(OneStep.Select(r => r.UnitsPerSecond));
    public double CommitsPerRun => Median(OneStep.Select(PerJob));
    public double CommitsPerTenStepRun => Median(TenStep.Select(PerJob));
    /// <summary>(10-step run − 1-step run) / 9, counting everything.</summary>
    public double CommitsPerStepUncorrected => (CommitsPerTenStepRun - CommitsPerRun) / (_settings.ChainLength - 1);

    /// <summary>
    /// What a busy server commits per second whatever its jobs do (Hangfire's ownership checks of running
    /// jobs, schedule poll, heartbeat): the difference between two rounds that keep every worker busy
    /// without database work, a long one and a short one, over the difference of their lengths (so the
    /// server's start, stop and first housekeeping pass, and the jobs' own cost, cancel).
    /// </summary>
    public double HousekeepingPerSecond => HousekeepingShort is { } s && HousekeepingLong is { } l && l.Processing > s.Processing
        ? Math.Max(0, (l.Commits - s.Commits) / (l.Processing - s.Processing).TotalSeconds)
        : 0;

    /// <summary>
    /// The marginal commits of a step: (10-step run − 1-step run) / 9 with the server's housekeeping
    /// during each round taken out, since it depends on how long the round took, not on its steps.
    /// </summary>
    public double CommitsPerStep => (Median(TenStep.Select(WithoutHousekeeping)) - Median(OneStep.Select(WithoutHousekeeping))) / (_settings.ChainLength - 1);
    public double CommitsPerHangfireJob => Median(EmptyJobs.Select(PerJob));
    public double SpeedupVsContinuations => Ratio(StepsPerSecond, ContinuationStepsPerSecond);
    public double FractionOfRawCommitRate => Ratio(StepsPerSecond, RawCommitsPerSecond);
    /// <summary>
    /// What a server without jobs commits per second (queue polls, schedule polls with their lock rows,
    /// heartbeats): the slope between a long and a short idle round, so its start and stop cancel.
    /// </summary>
    public double IdleCommitsPerSecond => IdleShort is { } s && IdleLong is { } l && l.Processing > s.Processing
        ? Math.Max(0, (l.Commits - s.Commits) / (l.Processing - s.Processing).TotalSeconds)
        : 0;

    /// <summary>CPU (worker process + PostgreSQL cluster) per step of 10-step runs, ms.</summary>
    public double CpuPerStep => Median(TenStep.Select(r => r.CpuPerUnit));

    /// <summary>CPU (worker process + PostgreSQL cluster) per step of the continuation baseline, ms.</summary>
    public double CpuPerContinuationStep => Median(Continuations.Select(r => r.CpuPerUnit));

    /// <summary>How many times less CPU a step of a 10-step run costs than a continuation step: speedup without the disk.</summary>
    public double CpuRatioVsContinuations => Ratio(CpuPerContinuationStep, CpuPerStep);

    /// <summary>
    /// The fraction of the raw commit rate that 10-step runs could reach if commits were all that bounded
    /// them: steps ÷ (steps + per-run commits), i.e. steps over every commit of a run.
    /// </summary>
    public double CommitBoundCeiling => Ratio(_settings.ChainLength, CommitsPerTenStepRun);

    /// <summary><see cref="FractionOfRawCommitRate"/> against what is reachable (<see cref="CommitBoundCeiling"/>).</summary>
    public double FractionOfReachable => Ratio(FractionOfRawCommitRate, CommitBoundCeiling);

    /// <summary>Median over paired rounds of (time per step with history) / (time per step without).</summary>
    public double HistoryCostRatio => Median(HistoryEmpty.Zip(HistoryFilled, (e, f) => Ratio(SecondsPerUnit(f), SecondsPerUnit(e))));

    public IReadOnlyDictionary<string, double> Figures => new Dictionary<string, double>(StringComparer.Ordinal)
    {
        ["raw_commits_per_s"] = Math.Round(RawCommitsPerSecond, 1),
        ["continuations_steps_per_s"] = Math.Round(ContinuationStepsPerSecond, 1),
        ["steps_per_s"] = Math.Round(StepsPerSecond, 1),
        ["runs_per_s_1step"] = Math.Round(RunsPerSecondOneStep, 1),
        // Two decimals: the resolution of a difference of two counts of a few thousand runs, each with
        // background noise (autovacuum, Hangfire's periodic checks) of a few commits.
        ["commits_per_step"] = Math.Round(CommitsPerStep, 2),
        ["commits_per_run"] = Math.Round(CommitsPerRun, 2),
        ["commits_per_hangfire_job"] = Math.Round(CommitsPerHangfireJob, 2),
        ["speedup_vs_continuations"] = Math.Round(SpeedupVsContinuations, 2),
        ["fraction_of_raw_commit_rate"] = Math.Round(FractionOfRawCommitRate, 3),
        ["latency_p50_ms"] = Math.Round(LatencyP50, 1),
        ["latency_p95_ms"] = Math.Round(LatencyP95, 1),
        ["latency_p99_ms"] = Math.Round(LatencyP99, 1),
        ["history_cost_ratio"] = Math.Round(HistoryCostRatio, 3),
        ["peak_rss_mb"] = Math.Round(PeakRssMegabytes, 1),
        ["idle_commits_per_s"] = Math.Round(IdleCommitsPerSecond, 2),
        ["stranded_dequeues"] = StrandedDequeues,
        ["cpu_ratio_vs_continuations"] = Math.Round(CpuRatioVsContinuations, 2),
        ["commit_bound_ceiling"] = Math.Round(CommitBoundCeiling, 3),
        ["fraction_of_reachable"] = Math.Round(FractionOfReachable, 3),
        ["batch_enqueue_speedup"] = Math.Round(BatchEnqueue?.Speedup ?? 0, 2),
    };

    /// <summary>The targets of docs/benchmarks.md: key → (limit, true when the figure must be at most the limit).</summary>
    public static readonly IReadOnlyDictionary<string, (double Limit, bool AtMost)> Targets = new Dictionary<string, (double, bool)>(StringComparer.Ordinal)
    {
        ["commits_per_step"] = (1.0, true),
        ["speedup_vs_continuations"] = (5, false),
        ["fraction_of_raw_commit_rate"] = (0.2, false),
        ["latency_p50_ms"] = (8, true),
        ["latency_p99_ms"] = (30, true),
        ["history_cost_ratio"] = (1.1, true),
        ["idle_commits_per_s"] = (5, true),
        ["stranded_dequeues"] = (0, true),
        ["batch_enqueue_speedup"] = (10, false),
    };

    public async Task DescribeMachineAsync(PostgresProbe probe, CancellationToken cancellationToken)
    {
        _machine["cpu"] = CpuModel();
        _machine["logical_cores"] = Environment.ProcessorCount.ToString(CultureInfo.InvariantCulture);
        _machine["memory_mb"] = MemoryMegabytes();
        _machine["os"] = RuntimeInformation.OSDescription;
        _machine["dotnet"] = RuntimeInformation.FrameworkDescription;
        _machine["load_average_at_start"] = LoadAverage();
        foreach (var setting in new[] { "server_version", "fsync", "synchronous_commit", "shared_buffers", "wal_level", "max_connections" })
        {
            _machine["postgresql_" + setting] = await probe.ShowAsync(setting, cancellationToken).ConfigureAwait(false);
        }
    }

    public void WriteJson(string path)
    {
        _machine["load_average_at_end"] = LoadAverage();
        using var stream = new MemoryStream();
        using (var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            json.WriteStartObject();
            foreach (var (key, value) in Figures)
            {
                json.WriteNumber(key, double.IsFinite(value) ? value : 0);
            }

            json.WriteStartObject("machine");
            foreach (var (key, value) in _machine)
            {
                json.WriteString(key, value);
            }

            json.WriteEndObject();
            json.WriteStartObject("settings");
            json.WriteBoolean("smoke", _settings.Smoke);
            json.WriteNumber("workers", _settings.Workers);
            json.WriteNumber("queue_poll_interval_ms", _settings.QueuePollInterval.TotalMilliseconds);
            json.WriteString("queue_mode", BenchmarkQueueModes.Name(_settings.QueueMode));
            json.WriteNumber("schedule_polling_interval_ms", _settings.SchedulePollingInterval.TotalMilliseconds);
            json.WriteNumber("dequeues_counted", DequeuesCounted);
            json.WriteNumber("stranded_after_s", _settings.StrandedAfter.TotalSeconds);
            json.WriteNumber("idle_seconds", _settings.IdleDuration.TotalSeconds);
            json.WriteNumber("batch_runs", _settings.BatchRuns);
            json.WriteNumber("single_enqueue_runs_per_s", Math.Round(BatchEnqueue?.SingleRunsPerSecond ?? 0, 1));
            json.WriteNumber("batch_enqueue_runs_per_s", Math.Round(BatchEnqueue?.BatchRunsPerSecond ?? 0, 1));
            json.WriteNumber("cpu_ms_per_step", Math.Round(CpuPerStep, 3));
            json.WriteNumber("cpu_ms_per_continuation_step", Math.Round(CpuPerContinuationStep, 3));
            json.WriteNumber("cancellation_check_interval_ms", _settings.CancellationCheckInterval.TotalMilliseconds);
            json.WriteNumber("raw_connections", _settings.Workers);
            json.WriteNumber("raw_seconds", _settings.RawDuration.TotalSeconds);
            json.WriteNumber("empty_jobs_per_round", _settings.EmptyJobs);
            json.WriteNumber("continuation_chains_per_round", _settings.Chains);
            json.WriteNumber("steps_per_multi_step_run", _settings.ChainLength);
            json.WriteNumber("one_step_runs_per_round", _settings.OneStepRuns);
            json.WriteNumber("ten_step_runs_per_round", _settings.TenStepRuns);
            json.WriteNumber("rounds", _settings.Rounds);
            json.WriteNumber("latency_runs", _settings.LatencyRuns);
            json.WriteNumber("latency_warmup_runs", _settings.LatencyWarmup);
            json.WriteString("latency_gap_ms", $"{_settings.LatencyMinGapMs}-{_settings.LatencyMaxGapMs}");
            json.WriteNumber("history_step_rows", _settings.HistorySteps);
            json.WriteNumber("history_rounds", _settings.HistoryRounds);
            json.WriteNumber("history_runs_per_round", _settings.HistoryRunsPerRound);
            json.WriteNumber("enqueue_concurrency", _settings.EnqueueConcurrency);
            json.WriteNumber("round_overhead_commits", RoundOverhead);
            json.WriteNumber("housekeeping_commits_per_s", Math.Round(HousekeepingPerSecond, 2));
            json.WriteNumber("raw_pipelined_commits_per_s", Math.Round(Median(RawPipelined), 1));
            json.WriteNumber("commits_per_step_counting_housekeeping", Math.Round(CommitsPerStepUncorrected, 4));
            json.WriteString("npgsql", typeof(Npgsql.NpgsqlConnection).Assembly.GetName().Version?.ToString());
            json.WriteString("hangfire_core", typeof(global::Hangfire.JobStorage).Assembly.GetName().Version?.ToString());
            json.WriteString("hangfire_postgresql", typeof(global::Hangfire.PostgreSql.PostgreSqlStorage).Assembly.GetName().Version?.ToString());
            json.WriteEndObject();
            json.WriteString("date", Date.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture));
            json.WriteEndObject();
        }

        var directory = Path.GetDirectoryName(Path.GetFullPath(path));
        if (!string.IsNullOrEmpty(directory))
        {
            Directory.CreateDirectory(directory);
        }

        File.WriteAllBytes(path, stream.ToArray());
    }

    public string Table()
    {
        var text = new StringBuilder();
        var c = CultureInfo.InvariantCulture;
        text.AppendLine(c, $"{"figure",-30} {"value",12}  {"target",-8} result");
        text.AppendLine(new string('-', 62));
        foreach (var (key, value) in Figures)
        {
            var target = "";
            var verdict = "";
            if (Targets.TryGetValue(key, out var t))
            {
                target = (t.AtMost ? "<= " : ">= ") + t.Limit.ToString(c);
                verdict = (t.AtMost ? value <= t.Limit : value >= t.Limit) ? "ok" : "MISSED";
            }

            text.AppendLine(c, $"{key,-30} {value,12:0.###}  {target,-8} {verdict}");
        }

        text.AppendLine();
        text.AppendLine("rounds (ranges over rounds; a job is a run for workflows; commits include enqueue, processing and the worker server's start/stop;");
        text.AppendLine("history rounds: steps/s while both databases were processed together):");
        foreach (var (name, rounds) in new[]
                 {
                     ("empty hangfire jobs", EmptyJobs), ("continuations", Continuations), ("workflow 1-step", OneStep),
                     ($"workflow {_settings.ChainLength}-step", TenStep), ("history: empty db", HistoryEmpty), ("history: with history", HistoryFilled),
                 })
        {
            if (rounds.Count == 0)
            {
                continue;
            }

            // WAL counters are the cluster's: meaningless per database when the two history databases run together.
            var wal = name.StartsWith("history", StringComparison.Ordinal)
                ? ""
                : $"WAL syncs/job {Range(rounds.Select(r => (double)r.Cost.WalSyncs / Math.Max(1, r.Jobs)), "0.00")}; ";
            text.AppendLine(c,
                $"  {name,-24} units/s {Range(rounds.Select(r => r.UnitsPerSecond), "0.0")}; commits/job {Range(rounds.Select(PerJob), "0.00")}; {wal}" +
                $"buffer accesses/job {Range(rounds.Select(r => (double)(r.Cost.BlocksHit + r.Cost.BlocksRead) / Math.Max(1, r.Jobs)), "0")}; " +
                $"worker CPU ms/job {Range(rounds.Select(r => r.WorkerCpuMilliseconds / Math.Max(1, r.Jobs)), "0.00")}; " +
                $"PostgreSQL CPU ms/job {Range(rounds.Select(r => r.PostgresCpuMilliseconds / Math.Max(1, r.Jobs)), "0.00")}");
        }

        if (Raw.Count > 0)
        {
            text.AppendLine(c,
                $"  raw commits: {Range(Raw, "0")}/s as a transaction of INSERT, UPDATE, COMMIT (raw_commits_per_s); {Range(RawPipelined, "0")}/s with both statements " +
                $"pipelined in one round trip (steps_per_s is {Ratio(StepsPerSecond, Median(RawPipelined)):0.000} of that)");
        }

        if (!_settings.Smoke)
        {
            text.AppendLine(c, $"  server start + stop without jobs: {RoundOverhead} commits per round (included above)");
        }

        text.AppendLine(c,
            $"  busy server's own commits: {HousekeepingPerSecond:0.0}/s (housekeeping rounds: {HousekeepingShort?.Commits ?? 0} commits over {HousekeepingShort?.Processing.TotalSeconds ?? 0:0.0} s, " +
            $"{HousekeepingLong?.Commits ?? 0} over {HousekeepingLong?.Processing.TotalSeconds ?? 0:0.0} s)");
        text.AppendLine(c,
            $"  commits per {_settings.ChainLength}-step run {CommitsPerTenStepRun:0.000}, per 1-step run {CommitsPerRun:0.000}: {CommitsPerStepUncorrected:0.0000} per step counting everything, " +
            $"{CommitsPerStep:0.0000} without the busy server's own commits (the commits_per_step figure)");
        text.AppendLine(c, $"  latency max {LatencyMax:0.0} ms");
        text.AppendLine(c,
            $"  CPU per step (worker + PostgreSQL): {CpuPerStep:0.000} ms in {_settings.ChainLength}-step runs, {CpuPerContinuationStep:0.000} ms as continuations; " +
            $"commit-bound ceiling {_settings.ChainLength} steps / {CommitsPerTenStepRun:0.0} commits per run = {CommitBoundCeiling:0.000} of the raw commit rate");
        text.AppendLine(c,
            $"  queue mode {BenchmarkQueueModes.Name(_settings.QueueMode)} (poll {_settings.QueuePollInterval.TotalMilliseconds:0} ms): {StrandedDequeues} stranded of {DequeuesCounted} dequeues; " +
            $"idle server {IdleCommitsPerSecond:0.00} commits/s");
        var missed = Targets.Where(t => Figures.TryGetValue(t.Key, out var v) && !(t.Value.AtMost ? v <= t.Value.Limit : v >= t.Value.Limit)).Select(t => t.Key).ToList();
        text.AppendLine();
        text.Append(missed.Count == 0 ? $"targets: all {Targets.Count} met" : $"targets: {Targets.Count - missed.Count} of {Targets.Count} met; missed: {string.Join(", ", missed)}");
        if (_settings.Smoke)
        {
            text.Append(" (smoke run: tiny counts, the figures mean nothing)");
        }

        text.AppendLine();
        return text.ToString();
    }

    private static double PerJob(RoundResult round) => round.Jobs == 0 ? 0 : (double)round.Commits / round.Jobs;

    private double WithoutHousekeeping(RoundResult round)
        => round.Jobs == 0 ? 0 : (round.Commits - (HousekeepingPerSecond * round.Processing.TotalSeconds)) / round.Jobs;

    private static double SecondsPerUnit(RoundResult round) => round.UnitsPerSecond > 0 ? 1 / round.UnitsPerSecond : 0;

    private static double Ratio(double a, double b) => b > 0 ? a / b : 0;

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        if (sorted.Length == 0)
        {
            return 0;
        }

        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[(sorted.Length / 2) - 1] + sorted[sorted.Length / 2]) / 2;
    }

    private static string Range(IEnumerable<double> values, string format)
    {
        var list = values.ToList();
        var min = list.Min().ToString(format, CultureInfo.InvariantCulture);
        var max = list.Max().ToString(format, CultureInfo.InvariantCulture);
        return min == max ? min : $"{min}-{max}";
    }

    private static string CpuModel()
    {
        const string cpuinfo = "/proc/cpuinfo";
        if (File.Exists(cpuinfo))
        {
            var line = File.ReadLines(cpuinfo).FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal));
            if (line is not null)
            {
                return line[(line.IndexOf(':', StringComparison.Ordinal) + 1)..].Trim();
            }
        }

        return RuntimeInformation.ProcessArchitecture.ToString();
    }

    private static string MemoryMegabytes()
    {
        var bytes = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
        return (bytes / (1024 * 1024)).ToString(CultureInfo.InvariantCulture);
    }

    private static string LoadAverage()
        => File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "";
}
