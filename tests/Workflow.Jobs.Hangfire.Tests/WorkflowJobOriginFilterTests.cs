using Hangfire;
using Hangfire.Common;
using Hangfire.Server;
using Hangfire.Storage;
using Moq;

namespace Workflow.Jobs.Hangfire.Tests;

/// <summary>The server filter that tells the engine which job performs a run, on Hangfire's own perform contexts.</summary>
public class WorkflowJobOriginFilterTests
{
    private static PerformContext Context(string jobId)
        => new(new Mock<JobStorage>().Object, new Mock<IStorageConnection>().Object,
            new BackgroundJob(jobId, Job.FromExpression<WorkflowJob>(j => j.ExecuteAsync(Guid.NewGuid(), CancellationToken.None)), DateTime.UtcNow),
            new Mock<IJobCancellationToken>().Object);

    [Test]
    public async Task OnPerforming_SetsTheJobForTheFlowThatPerformsIt_AndOnPerformedClearsIt()
    {
        var origin = new WorkflowExecutionOrigin();
        var filter = new WorkflowJobOriginFilter(origin);
        var context = Context("42");

        filter.OnPerforming(new PerformingContext(context));
        // The job method runs after the filter, on the same flow; work it starts sees the value too.
        var seenByTheJob = await Task.Run(() => origin.JobId);
        filter.OnPerformed(new PerformedContext(context, null, false, null));

        Assert.That(seenByTheJob, Is.EqualTo("42"));
        Assert.That(origin.JobId, Is.Null);
        Assert.That(origin.ServerName, Is.EqualTo(Environment.MachineName), "outside a job: this machine");
    }

    [Test]
    public async Task Origin_IsNotSeenByAnotherFlow()
    {
        var origin = new WorkflowExecutionOrigin();
        var filter = new WorkflowJobOriginFilter(origin);

        var other = Task.Run(async () =>
        {
            await Task.Yield();
            return origin.JobId;
        });
        // A flow started before the job's filter ran never sees the job.
        filter.OnPerforming(new PerformingContext(Context("7")));

        Assert.That(await other, Is.Null);
        Assert.That(origin.JobId, Is.EqualTo("7"));
        origin.Clear();
    }
}
