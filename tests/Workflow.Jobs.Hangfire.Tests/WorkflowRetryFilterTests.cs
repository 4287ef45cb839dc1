using Hangfire;
using Hangfire.Common;
using Hangfire.States;
using Hangfire.Storage;
using Microsoft.Extensions.Logging.Abstractions;
using Moq;
using Npgsql;

namespace Workflow.Jobs.Hangfire.Tests;

/// <summary>
/// The retry decision of a workflow job, made on Hangfire's own state-election context: the job's state and
/// parameters in (parameters kept by a mocked storage connection), the elected state and parameters out.
/// </summary>
public class WorkflowRetryFilterTests
{
    private const string JobId = "42";

    private readonly Dictionary<string, string?> _parameters = new(StringComparer.Ordinal);
    private Mock<IStorageConnection> _connection = null!;
    private WorkflowRetryFilter _filter = null!;
    private Mock<IWorkflowStore> _store = null!;

    [SetUp]
    public void SetUp()
    {
        _parameters.Clear();
        _connection = new Mock<IStorageConnection>();
        _connection.Setup(c => c.GetJobParameter(JobId, It.IsAny<string>()))
            .Returns((string _, string name) => _parameters.GetValueOrDefault(name)!);
        _connection.Setup(c => c.SetJobParameter(JobId, It.IsAny<string>(), It.IsAny<string>()))
            .Callback((string _, string name, string value) => _parameters[name] = value);
        var registry = new WorkflowRegistry([new WorkflowRegistration(typeof(ThreeRetriesWorkflow)), new WorkflowRegistration(typeof(NoRetriesWorkflow)),
            new WorkflowRegistration(typeof(CompensatingWorkflow))]);
        var options = new WorkflowJobsOptions { DefaultRetry = new WorkflowRetryPolicy { Attempts = 1, DelaysInSeconds = [0] } };
        _store = new Mock<IWorkflowStore>();
        _filter = new WorkflowRetryFilter(registry, options, NullLogger<WorkflowRetryFilter>.Instance, _store.Object, TimeProvider.System);
    }

    [Test]
    public void OnStateElection_SchedulesTheRetryAfterThePolicysDelay_WhenAStepFailed()
    {
        var context = Elect(FailedWith(new InvalidOperationException("step failed")), ProcessingState.StateName, "three-retries", retryCount: 1);

        _filter.OnStateElection(context);

        Assert.Multiple(() =>
        {
            var scheduled = context.CandidateState as ScheduledState;
            Assert.That(scheduled, Is.Not.Null, "a delayed retry is a scheduled job");
            Assert.That(scheduled!.EnqueueAt - scheduled.ScheduledAt, Is.EqualTo(TimeSpan.FromSeconds(30)).Within(TimeSpan.FromSeconds(1)),
                "the second retry waits the policy's second delay");
            Assert.That(scheduled.Reason, Does.Contain("Retry attempt 2 of 3").And.Contain("step failed"));
            Assert.That(_parameters[WorkflowJobParameters.RetryCount], Is.EqualTo("2"));
        });
    }

    [Test]
    public void OnStateElection_EnqueuesTheRetryAtOnce_WhenThePolicysDelayIsZero()
    {
        var context = Elect(FailedWith(new InvalidOperationException("step failed")), ProcessingState.StateName, "unregistered-name", retryCount: null);

        _filter.OnStateElection(context);

        Assert.Multiple(() =>
        {
            Assert.That(context.CandidateState, Is.InstanceOf<EnqueuedState>(), "an unknown workflow name falls back to the default policy: 1 attempt, no delay");
            Assert.That(context.CandidateState.Reason, Does.Contain("Retry attempt 1 of 1"));
            Assert.That(_parameters[WorkflowJobParameters.RetryCount], Is.EqualTo("1"));
        });
    }

