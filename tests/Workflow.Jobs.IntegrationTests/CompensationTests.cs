using System.Collections.Concurrent;
using Hangfire;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Newtonsoft.Json;

namespace Workflow.Jobs.IntegrationTests;

[WorkflowKey("comp_reserve_input")]
public sealed class CompReserveInput : WorkflowData;

[WorkflowKey("comp_reserve_output")]
public sealed class CompReserveOutput : WorkflowData
{
    [JsonProperty("reservation")] public string Reservation { get; set; } = "";
}

[WorkflowKey("comp_charge_input")]
public sealed class CompChargeInput : WorkflowData
{
    [JsonProperty("amount")] public int Amount { get; set; }
}

[WorkflowKey("comp_charge_output")]
public sealed class CompChargeOutput : WorkflowData
{
    [JsonProperty("charge")] public string Charge { get; set; } = "";
}

[WorkflowKey("comp_ship_input")]
public sealed class CompShipInput : WorkflowData
{
    [JsonProperty("non_retryable")] public bool NonRetryable { get; set; }
}

[WorkflowKey("comp_ship_output")]
public sealed class CompShipOutput : WorkflowData;

/// <summary>What the compensation test steps did, shared by every host of a test (not static), and the faults they inject.</summary>
public sealed class CompensationProbe
{
    private readonly ConcurrentQueue<(Guid Run, string Step, string What, string Detail)> _entries = new();

    /// <summary>Compensation failures still to inject into the charge step's compensation, per run.</summary>
    public ConcurrentDictionary<Guid, int> ChargeRefundFailures { get; } = new();

    /// <summary>Runs whose reserve compensation blocks (until cancelled) in the host that has <see cref="CompensationBlock"/> set.</summary>
    public ConcurrentDictionary<Guid, TaskCompletionSource> ReleaseEntered { get; } = new();

    public void Add(StepContext context, string what, string detail = "") => _entries.Enqueue((context.WorkflowId, context.StepName, what, detail));

    public IReadOnlyList<(string Step, string What, string Detail)> For(Guid run) => _entries.Where(e => e.Run == run).Select(e => (e.Step, e.What, e.Detail)).ToList();

    public IReadOnlyList<string> Compensated(Guid run) => For(run).Where(e => e.What == "compensated").Select(e => e.Step).ToList();

    public int Count(Guid run, string step, string what) => For(run).Count(e => e.Step == step && e.What == what);
}

/// <summary>Present (in one host only) to make the reserve compensation block until the host shuts down.</summary>
public sealed class CompensationBlock;

[WorkflowName("comp-reserve")]
public sealed class CompReserveStep(CompensationProbe probe, IServiceProvider services) : WorkflowStep<CompReserveInput, CompReserveOutput>
{
    protected override Task<CompReserveOutput> ProcessInputAsync(CompReserveInput input, StepContext context, CancellationToken cancellationToken)
    {
        probe.Add(context, "forward");
        return Task.FromResult(new CompReserveOutput { Reservation = "r-" + context.StepId });
    }

