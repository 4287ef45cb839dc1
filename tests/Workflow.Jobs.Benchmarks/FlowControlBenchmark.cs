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
/// <c>Workflow.Jobs.Benchmarks flow [--connection cs] [--runs N] [--workers W] [--rounds R] [--output path]</c>: on a
/// fresh database with one Hangfire server of W workers, runs batches of N ten-step runs, alternating between the plain
/// ten-step workflow and the same steps under flow control whose limits do not bind (64 at once, 4 per key, a key per
/// 4 runs), R rounds each, and prints steps per second of each and the overhead of flow control
/// (<c>flow_control_overhead</c> = 1 − limited / plain, from the rounds' totals), with the commits per step of each
/// (<c>xact_commit</c> of the database, read-only ones and this program's polls included: admission adds one read-only
/// statement per run, no write transaction). Then, with <c>--queued-runs Q</c>, the limit binds: Q ten-step runs of one key
/// (4 slots) are enqueued at once and timed to the last one's success (<c>queued_runs_per_s</c>): each run waits for a slot
/// and is offered the one its predecessor gives back.
/// </summary>
internal static class FlowControlBenchmark
{
    private static readonly JsonSerializerOptions IndentedJson = new() { WriteIndented = true };

    public static async Task<int> RunAsync(string[] args, TextWriter output, CancellationToken cancellationToken)
    {
        var server = Environment.GetEnvironmentVariable("WORKFLOW_BENCH_CONNECTION") ?? Environment.GetEnvironmentVariable("WORKFLOW_JOBS_TEST_CONNECTION");
        var runs = 1_000;
        var workers = 8;
        var rounds = 3;
        var queuedRuns = 200;
        var outputPath = "flow-results.json";
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--connection": server = args[++i]; break;
                case "--runs": runs = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--workers": workers = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--queued-runs": queuedRuns = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--rounds": rounds = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
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

        var name = "wjflow_" + Guid.NewGuid().ToString("N")[..8];
        await ExecuteAsync(server, $"CREATE DATABASE \"{name}\"", cancellationToken).ConfigureAwait(false);
        var connectionString = new NpgsqlConnectionStringBuilder(server) { Database = name }.ConnectionString;
        try
        {
            var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
            builder.Logging.ClearProviders();
            builder.Services.AddWorkflowJobs(o => o.UseNpgsql(connectionString))
                .AddWorkflow<TenStepWorkflow>()
                .AddWorkflow<TenStepLimitedWorkflow>()
                .AddHangfireJobs(o =>
                {
                    o.WorkerCount = workers;
                    o.QueuePollInterval = TimeSpan.FromMilliseconds(50);
                });
            using var host = builder.Build();
            await host.StartAsync(cancellationToken).ConfigureAwait(false);
            var client = host.Services.GetRequiredService<IWorkflowClient>();

            // Warm-up of both: JIT, pool, prepared statements.
            await RunBatchAsync(client, connectionString, "bench-10-steps", Math.Min(50, runs), cancellationToken).ConfigureAwait(false);
            await RunBatchAsync(client, connectionString, "bench-10-steps-limited", Math.Min(50, runs), cancellationToken).ConfigureAwait(false);

            var plain = new Totals();
            var limited = new Totals();
            for (var round = 0; round < rounds; round++)
            {
                plain.Add(await RunBatchAsync(client, connectionString, "bench-10-steps", runs, cancellationToken).ConfigureAwait(false));
                limited.Add(await RunBatchAsync(client, connectionString, "bench-10-steps-limited", runs, cancellationToken).ConfigureAwait(false));
            }

            var parked = await ScalarAsync(connectionString,
                $"SELECT count(*) FROM workflow.workflow_runs WHERE workflow_name = 'bench-10-steps-limited' AND attempts <> 1", cancellationToken).ConfigureAwait(false);

            // The limit binds: one key, 4 slots, every run but the first 4 waits for the slot of an earlier one.
            var queued = await RunBatchAsync(client, connectionString, "bench-10-steps-limited", queuedRuns, cancellationToken, oneKey: "queued").ConfigureAwait(false);
            var queuedPerSecond = queuedRuns / queued.Elapsed.TotalSeconds;
            await host.StopAsync(cancellationToken).ConfigureAwait(false);

            var overhead = 1 - (limited.StepsPerSecond / plain.StepsPerSecond);
            var figures = new Dictionary<string, object>
            {
                ["runs_per_round"] = runs,
                ["rounds"] = rounds,
                ["workers"] = workers,
                ["plain_steps_per_s"] = Math.Round(plain.StepsPerSecond, 1),
                ["limited_steps_per_s"] = Math.Round(limited.StepsPerSecond, 1),
                ["flow_control_overhead"] = Math.Round(overhead, 3),
                ["plain_commits_per_step"] = Math.Round(plain.WritesPerStep, 2),
                ["limited_commits_per_step"] = Math.Round(limited.WritesPerStep, 2),
                ["limited_runs_not_on_first_attempt"] = parked,
                ["queued_runs"] = queuedRuns,
                ["queued_runs_per_s"] = Math.Round(queuedPerSecond, 1),
                ["load_average"] = File.Exists("/proc/loadavg") ? (await File.ReadAllTextAsync("/proc/loadavg", cancellationToken).ConfigureAwait(false)).Trim() : "",
                ["date"] = DateTimeOffset.UtcNow.ToString("u", CultureInfo.InvariantCulture),
            };
            await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                $"ten-step runs: {plain.StepsPerSecond:0} steps/s plain, {limited.StepsPerSecond:0} steps/s under flow control; flow_control_overhead {overhead:P1}; "
                + $"commits per step {plain.WritesPerStep:0.00} plain, {limited.WritesPerStep:0.00} limited; "
                + $"{queuedRuns} runs of one key (4 slots): {queuedPerSecond:0.0} runs/s"))
                .ConfigureAwait(false);
            await File.WriteAllTextAsync(outputPath, JsonSerializer.Serialize(figures, IndentedJson), cancellationToken).ConfigureAwait(false);
            return 0;
        }
        finally
        {
            NpgsqlConnection.ClearAllPools();
            await ExecuteAsync(server, $"DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)", CancellationToken.None).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Enqueues <paramref name="runs"/> runs in batches and waits until all succeeded: elapsed time and write transactions.
    /// Limited runs get a key per 4 runs (the limits do not bind), or all <paramref name="oneKey"/>.
    /// </summary>
    private static async Task<(TimeSpan Elapsed, long Writes, int Steps)> RunBatchAsync(IWorkflowClient client, string connectionString, string workflow, int runs,
        CancellationToken cancellationToken, string? oneKey = null)
    {
        var before = await SucceededAsync(connectionString, workflow, cancellationToken).ConfigureAwait(false);
        var writesBefore = await WritesAsync(connectionString, cancellationToken).ConfigureAwait(false);
        var limited = workflow.EndsWith("-limited", StringComparison.Ordinal);
        var clock = Stopwatch.StartNew();
        for (var done = 0; done < runs; done += 500)
        {
            var items = Enumerable.Range(done, Math.Min(500, runs - done))
                .Select(i => new WorkflowEnqueueItem([], limited ? new EnqueueOptions { ConcurrencyKey = oneKey ?? "key-" + (i / 4).ToString(CultureInfo.InvariantCulture) } : null))
                .ToList();
            await client.EnqueueManyAsync(workflow, items, cancellationToken).ConfigureAwait(false);
        }

        while (await SucceededAsync(connectionString, workflow, cancellationToken).ConfigureAwait(false) < before + runs)
        {
            await Task.Delay(100, cancellationToken).ConfigureAwait(false);
        }

        clock.Stop();
        var writes = await WritesAsync(connectionString, cancellationToken).ConfigureAwait(false) - writesBefore;
        return (clock.Elapsed, writes, runs * 10);
    }

    private static Task<long> SucceededAsync(string connectionString, string workflow, CancellationToken cancellationToken)
        => ScalarAsync(connectionString, $"SELECT count(*) FROM workflow.workflow_runs WHERE workflow_name = '{workflow}' AND status = 'Succeeded'", cancellationToken);

    /// <summary>The database's <c>xact_commit</c> (every transaction, read-only ones included).</summary>
    private static Task<long> WritesAsync(string connectionString, CancellationToken cancellationToken)
        => ScalarAsync(connectionString, "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()", cancellationToken);

    private static async Task<long> ScalarAsync(string connectionString, string sql, CancellationToken cancellationToken)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(sql, connection);
        return Convert.ToInt64(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false), CultureInfo.InvariantCulture);
    }

    private sealed class Totals
    {
        private TimeSpan _elapsed;
        private long _writes;
        private int _steps;

        public double StepsPerSecond => _steps / _elapsed.TotalSeconds;

        public double WritesPerStep => (double)_writes / _steps;

        public void Add((TimeSpan Elapsed, long Writes, int Steps) batch)
        {
            _elapsed += batch.Elapsed;
            _writes += batch.Writes;
            _steps += batch.Steps;
        }
    }
}
