namespace Workflow.Jobs.Core.Tests;

public class WorkflowTransitionsTests
{
    [Test]
    public void Table_HasOneTransitionPerOperation()
    {
        Assert.That(WorkflowTransitions.All.Select(t => t.Operation), Is.EquivalentTo(Enum.GetValues<RunOperation>()));
    }

    [TestCase(WorkflowStatus.Succeeded)]
    [TestCase(WorkflowStatus.Cancelled)]
    [TestCase(WorkflowStatus.Compensated)]
    public void Start_IsRefused_ForFinishedRunsOtherThanFailed(WorkflowStatus status)
    {
        Assert.That(WorkflowTransitions.Allows(RunOperation.Start, status), Is.False);
    }

    [TestCase(WorkflowStatus.Pending)]
    [TestCase(WorkflowStatus.Failed)]
    [TestCase(WorkflowStatus.Waiting)]
    public void Start_IsAllowed_ForRunsThatCanResume(WorkflowStatus status)
    {
        Assert.That(WorkflowTransitions.Allows(RunOperation.Start, status), Is.True);
    }

    [TestCase(WorkflowStatus.Pending, true)]
    [TestCase(WorkflowStatus.Running, true)]
    [TestCase(WorkflowStatus.Failed, true)]
    [TestCase(WorkflowStatus.Waiting, true)]
    [TestCase(WorkflowStatus.Succeeded, false)]
    [TestCase(WorkflowStatus.Cancelled, false)]
    [TestCase(WorkflowStatus.Compensated, false)]
    public void Cancel_IsAllowed_OnlyForUnfinishedOrFailedRuns(WorkflowStatus status, bool allowed)
    {
        Assert.That(WorkflowTransitions.Allows(RunOperation.Cancel, status), Is.EqualTo(allowed));
    }

    [TestCase(WorkflowStatus.Failed, true)]
    [TestCase(WorkflowStatus.Cancelled, true)]
    [TestCase(WorkflowStatus.Pending, false)]
    [TestCase(WorkflowStatus.Running, false)]
    [TestCase(WorkflowStatus.Succeeded, false)]
    [TestCase(WorkflowStatus.Waiting, false)]
    [TestCase(WorkflowStatus.Compensated, false)]
    public void Retry_IsAllowed_OnlyForFailedOrCancelledRuns(WorkflowStatus status, bool allowed)
    {
        Assert.That(WorkflowTransitions.Allows(RunOperation.Retry, status), Is.EqualTo(allowed));
    }

    [Test]
    public void NoTransition_LeavesSucceeded()
    {
        Assert.That(WorkflowTransitions.All.Where(t => t.AllowsFrom(WorkflowStatus.Succeeded)), Is.Empty);
    }

    [Test]
    public void Finished_IsSucceededFailedCancelledAndCompensated()
    {
        Assert.That(WorkflowTransitions.Finished, Is.EquivalentTo(new[]
        {
            WorkflowStatus.Succeeded, WorkflowStatus.Failed, WorkflowStatus.Cancelled, WorkflowStatus.Compensated,
        }));
    }

    [Test]
    public void SqlFrom_ListsTheFromStatusesAsTextLiterals()
    {
        Assert.That(WorkflowTransitions.For(RunOperation.Retry).SqlFrom, Is.EqualTo("('Failed', 'Cancelled')"));
    }
}
