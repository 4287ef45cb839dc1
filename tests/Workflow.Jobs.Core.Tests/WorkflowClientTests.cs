using System.Transactions;
using Microsoft.Extensions.Logging.Abstractions;
using Moq;
using Newtonsoft.Json.Linq;

namespace Workflow.Jobs.Core.Tests;

public class WorkflowClientTests
{
    private static readonly JObject ValidInput = JObject.Parse("{\"test_step_input\":{\"argument_1\":2,\"argument_2\":3}}");

    private Mock<IWorkflowStore> _store = null!;
    private Mock<IWorkflowJobDispatcher> _dispatcher = null!;
    private WorkflowClient _client = null!;

    [SetUp]
    public void SetUp()
    {
        _store = new Mock<IWorkflowStore>(MockBehavior.Strict);
        _dispatcher = new Mock<IWorkflowJobDispatcher>(MockBehavior.Strict);
        var registry = new WorkflowRegistry([new WorkflowRegistration(typeof(AddThenSquareWorkflow))]);
        var jobs = new WorkflowJobRequests(_store.Object, TimeProvider.System, NullLogger<WorkflowJobRequests>.Instance, _dispatcher.Object);
        _client = new WorkflowClient(_store.Object, registry, jobs, new WorkflowMetrics(), TimeProvider.System, NullLogger<WorkflowClient>.Instance,
            _dispatcher.Object);
    }

    private void GivenStorageJoinsRunTransaction(bool joins) => _dispatcher.SetupGet(d => d.JoinsRunTransaction).Returns(joins);

    private void GivenRunsAreCreated()
        => _store.Setup(s => s.CreateRunAsync(It.IsAny<NewRunRecord>(), It.IsAny<Func<Guid, string?>?>(), It.IsAny<CancellationToken>()))
            .ReturnsAsync((NewRunRecord run, Func<Guid, string?>? createJob, CancellationToken _) => new CreateRunResult(run.Id, true, createJob?.Invoke(run.Id)));

    [Test]
    public void EnqueueAsync_PersistsNothing_WhenInputInvalid()
    {
        GivenStorageJoinsRunTransaction(true);

        var ex = Assert.ThrowsAsync<WorkflowDataValidationException>(() =>
            _client.EnqueueAsync("add-then-square", JObject.Parse("{\"test_step_input\":{\"argument_1\":-5}}")));

        Assert.That(ex!.Errors.Single().Path, Is.EqualTo("test_step_input.argument_1"));
        _store.Verify(s => s.CreateRunAsync(It.IsAny<NewRunRecord>(), It.IsAny<Func<Guid, string?>?>(), It.IsAny<CancellationToken>()), Times.Never);
    }

    [Test]
    public void EnqueueAsync_NamesTheRealRegistrationMethod_WhenNoSchedulerIsConfigured()
    {
        var registry = new WorkflowRegistry([new WorkflowRegistration(typeof(AddThenSquareWorkflow))]);
        var jobs = new WorkflowJobRequests(_store.Object, TimeProvider.System, NullLogger<WorkflowJobRequests>.Instance);
        var client = new WorkflowClient(_store.Object, registry, jobs, new WorkflowMetrics(), TimeProvider.System, NullLogger<WorkflowClient>.Instance);

        var ex = Assert.ThrowsAsync<InvalidOperationException>(() => client.EnqueueAsync("add-then-square", ValidInput));

        Assert.That(ex!.Message, Does.Contain("AddHangfireJobs()"));
    }

    [Test]
    public async Task EnqueueAsync_CreatesTheJobInsideTheRunsWrite_WhenTheStorageJoinsTheTransaction()
    {
        GivenStorageJoinsRunTransaction(true);
        GivenRunsAreCreated();
        _dispatcher.Setup(d => d.Enqueue(It.IsAny<Guid>(), "add-then-square", null, null)).Returns("42");

        var id = await _client.EnqueueAsync("add-then-square", ValidInput);

        _dispatcher.Verify(d => d.Enqueue(id, "add-then-square", null, null), Times.Once);
        _store.Verify(s => s.CreateRunAsync(It.Is<NewRunRecord>(r => !r.AwaitingJob), It.IsNotNull<Func<Guid, string?>>(), It.IsAny<CancellationToken>()));
    }

    [Test]
    public async Task EnqueueAsync_WritesTheRunAwaitingItsJob_ThenCreatesTheJob_WhenTheStorageDoesNotJoin()
    {
        GivenStorageJoinsRunTransaction(false);
        GivenRunsAreCreated();
        _dispatcher.Setup(d => d.Enqueue(It.IsAny<Guid>(), "add-then-square", null, null)).Returns("7");
        _store.Setup(s => s.CompleteJobRequestAsync(It.IsAny<Guid>(), JobRequestKind.Create, "7", It.IsAny<CancellationToken>())).ReturnsAsync(true);

        var id = await _client.EnqueueAsync("add-then-square", ValidInput);

        _store.Verify(s => s.CreateRunAsync(It.Is<NewRunRecord>(r => r.AwaitingJob && r.Id == id), null, It.IsAny<CancellationToken>()));
        _store.Verify(s => s.CompleteJobRequestAsync(id, JobRequestKind.Create, "7", It.IsAny<CancellationToken>()), Times.Once);
    }

