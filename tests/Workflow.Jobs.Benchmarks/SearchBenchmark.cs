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
/// <c>Workflow.Jobs.Benchmarks search [--connection cs] [--runs N] [--samples N] [--output path] [--keep]</c>: fills a
/// fresh database with N runs (default 1,000,000) in one <c>INSERT ... SELECT generate_series</c> (realistic shapes:
/// statuses, tags, error messages, idempotency keys, input and output JSON), then measures the latency of filtered
/// pages through <see cref="IWorkflowClient.ListAsync"/> (50 runs a page, parameters varied per sample) and of the
/// dashboard's Failed badge, and prints p50/p95/max per query. The connection defaults to
/// <c>WORKFLOW_BENCH_CONNECTION</c>, then <c>WORKFLOW_JOBS_TEST_CONNECTION</c>.
/// </summary>
internal static class SearchBenchmark
{
    private static readonly JsonSerializerOptions IndentedJson = new() { WriteIndented = true };

    private const int Customers = 20_000;

    public static async Task<int> RunAsync(string[] args, TextWriter output, CancellationToken cancellationToken)
    {
        var server = Environment.GetEnvironmentVariable("WORKFLOW_BENCH_CONNECTION") ?? Environment.GetEnvironmentVariable("WORKFLOW_JOBS_TEST_CONNECTION");
        var runs = 1_000_000;
        var samples = 200;
        var outputPath = "search-results.json";
        var keep = false;
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--connection": server = args[++i]; break;
                case "--runs": runs = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--samples": samples = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--output": outputPath = args[++i]; break;
                case "--keep": keep = true; break;
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

        var name = "wjsearch_" + Guid.NewGuid().ToString("N")[..8];
        await ExecuteAsync(server, $"CREATE DATABASE \"{name}\"", cancellationToken).ConfigureAwait(false);
        var connectionString = new NpgsqlConnectionStringBuilder(server) { Database = name }.ConnectionString;
        try
        {
            var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
            builder.Logging.ClearProviders();
            builder.Services.AddWorkflowJobs(o => o.UseNpgsql(connectionString)).AddWorkflow<OneStepWorkflow>();
            using var host = builder.Build();
            await host.StartAsync(cancellationToken).ConfigureAwait(false);
            var client = host.Services.GetRequiredService<IWorkflowClient>();
            var store = host.Services.GetRequiredService<IWorkflowStore>();

            var fill = Stopwatch.StartNew();
            await FillAsync(connectionString, runs, cancellationToken).ConfigureAwait(false);
            fill.Stop();
            await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"filled {runs:N0} runs in {fill.Elapsed.TotalSeconds:0.0} s")).ConfigureAwait(false);

            var random = new Random(42);
            var now = DateTimeOffset.UtcNow;
            string Customer() => "c-" + random.Next(Customers).ToString(CultureInfo.InvariantCulture);
            var queries = new (string Name, Func<WorkflowQuery> Query)[]
            {
                ("newest page, no filter", () => new WorkflowQuery()),
                ("status Failed", () => new WorkflowQuery { Status = WorkflowStatus.Failed }),
                ("status Failed, page 20 (offset 950)", () => new WorkflowQuery { Status = WorkflowStatus.Failed, Offset = 950 }),
                ("tag customer", () => new WorkflowQuery { Tags = new Dictionary<string, string> { ["customer"] = Customer() } }),
                ("tag customer + status Failed", () => new WorkflowQuery { Status = WorkflowStatus.Failed, Tags = new Dictionary<string, string> { ["customer"] = Customer() } }),
                ("tag region (1 in 4 runs) + status Failed", () => new WorkflowQuery { Status = WorkflowStatus.Failed, Tags = new Dictionary<string, string> { ["region"] = "eu" } }),
                ("error text, common (\"billing\")", () => new WorkflowQuery { ErrorContains = "billing" }),
                ("error text, rare (an invoice number)", () => new WorkflowQuery { ErrorContains = "invoice " + (random.Next(runs / 10) * 10 + 3).ToString(CultureInfo.InvariantCulture) + " " }),
                ("idempotency key", () => new WorkflowQuery { IdempotencyKey = "order-" + (random.Next(runs / 2) * 2).ToString(CultureInfo.InvariantCulture) }),
                ("created range (1 h) + workflow name", () =>
                {
                    var start = now.AddSeconds(-random.Next(runs));
                    return new WorkflowQuery { WorkflowName = "billing", CreatedAfter = start, CreatedBefore = start.AddHours(1) };
                }),
            };

            var results = new List<Dictionary<string, object>>();
            await output.WriteLineAsync($"{"query",-44} {"p50 ms",8} {"p95 ms",8} {"max ms",8} {"rows",6}").ConfigureAwait(false);
            foreach (var (label, query) in queries)
            {
                var times = new List<double>();
                var rows = 0;
                for (var i = 0; i < samples + 5; i++)
                {
                    var q = query();
                    var watch = Stopwatch.StartNew();
                    var page = await client.ListAsync(q, cancellationToken).ConfigureAwait(false);
                    watch.Stop();
                    if (i >= 5)
                    {
                        // The first few warm the pool and the plan cache.
                        times.Add(watch.Elapsed.TotalMilliseconds);
                        rows += page.Count;
                    }
                }

                results.Add(await ReportAsync(output, label, times, rows / samples).ConfigureAwait(false));
            }

            var badge = new List<double>();
            for (var i = 0; i < samples + 5; i++)
            {
                var watch = Stopwatch.StartNew();
                _ = store.CountFailedRuns(10_001);
                watch.Stop();
                if (i >= 5)
                {
                    badge.Add(watch.Elapsed.TotalMilliseconds);
                }
            }

