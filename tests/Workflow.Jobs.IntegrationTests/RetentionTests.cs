using Hangfire;
using Hangfire.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Workflow.Jobs.IntegrationTests;

/// <summary>WorkflowJobsOptions.Retention on a real server: the recurring maintenance job and what it deletes.</summary>
public class RetentionTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(90);
    private IHost _host = null!;
    private IWorkflowClient _client = null!;

    [OneTimeSetUp]
    public async Task StartAsync()
    {
        _host = await TestHosts.StartHangfireHostAsync(await TestDatabases.CreateAsync("retention"));
        _client = _host.Services.GetRequiredService<IWorkflowClient>();
        // Tests set the ages on the host's options: runs finished a moment ago are "old" for a zero age.
        _host.Services.GetRequiredService<WorkflowJobsOptions>().Retention = new WorkflowRetention { SucceededFor = TimeSpan.Zero };
    }

    [OneTimeTearDown]
    public async Task StopAsync()
    {
        await _host.StopAsync();
        _host.Dispose();
    }

    [Test]
    public async Task RetentionJob_DeletesOldFinishedRuns_AndNeverAnUnfinishedOne()
    {
        var done = await _client.EnqueueAsync<AddWorkflow>(new WorkflowInput(new AddInput { Argument1 = 1 }));
        await Eventually.UntilAsync(async () => (await _client.GetAsync(done))?.Status == WorkflowStatus.Succeeded, Deadline, "the run to succeed");
        var waiting = await _client.EnqueueAsync<AddWorkflow>(new WorkflowInput(new AddInput()), new EnqueueOptions { Delay = TimeSpan.FromDays(1) });

        var job = _host.Services.GetRequiredService<Workflow.Jobs.Hangfire.WorkflowRetentionJob>();
        var deleted = await job.RunAsync(CancellationToken.None);

        Assert.That(deleted, Is.GreaterThanOrEqualTo(1));
        Assert.That(await _client.GetAsync(done), Is.Null, "the old succeeded run is gone, with its steps");
        Assert.That((await _client.GetAsync(waiting))!.Status, Is.EqualTo(WorkflowStatus.Pending), "an unfinished run is never deleted");
    }

    [Test]
    public async Task RetentionSchedule_RegistersTheRecurringMaintenanceJob_WhenRetentionIsConfigured()
    {
        var schedule = new Workflow.Jobs.Hangfire.WorkflowRetentionSchedule(_host.Services, _host.Services.GetRequiredService<WorkflowJobsOptions>());

        await schedule.StartAsync(CancellationToken.None);

        using var connection = _host.Services.GetRequiredService<JobStorage>().GetConnection();
        Assert.That(connection.GetRecurringJobs().Select(j => j.Id), Does.Contain(Workflow.Jobs.Hangfire.WorkflowRetentionJob.RecurringId));
    }
}