    protected override async Task CompensateAsync(CompReserveInput input, CompReserveOutput output, StepContext context, CancellationToken cancellationToken)
    {
        probe.Add(context, "compensating", output.Reservation);
        if (services.GetService<CompensationBlock>() is not null)
        {
            probe.ReleaseEntered.GetOrAdd(context.WorkflowId, _ => new(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
            await Task.Delay(Timeout.Infinite, cancellationToken);
        }

        probe.Add(context, "compensated", output.Reservation);
    }
}

[WorkflowName("comp-charge")]
public sealed class CompChargeStep(CompensationProbe probe) : WorkflowStep<CompChargeInput, CompChargeOutput>
{
    protected override Task<CompChargeOutput> ProcessInputAsync(CompChargeInput input, StepContext context, CancellationToken cancellationToken)
    {
        probe.Add(context, "forward");
        return Task.FromResult(new CompChargeOutput { Charge = $"c-{input.Amount}-{context.StepId}" });
    }

    protected override Task CompensateAsync(CompChargeInput input, CompChargeOutput output, StepContext context, CancellationToken cancellationToken)
    {
        probe.Add(context, "compensating", output.Charge);
        if (probe.ChargeRefundFailures.TryGetValue(context.WorkflowId, out var left) && left > 0)
        {
            probe.ChargeRefundFailures[context.WorkflowId] = left - 1;
            throw new InvalidOperationException("refund failed");
        }

        probe.Add(context, "compensated", $"{input.Amount}:{output.Charge}");
        return Task.CompletedTask;
    }
}

[WorkflowName("comp-ship")]
public sealed class CompShipStep(CompensationProbe probe) : WorkflowStep<CompShipInput, CompShipOutput>
{
    protected override Task<CompShipOutput> ProcessInputAsync(CompShipInput input, StepContext context, CancellationToken cancellationToken)
    {
        probe.Add(context, "forward");
        throw input.NonRetryable ? new NonRetryableException("shipping refused") : new InvalidOperationException("shipping failed");
    }

    protected override Task CompensateAsync(CompShipInput input, CompShipOutput output, StepContext context, CancellationToken cancellationToken)
    {
        probe.Add(context, "compensated");
        return Task.CompletedTask;
    }
}

/// <summary>Reserve, charge, then a shipping step that always fails: compensated on failure, one retry.</summary>
[WorkflowName("comp-order")]
public sealed class CompOrderWorkflow : WorkflowDefinition
{
    public override IReadOnlyList<Type> Steps { get; } = [typeof(CompReserveStep), typeof(CompChargeStep), typeof(CompShipStep)];

    public override bool CompensateOnFailure => true;

    public override WorkflowRetryPolicy? Retry { get; } = new() { Attempts = 1, DelaysInSeconds = [0] };
}

/// <summary>Reserve, charge, then a step that waits for its gate: not compensated on failure, compensated by a cancel.</summary>
[WorkflowName("comp-hold")]
public sealed class CompHoldWorkflow : WorkflowDefinition
{
    public override IReadOnlyList<Type> Steps { get; } = [typeof(CompReserveStep), typeof(CompChargeStep), typeof(WaitStep)];

    public override WorkflowRetryPolicy? Retry { get; } = new() { Attempts = 1, DelaysInSeconds = [0] };
}

/// <summary>Compensation on a real Hangfire server and real PostgreSQL.</summary>
public class CompensationTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);
    private readonly CompensationProbe _probe = new();
    private string _connectionString = null!;
    private IHost _host = null!;
    private IWorkflowClient _client = null!;

    [OneTimeSetUp]
    public async Task OneTimeSetUpAsync()
    {
        _connectionString = await TestDatabases.CreateAsync(nameof(CompensationTests));
        _host = await StartHostAsync(block: false);
        _client = _host.Services.GetRequiredService<IWorkflowClient>();
    }

    [OneTimeTearDown]
    public async Task OneTimeTearDownAsync()
    {
        await _host.StopAsync();
        _host.Dispose();
    }

    private async Task<IHost> StartHostAsync(bool block)
    {
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        builder.Services.AddSingleton<ILoggerFactory>(NullLoggerFactory.Instance);
        builder.Services.AddSingleton(_probe);
        builder.Services.AddSingleton<ExecutionLog>();
        builder.Services.AddSingleton<Gates>();
        if (block)
        {
            builder.Services.AddSingleton<CompensationBlock>();
        }

        builder.Services.AddWorkflowJobs(o => o.UseNpgsql(_connectionString))
            .AddWorkflow<CompOrderWorkflow>()
            .AddWorkflow<CompHoldWorkflow>()
            .AddHangfireJobs(o =>
            {
                o.WorkerCount = 2;
                o.QueuePollInterval = TimeSpan.FromMilliseconds(50);
                o.ShutdownTimeout = TimeSpan.FromSeconds(2);
            });
        var host = builder.Build();
        await host.StartAsync();
        return host;
    }

    private static WorkflowInput Order(int amount = 5, bool nonRetryable = false)
        => new(new CompReserveInput(), new CompChargeInput { Amount = amount }, new CompShipInput { NonRetryable = nonRetryable });

    private Task<WorkflowRun> WaitForStatusAsync(Guid id, WorkflowStatus status) => WaitForStatusAsync(_client, id, status);

    private static async Task<WorkflowRun> WaitForStatusAsync(IWorkflowClient client, Guid id, WorkflowStatus status)
    {
        WorkflowRun? run = null;
        await Eventually.UntilAsync(async () => (run = await client.GetAsync(id))?.Status == status, Deadline, () => $"run {id} to be {status} (is {run?.Status})");
        return run!;
    }

    private static WorkflowStepRun Step(WorkflowRun run, string name) => run.Steps.Single(s => s.StepName == name);