    [Test]
    public void OnStateElection_LeavesTheJobFailedWithTheReason_WhenRetriesAreExhausted()
    {
        var failed = FailedWith(new InvalidOperationException("step failed"));
        var context = Elect(failed, ProcessingState.StateName, "three-retries", retryCount: 3);

        _filter.OnStateElection(context);

        Assert.Multiple(() =>
        {
            Assert.That(context.CandidateState, Is.SameAs(failed));
            Assert.That(failed.Reason, Is.EqualTo("Retries exhausted (3)"));
            Assert.That(_parameters[WorkflowJobParameters.RetryCount], Is.EqualTo("3"), "the budget is not counted past its end");
        });
    }

    [Test]
    public void OnStateElection_SaysRetriesAreOff_WhenTheWorkflowHasNone()
    {
        var failed = FailedWith(new InvalidOperationException("step failed"));
        var context = Elect(failed, ProcessingState.StateName, "no-retries", retryCount: null);

        _filter.OnStateElection(context);

        Assert.Multiple(() =>
        {
            Assert.That(context.CandidateState, Is.SameAs(failed));
            Assert.That(failed.Reason, Is.EqualTo("Retries are off for this workflow"));
        });
    }

    [Test]
    public void OnStateElection_DoesNotRetry_WhenTheFailureIsNonRetryable()
    {
        var failed = FailedWith(new InvalidOperationException("wrapped", new NonRetryableException("card declined")));
        var context = Elect(failed, ProcessingState.StateName, "three-retries", retryCount: null);

        _filter.OnStateElection(context);

        Assert.Multiple(() =>
        {
            Assert.That(context.CandidateState, Is.SameAs(failed));
            Assert.That(failed.Reason, Is.EqualTo("Not retried: wrapped"));
            Assert.That(_parameters, Does.Not.ContainKey(WorkflowJobParameters.RetryCount), "no retry was counted");
        });
    }

    [TestCase("validation_failed")]
    [TestCase("definition_mismatch")]
    [TestCase("unknown_workflow")]
    [TestCase("not_found")]
    [TestCase("cancelled")]
    public void OnStateElection_DoesNotRetry_WhenTheRunCannotSucceed(string code)
    {
        var failed = FailedWith(new UnitOfWorkException("cannot succeed", code));
        var context = Elect(failed, ProcessingState.StateName, "three-retries", retryCount: null);

        _filter.OnStateElection(context);

        Assert.That(context.CandidateState, Is.SameAs(failed));
        Assert.That(failed.Reason, Does.StartWith("Not retried"));
    }

    [Test]
    public void OnStateElection_ResetsTheRetryBudget_WhenAFailedJobIsRequeued()
    {
        var requeue = new EnqueuedState();
        var context = Elect(requeue, FailedState.StateName, "three-retries", retryCount: 3);

        _filter.OnStateElection(context);

        Assert.Multiple(() =>
        {
            Assert.That(context.CandidateState, Is.SameAs(requeue));
            Assert.That(_parameters[WorkflowJobParameters.RetryCount], Is.EqualTo("0"));
        });
    }

    [Test]
    public void OnStateElection_ResetsTheRetryBudget_WhenADeletedJobIsRequeued()
    {
        var context = Elect(new EnqueuedState(), DeletedState.StateName, "three-retries", retryCount: 2);

        _filter.OnStateElection(context);

        Assert.That(_parameters[WorkflowJobParameters.RetryCount], Is.EqualTo("0"));
    }

    [Test]
    public void OnStateElection_KeepsTheRetryCount_WhenARetryIsEnqueued()
    {
        var context = Elect(new EnqueuedState(), ScheduledState.StateName, "three-retries", retryCount: 2);

        _filter.OnStateElection(context);

        Assert.That(_parameters[WorkflowJobParameters.RetryCount], Is.EqualTo("2"), "a scheduled retry coming due is not an operator's requeue");
    }

