using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Newtonsoft.Json;
using Newtonsoft.Json.Linq;
using Npgsql;

using static Workflow.Jobs.Benchmarks.BenchSql;

namespace Workflow.Jobs.Benchmarks;

[WorkflowKey("bench_fan_out_input")]
public sealed class BenchFanOutInput : WorkflowData
{
    [JsonProperty("items")] public int Items { get; set; }
    [JsonProperty("parallelism")] public int Parallelism { get; set; } = 4;

    /// <summary>How long each body waits (a stand-in for an external call); 0 for none.</summary>
    [JsonProperty("body_ms")] public int BodyMilliseconds { get; set; }
}

[WorkflowKey("bench_fan_out_output")]
public sealed class BenchFanOutOutput : WorkflowData
{
    [JsonProperty("sum")] public long Sum { get; set; }
}

/// <summary>A body per item (the item's value + 1, like the no-op steps, after an optional wait), fanned out with <see cref="StepContext.ForEachAsync{TItem, TResult}(IReadOnlyList{TItem}, Func{TItem, CancellationToken, Task{TResult}}, ForEachOptions?, CancellationToken)"/>.</summary>
public sealed class BenchFanOutStep : WorkflowStep<BenchFanOutInput, BenchFanOutOutput>
{
    protected override async Task<BenchFanOutOutput> ProcessInputAsync(BenchFanOutInput input, StepContext context, CancellationToken cancellationToken)
    {
        var results = await context.ForEachAsync(Enumerable.Range(0, input.Items).ToList(), async (i, ct) =>
        {
            if (input.BodyMilliseconds > 0)
            {
                await Task.Delay(input.BodyMilliseconds, ct).ConfigureAwait(false);
            }

            return i + 1;
        }, new ForEachOptions { MaxDegreeOfParallelism = input.Parallelism }, cancellationToken).ConfigureAwait(false);
        return new BenchFanOutOutput { Sum = results.Sum(r => (long)r) };
    }
}

/// <summary>One step that fans out over its items.</summary>
[WorkflowName("bench-fan-out")]
public sealed class FanOutBenchWorkflow : WorkflowDefinition
{
    public override IReadOnlyList<Type> Steps { get; } = [typeof(BenchFanOutStep)];
}

/// <summary>
/// <c>Workflow.Jobs.Benchmarks foreach [--connection cs] [--items N] [--parallelism P] [--workers W] [--body-ms MS] [--output path]</c>: on a
/// fresh database with a Hangfire server of W workers in this process, does N no-op items two ways and prints items per
/// second of each: one run whose step fans out over the N items (<c>ForEachAsync</c>, P bodies at once, each item
/// checkpointed), and N runs of a one-step workflow (enqueued in one batch). It also counts the fan-out's item
/// checkpoint transactions (each write stamps its items with one <c>finished_at</c>, so the distinct stamps are the writes)
/// and reports the run's workflow commits per item.
/// </summary>
internal static class ForEachBenchmark
{
    private static readonly JsonSerializerOptions IndentedJson = new() { WriteIndented = true };
    private static readonly TimeSpan Patience = TimeSpan.FromMinutes(10);