    [Test]
    public async Task FinalFailure_CompensatesSucceededStepsInReverseOrderOnce_WhenTheWorkflowCompensatesOnFailure()
    {
        var id = await _client.EnqueueAsync<CompOrderWorkflow>(Order(amount: 7));

        var run = await WaitForStatusAsync(id, WorkflowStatus.Compensated);

        Assert.That(_probe.Compensated(id), Is.EqualTo(new[] { "comp-charge", "comp-reserve" }), "reverse order, each once; the failed step has nothing to undo");
        Assert.That(_probe.Count(id, "comp-ship", "forward"), Is.EqualTo(2), "the failing step ran its first try and its one retry, then compensation began");
        var charge = Step(run, "comp-charge");
        var reserve = Step(run, "comp-reserve");
        Assert.That(_probe.For(id).Single(e => e is { Step: "comp-charge", What: "compensated" }).Detail, Is.EqualTo($"7:c-7-{charge.Id}"),
            "the compensation got the step's input and its checkpointed output");
        Assert.That(charge.CompensatedAt, Is.Not.Null);
        Assert.That(reserve.CompensatedAt, Is.GreaterThanOrEqualTo(charge.CompensatedAt));
        Assert.That(Step(run, "comp-ship").CompensatedAt, Is.Null);
        Assert.That(run.ExceptionMessage, Is.EqualTo("shipping failed"), "the original failure stays visible");
        Assert.That(run.CompensationRequestedAt, Is.Not.Null);
        Assert.That(run.CompensationError, Is.Null);
    }

    [Test]
    public async Task NonRetryableFailure_IsCompensatedAtOnce_WhenTheWorkflowCompensatesOnFailure()
    {
        var id = await _client.EnqueueAsync<CompOrderWorkflow>(Order(nonRetryable: true));

        var run = await WaitForStatusAsync(id, WorkflowStatus.Compensated);

        Assert.That(_probe.Count(id, "comp-ship", "forward"), Is.EqualTo(1), "a non-retryable failure is not retried");
        Assert.That(_probe.Compensated(id), Is.EqualTo(new[] { "comp-charge", "comp-reserve" }));
        Assert.That(run.ExceptionMessage, Is.EqualTo("shipping refused"));
    }

    [Test]
    public async Task Compensation_IsRetried_WhenItThrowsThenSucceeds()
    {
        var id = await EnqueueWithRefundFailuresAsync(Order(), failures: 1);

        var run = await WaitForStatusAsync(id, WorkflowStatus.Compensated);

        Assert.That(_probe.Count(id, "comp-charge", "compensating"), Is.EqualTo(2), "the failing compensation ran again");
        Assert.That(_probe.Compensated(id), Is.EqualTo(new[] { "comp-charge", "comp-reserve" }), "the reserve compensation waited for the charge's");
        Assert.That(Step(run, "comp-charge").CompensationError, Is.EqualTo("Compensation of step 'comp-charge' failed: refund failed"),
            "the failure that was retried is recorded on its step");
        Assert.That(_probe.Count(id, "comp-ship", "forward"), Is.EqualTo(2), "no forward step ran during compensation");
    }

    [Test]
    public async Task Compensation_FailsTheRunWithBothErrors_WhenItFailsForGood_AndRetryResumesIt()
    {
        var id = await EnqueueWithRefundFailuresAsync(Order(), failures: 100);

        var failed = await WaitForStatusAsync(id, WorkflowStatus.Failed);

        Assert.That(failed.ExceptionMessage, Is.EqualTo("shipping failed"), "the original failure");
        Assert.That(failed.CompensationError, Is.EqualTo("Compensation of step 'comp-charge' failed: refund failed"), "the compensation's failure");
        Assert.That(Step(failed, "comp-charge").CompensationError, Is.EqualTo("Compensation of step 'comp-charge' failed: refund failed"));
        Assert.That(_probe.Count(id, "comp-charge", "compensating"), Is.EqualTo(2), "one try and the policy's one retry");
        Assert.That(_probe.Compensated(id), Is.Empty, "reverse order: the reserve is not undone before the charge");

        _probe.ChargeRefundFailures[id] = 0;
        await _client.RetryAsync(id);
        var run = await WaitForStatusAsync(id, WorkflowStatus.Compensated);

        Assert.That(_probe.Compensated(id), Is.EqualTo(new[] { "comp-charge", "comp-reserve" }));
        Assert.That(_probe.Count(id, "comp-ship", "forward"), Is.EqualTo(2), "the retry resumed the compensation, not the forward steps");
        Assert.That(_probe.Count(id, "comp-reserve", "forward"), Is.EqualTo(1));
        Assert.That(run.ExceptionMessage, Is.EqualTo("shipping failed"));
    }

