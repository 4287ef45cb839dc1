using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Moq;
using Newtonsoft.Json.Linq;

namespace Workflow.Jobs.Core.Tests;

public class WorkflowEngineTests
{
    private static readonly Guid RunId = Guid.NewGuid();
    private Mock<IWorkflowStore> _store = null!;
    private Mock<IRunExecution> _execution = null!;
    private WorkflowEngine _engine = null!;
    private ServiceProvider _services = null!;

    [SetUp]
    public void SetUp()
    {
        _store = new Mock<IWorkflowStore>(MockBehavior.Strict);
        _execution = new Mock<IRunExecution>();
        _execution.Setup(e => e.DisposeAsync()).Returns(ValueTask.CompletedTask);
        _execution.Setup(e => e.WatchGuard()).Returns(() => new QuietWatch());
        _store.Setup(s => s.BeginExecutionAsync(RunId, It.IsAny<CancellationToken>())).ReturnsAsync(_execution.Object);
        _services = new ServiceCollection().AddSingleton<ExecutionLog>().AddTransient<AddStep>().AddTransient<SquareStep>().AddTransient<ThrowingStep>().BuildServiceProvider();
        var registry = new WorkflowRegistry([new WorkflowRegistration(typeof(AddThenSquareWorkflow)), new WorkflowRegistration(typeof(ThrowingWorkflow))]);
        _engine = new WorkflowEngine(_store.Object, registry, _services.GetRequiredService<IServiceScopeFactory>(), TimeProvider.System,
            new WorkflowMetrics(), new WorkflowWaker(_store.Object, new WorkflowJobRequests(_store.Object, TimeProvider.System, NullLogger<WorkflowJobRequests>.Instance), TimeProvider.System),
            NullLogger<WorkflowEngine>.Instance);
    }

    [TearDown]
    public void TearDown() => _services.Dispose();

    private void GivenRun(WorkflowStatus status, string name = "add-then-square", string[]? steps = null, JObject? input = null, JObject? output = null,
        params StepRecord[] records)
    {
        _execution.SetupGet(e => e.Run).Returns(new RunRecord(RunId, name, status, input ?? [], output, steps ?? ["AddStep", "SquareStep"], 0));
        _execution.SetupGet(e => e.Steps).Returns(records);
        _execution.Setup(e => e.StartAsync(It.IsAny<StepStart>(), It.IsAny<DateTimeOffset>(), It.IsAny<CancellationToken>())).ReturnsAsync(true);
        _execution.Setup(e => e.CompleteStepAsync(It.IsAny<Guid>(), It.IsAny<JObject>(), It.IsAny<StepStart?>(), It.IsAny<JObject?>(), It.IsAny<int>(),
            It.IsAny<DateTimeOffset>(), It.IsAny<CancellationToken>())).ReturnsAsync(true);
    }

    [Test]
    public async Task ExecuteAsync_SkipsSucceededSteps_AndFeedsTheirStoredOutputForward()
    {
        var addId = Guid.NewGuid();
        GivenRun(WorkflowStatus.Failed, records:
        [
            new StepRecord(addId, "AddStep", WorkflowStatus.Succeeded, JObject.Parse("{\"result\":7}"), 1),
            new StepRecord(Guid.NewGuid(), "SquareStep", WorkflowStatus.Failed, null, 1),
        ]);

        var output = await _engine.ExecuteAsync(RunId);

        Assert.That(output.Get<SquareOutput>()!.Result, Is.EqualTo(49));
        Assert.That(output.Get<AddOutput>()!.Result, Is.EqualTo(7));
        _execution.Verify(e => e.StartAsync(It.Is<StepStart>(s => s.StepName == "SquareStep" && s.Attempt == 2 && s.Exists && s.PrecedingStepId == addId),
            It.IsAny<DateTimeOffset>(), It.IsAny<CancellationToken>()), Times.Once);
        _execution.Verify(e => e.CompleteStepAsync(It.IsAny<Guid>(), It.IsAny<JObject>(), null, It.Is<JObject?>(o => o!["square_output"]!["result"]!.Value<int>() == 49),
            2, It.IsAny<DateTimeOffset>(), It.IsAny<CancellationToken>()), Times.Once);
    }

