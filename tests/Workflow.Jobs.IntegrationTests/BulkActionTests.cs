using Hangfire;
using Hangfire.States;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Workflow.Jobs.IntegrationTests;

/// <summary>CountAsync, RetryManyAsync, CancelManyAsync and PurgeAsync on a real server, selecting runs by their tags.</summary>
public class BulkActionTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(90);
    private IHost _host = null!;
    private IWorkflowClient _client = null!;
    private ExecutionLog _log = null!;
    private string _connectionString = null!;

    [OneTimeSetUp]
    public async Task StartAsync()
    {
        _connectionString = await TestDatabases.CreateAsync("bulk");
        _host = await TestHosts.StartHangfireHostAsync(_connectionString);
        _client = _host.Services.GetRequiredService<IWorkflowClient>();
        _log = _host.Services.GetRequiredService<ExecutionLog>();
    }

    [OneTimeTearDown]
    public async Task StopAsync()
    {
        await _host.StopAsync();
        _host.Dispose();
    }

    private static (EnqueueOptions Options, WorkflowQuery Query) Tagged(TimeSpan? delay = null)
    {
        var tags = new Dictionary<string, string> { ["bulk"] = Guid.NewGuid().ToString("N") };
        return (new EnqueueOptions { Tags = tags, Delay = delay }, new WorkflowQuery { Tags = tags });
    }

    private async Task WaitForStatusAsync(Guid id, WorkflowStatus status)
    {
        WorkflowRun? run = null;
        await Eventually.UntilAsync(async () => (run = await _client.GetAsync(id))?.Status == status, Deadline, $"run {id} to be {status} (is {run?.Status})");
    }

    private string? JobState(string jobId)
    {
        using var connection = _host.Services.GetRequiredService<JobStorage>().GetConnection();
        return connection.GetStateData(jobId)?.Name;
    }

    [Test]
    public async Task RetryManyAsync_ResumesEveryFailedRunOfTheFilter_AtItsFailedStep()
    {
        var (options, query) = Tagged();
        var ids = new List<Guid>();
        for (var i = 0; i < 3; i++)
        {
            ids.Add(await _client.EnqueueAsync<NoRetryWorkflow>(new WorkflowInput(new AddInput { Argument1 = i }, new FailInput { FailTimes = 2 }), options));
        }

        foreach (var id in ids)
        {
            await WaitForStatusAsync(id, WorkflowStatus.Failed);
            await Eventually.UntilAsync(async () => JobState((await _client.GetAsync(id))!.JobId!) == FailedState.StateName, Deadline, "job Failed");
        }

        Assert.That(await _client.CountAsync(query with { Status = WorkflowStatus.Failed }), Is.EqualTo(3));

        var retried = await _client.RetryManyAsync(query);

        Assert.That(retried, Is.EqualTo(3));
        foreach (var id in ids)
        {
            await WaitForStatusAsync(id, WorkflowStatus.Succeeded);
            Assert.That(_log.Count(id, "AddStep"), Is.EqualTo(1), "the succeeded step was not run again");
        }

        Assert.That(await _client.RetryManyAsync(query), Is.Zero, "nothing left to retry");
    }

    private async Task<List<Guid>> StartFailedRunsAsync(EnqueueOptions options, int count)
    {
        var ids = new List<Guid>();
        for (var i = 0; i < count; i++)
        {
            ids.Add(await _client.EnqueueAsync<NoRetryWorkflow>(new WorkflowInput(new AddInput { Argument1 = i }, new FailInput { FailTimes = 2 }), options));
        }

        foreach (var id in ids)
        {
            await WaitForStatusAsync(id, WorkflowStatus.Failed);
            await Eventually.UntilAsync(async () => JobState((await _client.GetAsync(id))!.JobId!) == FailedState.StateName, Deadline, "job Failed");
        }

        return ids;
    }

    [Test]
    public async Task RetryManyAsync_RequeuesTheSameJobsWithAFreshRetryBudget_InOneWriteOfTheJobStorage()
    {
        var (options, query) = Tagged();
        var ids = await StartFailedRunsAsync(options, 3);
        var jobs = new Dictionary<Guid, string>();
        using (var connection = _host.Services.GetRequiredService<JobStorage>().GetConnection())
        {
            foreach (var id in ids)
            {
                jobs[id] = (await _client.GetAsync(id))!.JobId!;
                // As if earlier failures had used up the retry budget.
                connection.SetJobParameter(jobs[id], "RetryCount", "5");
            }
        }

        Assert.That(await _client.RetryManyAsync(query), Is.EqualTo(3));

        var storage = _host.Services.GetRequiredService<JobStorage>();
        foreach (var id in ids)
        {
            await WaitForStatusAsync(id, WorkflowStatus.Succeeded);
            var run = (await _client.GetAsync(id))!;
            Assert.That(run.JobId, Is.EqualTo(jobs[id]), "the same job, requeued");
            Assert.That(run.Steps.Single(s => s.StepName == "AddStep").Attempts, Is.EqualTo(1), "resumed at the failed step");
            using var connection = storage.GetConnection();
            Assert.That(connection.GetJobParameter(jobs[id], "RetryCount"), Is.EqualTo("0"), "a fresh retry budget");
            var history = storage.GetMonitoringApi().JobDetails(jobs[id]).History;
            // Newest first: the bulk retry put the Failed job back in its queue, then it ran.
            Assert.That(history.Take(4).Select(h => h.StateName), Is.EqualTo(new[] { "Succeeded", "Processing", "Enqueued", "Failed" }));
            Assert.That(history[2].Reason, Is.EqualTo("Retried through IWorkflowClient.RetryManyAsync"));
        }
    }

    [Test]
    public async Task RetryManyAsync_GivesNewJobsToTheRuns_WhenTheirJobsNoLongerExist()
    {
        var (options, query) = Tagged();
        var ids = await StartFailedRunsAsync(options, 3);
        var gone = (await _client.GetAsync(ids[1]))!.JobId!;
        // Hangfire expired the job (as it does a Deleted job a day after a cancel): the batch write fails, each run is then retried on its own.
        await using (var connection = new Npgsql.NpgsqlConnection(_connectionString))
        {
            await connection.OpenAsync();
            await using var delete = new Npgsql.NpgsqlCommand("DELETE FROM hangfire.job WHERE id = @id", connection);
            delete.Parameters.AddWithValue("id", long.Parse(gone, System.Globalization.CultureInfo.InvariantCulture));
            Assert.That(await delete.ExecuteNonQueryAsync(), Is.EqualTo(1));
        }

        Assert.That(await _client.RetryManyAsync(query), Is.EqualTo(3));

        foreach (var id in ids)
        {
            await WaitForStatusAsync(id, WorkflowStatus.Succeeded);
        }

        Assert.That((await _client.GetAsync(ids[1]))!.JobId, Is.Not.EqualTo(gone), "a new job for the run whose job was gone");
    }

    [Test]
    public async Task CancelManyAsync_CancelsEveryUnfinishedRunOfTheFilter_AndDeletesTheirJobs()
    {
        var (options, query) = Tagged(TimeSpan.FromDays(1));
        var ids = new List<Guid>();
        for (var i = 0; i < 3; i++)
        {
            ids.Add(await _client.EnqueueAsync<AddWorkflow>(new WorkflowInput(new AddInput { Argument1 = i }), options));
        }

        var cancelled = await _client.CancelManyAsync(query);

        Assert.That(cancelled, Is.EqualTo(3));
        foreach (var id in ids)
        {
            var run = await _client.GetAsync(id);
            Assert.That(run!.Status, Is.EqualTo(WorkflowStatus.Cancelled));
            await Eventually.UntilAsync(() => Task.FromResult(JobState(run.JobId!) == DeletedState.StateName), Deadline, "job Deleted");
        }
    }

    [Test]
    public async Task PurgeAsync_DeletesFinishedRunsOfTheFilter_AndNeverAnUnfinishedOne()
    {
        var (options, query) = Tagged();
        var done = await _client.EnqueueAsync<AddWorkflow>(new WorkflowInput(new AddInput { Argument1 = 1 }), options);
        await WaitForStatusAsync(done, WorkflowStatus.Succeeded);
        var waiting = await _client.EnqueueAsync<AddWorkflow>(new WorkflowInput(new AddInput { Argument1 = 2 }), options with { Delay = TimeSpan.FromDays(1) });

        var purged = await _client.PurgeAsync(query);

        Assert.That(purged, Is.EqualTo(1));
        Assert.That(await _client.GetAsync(done), Is.Null);
        Assert.That((await _client.GetAsync(waiting))!.Status, Is.EqualTo(WorkflowStatus.Pending), "an unfinished run is never purged");
        Assert.That(await _client.CountAsync(query), Is.EqualTo(1));
    }
}
