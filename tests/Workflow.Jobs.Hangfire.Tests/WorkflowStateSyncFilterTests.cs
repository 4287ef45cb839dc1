using Hangfire;
using Hangfire.Common;
using Hangfire.States;
using Hangfire.Storage;
using Moq;

namespace Workflow.Jobs.Hangfire.Tests;

/// <summary>
/// The run status that follows a workflow job's state, on Hangfire's own apply-state context: each job state
/// names one operation of the transition table (the store applies it only when the run's status allows it).
/// </summary>
public class WorkflowStateSyncFilterTests
{
    private const string JobId = "7";
    private static readonly Guid RunId = Guid.NewGuid();

    private Mock<IWorkflowStore> _store = null!;
    private WorkflowStateSyncFilter _filter = null!;

    [SetUp]
    public void SetUp()
    {
        _store = new Mock<IWorkflowStore>(MockBehavior.Strict);
        _store.Setup(s => s.TransitionAsync(RunId, It.IsAny<RunOperation>(), It.IsAny<DateTimeOffset>(), It.IsAny<string?>(), JobRequestKind.None,
            It.IsAny<CancellationToken>())).ReturnsAsync(new RunChange(WorkflowStatus.Running, null));
        _filter = new WorkflowStateSyncFilter(_store.Object, TimeProvider.System);
    }

    private static ApplyStateContext Applied(IState newState, string? oldState, Job? job = null)
        => new(new Mock<JobStorage>().Object, new Mock<IStorageConnection>().Object, new Mock<IWriteOnlyTransaction>().Object,
            new BackgroundJob(JobId, job ?? Job.FromExpression<WorkflowJob>(j => j.ExecuteAsync(RunId, CancellationToken.None)), DateTime.UtcNow),
            newState, oldState);

    private void Verify(RunOperation operation, string? message = null)
        => _store.Verify(s => s.TransitionAsync(RunId, operation, It.IsAny<DateTimeOffset>(), message, JobRequestKind.None, It.IsAny<CancellationToken>()),
            Times.Once);

    [Test]
    public void OnStateApplied_CancelsTheRun_WhenItsJobIsDeleted()
    {
        _filter.OnStateApplied(Applied(new DeletedState(), ProcessingState.StateName), new Mock<IWriteOnlyTransaction>().Object);

        Verify(RunOperation.Cancel);
    }

    [Test]
    public void OnStateApplied_FailsTheRunWithTheJobsError_WhenItsJobFailed()
    {
        _filter.OnStateApplied(Applied(new FailedState(new InvalidOperationException("boom")), ProcessingState.StateName), new Mock<IWriteOnlyTransaction>().Object);

        Verify(RunOperation.Fail, "boom");
    }

    [TestCase("Failed")]
    [TestCase("Deleted")]
    [TestCase("Processing")]
    public void OnStateApplied_RequeuesTheRun_WhenItsJobIsPutBackInTheQueue(string oldState)
    {
        _filter.OnStateApplied(Applied(new EnqueuedState(), oldState), new Mock<IWriteOnlyTransaction>().Object);

        Verify(RunOperation.Requeue);
    }

    [Test]
    public void OnStateApplied_RequeuesTheRun_WhenItsRetryIsScheduled()
    {
        _filter.OnStateApplied(Applied(new ScheduledState(TimeSpan.FromSeconds(10)), ProcessingState.StateName), new Mock<IWriteOnlyTransaction>().Object);

        Verify(RunOperation.Requeue);
    }

    [Test]
    public void OnStateApplied_ChangesNothing_WhenTheJobIsCreated()
    {
        _filter.OnStateApplied(Applied(new EnqueuedState(), oldState: null), new Mock<IWriteOnlyTransaction>().Object);

        _store.VerifyNoOtherCalls();
    }

    [Test]
    public void OnStateApplied_ChangesNothing_WhenTheJobSucceeds()
    {
        _filter.OnStateApplied(Applied(new SucceededState(null, 1, 1), ProcessingState.StateName), new Mock<IWriteOnlyTransaction>().Object);

        _store.VerifyNoOtherCalls();
    }

    [Test]
    public void OnStateApplied_IgnoresJobsThatAreNotWorkflowJobs()
    {
        _filter.OnStateApplied(Applied(new DeletedState(), ProcessingState.StateName, Job.FromExpression(() => Console.WriteLine("app job"))),
            new Mock<IWriteOnlyTransaction>().Object);

        _store.VerifyNoOtherCalls();
    }
}