    [Test]
    public void OnStateElection_RetriesWithoutUsingTheBudget_WhenTheDatabaseWasUnavailable()
    {
        var outage = new NpgsqlException("connection lost", new PostgresException("terminating connection due to administrator command", "FATAL", "FATAL", PostgresErrorCodes.AdminShutdown));
        var context = Elect(FailedWith(outage), ProcessingState.StateName, "three-retries", retryCount: 3);

        _filter.OnStateElection(context);

        Assert.Multiple(() =>
        {
            Assert.That(context.CandidateState, Is.InstanceOf<ScheduledState>(), "retried although the budget is used up");
            Assert.That(context.CandidateState.Reason, Does.StartWith("Retried outside the retry budget, the database was unavailable"));
            Assert.That(_parameters[WorkflowJobParameters.RetryCount], Is.EqualTo("3"), "the budget is untouched");
        });
    }

    [Test]
    public void OnStateElection_UsesTheBudget_WhenAStepsOwnDatabaseCallFailed()
    {
        // A step's own failure reaches the job as a UnitOfWorkException, whatever caused it.
        var stepFailure = new UnitOfWorkException("step failed", "step_failed", new NpgsqlException("connection lost", new IOException("reset")));
        var context = Elect(FailedWith(stepFailure), ProcessingState.StateName, "three-retries", retryCount: 3);

        _filter.OnStateElection(context);

        Assert.That(context.CandidateState, Is.InstanceOf<FailedState>());
        Assert.That(context.CandidateState.Reason, Is.EqualTo("Retries exhausted (3)"));
    }

    [Test]
    public void OnStateElection_LeavesOtherJobsAlone()
    {
        var failed = FailedWith(new InvalidOperationException("not a workflow"));
        var context = Elect(failed, ProcessingState.StateName, workflowName: null, retryCount: null,
            job: Job.FromExpression(() => OtherJob.Run(Guid.NewGuid())));

        _filter.OnStateElection(context);

        Assert.Multiple(() =>
        {
            Assert.That(context.CandidateState, Is.SameAs(failed));
            Assert.That(failed.Reason, Is.Null);
            _connection.Verify(c => c.SetJobParameter(It.IsAny<string>(), It.IsAny<string>(), It.IsAny<string>()), Times.Never);
        });
    }

    [Test]
    public void OnStateElection_EnqueuesTheJobToCompensate_WhenAStepOfACompensatingWorkflowFailsForGood()
    {
        _store.Setup(s => s.TransitionAsync(It.IsAny<Guid>(), RunOperation.BeginCompensation, It.IsAny<DateTimeOffset>(), null, JobRequestKind.None,
            It.IsAny<CancellationToken>())).ReturnsAsync(new RunChange(WorkflowStatus.Pending, null));
        var failed = FailedWith(new UnitOfWorkException("shipping failed", new InvalidOperationException("shipping failed")) { StepName = "AddStep" });
        var context = Elect(failed, ProcessingState.StateName, "compensating", retryCount: 1);

        _filter.OnStateElection(context);

        Assert.Multiple(() =>
        {
            Assert.That(context.CandidateState, Is.InstanceOf<EnqueuedState>(), "the run's own job runs the compensations");
            Assert.That(context.CandidateState.Reason, Does.Contain("Retries exhausted (1)").And.Contain("compensating: shipping failed"));
            Assert.That(_parameters[WorkflowJobParameters.RetryCount], Is.EqualTo("0"), "the compensations get the whole retry budget");
            _store.Verify(s => s.TransitionAsync(It.IsAny<Guid>(), RunOperation.BeginCompensation, It.IsAny<DateTimeOffset>(), null, JobRequestKind.None,
                It.IsAny<CancellationToken>()), Times.Once);
        });
    }

