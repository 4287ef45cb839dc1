using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Npgsql;

using static Workflow.Jobs.Benchmarks.BenchSql;

namespace Workflow.Jobs.Benchmarks;

/// <summary>
/// <c>Workflow.Jobs.Benchmarks children [--connection cs] [--children N] [--workers W] [--output path]</c>: on a fresh
/// database with one Hangfire server of W workers, one run whose step calls <see cref="StepContext.RunChildrenAsync{TWorkflow}"/>
/// with N inputs (one-step children). Prints the time to fan out (the parent's creation → the last of the N children created),
/// the time until the last child finished, the time to fan in (last child finished → parent succeeded) and the total.
/// </summary>
internal static class ChildrenBenchmark
{
    private static readonly JsonSerializerOptions IndentedJson = new() { WriteIndented = true };

    public static async Task<int> RunAsync(string[] args, TextWriter output, CancellationToken cancellationToken)
    {
        var server = Environment.GetEnvironmentVariable("WORKFLOW_BENCH_CONNECTION") ?? Environment.GetEnvironmentVariable("WORKFLOW_JOBS_TEST_CONNECTION");
        var children = 1_000;
        var workers = 8;
        var outputPath = "children-results.json";
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--connection": server = args[++i]; break;
                case "--children": children = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--workers": workers = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
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

        var name = "wjchildren_" + Guid.NewGuid().ToString("N")[..8];
        await ExecuteAsync(server, $"CREATE DATABASE \"{name}\"", cancellationToken).ConfigureAwait(false);
        var connectionString = new NpgsqlConnectionStringBuilder(server) { Database = name }.ConnectionString;
        try
        {
            var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
            builder.Logging.ClearProviders();
            builder.Services.AddWorkflowJobs(o => o.UseNpgsql(connectionString))
                .AddWorkflow<OneStepWorkflow>()
                .AddWorkflow<ChildrenBenchWorkflow>()
                .AddHangfireJobs(o =>
                {
                    o.WorkerCount = workers;
                    o.QueuePollInterval = TimeSpan.FromMilliseconds(50);
                });
            using var host = builder.Build();
            await host.StartAsync(cancellationToken).ConfigureAwait(false);
            var client = host.Services.GetRequiredService<IWorkflowClient>();

            // Warm-up: JIT, pool, prepared statements (a small fan-out, measured by nothing).
            var warmUp = await client.EnqueueAsync<ChildrenBenchWorkflow>(new WorkflowInput(new BenchChildrenInput { Children = 5 }), cancellationToken: cancellationToken).ConfigureAwait(false);
            await WaitForAsync(client, warmUp, WorkflowStatus.Succeeded, cancellationToken).ConfigureAwait(false);

            var clock = Stopwatch.StartNew();
            var id = await client.EnqueueAsync<ChildrenBenchWorkflow>(new WorkflowInput(new BenchChildrenInput { Children = children }), cancellationToken: cancellationToken)
                .ConfigureAwait(false);
            var run = await WaitForAsync(client, id, WorkflowStatus.Succeeded, cancellationToken).ConfigureAwait(false);
            var total = clock.Elapsed;
            await host.StopAsync(cancellationToken).ConfigureAwait(false);

            // The children's creation and finishing times from the database (the same clock as the parent's): a poll of the
            // parent's status could miss its short Waiting spell under load.
            await using var connection = new NpgsqlConnection(connectionString);
            await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
            await using var command = new NpgsqlCommand(
                "SELECT count(*) FILTER (WHERE status = 'Succeeded'), max(succeeded_at), max(created) FROM workflow.workflow_runs WHERE parent_uuid = @parent", connection);
            command.Parameters.AddWithValue("parent", id);
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            var succeeded = reader.GetInt64(0);
            var lastChild = await reader.GetFieldValueAsync<DateTimeOffset>(1, cancellationToken).ConfigureAwait(false);
            var lastCreated = await reader.GetFieldValueAsync<DateTimeOffset>(2, cancellationToken).ConfigureAwait(false);
            var fanIn = run.SucceededAt!.Value - lastChild;
            var fanOut = lastCreated - run.Created;
            var figures = new Dictionary<string, object>
            {
                ["children"] = children,
                ["children_succeeded"] = succeeded,
                ["workers"] = workers,
                ["children_fan_out_s"] = Math.Round(fanOut.TotalSeconds, 3),
                ["children_last_finished_s"] = Math.Round((total - fanIn).TotalSeconds, 2),
                ["children_fan_in_s"] = Math.Round(fanIn.TotalSeconds, 3),
                ["children_total_s"] = Math.Round(total.TotalSeconds, 2),
                ["children_per_s"] = Math.Round(children / total.TotalSeconds, 1),
                ["load_average"] = File.Exists("/proc/loadavg") ? (await File.ReadAllTextAsync("/proc/loadavg", cancellationToken).ConfigureAwait(false)).Trim() : "",
                ["date"] = DateTimeOffset.UtcNow.ToString("u", CultureInfo.InvariantCulture),
            };
            await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                $"{children} children on {workers} workers: fan-out {fanOut.TotalSeconds:0.000} s (parent created → last child created), last child done at {(total - fanIn).TotalSeconds:0.00} s, fan-in {fanIn.TotalMilliseconds:0} ms (last child → parent succeeded), total {total.TotalSeconds:0.00} s ({children / total.TotalSeconds:0} children/s)"))
                .ConfigureAwait(false);
            await File.WriteAllTextAsync(outputPath, JsonSerializer.Serialize(figures, IndentedJson), cancellationToken).ConfigureAwait(false);
            return succeeded == children ? 0 : 1;
        }
        finally
        {
            NpgsqlConnection.ClearAllPools();
            await ExecuteAsync(server, $"DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)", CancellationToken.None).ConfigureAwait(false);
        }
    }

    /// <summary>Polls the run every 20 ms until <paramref name="status"/>.</summary>
    private static async Task<WorkflowRun> WaitForAsync(IWorkflowClient client, Guid id, WorkflowStatus status, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(TimeSpan.FromMinutes(30));
        while (true)
        {
            var run = await client.GetAsync(id, timeout.Token).ConfigureAwait(false);
            if (run?.Status == status)
            {
                return run;
            }

            if (run?.Status is WorkflowStatus.Failed or WorkflowStatus.Cancelled)
            {
                throw new InvalidOperationException($"Run {id} is {run.Status}: {run.ExceptionMessage}");
            }

            await Task.Delay(20, timeout.Token).ConfigureAwait(false);
        }
    }
}