    [Test]
    public async Task ExecuteAsync_ChecksPointsEachStep_AndStartsTheNextInTheSameCall()
    {
        GivenRun(WorkflowStatus.Pending, input: JObject.Parse("{\"test_step_input\":{\"argument_1\":2,\"argument_2\":3}}"));

        var output = await _engine.ExecuteAsync(RunId);

        Assert.That(output.Get<SquareOutput>()!.Result, Is.EqualTo(25));
        _execution.Verify(e => e.CompleteStepAsync(It.IsAny<Guid>(), It.Is<JObject>(o => o["result"]!.Value<int>() == 5),
            It.Is<StepStart?>(n => n!.StepName == "SquareStep" && n.Attempt == 1), null, 1, It.IsAny<DateTimeOffset>(), It.IsAny<CancellationToken>()), Times.Once);
    }

    [Test]
    public async Task ExecuteAsync_ReturnsStoredOutput_WhenRunAlreadySucceeded()
    {
        GivenRun(WorkflowStatus.Succeeded, output: JObject.Parse("{\"test_step_output\":{\"result\":5}}"));

        var output = await _engine.ExecuteAsync(RunId);

        Assert.That(output.Get<AddOutput>()!.Result, Is.EqualTo(5));
        _execution.Verify(e => e.StartAsync(It.IsAny<StepStart>(), It.IsAny<DateTimeOffset>(), It.IsAny<CancellationToken>()), Times.Never);
    }

    [Test]
    public void ExecuteAsync_RecordsOriginalMessage_AndThrowsUnitOfWorkException_WithInner()
    {
        GivenRun(WorkflowStatus.Pending, name: nameof(ThrowingWorkflow), steps: [nameof(ThrowingStep)]);

        var ex = Assert.ThrowsAsync<UnitOfWorkException>(() => _engine.ExecuteAsync(RunId));

        Assert.That(ex!.Message, Is.EqualTo("this step failed"));
        Assert.That(ex.InnerException, Is.TypeOf<InvalidOperationException>());
        Assert.That(ex.StepName, Is.EqualTo(nameof(ThrowingStep)));
        _execution.Verify(e => e.FailStepAsync(It.IsAny<Guid>(), It.Is<Exception>(x => x.Message == "this step failed"), RunOperation.Fail, It.IsAny<DateTimeOffset>(), It.IsAny<CancellationToken>()), Times.Once);
    }

    [Test]
    public void ExecuteAsync_FailsRun_WhenDefinitionChanged()
    {
        GivenRun(WorkflowStatus.Pending, steps: ["AddStep", "RemovedStep"]);

        var ex = Assert.ThrowsAsync<UnitOfWorkException>(() => _engine.ExecuteAsync(RunId));

        Assert.That(ex!.Code, Is.EqualTo("definition_mismatch"));
        Assert.That(ex.Message, Does.Contain("RemovedStep").And.Contain("SquareStep"));
        _execution.Verify(e => e.FailRunAsync(ex.Message, It.IsAny<DateTimeOffset>(), It.IsAny<CancellationToken>()), Times.Once);
        _execution.Verify(e => e.StartAsync(It.IsAny<StepStart>(), It.IsAny<DateTimeOffset>(), It.IsAny<CancellationToken>()), Times.Never);
    }

    [Test]
    public void ExecuteAsync_NeverStartsAStep_OfACancelledRun()
    {
        GivenRun(WorkflowStatus.Cancelled);

        var ex = Assert.ThrowsAsync<UnitOfWorkException>(() => _engine.ExecuteAsync(RunId));

        Assert.That(ex!.Code, Is.EqualTo("cancelled"));
        _execution.Verify(e => e.StartAsync(It.IsAny<StepStart>(), It.IsAny<DateTimeOffset>(), It.IsAny<CancellationToken>()), Times.Never);
    }