    [Test]
    public async Task EnqueueAsync_LeavesTheJobToTheOutbox_WhenCreatingItFailsAfterTheRunCommitted()
    {
        GivenStorageJoinsRunTransaction(false);
        GivenRunsAreCreated();
        _dispatcher.Setup(d => d.Enqueue(It.IsAny<Guid>(), It.IsAny<string>(), null, null)).Throws(new InvalidOperationException("job storage down"));

        var id = await _client.EnqueueAsync("add-then-square", ValidInput);

        Assert.That(id, Is.Not.EqualTo(Guid.Empty));
        _store.Verify(s => s.CompleteJobRequestAsync(It.IsAny<Guid>(), It.IsAny<JobRequestKind>(), It.IsAny<string?>(), It.IsAny<CancellationToken>()), Times.Never);
    }

    [Test]
    public async Task EnqueueAsync_InACallersTransaction_CreatesTheJobOnlyOnceItCommits()
    {
        GivenStorageJoinsRunTransaction(false);
        GivenRunsAreCreated();
        var created = new TaskCompletionSource<Guid>(TaskCreationOptions.RunContinuationsAsynchronously);
        _dispatcher.Setup(d => d.Enqueue(It.IsAny<Guid>(), It.IsAny<string>(), null, null)).Returns((Guid run, string _, string? _, TimeSpan? _) =>
        {
            created.TrySetResult(run);
            return "9";
        });
        _store.Setup(s => s.CompleteJobRequestAsync(It.IsAny<Guid>(), JobRequestKind.Create, "9", It.IsAny<CancellationToken>())).ReturnsAsync(true);

        Guid id;
        using (var scope = new TransactionScope(TransactionScopeAsyncFlowOption.Enabled))
        {
            id = await _client.EnqueueAsync("add-then-square", ValidInput);
            Assert.That(created.Task.IsCompleted, Is.False, "the job must wait for the caller's commit");
            scope.Complete();
        }

        Assert.That(await created.Task.WaitAsync(TimeSpan.FromSeconds(10)), Is.EqualTo(id));
    }

    [Test]
    public async Task EnqueueAsync_InACallersTransaction_CreatesNoJob_WhenItRollsBack()
    {
        GivenStorageJoinsRunTransaction(false);
        GivenRunsAreCreated();

        using (new TransactionScope(TransactionScopeAsyncFlowOption.Enabled))
        {
            await _client.EnqueueAsync("add-then-square", ValidInput);
        }

        // Strict mock: any job write (synchronous on rollback, or scheduled) would have thrown or been recorded.
        _dispatcher.Verify(d => d.Enqueue(It.IsAny<Guid>(), It.IsAny<string>(), It.IsAny<string?>(), It.IsAny<TimeSpan?>()), Times.Never);
    }

    [Test]
    public void RetryAsync_ThrowsRunNotFound_WhenTheRunDoesNotExist()
    {
        var id = Guid.NewGuid();
        _store.Setup(s => s.TransitionAsync(id, RunOperation.Retry, It.IsAny<DateTimeOffset>(), null, JobRequestKind.Requeue, It.IsAny<CancellationToken>()))
            .ReturnsAsync((RunChange?)null);
        _store.Setup(s => s.GetStatusAsync(id, It.IsAny<CancellationToken>())).ReturnsAsync((WorkflowStatus?)null);

        Assert.ThrowsAsync<WorkflowRunNotFoundException>(() => _client.RetryAsync(id));
    }

    [Test]
    public void RetryAsync_ThrowsStateException_WhenTheRunIsNotRetryable()
    {
        var id = Guid.NewGuid();
        _store.Setup(s => s.TransitionAsync(id, RunOperation.Retry, It.IsAny<DateTimeOffset>(), null, JobRequestKind.Requeue, It.IsAny<CancellationToken>()))
            .ReturnsAsync((RunChange?)null);
        _store.Setup(s => s.GetStatusAsync(id, It.IsAny<CancellationToken>())).ReturnsAsync(WorkflowStatus.Running);

        var ex = Assert.ThrowsAsync<WorkflowStateException>(() => _client.RetryAsync(id));

        Assert.That(ex!.Status, Is.EqualTo(WorkflowStatus.Running));
    }

    [Test]
    public async Task RetryAsync_RequeuesTheJob_AfterTheRunsChangeCommitted()
    {
        var id = Guid.NewGuid();
        var request = new JobRequest(id, JobRequestKind.Requeue, "add-then-square", null, "5", null);
        _store.Setup(s => s.TransitionAsync(id, RunOperation.Retry, It.IsAny<DateTimeOffset>(), null, JobRequestKind.Requeue, It.IsAny<CancellationToken>()))
            .ReturnsAsync(new RunChange(WorkflowStatus.Failed, request));
        _dispatcher.Setup(d => d.Requeue("5", null)).Returns(true);
        _store.Setup(s => s.CompleteJobRequestAsync(id, JobRequestKind.Requeue, null, It.IsAny<CancellationToken>())).ReturnsAsync(true);

        await _client.RetryAsync(id);

        _dispatcher.Verify(d => d.Requeue("5", null), Times.Once);
        _store.Verify(s => s.CompleteJobRequestAsync(id, JobRequestKind.Requeue, null, It.IsAny<CancellationToken>()), Times.Once);
    }

    [Test]
    public async Task CancelAsync_IsANoOp_WhenTheRunIsAlreadyCancelled()
    {
        var id = Guid.NewGuid();
        _store.Setup(s => s.TransitionAsync(id, RunOperation.Cancel, It.IsAny<DateTimeOffset>(), null, JobRequestKind.Delete, It.IsAny<CancellationToken>()))
            .ReturnsAsync((RunChange?)null);
        _store.Setup(s => s.GetStatusAsync(id, It.IsAny<CancellationToken>())).ReturnsAsync(WorkflowStatus.Cancelled);

        await _client.CancelAsync(id);

        _dispatcher.Verify(d => d.Delete(It.IsAny<string>()), Times.Never);
    }
}