    public static async Task<int> RunAsync(string[] args, TextWriter output, CancellationToken cancellationToken)
    {
        var server = Environment.GetEnvironmentVariable("WORKFLOW_BENCH_CONNECTION") ?? Environment.GetEnvironmentVariable("WORKFLOW_JOBS_TEST_CONNECTION");
        var items = 1_000;
        var parallelism = 8;
        var workers = 8;
        var bodyMilliseconds = 0;
        var outputPath = "foreach-results.json";
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--connection": server = args[++i]; break;
                case "--items": items = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--parallelism": parallelism = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--workers": workers = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--body-ms": bodyMilliseconds = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
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

        var name = "wjforeach_" + Guid.NewGuid().ToString("N")[..8];
        await ExecuteAsync(server, $"CREATE DATABASE \"{name}\"", cancellationToken).ConfigureAwait(false);
        var connectionString = new NpgsqlConnectionStringBuilder(server) { Database = name }.ConnectionString;
        try
        {
            var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
            builder.Logging.ClearProviders();
            builder.Services.AddWorkflowJobs(o => o.UseNpgsql(connectionString))
                .AddWorkflow<OneStepWorkflow>()
                .AddWorkflow<FanOutBenchWorkflow>()
                .AddHangfireJobs(o => o.WorkerCount = workers);
            using var host = builder.Build();
            await host.StartAsync(cancellationToken).ConfigureAwait(false);
            var client = host.Services.GetRequiredService<IWorkflowClient>();

            // Warm-up: JIT, pool, prepared statements, both ways.
            await FanOutAsync(client, 20, parallelism, bodyMilliseconds, cancellationToken).ConfigureAwait(false);
            await RunPerItemAsync(client, 20, cancellationToken).ConfigureAwait(false);

            var fanOut = Stopwatch.StartNew();
            var fanOutRun = await FanOutAsync(client, items, parallelism, bodyMilliseconds, cancellationToken).ConfigureAwait(false);
            fanOut.Stop();
            var perItem = Stopwatch.StartNew();
            await RunPerItemAsync(client, items, cancellationToken).ConfigureAwait(false);
            perItem.Stop();

            var stepId = fanOutRun.Steps.Single().Id;
            var itemWrites = await ScalarAsync(connectionString,
                $"SELECT count(DISTINCT finished_at) FROM workflow.workflow_step_items WHERE step_uuid = '{stepId}'", cancellationToken).ConfigureAwait(false);
            await host.StopAsync(cancellationToken).ConfigureAwait(false);

            var fanOutRate = items / fanOut.Elapsed.TotalSeconds;
            var perItemRate = items / perItem.Elapsed.TotalSeconds;
            // The run's own workflow commits: its start (with the step's), the fan-out's registration of its items, the item
            // writes, and the step's checkpoint with the run's success. (Its one Hangfire job is not counted here.)
            var runCommits = itemWrites + 3;
            var figures = new Dictionary<string, object>
            {
                ["items"] = items,
                ["parallelism"] = parallelism,
                ["workers"] = workers,
                ["body_ms"] = bodyMilliseconds,
                ["foreach_items_per_s"] = Math.Round(fanOutRate, 1),
                ["run_per_item_items_per_s"] = Math.Round(perItemRate, 1),
                ["foreach_speedup"] = Math.Round(fanOutRate / perItemRate, 2),
                ["foreach_item_writes"] = itemWrites,
                ["foreach_items_per_write"] = Math.Round((double)items / Math.Max(1, itemWrites), 2),
                ["foreach_commits_per_item"] = Math.Round((double)runCommits / items, 4),
                ["load_average"] = File.Exists("/proc/loadavg") ? (await File.ReadAllTextAsync("/proc/loadavg", cancellationToken).ConfigureAwait(false)).Trim() : "",
                ["date"] = DateTimeOffset.UtcNow.ToString("u", CultureInfo.InvariantCulture),
            };
            await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                $"{items} items: {fanOutRate:0} items/s as one run's fan-out ({parallelism} at once; {itemWrites} item writes, {(double)runCommits / items:0.000} commits per item), " +
                $"{perItemRate:0} items/s as one run per item ({workers} workers); foreach_speedup {fanOutRate / perItemRate:0.00}")).ConfigureAwait(false);
            await File.WriteAllTextAsync(outputPath, System.Text.Json.JsonSerializer.Serialize(figures, IndentedJson), cancellationToken).ConfigureAwait(false);
            return 0;
        }
        finally
        {
            NpgsqlConnection.ClearAllPools();
            await ExecuteAsync(server, $"DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)", CancellationToken.None).ConfigureAwait(false);
        }
    }

    /// <summary>Enqueues one fan-out run and waits for its success.</summary>
    private static async Task<WorkflowRun> FanOutAsync(IWorkflowClient client, int items, int parallelism, int bodyMilliseconds, CancellationToken cancellationToken)
    {
        var id = await client.EnqueueAsync<FanOutBenchWorkflow>(new WorkflowInput(new BenchFanOutInput { Items = items, Parallelism = parallelism, BodyMilliseconds = bodyMilliseconds }),
            cancellationToken: cancellationToken).ConfigureAwait(false);
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            var run = await client.GetAsync(id, cancellationToken).ConfigureAwait(false);
            if (run?.Status == WorkflowStatus.Succeeded)
            {
                return run;
            }

            if (run is null || run.Status is WorkflowStatus.Failed or WorkflowStatus.Cancelled || deadline.Elapsed > Patience)
            {
                throw new InvalidOperationException($"The fan-out run {id} did not succeed: {run?.Status} {run?.ExceptionMessage}");
            }

            await Task.Delay(10, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Enqueues one one-step run per item (one batch) and waits until all have succeeded.</summary>
    private static async Task RunPerItemAsync(IWorkflowClient client, int items, CancellationToken cancellationToken)
    {
        var tag = Guid.NewGuid().ToString("N");
        var tags = new Dictionary<string, string> { ["batch"] = tag };
        var list = Enumerable.Range(0, items).Select(_ => new WorkflowEnqueueItem([], new EnqueueOptions { Tags = tags })).ToList();
        for (var done = 0; done < items; done += 1_000)
        {
            await client.EnqueueManyAsync("bench-1-step", list.Skip(done).Take(1_000).ToList(), cancellationToken).ConfigureAwait(false);
        }

        var query = new WorkflowQuery { Tags = tags, Status = WorkflowStatus.Succeeded };
        var deadline = Stopwatch.StartNew();
        while (await client.CountAsync(query, cancellationToken).ConfigureAwait(false) < items)
        {
            if (deadline.Elapsed > Patience)
            {
                throw new InvalidOperationException($"{items} one-step runs did not all succeed within {Patience}.");
            }

            await Task.Delay(10, cancellationToken).ConfigureAwait(false);
        }
    }

    private static async Task<long> ScalarAsync(string connectionString, string sql, CancellationToken cancellationToken)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(sql, connection);
        return (long)(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
    }
}