    [Test]
    public void ExecuteAsync_StopsBeforeNextStep_WhenRunCancelledDuringAStep()
    {
        GivenRun(WorkflowStatus.Pending);
        _execution.Setup(e => e.CompleteStepAsync(It.IsAny<Guid>(), It.IsAny<JObject>(), It.IsAny<StepStart?>(), It.IsAny<JObject?>(), It.IsAny<int>(),
            It.IsAny<DateTimeOffset>(), It.IsAny<CancellationToken>())).ReturnsAsync(false);

        var ex = Assert.ThrowsAsync<UnitOfWorkException>(() => _engine.ExecuteAsync(RunId));

        Assert.That(ex!.Code, Is.EqualTo("cancelled"));
        _execution.Verify(e => e.CompleteStepAsync(It.IsAny<Guid>(), It.IsAny<JObject>(), It.IsAny<StepStart?>(), It.IsAny<JObject?>(), It.IsAny<int>(),
            It.IsAny<DateTimeOffset>(), It.IsAny<CancellationToken>()), Times.Once);
    }

    [Test]
    public void ExecuteAsync_ThrowsRunNotFound_WhenTheRunDoesNotExist()
    {
        _execution.SetupGet(e => e.Run).Returns((RunRecord?)null);

        var ex = Assert.ThrowsAsync<WorkflowRunNotFoundException>(() => _engine.ExecuteAsync(RunId));

        Assert.That(ex!.Code, Is.EqualTo(UnitOfWorkException.NotFoundCode));
        Assert.That(ex.WorkflowId, Is.EqualTo(RunId));
    }

    [Test]
    public void ExecuteAsync_RunsNoStep_WhenTheRunWasCompensated()
    {
        GivenRun(WorkflowStatus.Compensated);

        var ex = Assert.ThrowsAsync<UnitOfWorkException>(() => _engine.ExecuteAsync(RunId));

        Assert.That(ex!.Code, Is.EqualTo(UnitOfWorkException.RunFinishedCode));
        _execution.Verify(e => e.StartAsync(It.IsAny<StepStart>(), It.IsAny<DateTimeOffset>(), It.IsAny<CancellationToken>()), Times.Never);
    }

    [Test]
    public void ExecuteAsync_CompensatesSucceededSteps_InReverseOrder_AndRunsNoForwardStep_WhenTheRunIsCompensating()
    {
        var addId = Guid.NewGuid();
        var squareId = Guid.NewGuid();
        GivenRun(WorkflowStatus.Compensating, records:
        [
            new StepRecord(addId, "AddStep", WorkflowStatus.Succeeded, JObject.Parse("{\"result\":7}"), 1),
            new StepRecord(squareId, "SquareStep", WorkflowStatus.Succeeded, JObject.Parse("{\"result\":49}"), 1),
        ]);
        var compensated = new List<Guid>();
        _execution.Setup(e => e.CompensateStepAsync(It.IsAny<Guid>(), It.IsAny<DateTimeOffset>(), It.IsAny<CancellationToken>()))
            .Callback<Guid, DateTimeOffset, CancellationToken>((id, _, _) => compensated.Add(id)).Returns(Task.CompletedTask);

        var ex = Assert.ThrowsAsync<UnitOfWorkException>(() => _engine.ExecuteAsync(RunId));

        Assert.That(ex!.Code, Is.EqualTo(UnitOfWorkException.RunFinishedCode));
        Assert.That(compensated, Is.EqualTo(new[] { squareId, addId }));
        _execution.Verify(e => e.CompleteCompensationAsync(It.IsAny<DateTimeOffset>(), It.IsAny<CancellationToken>()), Times.Once);
        _execution.Verify(e => e.StartAsync(It.IsAny<StepStart>(), It.IsAny<DateTimeOffset>(), It.IsAny<CancellationToken>()), Times.Never);
    }

