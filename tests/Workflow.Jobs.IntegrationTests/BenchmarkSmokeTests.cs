using System.Diagnostics;
using System.Text.Json;

namespace Workflow.Jobs.IntegrationTests;

/// <summary>
/// The benchmark with tiny counts, so that it cannot rot: every scenario runs (its worker child process,
/// raw commits, Hangfire jobs and continuations, workflows, latency from another process, the idle server's
/// commits, the stranded-dequeue count, CPU per step, history)
/// against the test server, in databases of its own. It runs as a process of its own, as
/// deploy/benchmark.sh runs it, so its load and threads stay out of this test process. Speed is not
/// asserted here: the full benchmark checks the targets.
/// </summary>
[TestFixture]
[Category("Benchmark")]
public sealed class BenchmarkSmokeTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromMinutes(5);

    private static readonly string[] FigureKeys =
    [
        "raw_commits_per_s", "continuations_steps_per_s", "steps_per_s", "runs_per_s_1step", "commits_per_step", "commits_per_run",
        "commits_per_hangfire_job", "speedup_vs_continuations", "fraction_of_raw_commit_rate", "latency_p50_ms", "latency_p95_ms",
        "latency_p99_ms", "history_cost_ratio", "peak_rss_mb", "idle_commits_per_s", "stranded_dequeues", "cpu_ratio_vs_continuations",
        "commit_bound_ceiling", "fraction_of_reachable", "batch_enqueue_speedup",
    ];

    // Counts and sizes of something that happened: zero would mean a scenario measured nothing. Not idle_commits_per_s:
    // it is the difference of two idle rounds over the difference of their lengths, and the smoke run's rounds (0.5 s
    // and 3 s) are short enough for the start and stop commits' noise to cancel it (it is then 0, never negative). Not
    // cpu_ratio_vs_continuations: it counts the whole PostgreSQL cluster's CPU, here the test server's that the other
    // test fixtures load at the same time, so a smoke round's few steps can read no CPU of their own (0).
    private static readonly string[] MustBePositive =
    [
        "raw_commits_per_s", "continuations_steps_per_s", "steps_per_s", "runs_per_s_1step", "commits_per_run", "commits_per_hangfire_job",
        "latency_p50_ms", "history_cost_ratio", "peak_rss_mb", "commit_bound_ceiling",
        "fraction_of_reachable", "batch_enqueue_speedup",
    ];

    [Test]
    public async Task Benchmark_WritesEveryFigureAsANumber_WhenRunWithSmoke()
    {
        var output = Path.Combine(Path.GetTempPath(), $"wj-bench-smoke-{Guid.NewGuid():N}.json");
        try
        {
            var (exitCode, log) = await RunBenchmarkAsync("--smoke", "--connection", TestDatabases.ServerConnectionString, "--output", output);

            Assert.That(exitCode, Is.Zero, log);
            using var json = JsonDocument.Parse(await File.ReadAllTextAsync(output));
            var root = json.RootElement;
            Assert.That(root.EnumerateObject().Select(p => p.Name), Is.EquivalentTo(FigureKeys.Concat(["machine", "settings", "date"])),
                "exactly the documented keys (docs/benchmarks.md)");
            Assert.Multiple(() =>
            {
                foreach (var key in FigureKeys)
                {
                    Assert.That(root.GetProperty(key).ValueKind, Is.EqualTo(JsonValueKind.Number), key);
                }

                foreach (var key in MustBePositive)
                {
                    Assert.That(root.GetProperty(key).GetDouble(), Is.GreaterThan(0), key);
                }

                Assert.That(root.GetProperty("machine").ValueKind, Is.EqualTo(JsonValueKind.Object));
                Assert.That(root.GetProperty("settings").GetProperty("smoke").GetBoolean(), Is.True);
                Assert.That(root.GetProperty("settings").GetProperty("workers").GetInt32(), Is.EqualTo(8));
                // The library's short poll fetches without a LISTEN task, so no fetched job can wait for a
                // notification: none may be stranded, even in a smoke run.
                Assert.That(root.GetProperty("settings").GetProperty("queue_mode").GetString(), Is.EqualTo("notify"));
                Assert.That(root.GetProperty("settings").GetProperty("dequeues_counted").GetInt32(), Is.GreaterThan(0), "dequeues_counted");
                Assert.That(root.GetProperty("stranded_dequeues").GetDouble(), Is.Zero, "stranded_dequeues");
                Assert.That(DateTimeOffset.TryParse(root.GetProperty("date").GetString(), out _), Is.True, "date");
            });
        }
        finally
        {
            File.Delete(output);
        }
    }

    /// <summary>Runs the benchmark program (referenced by this project, so it sits next to this assembly) in a process of its own.</summary>
    [Test]
    public async Task BatchEnqueueSection_WritesItsFigures_WhenRunSmall()
    {
        var output = Path.Combine(Path.GetTempPath(), $"wj-batch-smoke-{Guid.NewGuid():N}.json");
        try
        {
            var (exitCode, log) = await RunBenchmarkAsync("batch", "--runs", "200", "--concurrency", "4", "--connection", TestDatabases.ServerConnectionString,
                "--output", output);

            Assert.That(exitCode, Is.Zero, log);
            using var json = System.Text.Json.JsonDocument.Parse(await File.ReadAllTextAsync(output));
            foreach (var key in new[] { "single_enqueue_runs_per_s", "batch_enqueue_runs_per_s", "batch_enqueue_speedup" })
            {
                Assert.That(json.RootElement.GetProperty(key).GetDouble(), Is.GreaterThan(0), key);
            }
        }
        finally
        {
            File.Delete(output);
        }
    }

    [Test]
    public async Task BulkRetrySection_RequeuesEveryFailedRun_WhenRunSmall()
    {
        var output = Path.Combine(Path.GetTempPath(), $"wj-bulk-retry-smoke-{Guid.NewGuid():N}.json");
        try
        {
            // 2,500 runs: three batches, so the batch loop and the last partial batch both run.
            var (exitCode, log) = await RunBenchmarkAsync("bulk-retry", "--runs", "2500", "--connection", TestDatabases.ServerConnectionString, "--output", output);

            Assert.That(exitCode, Is.Zero, log);
            using var json = System.Text.Json.JsonDocument.Parse(await File.ReadAllTextAsync(output));
            Assert.That(json.RootElement.GetProperty("all_requeued").GetBoolean(), Is.True, log);
            Assert.That(json.RootElement.GetProperty("retried").GetInt32(), Is.EqualTo(2500));
            Assert.That(json.RootElement.GetProperty("bulk_retry_runs_per_s").GetDouble(), Is.GreaterThan(0));
            Assert.That(log, Does.Not.Contain("refused the requeue"), "every batch went in one write");
        }
        finally
        {
            File.Delete(output);
        }
    }

    [Test]
    public async Task RetentionSection_PurgesEveryOldFinishedRunAndKeepsUnfinishedOnes_WhenRunSmall()
    {
        var output = Path.Combine(Path.GetTempPath(), $"wj-retention-smoke-{Guid.NewGuid():N}.json");
        try
        {
            // 5,000 old runs: five batches of the purge while small runs execute; the figures are numbers, not a verdict on speed.
            var (exitCode, log) = await RunBenchmarkAsync("retention", "--runs", "5000", "--latency-runs", "40", "--connection", TestDatabases.ServerConnectionString,
                "--output", output);

            Assert.That(exitCode, Is.Zero, log);
            using var json = System.Text.Json.JsonDocument.Parse(await File.ReadAllTextAsync(output));
            var root = json.RootElement;
            Assert.That(root.GetProperty("all_purged").GetBoolean(), Is.True, log);
            Assert.That(root.GetProperty("deleted").GetInt32(), Is.EqualTo(5000));
            Assert.That(root.GetProperty("old_finished_left").GetInt64(), Is.Zero);
            Assert.That(root.GetProperty("no_unfinished_deleted").GetBoolean(), Is.True);
            Assert.That(root.GetProperty("orphan_steps").GetInt64(), Is.Zero);
            Assert.That(root.GetProperty("orphan_attempts").GetInt64(), Is.Zero);
            Assert.That(root.GetProperty("latency_runs_idle").GetInt32(), Is.EqualTo(40));
            foreach (var figure in new[] { "purge_runs_per_s", "p99_idle_ms", "p99_during_purge_ms", "p99_ratio" })
            {
                Assert.That(root.GetProperty(figure).GetDouble(), Is.GreaterThan(0), figure);
            }
        }
        finally
        {
            File.Delete(output);
        }
    }

    [Test]
    public async Task ForEachSection_WritesItsFigures_WhenRunSmall()
    {
        var output = Path.Combine(Path.GetTempPath(), $"wj-foreach-smoke-{Guid.NewGuid():N}.json");
        try
        {
            var (exitCode, log) = await RunBenchmarkAsync("foreach", "--items", "100", "--connection", TestDatabases.ServerConnectionString, "--output", output);

            Assert.That(exitCode, Is.Zero, log);
            using var json = JsonDocument.Parse(await File.ReadAllTextAsync(output));
            foreach (var key in new[] { "foreach_items_per_s", "run_per_item_items_per_s", "foreach_speedup", "foreach_item_writes", "foreach_commits_per_item" })
            {
                Assert.That(json.RootElement.GetProperty(key).GetDouble(), Is.GreaterThan(0), key);
            }

            // Every item is checkpointed, at most one write per item (writes group the items that finish meanwhile).
            Assert.That(json.RootElement.GetProperty("foreach_item_writes").GetInt32(), Is.InRange(1, 100));
        }
        finally
        {
            File.Delete(output);
        }
    }

    [Test]
    public async Task ChildrenSection_WritesItsFigures_WhenRunSmall()
    {
        var output = Path.Combine(Path.GetTempPath(), $"wj-children-smoke-{Guid.NewGuid():N}.json");
        try
        {
            var (exitCode, log) = await RunBenchmarkAsync("children", "--children", "20", "--workers", "4", "--connection", TestDatabases.ServerConnectionString,
                "--output", output);

            Assert.That(exitCode, Is.Zero, log);
            using var json = System.Text.Json.JsonDocument.Parse(await File.ReadAllTextAsync(output));
            Assert.That(json.RootElement.GetProperty("children_succeeded").GetInt64(), Is.EqualTo(20));
            foreach (var key in new[] { "children_fan_out_s", "children_total_s", "children_per_s" })
            {
                Assert.That(json.RootElement.GetProperty(key).GetDouble(), Is.GreaterThan(0), key);
            }
        }
        finally
        {
            File.Delete(output);
        }
    }

    [Test]
    public async Task FlowControlSection_WritesItsFigures_WhenRunSmall()
    {
        var output = Path.Combine(Path.GetTempPath(), $"wj-flow-smoke-{Guid.NewGuid():N}.json");
        try
        {
            var (exitCode, log) = await RunBenchmarkAsync("flow", "--runs", "40", "--rounds", "1", "--workers", "4", "--queued-runs", "12", "--connection", TestDatabases.ServerConnectionString,
                "--output", output);

            Assert.That(exitCode, Is.Zero, log);
            using var json = System.Text.Json.JsonDocument.Parse(await File.ReadAllTextAsync(output));
            foreach (var key in new[] { "plain_steps_per_s", "limited_steps_per_s", "plain_commits_per_step", "limited_commits_per_step", "queued_runs_per_s" })
            {
                Assert.That(json.RootElement.GetProperty(key).GetDouble(), Is.GreaterThan(0), key);
            }

            Assert.That(json.RootElement.GetProperty("flow_control_overhead").ValueKind, Is.EqualTo(System.Text.Json.JsonValueKind.Number));
        }
        finally
        {
            File.Delete(output);
        }
    }

    private static async Task<(int ExitCode, string Log)> RunBenchmarkAsync(params string[] arguments)
    {
        var program = Path.Combine(AppContext.BaseDirectory, "Workflow.Jobs.Benchmarks.dll");
        Assert.That(File.Exists(program), Is.True, program);
        var info = new ProcessStartInfo(DotnetHost())
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = AppContext.BaseDirectory,
        };
        info.ArgumentList.Add(program);
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(Deadline);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"The benchmark smoke run did not finish within {Deadline.TotalMinutes} minutes:\n{await stdout}\n{await stderr}");
        }

        return (process.ExitCode, await stdout + "\n" + await stderr);
    }

    private static string DotnetHost()
    {
        var current = Environment.ProcessPath;
        if (current is not null && Path.GetFileNameWithoutExtension(current) == "dotnet")
        {
            return current;
        }

        return Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host) ? host : "dotnet";
    }
}
