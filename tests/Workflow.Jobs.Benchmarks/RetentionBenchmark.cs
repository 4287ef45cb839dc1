using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Hangfire;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Npgsql;
using Workflow.Jobs.Hangfire;

using static Workflow.Jobs.Benchmarks.BenchSql;

namespace Workflow.Jobs.Benchmarks;

/// <summary>
/// <c>Workflow.Jobs.Benchmarks retention [--connection cs] [--runs N] [--latency-runs M] [--output path] [--without-cascade-indexes]</c>: on a fresh
/// database, inserts N old finished runs set-based (three steps each with their attempt rows, created and last changed
/// 60 days ago or more; 80% Succeeded, 10% Failed, 10% Cancelled; no Hangfire jobs) and 1,000 old unfinished runs
/// (Pending, Running, Waiting), then measures enqueue → Succeeded of 1-step runs executed by a Hangfire server in this
/// process: first idle (M runs), then while the retention job (<see cref="WorkflowRetentionJob"/>, retention 30 days for
/// every finished status) deletes all N. Prints the purge rate (<c>purge_runs_per_s</c>), <c>p99_idle_ms</c>,
/// <c>p99_during_purge_ms</c>, their <c>p99_ratio</c> (target at most 2) and whether every unfinished run survived.
/// Default N: 1,000,000; M: 300. <c>--without-cascade-indexes</c> drops the indexes the delete cascade uses (the schema before
/// they existed), for comparison.
/// </summary>
internal static class RetentionBenchmark
{
    private const int OldUnfinished = 1_000;
    private const int Warmup = 20;
    private static readonly JsonSerializerOptions IndentedJson = new() { WriteIndented = true };

