using Hangfire;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Newtonsoft.Json.Linq;
using Npgsql;

namespace Workflow.Jobs.IntegrationTests;

/// <summary><see cref="IWorkflowClient.EnqueueManyAsync"/> on a real server: validation first, batches, idempotency keys, order.</summary>
public class BatchEnqueueTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(90);
    private string _connectionString = null!;
    private IHost _host = null!;
    private IWorkflowClient _client = null!;

    [OneTimeSetUp]
    public async Task StartAsync()
    {
        _connectionString = await TestDatabases.CreateAsync("batch");
        _host = await TestHosts.StartHangfireHostAsync(_connectionString);
        _client = _host.Services.GetRequiredService<IWorkflowClient>();
    }

    [OneTimeTearDown]
    public async Task StopAsync()
    {
        await _host.StopAsync();
        _host.Dispose();
    }

    private static WorkflowEnqueueItem Add(int a, int b, string? key = null, TimeSpan? delay = null)
        => new(JObject.Parse($"{{\"test_step_input\":{{\"argument_1\":{a},\"argument_2\":{b}}}}}"),
            key is null && delay is null ? null : new EnqueueOptions { IdempotencyKey = key, Delay = delay });

    private async Task<long> ScalarAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(_connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        return Convert.ToInt64(await command.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture);
    }

    [Test]
    public async Task EnqueueManyAsync_CreatesEveryRun_InInputOrder_AndEachRuns()
    {
        var ids = await _client.EnqueueManyAsync("add", [Add(1, 1), Add(2, 2), Add(3, 3)]);

        Assert.That(ids, Has.Count.EqualTo(3).And.Unique);
        for (var i = 0; i < ids.Count; i++)
        {
            WorkflowRun? run = null;
            await Eventually.UntilAsync(async () => (run = await _client.GetAsync(ids[i]))?.Status == WorkflowStatus.Succeeded, Deadline, $"run {i} to succeed");
            Assert.That(run!.Output!["test_step_output"]!["result"]!.Value<int>(), Is.EqualTo(2 * (i + 1)), "ids come back in input order");
            Assert.That(run.JobId, Is.Not.Null);
        }
    }

    [Test]
    public async Task EnqueueManyAsync_WritesNothing_WhenAnyInputIsInvalid_AndNamesTheItemIndex()
    {
        var before = await ScalarAsync("SELECT count(*) FROM workflow.workflow_runs");

        var ex = Assert.ThrowsAsync<WorkflowDataValidationException>(() => _client.EnqueueManyAsync("add",
            [Add(1, 1), Add(-5, 1), new WorkflowEnqueueItem(JObject.Parse("{\"nope\":{}}"))]));

        Assert.That(ex!.Errors.Select(e => e.Path), Does.Contain("[1].test_step_input.argument_1"));
        Assert.That(ex.Errors.Select(e => e.Path).Any(p => p.StartsWith("[2]", StringComparison.Ordinal)), Is.True, string.Join("; ", ex.Errors));
        Assert.That(ex.Errors.Any(e => e.Path.StartsWith("[0]", StringComparison.Ordinal)), Is.False);
        Assert.That(await ScalarAsync("SELECT count(*) FROM workflow.workflow_runs"), Is.EqualTo(before));
    }

    [Test]
    public async Task EnqueueManyAsync_ReturnsTheExistingRun_ForARepeatedIdempotencyKey()
    {
        var key = "batch-" + Guid.NewGuid();
        var earlier = await _client.EnqueueAsync("add", Add(0, 1).Input, new EnqueueOptions { IdempotencyKey = key });
        var other = "batch-" + Guid.NewGuid();

        var ids = await _client.EnqueueManyAsync("add", [Add(5, 5, other), Add(6, 6, key), Add(7, 7, other)]);

        Assert.That(ids[1], Is.EqualTo(earlier), "a key used before returns its run");
        Assert.That(ids[2], Is.EqualTo(ids[0]), "a key repeated in the list returns the first item's run");
        Assert.That(await ScalarAsync($"SELECT count(*) FROM workflow.workflow_runs WHERE idempotency_key IN ('{key}', '{other}')"), Is.EqualTo(2));
    }

    [Test]
    public async Task EnqueueManyAsync_CreatesOneJobPerRun_AcrossSeveralBatches()
    {
        var count = WorkflowClient.BatchSize * 2 + 7;
        var items = Enumerable.Range(0, count).Select(i => Add(i, 0, delay: TimeSpan.FromDays(1))).ToList();

        var ids = await _client.EnqueueManyAsync("add", items);

        Assert.That(ids, Has.Count.EqualTo(count).And.Unique);
        var idList = string.Join(",", ids.Select(id => $"'{id}'"));
        Assert.That(await ScalarAsync($"SELECT count(*) FROM workflow.workflow_runs WHERE uuid IN ({idList}) AND job_id IS NOT NULL"), Is.EqualTo(count));
        Assert.That(await ScalarAsync($"SELECT count(DISTINCT job_id) FROM workflow.workflow_runs WHERE uuid IN ({idList})"), Is.EqualTo(count));
        var scheduled = _host.Services.GetRequiredService<JobStorage>().GetMonitoringApi().ScheduledCount();
        Assert.That(scheduled, Is.GreaterThanOrEqualTo(count), "each delayed run's job is scheduled");
    }

    [Test]
    public async Task EnqueueManyAsync_WritingBatchesAtOnce_KeepsInputOrder_AndPairsEachRunWithItsOwnJob()
    {
        // Keyless items on the library's storage: the batches are written several at a time, jobs first.
        var connectionString = await TestDatabases.CreateAsync("batch_parallel");
        var host = await TestHosts.StartHangfireHostAsync(connectionString, o => o.RunServer = false);
        try
        {
            var client = host.Services.GetRequiredService<IWorkflowClient>();
            var count = WorkflowClient.BatchSize * (WorkflowClient.ParallelBatches + 2) + 3;
            var ids = await client.EnqueueManyAsync("add", Enumerable.Range(0, count).Select(i => Add(i, 0)).ToList());

            Assert.That(ids, Has.Count.EqualTo(count).And.Unique);
            await using var connection = new NpgsqlConnection(connectionString);
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand("""
                SELECT r.uuid, (r.input_data->'test_step_input'->>'argument_1')::int, r.job_id,
                       (SELECT j.arguments ->> 0 FROM hangfire.job j WHERE j.id = r.job_id::bigint),
                       (SELECT count(*) FROM hangfire.jobqueue q WHERE q.jobid = r.job_id::bigint)
                FROM workflow.workflow_runs r WHERE r.uuid = ANY(@ids)
                """, connection);
            command.Parameters.AddWithValue("ids", ids.ToArray());
            var rows = new Dictionary<Guid, (int Argument, string? JobId, string? JobRun, long Queued)>();
            await using (var reader = await command.ExecuteReaderAsync())
            {
                while (await reader.ReadAsync())
                {
                    rows[reader.GetGuid(0)] = (reader.GetInt32(1), await reader.IsDBNullAsync(2) ? null : reader.GetString(2),
                        await reader.IsDBNullAsync(3) ? null : reader.GetString(3), reader.GetInt64(4));
                }
            }

            Assert.That(rows, Has.Count.EqualTo(count), "every run committed");
            for (var i = 0; i < count; i++)
            {
                var row = rows[ids[i]];
                Assert.That(row.Argument, Is.EqualTo(i), $"id {i} is the run of item {i}");
                Assert.That(row.JobId, Is.Not.Null, $"run {i} has its job");
                Assert.That(row.JobRun, Is.EqualTo($"\"{ids[i]}\""), $"run {i}'s job is for run {i}");
                Assert.That(row.Queued, Is.EqualTo(1), $"run {i}'s job is queued once");
            }

            Assert.That(rows.Values.Select(r => r.JobId).Distinct().Count(), Is.EqualTo(count), "one job per run");
        }
        finally
        {
            await host.StopAsync();
            host.Dispose();
        }
    }

    [Test]
    public async Task EnqueueAsync_WritesNeitherRunNorJob_WhenTheRunInsertFailsAfterItsJobWasWritten()
    {
        // A single keyless run is written with its job in one round trip (the job's statement first, then the run's
        // insert, one implicit transaction): a run insert that fails must take the job written before it along.
        var connectionString = await TestDatabases.CreateAsync("enqueue_atomic");
        var host = await TestHosts.StartHangfireHostAsync(connectionString, o => o.RunServer = false);
        try
        {
            var client = host.Services.GetRequiredService<IWorkflowClient>();
            var first = await client.EnqueueAsync<AddWorkflow>(new WorkflowInput(new AddInput { Argument1 = 1, Argument2 = 1 }));
            Assert.That((await client.GetAsync(first))!.JobId, Is.Not.Null);
            await using var connection = new NpgsqlConnection(connectionString);
            await connection.OpenAsync();
            await using (var refuse = new NpgsqlCommand("ALTER TABLE workflow.workflow_runs ADD CONSTRAINT refuse_new_runs CHECK (false) NOT VALID", connection))
            {
                await refuse.ExecuteNonQueryAsync();
            }

            var ex = Assert.ThrowsAsync<PostgresException>(() => client.EnqueueAsync<AddWorkflow>(new WorkflowInput(new AddInput { Argument1 = 2, Argument2 = 2 })));
            Assert.That(ex!.ConstraintName, Is.EqualTo("refuse_new_runs"), "the run's insert failed, after the job's statement");

            await using var counts = new NpgsqlCommand("SELECT (SELECT count(*) FROM workflow.workflow_runs), (SELECT count(*) FROM hangfire.job)", connection);
            await using var reader = await counts.ExecuteReaderAsync();
            await reader.ReadAsync();
            Assert.That(reader.GetInt64(0), Is.EqualTo(1), "no run of the failed enqueue");
            Assert.That(reader.GetInt64(1), Is.EqualTo(1), "no job of the failed enqueue");
        }
        finally
        {
            await host.StopAsync();
            host.Dispose();
        }
    }

    [Test]
    public async Task EnqueueAsync_AndEnqueueManyAsync_WriteJobsAsHangfiresClientDoes_WhenWritingThemInBulk()
    {
        // A host without a server, so the jobs stay as they were created.
        var connectionString = await TestDatabases.CreateAsync("batch_bulk");
        var host = await TestHosts.StartHangfireHostAsync(connectionString, o => o.RunServer = false);
        try
        {
            var client = host.Services.GetRequiredService<IWorkflowClient>();
            var storage = host.Services.GetRequiredService<JobStorage>();
            Assert.That(host.Services.GetRequiredService<Workflow.Jobs.Hangfire.WorkflowJobBulkWriter>().CanWrite(storage), Is.True,
                "the library's storage with Hangfire's default filters is written in bulk");
            // The reference: a job created by Hangfire's client (the dispatcher without the bulk writer), for a run id of its own.
            var reference = Guid.NewGuid();
            var referenceJob = new Workflow.Jobs.Hangfire.HangfireWorkflowJobDispatcher(host.Services.GetRequiredService<IBackgroundJobClientV2>(), storage)
                .Enqueue(reference, "add", queue: null, delay: null);
            var single = await client.EnqueueAsync<AddWorkflow>(new WorkflowInput(new AddInput { Argument1 = 1, Argument2 = 2 }));
            var batch = await client.EnqueueManyAsync("add", [Add(3, 4), Add(5, 6)]);

            await using var connection = new NpgsqlConnection(connectionString);
            await connection.OpenAsync();
            var jobs = new Dictionary<Guid, long> { [reference] = long.Parse(referenceJob, System.Globalization.CultureInfo.InvariantCulture) };
            foreach (var id in batch.Prepend(single))
            {
                jobs[id] = long.Parse((await client.GetAsync(id))!.JobId!, System.Globalization.CultureInfo.InvariantCulture);
            }

            var rows = new Dictionary<Guid, string>();
            foreach (var (id, jobId) in jobs)
            {
                // Everything Hangfire stores about the job, with the run id (the only difference) taken out.
                await using var command = new NpgsqlCommand("""
                    SELECT concat_ws(' | ', j.statename, j.stateid = s.id, j.expireat IS NULL, j.invocationdata::text, j.arguments::text,
                                     s.name, s.reason, s.data - 'EnqueuedAt', s.data ? 'EnqueuedAt',
                                     (SELECT string_agg(p.name || '=' || p.value, ',' ORDER BY p.name) FROM hangfire.jobparameter p WHERE p.jobid = j.id),
                                     (SELECT string_agg(q.queue || ':' || (q.fetchedat IS NULL), ',') FROM hangfire.jobqueue q WHERE q.jobid = j.id),
                                     (SELECT count(*) FROM hangfire.state x WHERE x.jobid = j.id))
                    FROM hangfire.job j JOIN hangfire.state s ON s.jobid = j.id
                    WHERE j.id = @job
                    """, connection);
                command.Parameters.AddWithValue("job", jobId);
                rows[id] = ((string)(await command.ExecuteScalarAsync())!).Replace(id.ToString(), "<run>", StringComparison.Ordinal);
            }

            Assert.That(rows[reference], Does.Contain("Enqueued | t | t").And.Contain("default:t"), rows[reference]);
            Assert.That(rows[single], Is.EqualTo(rows[reference]), "a single run's job, written by the bulk writer");
            Assert.That(rows[batch[0]], Is.EqualTo(rows[reference]), "a job written in bulk");
            Assert.That(rows[batch[1]], Is.EqualTo(rows[reference]), "another job written in bulk");
            await using (var created = new NpgsqlCommand(
                "SELECT count(DISTINCT j.createdat) FROM workflow.workflow_runs r JOIN hangfire.job j ON j.id = r.job_id::bigint WHERE r.uuid = ANY(@ids)", connection))
            {
                created.Parameters.AddWithValue("ids", batch.ToArray());
                Assert.That(await created.ExecuteScalarAsync(), Is.EqualTo(1L), "the batch's jobs were written by one statement (one creation time), not one by one");
            }

            using var hangfire = storage.GetConnection();
            var data = hangfire.GetJobData((await client.GetAsync(batch[1]))!.JobId!);
            Assert.That(data.State, Is.EqualTo("Enqueued"));
            Assert.That(data.Job.Type, Is.EqualTo(typeof(Workflow.Jobs.Hangfire.WorkflowJob)));
            Assert.That(data.Job.Args[0], Is.EqualTo(batch[1]));
        }
        finally
        {
            await host.StopAsync();
            host.Dispose();
        }
    }
}
