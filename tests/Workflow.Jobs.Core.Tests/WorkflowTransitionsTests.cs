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

    [TestCase(WorkflowStatus.Pending, true)]
    [TestCase(WorkflowStatus.Running, true)]
    [TestCase(WorkflowStatus.Failed, true)]
    [TestCase(WorkflowStatus.Waiting, true)]
    [TestCase(WorkflowStatus.Succeeded, false)]
    [TestCase(WorkflowStatus.Cancelled, false)]
    [TestCase(WorkflowStatus.Compensating, false)]
    [TestCase(WorkflowStatus.Compensated, false)]
    public void BeginCompensation_IsAllowed_OnlyForUnfinishedOrFailedRuns(WorkflowStatus status, bool allowed)
    {
        Assert.That(WorkflowTransitions.Allows(RunOperation.BeginCompensation, status), Is.EqualTo(allowed));
        Assert.That(WorkflowTransitions.For(RunOperation.BeginCompensation).To, Is.EqualTo(WorkflowStatus.Compensating));
    }

    [Test]
    public void Compensate_IsAllowed_OnlyFromCompensating()
    {
        Assert.That(WorkflowTransitions.All.Single(t => t.To == WorkflowStatus.Compensated).From, Is.EquivalentTo(new[] { WorkflowStatus.Compensating }));
    }

    [TestCase(nameof(RunOperation.Start))]
    [TestCase(nameof(RunOperation.Succeed))]
    [TestCase(nameof(RunOperation.Requeue))]
    [TestCase(nameof(RunOperation.Retry))]
    [TestCase(nameof(RunOperation.Interrupt))]
    [TestCase(nameof(RunOperation.FailForRetry))]
    public void CompensatingRun_IsLeftAsItIs_ByForwardOperationsAndRequeues(string name)
    {
        var operation = Enum.Parse<RunOperation>(name);
        Assert.That(WorkflowTransitions.Allows(operation, WorkflowStatus.Compensating), Is.False);
    }

    [TestCase(nameof(RunOperation.Fail), WorkflowStatus.Failed)]
    [TestCase(nameof(RunOperation.Cancel), WorkflowStatus.Cancelled)]
    [TestCase(nameof(RunOperation.Compensate), WorkflowStatus.Compensated)]
    public void CompensatingRun_Ends_ByFailCancelOrCompensate(string name, WorkflowStatus to)
    {
        var operation = Enum.Parse<RunOperation>(name);
        Assert.That(WorkflowTransitions.Allows(operation, WorkflowStatus.Compensating), Is.True);
        Assert.That(WorkflowTransitions.For(operation).To, Is.EqualTo(to));
    }

    [Test]
    public void CompensatedRun_HasNoWayOut()
    {
        Assert.That(WorkflowTransitions.All.Where(t => t.AllowsFrom(WorkflowStatus.Compensated)), Is.Empty);
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