    public static async Task<int> RunAsync(string[] args, TextWriter output, CancellationToken cancellationToken)
    {
        var server = Environment.GetEnvironmentVariable("WORKFLOW_BENCH_CONNECTION") ?? Environment.GetEnvironmentVariable("WORKFLOW_JOBS_TEST_CONNECTION");
        var runs = 1_000_000;
        var latencyRuns = 300;
        var outputPath = "retention-results.json";
        var withoutCascadeIndexes = false;
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--connection": server = args[++i]; break;
                case "--runs": runs = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--latency-runs": latencyRuns = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--output": outputPath = args[++i]; break;
                case "--without-cascade-indexes": withoutCascadeIndexes = true; break;
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

        var name = "wjretention_" + Guid.NewGuid().ToString("N")[..8];
        await ExecuteAsync(server, $"CREATE DATABASE \"{name}\"", cancellationToken).ConfigureAwait(false);
        var connectionString = new NpgsqlConnectionStringBuilder(server) { Database = name }.ConnectionString;
        try
        {
            var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
            builder.Logging.ClearProviders();
            builder.Logging.AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace).SetMinimumLevel(LogLevel.Warning);
            builder.Logging.AddFilter("Microsoft.EntityFrameworkCore.Database.Command", LogLevel.Critical);
            var age = TimeSpan.FromDays(30);
            builder.Services.AddWorkflowJobs(o =>
                {
                    o.UseNpgsql(connectionString);
                    // The schedule never fires by itself: the benchmark runs the job's method when the measurement needs it.
                    o.Retention = new WorkflowRetention { SucceededFor = age, FailedFor = age, CancelledFor = age, CompensatedFor = age, Cron = Cron.Never() };
                })
                .AddWorkflow<OneStepWorkflow>()
                .AddHangfireJobs(o => o.WorkerCount = 4);
            using var host = builder.Build();
            await host.StartAsync(cancellationToken).ConfigureAwait(false);
            var client = host.Services.GetRequiredService<IWorkflowClient>();

            var fill = Stopwatch.StartNew();
            await FillAsync(connectionString, runs, cancellationToken).ConfigureAwait(false);
            fill.Stop();
            if (withoutCascadeIndexes)
            {
                // The schema before the cascade's indexes existed: each deleted run's steps and events are found by a scan.
                await ExecuteAsync(connectionString, "DROP INDEX workflow.ix_workflow_steps_run; DROP INDEX workflow.ix_workflow_events_run", cancellationToken).ConfigureAwait(false);
            }

            await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                $"inserted {runs:N0} old finished runs ({runs * 3L:N0} steps) and {OldUnfinished:N0} old unfinished runs in {fill.Elapsed.TotalSeconds:0.0} s")).ConfigureAwait(false);

            var random = new Random(20261129);
            _ = await MeasureAsync(client, connectionString, random, Warmup, () => false, cancellationToken).ConfigureAwait(false);
            var idle = await MeasureAsync(client, connectionString, random, latencyRuns, () => false, cancellationToken).ConfigureAwait(false);

            var job = host.Services.GetRequiredService<WorkflowRetentionJob>();
            var watch = Stopwatch.StartNew();
            var purgeTime = TimeSpan.Zero;
            var purge = Task.Run(async () =>
            {
                var count = await job.RunAsync(cancellationToken).ConfigureAwait(false);
                purgeTime = watch.Elapsed;
                return count;
            }, cancellationToken);
            // Runs keep coming while the purge lasts (and at least as many as idle, so a short purge still gives a sample).
            var during = await MeasureAsync(client, connectionString, random, latencyRuns, () => !purge.IsCompleted, cancellationToken).ConfigureAwait(false);
            var deleted = await purge.ConfigureAwait(false);
            var purgeSeconds = purgeTime.TotalSeconds;
            var inPurge = during.Where(s => s.EnqueuedAt < purgeTime).Select(s => s.Latency).Order().ToArray();
            await host.StopAsync(cancellationToken).ConfigureAwait(false);

            var (oldFinished, oldUnfinished, orphanSteps, orphanAttempts) = await CheckAsync(connectionString, cancellationToken).ConfigureAwait(false);
            var idleLatencies = idle.Select(s => s.Latency).Order().ToArray();
            var p99Idle = Percentile(idleLatencies, 0.99);
            var p99During = inPurge.Length > 0 ? Percentile(inPurge, 0.99) : 0;
            var ratio = p99Idle > 0 ? p99During / p99Idle : 0;
            var correct = deleted == runs && oldFinished == 0 && oldUnfinished == OldUnfinished && orphanSteps == 0 && orphanAttempts == 0;
            var figures = new Dictionary<string, object>
            {
                ["runs"] = runs,
                ["cascade_indexes"] = !withoutCascadeIndexes,
                ["fill_seconds"] = Math.Round(fill.Elapsed.TotalSeconds, 1),
                ["deleted"] = deleted,
                ["purge_seconds"] = Math.Round(purgeSeconds, 2),
                ["purge_runs_per_s"] = Math.Round(deleted / purgeSeconds, 1),
                ["latency_runs_idle"] = idleLatencies.Length,
                ["latency_runs_during_purge"] = inPurge.Length,
                ["p50_idle_ms"] = Math.Round(Percentile(idleLatencies, 0.50), 1),
                ["p99_idle_ms"] = Math.Round(p99Idle, 1),
                ["p50_during_purge_ms"] = Math.Round(inPurge.Length > 0 ? Percentile(inPurge, 0.50) : 0, 1),
                ["p99_during_purge_ms"] = Math.Round(p99During, 1),
                ["p99_ratio"] = Math.Round(ratio, 2),
                ["old_finished_left"] = oldFinished,
                ["old_unfinished_kept"] = oldUnfinished,
                ["orphan_steps"] = orphanSteps,
                ["orphan_attempts"] = orphanAttempts,
                ["no_unfinished_deleted"] = oldUnfinished == OldUnfinished,
                ["all_purged"] = correct,
                ["load_average"] = File.Exists("/proc/loadavg") ? (await File.ReadAllTextAsync("/proc/loadavg", cancellationToken).ConfigureAwait(false)).Trim() : "",
                ["date"] = DateTimeOffset.UtcNow.ToString("u", CultureInfo.InvariantCulture),
            };
            await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                $"retention purge of {runs:N0} old runs: {purgeSeconds:0.00} s ({deleted / purgeSeconds:0} runs/s); latency p50/p99 idle {Percentile(idleLatencies, 0.5):0.0}/{p99Idle:0.0} ms ({idleLatencies.Length} runs), " +
                $"during purge {(inPurge.Length > 0 ? Percentile(inPurge, 0.5) : 0):0.0}/{p99During:0.0} ms ({inPurge.Length} runs); p99 ratio {ratio:0.00}; " +
                $"old finished left {oldFinished}, old unfinished kept {oldUnfinished}/{OldUnfinished}, orphan steps {orphanSteps}, orphan attempts {orphanAttempts}; all_purged {correct}"))
                .ConfigureAwait(false);
            await File.WriteAllTextAsync(outputPath, JsonSerializer.Serialize(figures, IndentedJson), cancellationToken).ConfigureAwait(false);
            return correct ? 0 : 1;
        }
        finally
        {
            NpgsqlConnection.ClearAllPools();
            await ExecuteAsync(server, $"DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)", CancellationToken.None).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Enqueues 1-step runs 20–60 ms apart (at least <paramref name="count"/>, and more while <paramref name="more"/> says so),
    /// waits for all to succeed and returns, per run, when it was enqueued (since the call) and its enqueue → Succeeded latency.
    /// </summary>
    private static async Task<List<(TimeSpan EnqueuedAt, double Latency)>> MeasureAsync(IWorkflowClient client, string connectionString, Random random, int count,
        Func<bool> more, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        var samples = new List<(Guid Id, DateTimeOffset Enqueued, TimeSpan At)>();
        while (samples.Count < count || more())
        {
            var at = clock.Elapsed;
            var enqueued = DateTimeOffset.UtcNow;
            var id = await client.EnqueueAsync<OneStepWorkflow>(new WorkflowInput(), cancellationToken: cancellationToken).ConfigureAwait(false);
            samples.Add((id, enqueued, at));
            await Task.Delay(random.Next(20, 61), cancellationToken).ConfigureAwait(false);
        }

        var ids = samples.Select(s => s.Id).ToArray();
        var deadline = Stopwatch.StartNew();
        Dictionary<Guid, DateTimeOffset> done;
        while ((done = await SucceededAtAsync(connectionString, ids, cancellationToken).ConfigureAwait(false)).Count < ids.Length)
        {
            if (deadline.Elapsed > TimeSpan.FromMinutes(5))
            {
                throw new TimeoutException($"retention: only {done.Count} of {ids.Length} measured runs succeeded.");
            }

            await Task.Delay(100, cancellationToken).ConfigureAwait(false);
        }

        return samples.Select(s => (s.At, (done[s.Id] - s.Enqueued).TotalMilliseconds)).ToList();
    }

    private static async Task<Dictionary<Guid, DateTimeOffset>> SucceededAtAsync(string connectionString, Guid[] ids, CancellationToken cancellationToken)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(
            "SELECT uuid, succeeded_at FROM workflow.workflow_runs WHERE uuid = ANY(@ids) AND status = 'Succeeded'", connection);
        command.Parameters.AddWithValue("ids", ids);
        var result = new Dictionary<Guid, DateTimeOffset>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            result[reader.GetGuid(0)] = await reader.GetFieldValueAsync<DateTimeOffset>(1, cancellationToken).ConfigureAwait(false);
        }

        return result;
    }

    private static double Percentile(double[] sorted, double p) => sorted.Length == 0 ? 0 : sorted[Math.Min(sorted.Length - 1, Math.Max(0, (int)Math.Ceiling(p * sorted.Length) - 1))];

    /// <summary>
    /// Set-based: run i (uuid derived from i) last changed 60 days + i seconds ago; three steps per run, one attempt row per
    /// step and two more on a Failed run's failed step; then the old unfinished runs, which retention must keep. The runs
    /// and steps tables' secondary indexes are dropped for the fill and rebuilt from their own definitions.
    /// </summary>
    private static async Task FillAsync(string connectionString, int runs, CancellationToken cancellationToken)
    {
        var runsSql = $"""
            INSERT INTO workflow.workflow_runs (uuid, workflow_name, status, input_data, output_data, created, modified, is_removed,
                succeeded_at, failed_at, exception_message, step_names, completed_steps, attempts, tags)
            SELECT ('00000000-0000-4000-8000-' || lpad(to_hex(i), 12, '0'))::uuid, 'bench-3-step-old', s.status,
                   jsonb_build_object('order', i, 'note', repeat('x', 100)),
                   CASE WHEN s.status = 'Succeeded' THEN jsonb_build_object('total', i) END,
                   t.at, t.at, false,
                   CASE WHEN s.status = 'Succeeded' THEN t.at END,
                   CASE WHEN s.status = 'Failed' THEN t.at END,
                   CASE WHEN s.status = 'Failed' THEN 'Payment declined for order ' || i END,
                   ARRAY['first','second','third'], CASE WHEN s.status = 'Succeeded' THEN 3 ELSE 1 END,
                   CASE WHEN s.status = 'Failed' THEN 3 ELSE 1 END, jsonb_build_object()
            FROM generate_series(1, {runs}) AS i
            CROSS JOIN LATERAL (SELECT CASE WHEN i % 10 = 3 THEN 'Failed' WHEN i % 10 = 7 THEN 'Cancelled' ELSE 'Succeeded' END AS status) s
            CROSS JOIN LATERAL (SELECT now() - interval '60 days' - make_interval(secs => i) AS at) t
            """;
        // Step k of run i: Succeeded, except the second step of a Failed run (Failed) and what follows an unsuccessful step (Pending).
        var stepsSql = $"""
            INSERT INTO workflow.workflow_steps (uuid, workflow_record_uuid, step_name, status, input_data, output_data, created, modified,
                started_at, is_removed, succeeded_at, failed_at, exception_message, attempts)
            SELECT ('00000001-0000-4000-8000-' || lpad(to_hex(i * 4 + k), 12, '0'))::uuid,
                   ('00000000-0000-4000-8000-' || lpad(to_hex(i), 12, '0'))::uuid,
                   (ARRAY['first','second','third'])[k], st.status, jsonb_build_object(),
                   CASE WHEN st.status = 'Succeeded' THEN jsonb_build_object('k', k) END,
                   t.at, t.at, t.at, false,
                   CASE WHEN st.status = 'Succeeded' THEN t.at END,
                   CASE WHEN st.status = 'Failed' THEN t.at END,
                   CASE WHEN st.status = 'Failed' THEN 'Payment declined for order ' || i END,
                   CASE WHEN st.status = 'Failed' THEN 3 WHEN st.status = 'Succeeded' THEN 1 ELSE 0 END
            FROM generate_series(1, {runs}) AS i
            CROSS JOIN generate_series(1, 3) AS k
            CROSS JOIN LATERAL (SELECT now() - interval '60 days' - make_interval(secs => i) AS at) t
            CROSS JOIN LATERAL (SELECT CASE WHEN i % 10 = 3 AND k = 2 THEN 'Failed' WHEN i % 10 = 3 AND k = 3 THEN 'Pending'
                                            WHEN i % 10 = 7 AND k > 1 THEN 'Cancelled' ELSE 'Succeeded' END AS status) st
            """;
        const string attemptsSql = """
            INSERT INTO workflow.workflow_step_attempts (step_uuid, attempt, started_at, finished_at, status, exception_message, exception_type, server_name)
            SELECT s.uuid, a, s.started_at, s.modified, CASE WHEN s.status = 'Failed' THEN 'Failed' ELSE 'Succeeded' END,
                   CASE WHEN s.status = 'Failed' THEN s.exception_message END,
                   CASE WHEN s.status = 'Failed' THEN 'System.InvalidOperationException' END, 'old-server'
            FROM workflow.workflow_steps s CROSS JOIN LATERAL generate_series(1, s.attempts) AS a
            WHERE s.status IN ('Succeeded', 'Failed')
            """;
        var unfinishedSql = $"""
            INSERT INTO workflow.workflow_runs (uuid, workflow_name, status, input_data, created, modified, is_removed, step_names,
                completed_steps, attempts, tags)
            SELECT ('00000002-0000-4000-8000-' || lpad(to_hex(i), 12, '0'))::uuid, 'bench-3-step-old',
                   (ARRAY['Pending','Running','Waiting'])[1 + i % 3], jsonb_build_object(),
                   now() - interval '90 days', now() - interval '90 days', false, ARRAY['first','second','third'], 0, 1, jsonb_build_object()
            FROM generate_series(1, {OldUnfinished}) AS i
            """;
        var indexes = new List<(string Name, string Definition)>();
        await using (var connection = new NpgsqlConnection(connectionString))
        {
            await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
            await using var command = new NpgsqlCommand(
                """
                SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'workflow'
                AND tablename IN ('workflow_runs', 'workflow_steps') AND indexname NOT ILIKE 'pk\_%'
                """,
                connection);
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                indexes.Add((reader.GetString(0), reader.GetString(1)));
            }
        }

        foreach (var (index, _) in indexes)
        {
            await ExecuteAsync(connectionString, $"DROP INDEX workflow.\"{index}\"", cancellationToken).ConfigureAwait(false);
        }

        foreach (var sql in new[] { runsSql, stepsSql, attemptsSql, unfinishedSql })
        {
            await ExecuteAsync(connectionString, sql, cancellationToken).ConfigureAwait(false);
        }

        foreach (var (_, definition) in indexes)
        {
            await ExecuteAsync(connectionString, definition, cancellationToken).ConfigureAwait(false);
        }

        foreach (var table in new[] { "workflow_runs", "workflow_steps", "workflow_step_attempts" })
        {
            await ExecuteAsync(connectionString, $"VACUUM ANALYZE workflow.{table}", cancellationToken).ConfigureAwait(false);
        }
    }

    private static async Task<(long OldFinished, long OldUnfinished, long OrphanSteps, long OrphanAttempts)> CheckAsync(string connectionString, CancellationToken cancellationToken)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand("""
            SELECT (SELECT count(*) FROM workflow.workflow_runs WHERE workflow_name = 'bench-3-step-old' AND status IN ('Succeeded', 'Failed', 'Cancelled')),
                   (SELECT count(*) FROM workflow.workflow_runs WHERE workflow_name = 'bench-3-step-old' AND status IN ('Pending', 'Running', 'Waiting')),
                   (SELECT count(*) FROM workflow.workflow_steps s WHERE NOT EXISTS (SELECT 1 FROM workflow.workflow_runs r WHERE r.uuid = s.workflow_record_uuid)),
                   (SELECT count(*) FROM workflow.workflow_step_attempts a WHERE NOT EXISTS (SELECT 1 FROM workflow.workflow_steps s WHERE s.uuid = a.step_uuid))
            """, connection) { CommandTimeout = 0 };
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
        return (await reader.GetFieldValueAsync<long>(0, cancellationToken).ConfigureAwait(false), await reader.GetFieldValueAsync<long>(1, cancellationToken).ConfigureAwait(false),
            await reader.GetFieldValueAsync<long>(2, cancellationToken).ConfigureAwait(false), await reader.GetFieldValueAsync<long>(3, cancellationToken).ConfigureAwait(false));
    }
}