    private async Task<Guid> EnqueueWithRefundFailuresAsync(WorkflowInput input, int failures)
    {
        // The faults are registered under the run id before its job runs: the run is created delayed, then its job enqueued now.
        var id = await _client.EnqueueAsync<CompOrderWorkflow>(input, new EnqueueOptions { Delay = TimeSpan.FromDays(1) });
        _probe.ChargeRefundFailures[id] = failures;
        var jobId = (await _client.GetAsync(id))!.JobId!;
        Assert.That(_host.Services.GetRequiredService<IBackgroundJobClientV2>().Requeue(jobId), Is.True, "the delayed job was enqueued now");
        return id;
    }

    [Test]
    public async Task CancelWithCompensate_CompensatesTheSucceededSteps_AndEndsCompensated()
    {
        var gate = "comp-cancel-" + Guid.NewGuid();
        var gates = _host.Services.GetRequiredService<Gates>();
        var id = await _client.EnqueueAsync<CompHoldWorkflow>(new WorkflowInput(new CompReserveInput(), new CompChargeInput { Amount = 3 }, new WaitInput { Gate = gate }));
        await gates.Entered(gate).Task.WaitAsync(Deadline);

        await _client.CancelAsync(id, new CancelOptions { Compensate = true });
        var run = await WaitForStatusAsync(id, WorkflowStatus.Compensated);

        Assert.That(_probe.Compensated(id), Is.EqualTo(new[] { "comp-charge", "comp-reserve" }));
        Assert.That(run.Steps.Single(s => s.StepName == nameof(WaitStep)).Status, Is.Not.EqualTo(WorkflowStatus.Succeeded), "the step in flight was stopped, not completed");
        Assert.That(run.Steps.Single(s => s.StepName == nameof(WaitStep)).CompensatedAt, Is.Null);
        Assert.That(run.ExceptionMessage, Is.Null);
    }

    [Test]
    public async Task CancelWithCompensate_EndsCompensated_WhenNoStepRanYet()
    {
        var id = await _client.EnqueueAsync<CompHoldWorkflow>(new WorkflowInput(new WaitInput { Gate = "never" }), new EnqueueOptions { Delay = TimeSpan.FromDays(1) });

        await _client.CancelAsync(id, new CancelOptions { Compensate = true });
        var run = await WaitForStatusAsync(id, WorkflowStatus.Compensated);

        Assert.That(run.Steps, Is.Empty, "no forward step ran");
        Assert.That(_probe.For(id), Is.Empty);
    }

    [Test]
    public async Task CancelAsync_WithoutCompensate_KeepsCancelling()
    {
        var id = await _client.EnqueueAsync<CompHoldWorkflow>(new WorkflowInput(new WaitInput { Gate = "never" }), new EnqueueOptions { Delay = TimeSpan.FromDays(1) });

        await _client.CancelAsync(id, new CancelOptions { Compensate = false });

        Assert.That((await _client.GetAsync(id))!.Status, Is.EqualTo(WorkflowStatus.Cancelled));
    }

    [Test]
    public async Task CompensatedRun_NeverRunsForwardSteps_WhenItsJobIsRequeuedOrItIsRetried()
    {
        var id = await _client.EnqueueAsync<CompOrderWorkflow>(Order(nonRetryable: true));
        var run = await WaitForStatusAsync(id, WorkflowStatus.Compensated);
        var entries = _probe.For(id).Count;

        Assert.ThrowsAsync<WorkflowStateException>(() => _client.RetryAsync(id));
        Assert.That(_host.Services.GetRequiredService<IBackgroundJobClientV2>().Requeue(run.JobId!), Is.True);
        var storage = _host.Services.GetRequiredService<JobStorage>();
        await Eventually.UntilAsync(() =>
        {
            using var connection = storage.GetConnection();
            var state = connection.GetStateData(run.JobId!);
            return Task.FromResult(state?.Name == "Succeeded");
        }, Deadline, "the requeued job to end");

        var after = (await _client.GetAsync(id))!;
        Assert.That(after.Status, Is.EqualTo(WorkflowStatus.Compensated));
        Assert.That(_probe.For(id), Has.Count.EqualTo(entries), "no step and no compensation ran again");
        Assert.That(after.Steps.Select(s => s.Attempts), Is.EqualTo(run.Steps.Select(s => s.Attempts)));
    }

