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

    [OneTimeSetUp]
    public async Task StartAsync()
    {
        _host = await TestHosts.StartHangfireHostAsync(await TestDatabases.CreateAsync("bulk"));
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