            results.Add(await ReportAsync(output, "menu badge: Failed count (cap 10,000)", badge, 1).ConfigureAwait(false));
            var json = new Dictionary<string, object>
            {
                ["runs"] = runs,
                ["samples"] = samples,
                ["page_size"] = 50,
                ["fill_seconds"] = Math.Round(fill.Elapsed.TotalSeconds, 1),
                ["date"] = DateTimeOffset.UtcNow.ToString("O", CultureInfo.InvariantCulture),
                ["cores"] = Environment.ProcessorCount,
                ["queries"] = results,
            };
            await File.WriteAllTextAsync(outputPath, JsonSerializer.Serialize(json, IndentedJson), cancellationToken).ConfigureAwait(false);
            await output.WriteLineAsync($"written {Path.GetFullPath(outputPath)}").ConfigureAwait(false);
            await host.StopAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            if (!keep)
            {
                NpgsqlConnection.ClearAllPools();
                await ExecuteAsync(server, $"DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)", CancellationToken.None).ConfigureAwait(false);
            }
        }

        return 0;
    }

    private static async Task<Dictionary<string, object>> ReportAsync(TextWriter output, string label, List<double> times, int rows)
    {
        times.Sort();
        double Percentile(double p) => times[Math.Min(times.Count - 1, (int)Math.Ceiling(p * times.Count) - 1)];
        var (p50, p95, max) = (Percentile(0.50), Percentile(0.95), times[^1]);
        await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"{label,-44} {p50,8:0.0} {p95,8:0.0} {max,8:0.0} {rows,6}")).ConfigureAwait(false);
        return new Dictionary<string, object>
        {
            ["query"] = label,
            ["p50_ms"] = Math.Round(p50, 2),
            ["p95_ms"] = Math.Round(p95, 2),
            ["max_ms"] = Math.Round(max, 2),
            ["rows_per_page"] = rows,
        };
    }

    /// <summary>
    /// One statement: run i was created i seconds ago; 5 workflow names; 80% Succeeded, 10% Failed, 5% Pending, 5% Cancelled;
    /// tags customer (one of 20,000) and region (one of 4); half with an idempotency key; failed runs carry one of several
    /// error messages with an invoice number; input and output JSON of a few hundred bytes.
    /// </summary>
    private static async Task FillAsync(string connectionString, int runs, CancellationToken cancellationToken)
    {
        var sql = $"""
            INSERT INTO workflow.workflow_runs (uuid, workflow_name, status, input_data, output_data, created, modified, is_removed,
                succeeded_at, failed_at, exception_message, step_names, completed_steps, attempts, idempotency_key, tags)
            SELECT gen_random_uuid(),
                   (ARRAY['billing','provisioning','reporting','email','sync'])[1 + i % 5],
                   s.status,
                   jsonb_build_object('order', jsonb_build_object('id', i, 'customer', 'c-' || (i % {Customers}), 'lines', jsonb_build_array(1, 2, 3),
                       'note', repeat('x', 200))),
                   CASE WHEN s.status = 'Succeeded' THEN jsonb_build_object('result', jsonb_build_object('total', i, 'note', repeat('y', 200))) END,
                   t.created, t.created, false,
                   CASE WHEN s.status = 'Succeeded' THEN t.created END,
                   CASE WHEN s.status = 'Failed' THEN t.created END,
                   CASE WHEN s.status = 'Failed' THEN (ARRAY[
                       'Timeout calling billing API for invoice ' || i || ' after 30 s',
                       'HTTP 503 from provisioning service while creating tenant ' || (i % {Customers}) || ' (invoice ' || i || ' )',
                       'Duplicate key value violates unique constraint on invoice ' || i || ' ',
                       'Payment declined by bank for invoice ' || i || ' : insufficient funds'])[1 + (i / 10) % 4] END,
                   ARRAY['first','second','third'],
                   CASE WHEN s.status = 'Succeeded' THEN 3 ELSE 1 END, 1,
                   CASE WHEN i % 2 = 0 THEN 'order-' || i END,
                   jsonb_build_object('customer', 'c-' || (i % {Customers}), 'region', (ARRAY['eu','us','apac','latam'])[1 + (i / 7) % 4])
            FROM generate_series(1, {runs}) AS i
            CROSS JOIN LATERAL (SELECT CASE WHEN i % 10 = 3 THEN 'Failed' WHEN i % 20 = 7 THEN 'Pending' WHEN i % 20 = 9 THEN 'Cancelled' ELSE 'Succeeded' END AS status) s
            CROSS JOIN LATERAL (SELECT now() - make_interval(secs => i) AS created) t
            """;
        // The migrations' indexes are dropped for the fill and created again from their own definitions afterwards:
        // building an index once is much faster than a million incremental GIN and b-tree inserts.
        var indexes = new List<(string Name, string Definition)>();
        await using (var connection = new NpgsqlConnection(connectionString))
        {
            await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
            await using var command = new NpgsqlCommand(
                "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'workflow' AND tablename = 'workflow_runs' AND indexname <> 'PK_workflow_runs'",
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

        await ExecuteAsync(connectionString, sql, cancellationToken).ConfigureAwait(false);
        foreach (var (_, definition) in indexes)
        {
            await ExecuteAsync(connectionString, definition, cancellationToken).ConfigureAwait(false);
        }

        await ExecuteAsync(connectionString, "VACUUM ANALYZE workflow.workflow_runs", cancellationToken).ConfigureAwait(false);
    }
}