    [Test]
    public async Task Compensation_ResumesAtTheFirstUnrecordedCompensation_WhenItsHostDiesMidCompensation()
    {
        // Host 1 blocks the reserve compensation (the second one, in reverse order) until it is shut down.
        var blocking = await StartHostAsync(block: true);
        await _host.StopAsync();
        Guid id;
        try
        {
            id = await blocking.Services.GetRequiredService<IWorkflowClient>().EnqueueAsync<CompOrderWorkflow>(Order(nonRetryable: true));
            await Eventually.UntilAsync(() => Task.FromResult(_probe.ReleaseEntered.ContainsKey(id)), Deadline, "the reserve compensation to start");
            await _probe.ReleaseEntered[id].Task.WaitAsync(Deadline);
            Assert.That((await _client.GetAsync(id))!.Status, Is.EqualTo(WorkflowStatus.Compensating));
        }
        finally
        {
            await blocking.StopAsync();
            blocking.Dispose();
        }

        // Host 2 (no block) picks the run's job up again.
        _host.Dispose();
        _host = await StartHostAsync(block: false);
        _client = _host.Services.GetRequiredService<IWorkflowClient>();
        var run = await WaitForStatusAsync(id, WorkflowStatus.Compensated);

        Assert.That(_probe.Count(id, "comp-charge", "compensating"), Is.EqualTo(1), "the checkpointed compensation did not run again");
        Assert.That(_probe.Count(id, "comp-reserve", "compensating"), Is.EqualTo(2), "the interrupted one ran again");
        Assert.That(_probe.Compensated(id), Is.EqualTo(new[] { "comp-charge", "comp-reserve" }));
        Assert.That(run.Steps.Where(s => s.StepName != "comp-ship").Select(s => s.CompensatedAt), Has.All.Not.Null);
    }
}

/// <summary>Compensation in-process (<see cref="IWorkflowRunner"/>, no job scheduler): a step failure is final at once.</summary>
public class CompensationRunnerTests
{
    private readonly CompensationProbe _probe = new();
    private IHost _host = null!;

    [OneTimeSetUp]
    public async Task OneTimeSetUpAsync()
    {
        var connectionString = await TestDatabases.CreateAsync(nameof(CompensationRunnerTests));
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        builder.Services.AddSingleton(_probe);
        builder.Services.AddSingleton<ExecutionLog>();
        builder.Services.AddSingleton<Gates>();
        builder.Services.AddWorkflowJobs(o => o.UseNpgsql(connectionString)).AddWorkflow<CompOrderWorkflow>();
        _host = builder.Build();
        await _host.StartAsync();
    }

    [OneTimeTearDown]
    public async Task OneTimeTearDownAsync()
    {
        await _host.StopAsync();
        _host.Dispose();
    }

    [Test]
    public async Task ExecuteAsync_CompensatesInTheSameExecution_AndSurfacesTheOriginalFailure()
    {
        var runner = _host.Services.GetRequiredService<IWorkflowRunner>();
        var id = await runner.CreateAsync<CompOrderWorkflow>(new WorkflowInput(new CompReserveInput(), new CompChargeInput { Amount = 2 }, new CompShipInput()));

        var ex = Assert.ThrowsAsync<UnitOfWorkException>(() => runner.ExecuteAsync(id));

        Assert.That(ex!.Message, Is.EqualTo("shipping failed"));
        Assert.That(_probe.Compensated(id), Is.EqualTo(new[] { "comp-charge", "comp-reserve" }), "the steps checkpointed by this execution were undone, last first");
        var run = await _host.Services.GetRequiredService<IWorkflowClient>().GetAsync(id);
        Assert.That(run!.Status, Is.EqualTo(WorkflowStatus.Compensated));
        var again = Assert.ThrowsAsync<UnitOfWorkException>(() => runner.ExecuteAsync(id));
        Assert.That(again!.Code, Is.EqualTo(UnitOfWorkException.RunFinishedCode), "a compensated run never runs again");
        Assert.That(_probe.Count(id, "comp-reserve", "forward"), Is.EqualTo(1));
    }
}
