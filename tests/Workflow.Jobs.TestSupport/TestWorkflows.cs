using System.Collections.Concurrent;
using Newtonsoft.Json;

namespace Workflow.Jobs.TestSupport;

[WorkflowKey("test_step_input")]
public sealed class AddInput : WorkflowData
{
    [JsonProperty("argument_1"), System.ComponentModel.DataAnnotations.Range(0, 1_000_000)] public int Argument1 { get; set; }
    [JsonProperty("argument_2")] public int Argument2 { get; set; }
}

[WorkflowKey("test_step_output")]
public sealed class AddOutput : WorkflowData
{
    [JsonProperty("result")] public int Result { get; set; }
}

[WorkflowKey("square_input")]
public sealed class SquareInput : WorkflowData
{
    [JsonProperty("offset")] public int Offset { get; set; }
}

[WorkflowKey("square_output")]
public sealed class SquareOutput : WorkflowData
{
    [JsonProperty("result")] public int Result { get; set; }
}

[WorkflowKey("fail_input")]
public sealed class FailInput : WorkflowData
{
    [JsonProperty("fail_times")] public int FailTimes { get; set; }
    [JsonProperty("non_retryable")] public bool NonRetryable { get; set; }
}

[WorkflowKey("fail_output")]
public sealed class FailOutput : WorkflowData
{
    [JsonProperty("attempt")] public int Attempt { get; set; }
}

[WorkflowKey("wait_input")]
public sealed class WaitInput : WorkflowData
{
    [JsonProperty("gate")] public string Gate { get; set; } = "";
}

[WorkflowKey("wait_output")]
public sealed class WaitOutput : WorkflowData;

/// <summary>Every step execution of one host, in order (per host, not static).</summary>
public sealed class ExecutionLog
{
    private readonly ConcurrentQueue<(Guid Run, string Step, int Attempt, Guid StepId)> _entries = new();

    public void Add(StepContext context) => _entries.Enqueue((context.WorkflowId, context.StepName, context.Attempt, context.StepId));

    public IReadOnlyList<(Guid Run, string Step, int Attempt, Guid StepId)> For(Guid run) => _entries.Where(e => e.Run == run).ToList();

    public int Count(Guid run, string step) => _entries.Count(e => e.Run == run && e.Step == step);

    public int Total => _entries.Count;

    private readonly ConcurrentDictionary<Guid, int> _active = new();
    private readonly ConcurrentDictionary<Guid, int> _maxActive = new();

    /// <summary>Marks a step body of the run as executing until disposed; tracks the most at once.</summary>
    public IDisposable Enter(Guid run)
    {
        var now = _active.AddOrUpdate(run, 1, (_, n) => n + 1);
        _maxActive.AddOrUpdate(run, now, (_, max) => Math.Max(max, now));
        return new Exit(() => _active.AddOrUpdate(run, 0, (_, n) => n - 1));
    }

    /// <summary>The most step bodies of the run that executed at the same time.</summary>
    public int MaxConcurrent(Guid run) => _maxActive.GetValueOrDefault(run);

    private sealed class Exit(Action action) : IDisposable
    {
        public void Dispose() => action();
    }
}

/// <summary>Named gates that a <see cref="WaitStep"/> blocks on until a test opens them.</summary>
public sealed class Gates
{
    private readonly ConcurrentDictionary<string, TaskCompletionSource> _gates = new();
    private readonly ConcurrentDictionary<string, TaskCompletionSource> _entered = new();

    public TaskCompletionSource Gate(string name) => _gates.GetOrAdd(name, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));

    public TaskCompletionSource Entered(string name) => _entered.GetOrAdd(name, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));

    public void Open(string name) => Gate(name).TrySetResult();
}

public sealed class AddStep(ExecutionLog log) : WorkflowStep<AddInput, AddOutput>
{
    protected override Task<AddOutput> ProcessInputAsync(AddInput input, StepContext context, CancellationToken cancellationToken)
    {
        log.Add(context);
        return Task.FromResult(new AddOutput { Result = input.Argument1 + input.Argument2 });
    }
}

public sealed class SquareStep(ExecutionLog log) : WorkflowStep<SquareInput, SquareOutput>
{
    protected override Task<SquareOutput> ProcessInputAsync(SquareInput input, StepContext context, CancellationToken cancellationToken)
    {
        log.Add(context);
        var value = context.AccumulatedOutput.Get<AddOutput>()!.Result + input.Offset;
        return Task.FromResult(new SquareOutput { Result = value * value });
    }
}

/// <summary>Fails its first <c>fail_times</c> attempts with "this step failed".</summary>
public sealed class FailStep(ExecutionLog log) : WorkflowStep<FailInput, FailOutput>
{
    protected override Task<FailOutput> ProcessInputAsync(FailInput input, StepContext context, CancellationToken cancellationToken)
    {
        log.Add(context);
        if (context.Attempt <= input.FailTimes)
        {
            if (input.NonRetryable)
            {
                throw new NonRetryableException("this step failed for good");
            }

            throw new InvalidOperationException("this step failed");
        }

        return Task.FromResult(new FailOutput { Attempt = context.Attempt });
    }
}

/// <summary>Signals that it entered, then waits for its gate (or cancellation).</summary>
public sealed class WaitStep(ExecutionLog log, Gates gates) : WorkflowStep<WaitInput, WaitOutput>
{
    protected override async Task<WaitOutput> ProcessInputAsync(WaitInput input, StepContext context, CancellationToken cancellationToken)
    {
        log.Add(context);
        using var executing = log.Enter(context.WorkflowId);
        gates.Entered(input.Gate).TrySetResult();
        await gates.Gate(input.Gate).Task.WaitAsync(cancellationToken);
        return new WaitOutput();
    }
}

[WorkflowName("add")]
public sealed class AddWorkflow : WorkflowDefinition
{
    public override IReadOnlyList<Type> Steps { get; } = [typeof(AddStep)];
}

[WorkflowName("add-then-square")]
public sealed class AddThenSquareWorkflow : WorkflowDefinition
{
    public override IReadOnlyList<Type> Steps { get; } = [typeof(AddStep), typeof(SquareStep)];
}

[WorkflowName("add-fail-square")]
public sealed class AddFailSquareWorkflow : WorkflowDefinition
{
    public override IReadOnlyList<Type> Steps { get; } = [typeof(AddStep), typeof(FailStep), typeof(SquareStep)];

    public override WorkflowRetryPolicy? Retry { get; } = new() { Attempts = 3, DelaysInSeconds = [0] };
}

[WorkflowName("add-wait-square")]
public sealed class AddWaitSquareWorkflow : WorkflowDefinition
{
    public override IReadOnlyList<Type> Steps { get; } = [typeof(AddStep), typeof(WaitStep), typeof(SquareStep)];
}

[WorkflowName("no-retry")]
public sealed class NoRetryWorkflow : WorkflowDefinition
{
    public override IReadOnlyList<Type> Steps { get; } = [typeof(AddStep), typeof(FailStep)];

    public override WorkflowRetryPolicy? Retry { get; } = new() { Attempts = 1, DelaysInSeconds = [0] };
}

[WorkflowName("slow-retry")]
public sealed class SlowRetryWorkflow : WorkflowDefinition
{
    public override IReadOnlyList<Type> Steps { get; } = [typeof(FailStep)];

    public override WorkflowRetryPolicy? Retry { get; } = new() { Attempts = 2, DelaysInSeconds = [3600] };
}
