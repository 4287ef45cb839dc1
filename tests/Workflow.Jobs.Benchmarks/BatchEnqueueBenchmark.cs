using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Newtonsoft.Json.Linq;
using Npgsql;

using static Workflow.Jobs.Benchmarks.BenchSql;

namespace Workflow.Jobs.Benchmarks;

/// <summary>
/// <c>Workflow.Jobs.Benchmarks batch [--connection cs] [--runs N] [--concurrency C] [--output path]</c>: on a fresh
/// database, creates N runs with their Hangfire jobs (on the library's storage: one transaction per enqueue or per
/// batch; no server runs, so nothing executes) first one <see cref="IWorkflowClient.EnqueueAsync(string, JObject, EnqueueOptions?, CancellationToken)"/>
/// at a time from C concurrent callers, then with <see cref="IWorkflowClient.EnqueueManyAsync"/> in lists of
/// 1,000, and prints runs created per second of each and their ratio (<c>batch_enqueue_speedup</c>).
/// </summary>
internal static class BatchEnqueueBenchmark
{
    private static readonly JsonSerializerOptions IndentedJson = new() { WriteIndented = true };

    public static async Task<int> RunAsync(string[] args, TextWriter output, CancellationToken cancellationToken)
    {
        var server = Environment.GetEnvironmentVariable("WORKFLOW_BENCH_CONNECTION") ?? Environment.GetEnvironmentVariable("WORKFLOW_JOBS_TEST_CONNECTION");
        var runs = 5_000;
        var concurrency = 8;
        var outputPath = "batch-results.json";
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--connection": server = args[++i]; break;
                case "--runs": runs = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--concurrency": concurrency = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--output": outputPath = args[++i]; break;
                default:
                    await output.WriteLineAsync($"Unknown option '{args[i]}'.").ConfigureAwait(false);
                    return 2;
            }
        }

        if (server is null)
        {
            await output.WriteLineAsync("No PostgreSQL connection: pass --connection or set WORKFLOW_BENCH_CONNECTION.").ConfigureAwait(false);
            return 2;
        }

        var result = await MeasureAsync(server, runs, concurrency, cancellationToken).ConfigureAwait(false);
        var figures = new Dictionary<string, object>
        {
            ["runs"] = runs,
            ["single_enqueue_concurrency"] = concurrency,
            ["single_enqueue_runs_per_s"] = Math.Round(result.SingleRunsPerSecond, 1),
            ["batch_enqueue_runs_per_s"] = Math.Round(result.BatchRunsPerSecond, 1),
            ["batch_enqueue_speedup"] = Math.Round(result.Speedup, 2),
            ["load_average"] = File.Exists("/proc/loadavg") ? (await File.ReadAllTextAsync("/proc/loadavg", cancellationToken).ConfigureAwait(false)).Trim() : "",
            ["date"] = DateTimeOffset.UtcNow.ToString("u", CultureInfo.InvariantCulture),
        };
        await output.WriteLineAsync(result.Describe(concurrency)).ConfigureAwait(false);
        await File.WriteAllTextAsync(outputPath, JsonSerializer.Serialize(figures, IndentedJson), cancellationToken)
            .ConfigureAwait(false);
        return 0;
    }

    /// <summary>
    /// On a fresh database of <paramref name="server"/> (dropped at the end), creates <paramref name="runs"/> runs one
    /// enqueue at a time from <paramref name="concurrency"/> callers, then as many in lists of 1,000; the rates of both.
    /// </summary>
    public static async Task<BatchEnqueueResult> MeasureAsync(string server, int runs, int concurrency, CancellationToken cancellationToken)
    {
        var name = "wjbatch_" + Guid.NewGuid().ToString("N")[..8];
        await ExecuteAsync(server, $"CREATE DATABASE \"{name}\"", cancellationToken).ConfigureAwait(false);
        var connectionString = new NpgsqlConnectionStringBuilder(server) { Database = name }.ConnectionString;
        try
        {
            var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
            builder.Logging.ClearProviders();
            builder.Services.AddWorkflowJobs(o => o.UseNpgsql(connectionString)).AddWorkflow<OneStepWorkflow>().AddHangfireJobs(o => o.RunServer = false);
            using var host = builder.Build();
            await host.StartAsync(cancellationToken).ConfigureAwait(false);
            var client = host.Services.GetRequiredService<IWorkflowClient>();
            var workflow = "bench-1-step";

            // Warm-up: JIT, pool, prepared statements.
            await client.EnqueueManyAsync(workflow, Enumerable.Range(0, 50).Select(_ => new WorkflowEnqueueItem([])).ToList(), cancellationToken).ConfigureAwait(false);
            await client.EnqueueAsync(workflow, [], cancellationToken: cancellationToken).ConfigureAwait(false);

            var single = Stopwatch.StartNew();
            var next = 0;
            await Task.WhenAll(Enumerable.Range(0, concurrency).Select(async _ =>
            {
                while (Interlocked.Increment(ref next) <= runs)
                {
                    await client.EnqueueAsync(workflow, [], cancellationToken: cancellationToken).ConfigureAwait(false);
                }
            })).ConfigureAwait(false);
            single.Stop();

            var batch = Stopwatch.StartNew();
            for (var done = 0; done < runs; done += 1_000)
            {
                var items = Enumerable.Range(0, Math.Min(1_000, runs - done)).Select(_ => new WorkflowEnqueueItem([])).ToList();
                await client.EnqueueManyAsync(workflow, items, cancellationToken).ConfigureAwait(false);
            }

            batch.Stop();
            await host.StopAsync(cancellationToken).ConfigureAwait(false);
            return new BatchEnqueueResult(runs / single.Elapsed.TotalSeconds, runs / batch.Elapsed.TotalSeconds);
        }
        finally
        {
            NpgsqlConnection.ClearAllPools();
            await ExecuteAsync(server, $"DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)", CancellationToken.None).ConfigureAwait(false);
        }
    }
}

/// <summary>Runs created per second one enqueue at a time and in batches.</summary>
internal sealed record BatchEnqueueResult(double SingleRunsPerSecond, double BatchRunsPerSecond)
{
    /// <summary>Batches over single enqueues (<c>batch_enqueue_speedup</c>).</summary>
    public double Speedup => BatchRunsPerSecond / SingleRunsPerSecond;

    /// <summary>The log line.</summary>
    public string Describe(int concurrency) => string.Create(CultureInfo.InvariantCulture,
        $"runs created with their jobs: {SingleRunsPerSecond:0} runs/s one at a time ({concurrency} callers), {BatchRunsPerSecond:0} runs/s in batches; batch_enqueue_speedup {Speedup:0.00}");
}