    [Test]
    public void ExecuteAsync_SkipsRecordedCompensations_WhenACompensationResumes()
    {
        var addId = Guid.NewGuid();
        GivenRun(WorkflowStatus.Compensating, records:
        [
            new StepRecord(addId, "AddStep", WorkflowStatus.Succeeded, JObject.Parse("{\"result\":7}"), 1),
            new StepRecord(Guid.NewGuid(), "SquareStep", WorkflowStatus.Succeeded, JObject.Parse("{\"result\":49}"), 1) { Compensated = true },
        ]);

        Assert.ThrowsAsync<UnitOfWorkException>(() => _engine.ExecuteAsync(RunId));

        _execution.Verify(e => e.CompensateStepAsync(addId, It.IsAny<DateTimeOffset>(), It.IsAny<CancellationToken>()), Times.Once);
        _execution.Verify(e => e.CompensateStepAsync(It.IsAny<Guid>(), It.IsAny<DateTimeOffset>(), It.IsAny<CancellationToken>()), Times.Once);
    }

    [Test]
    public void ExecuteAsync_MarksTheRunCompensatingFirst_WhenAMarkedRunWasRetried()
    {
        _execution.SetupGet(e => e.Run).Returns(new RunRecord(RunId, "add-then-square", WorkflowStatus.Pending, [], null, ["AddStep", "SquareStep"], 1)
        {
            CompensationRequested = true,
        });
        _execution.SetupGet(e => e.Steps).Returns([]);
        _execution.Setup(e => e.BeginCompensationAsync(It.IsAny<DateTimeOffset>(), It.IsAny<CancellationToken>())).ReturnsAsync(true);

        Assert.ThrowsAsync<UnitOfWorkException>(() => _engine.ExecuteAsync(RunId));

        _execution.Verify(e => e.BeginCompensationAsync(It.IsAny<DateTimeOffset>(), It.IsAny<CancellationToken>()), Times.Once);
        _execution.Verify(e => e.CompleteCompensationAsync(It.IsAny<DateTimeOffset>(), It.IsAny<CancellationToken>()), Times.Once);
        _execution.Verify(e => e.StartAsync(It.IsAny<StepStart>(), It.IsAny<DateTimeOffset>(), It.IsAny<CancellationToken>()), Times.Never);
    }

    [Test]
    public void ExecuteAsync_LeavesTheRetryToTheScheduler_WhenAStepFailsUnderIt()
    {
        GivenRun(WorkflowStatus.Pending, name: "ThrowingWorkflow", steps: ["ThrowingStep"]);

        Assert.ThrowsAsync<UnitOfWorkException>(() => _engine.ExecuteAsync(RunId, retriedByScheduler: true, CancellationToken.None));

        _execution.Verify(e => e.FailStepAsync(It.IsAny<Guid>(), It.Is<Exception>(x => x.Message == "this step failed"), RunOperation.FailForRetry, It.IsAny<DateTimeOffset>(), It.IsAny<CancellationToken>()),
            Times.Once);
    }
}

/// <summary>A guard watch that never fires.</summary>
internal sealed class QuietWatch : IGuardWatch
{
    public CancellationToken Lost => CancellationToken.None;

    public Exception? Reason => null;

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}

public sealed class ThrowingStep : WorkflowStep<AddInput, AddOutput>
{
    protected override Task<AddOutput> ProcessInputAsync(AddInput input, StepContext context, CancellationToken cancellationToken)
        => throw new InvalidOperationException("this step failed");
}

public sealed class ThrowingWorkflow : WorkflowDefinition
{
    public override IReadOnlyList<Type> Steps { get; } = [typeof(ThrowingStep)];
}