    [Test]
    public void OnStateElection_LeavesTheJobFailed_WhenACompensationFailsForGood()
    {
        var failed = FailedWith(new UnitOfWorkException("Compensation of step 'AddStep' failed: refund failed", UnitOfWorkException.CompensationFailedCode,
            new InvalidOperationException("refund failed")) { StepName = "AddStep" });
        var context = Elect(failed, ProcessingState.StateName, "compensating", retryCount: 1);

        _filter.OnStateElection(context);

        Assert.Multiple(() =>
        {
            Assert.That(context.CandidateState, Is.SameAs(failed), "a compensation's failure is never compensated again");
            _store.Verify(s => s.TransitionAsync(It.IsAny<Guid>(), It.IsAny<RunOperation>(), It.IsAny<DateTimeOffset>(), It.IsAny<string?>(),
                It.IsAny<JobRequestKind>(), It.IsAny<CancellationToken>()), Times.Never);
        });
    }

    [Test]
    public void OnStateElection_LeavesTheJobFailed_WhenTheRunCannotBeCompensated()
    {
        _store.Setup(s => s.TransitionAsync(It.IsAny<Guid>(), RunOperation.BeginCompensation, It.IsAny<DateTimeOffset>(), null, JobRequestKind.None,
            It.IsAny<CancellationToken>())).ReturnsAsync((RunChange?)null);
        var failed = FailedWith(new UnitOfWorkException("shipping failed", new NonRetryableException("shipping failed")) { StepName = "AddStep" });
        var context = Elect(failed, ProcessingState.StateName, "compensating", retryCount: null);

        _filter.OnStateElection(context);

        Assert.That(context.CandidateState, Is.SameAs(failed), "a run cancelled meanwhile stays as it is");
    }

    private static FailedState FailedWith(Exception exception) => new(exception);

    /// <summary>
    /// Hangfire's election context for a job moving from <paramref name="currentState"/> to <paramref name="candidate"/>,
    /// with the job parameters a workflow job carries.
    /// </summary>
    private ElectStateContext Elect(IState candidate, string currentState, string? workflowName, int? retryCount, Job? job = null)
    {
        if (workflowName is not null)
        {
            _parameters[WorkflowJobParameters.WorkflowName] = SerializationHelper.Serialize(workflowName, SerializationOption.User);
        }

        if (retryCount is { } count)
        {
            _parameters[WorkflowJobParameters.RetryCount] = SerializationHelper.Serialize(count, SerializationOption.User);
        }

        job ??= Job.FromExpression<WorkflowJob>(j => j.ExecuteAsync(Guid.NewGuid(), CancellationToken.None));
        var apply = new ApplyStateContext(new Mock<JobStorage>().Object, _connection.Object, new Mock<IWriteOnlyTransaction>().Object,
            new BackgroundJob(JobId, job, DateTime.UtcNow), candidate, currentState);
        return new ElectStateContext(apply);
    }

    [WorkflowName("three-retries")]
    private sealed class ThreeRetriesWorkflow : WorkflowDefinition
    {
        public override IReadOnlyList<Type> Steps { get; } = [typeof(AddStep)];

        public override WorkflowRetryPolicy? Retry { get; } = new() { Attempts = 3, DelaysInSeconds = [5, 30] };
    }

    [WorkflowName("compensating")]
    private sealed class CompensatingWorkflow : WorkflowDefinition
    {
        public override IReadOnlyList<Type> Steps { get; } = [typeof(AddStep)];

        public override WorkflowRetryPolicy? Retry { get; } = new() { Attempts = 1, DelaysInSeconds = [0] };

        public override bool CompensateOnFailure => true;
    }

    [WorkflowName("no-retries")]
    private sealed class NoRetriesWorkflow : WorkflowDefinition
    {
        public override IReadOnlyList<Type> Steps { get; } = [typeof(AddStep)];

        public override WorkflowRetryPolicy? Retry { get; } = new() { Attempts = 0 };
    }

    public static class OtherJob
    {
        public static void Run(Guid id) => _ = id;
    }
}
