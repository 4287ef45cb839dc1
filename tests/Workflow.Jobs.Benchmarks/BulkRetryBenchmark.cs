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
/// <c>Workflow.Jobs.Benchmarks bulk-retry [--connection cs] [--runs N] [--output path]</c>: on a fresh database, creates N
/// runs with their Hangfire jobs (<see cref="IWorkflowClient.EnqueueManyAsync"/>, no server runs), turns every run and its
/// job Failed (as an outage that failed them all would leave them: the run Failed with its error, the job in Hangfire's
/// Failed state, out of its queue), then times <see cref="IWorkflowClient.RetryManyAsync"/> over <c>status = Failed</c>
/// and checks that every run is Pending with no job write left and every job is Enqueued in its queue again. Prints
/// the seconds and runs per second (<c>bulk_retry_seconds</c>, <c>bulk_retry_runs_per_s</c>). Default N: 100,000.
/// </summary>
internal static class BulkRetryBenchmark
{
    private static readonly JsonSerializerOptions IndentedJson = new() { WriteIndented = true };

    public static async Task<int> RunAsync(string[] args, TextWriter output, CancellationToken cancellationToken)
    {
        var server = Environment.GetEnvironmentVariable("WORKFLOW_BENCH_CONNECTION") ?? Environment.GetEnvironmentVariable("WORKFLOW_JOBS_TEST_CONNECTION");
        var runs = 100_000;
        var outputPath = "bulk-retry-results.json";
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--connection": server = args[++i]; break;
                case "--runs": runs = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
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

        var name = "wjbulk_" + Guid.NewGuid().ToString("N")[..8];
        await ExecuteAsync(server, $"CREATE DATABASE \"{name}\"", cancellationToken).ConfigureAwait(false);
        var connectionString = new NpgsqlConnectionStringBuilder(server) { Database = name }.ConnectionString;
        try
        {
            var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
            builder.Logging.ClearProviders();
            // Warnings only: a bulk requeue that the job storage refused (and that then went one by one) shows here.
            builder.Logging.AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace).SetMinimumLevel(LogLevel.Warning);
            builder.Services.AddWorkflowJobs(o => o.UseNpgsql(connectionString)).AddWorkflow<OneStepWorkflow>().AddHangfireJobs(o => o.RunServer = false);
            using var host = builder.Build();
            await host.StartAsync(cancellationToken).ConfigureAwait(false);
            var client = host.Services.GetRequiredService<IWorkflowClient>();

            var setup = Stopwatch.StartNew();
            for (var done = 0; done < runs; done += 1_000)
            {
                var items = Enumerable.Range(0, Math.Min(1_000, runs - done)).Select(_ => new WorkflowEnqueueItem([])).ToList();
                await client.EnqueueManyAsync("bench-1-step", items, cancellationToken).ConfigureAwait(false);
            }

            await FailEverythingAsync(connectionString, cancellationToken).ConfigureAwait(false);
            setup.Stop();
            await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"{runs:N0} failed runs with Failed jobs prepared in {setup.Elapsed.TotalSeconds:0.0} s"))
                .ConfigureAwait(false);

            var retry = Stopwatch.StartNew();
            var retried = await client.RetryManyAsync(new WorkflowQuery { Status = WorkflowStatus.Failed }, cancellationToken).ConfigureAwait(false);
            retry.Stop();
            await host.StopAsync(cancellationToken).ConfigureAwait(false);

            var (pending, leftWrites, enqueuedJobs, queued) = await CheckAsync(connectionString, cancellationToken).ConfigureAwait(false);
            var allRequeued = retried == runs && pending == runs && leftWrites == 0 && enqueuedJobs == runs && queued == runs;
            var rate = runs / retry.Elapsed.TotalSeconds;
            var figures = new Dictionary<string, object>
            {
                ["runs"] = runs,
                ["bulk_retry_seconds"] = Math.Round(retry.Elapsed.TotalSeconds, 2),
                ["bulk_retry_runs_per_s"] = Math.Round(rate, 1),
                ["retried"] = retried,
                ["runs_pending"] = pending,
                ["job_writes_left"] = leftWrites,
                ["jobs_enqueued"] = enqueuedJobs,
                ["queue_entries"] = queued,
                ["all_requeued"] = allRequeued,
                ["load_average"] = File.Exists("/proc/loadavg") ? (await File.ReadAllTextAsync("/proc/loadavg", cancellationToken).ConfigureAwait(false)).Trim() : "",
                ["date"] = DateTimeOffset.UtcNow.ToString("u", CultureInfo.InvariantCulture),
            };
            await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                $"bulk retry of {runs:N0} failed runs: {retry.Elapsed.TotalSeconds:0.00} s ({rate:0} runs/s); pending {pending}, job writes left {leftWrites}, jobs Enqueued {enqueuedJobs}, queue entries {queued}; all_requeued {allRequeued}"))
                .ConfigureAwait(false);
            await File.WriteAllTextAsync(outputPath, JsonSerializer.Serialize(figures, IndentedJson), cancellationToken).ConfigureAwait(false);
            return allRequeued ? 0 : 1;
        }
        finally
        {
            NpgsqlConnection.ClearAllPools();
            await ExecuteAsync(server, $"DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)", CancellationToken.None).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Every run Failed at its first step and every job in Hangfire's Failed state (a state row as Hangfire writes it, the
    /// job out of its queue): the benchmark's setup only, so the retry starts from what a real mass failure leaves.
    /// </summary>
    private static async Task FailEverythingAsync(string connectionString, CancellationToken cancellationToken)
    {
        const string sql = """
            UPDATE workflow.workflow_runs SET status = 'Failed', failed_at = now(), modified = now(),
                exception_message = 'The billing service is down (benchmark)', job_request = NULL;
            WITH failed AS (
                INSERT INTO hangfire.state (jobid, name, reason, createdat, data)
                SELECT id, 'Failed', 'An exception occurred during performance of the job.', now(),
                       jsonb_build_object('FailedAt', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
                           'ExceptionType', 'System.InvalidOperationException', 'ExceptionMessage', 'The billing service is down (benchmark)',
                           'ExceptionDetails', 'System.InvalidOperationException: The billing service is down (benchmark)')
                FROM hangfire.job
                RETURNING id, jobid)
            UPDATE hangfire.job j SET stateid = failed.id, statename = 'Failed' FROM failed WHERE j.id = failed.jobid;
            DELETE FROM hangfire.jobqueue;
            VACUUM ANALYZE workflow.workflow_runs;
            VACUUM ANALYZE hangfire.job;
            """;
        foreach (var statement in sql.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            await ExecuteAsync(connectionString, statement, cancellationToken).ConfigureAwait(false);
        }
    }

    private static async Task<(long Pending, long LeftWrites, long EnqueuedJobs, long Queued)> CheckAsync(string connectionString, CancellationToken cancellationToken)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand("""
            SELECT (SELECT count(*) FROM workflow.workflow_runs WHERE status = 'Pending'),
                   (SELECT count(*) FROM workflow.workflow_runs WHERE job_request IS NOT NULL),
                   (SELECT count(*) FROM hangfire.job WHERE statename = 'Enqueued'),
                   (SELECT count(DISTINCT jobid) FROM hangfire.jobqueue WHERE fetchedat IS NULL)
            """, connection);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
        return (await reader.GetFieldValueAsync<long>(0, cancellationToken).ConfigureAwait(false), await reader.GetFieldValueAsync<long>(1, cancellationToken).ConfigureAwait(false),
            await reader.GetFieldValueAsync<long>(2, cancellationToken).ConfigureAwait(false), await reader.GetFieldValueAsync<long>(3, cancellationToken).ConfigureAwait(false));
    }
}
