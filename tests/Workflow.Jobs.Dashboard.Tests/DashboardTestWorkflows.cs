using System.Collections.Concurrent;
using Newtonsoft.Json;

namespace Workflow.Jobs.Dashboard.Tests;

[WorkflowKey("dashboard_greet_input")]
public sealed class GreetInput : WorkflowData
{
    [JsonProperty("name")] public string Name { get; set; } = "world";
}

[WorkflowKey("dashboard_greet_output")]
public sealed class GreetOutput : WorkflowData
{
    [JsonProperty("greeting")] public string Greeting { get; set; } = "";
}

[WorkflowKey("dashboard_flaky_input")]
public sealed class FlakyInput : WorkflowData
{
    /// <summary>The step fails until the test releases this key.</summary>
    [JsonProperty("release_key")] public string ReleaseKey { get; set; } = "";
}

[WorkflowKey("dashboard_flaky_output")]
public sealed class FlakyOutput : WorkflowData
{
    [JsonProperty("attempt")] public int Attempt { get; set; }
}

[WorkflowKey("dashboard_finish_input")]
public sealed class FinishInput : WorkflowData;

[WorkflowKey("dashboard_finish_output")]
public sealed class FinishOutput : WorkflowData
{
    [JsonProperty("done")] public bool Done { get; set; }
}

/// <summary>Keys released by a test; a <see cref="FlakyStep"/> fails until its key is released (one per host, not static).</summary>
public sealed class FailureSwitch
{
    private readonly ConcurrentDictionary<string, bool> _released = new(StringComparer.Ordinal);

    public void Release(string key) => _released[key] = true;

    public bool IsReleased(string key) => _released.ContainsKey(key);
}

public sealed class GreetStep : WorkflowStep<GreetInput, GreetOutput>
{
    protected override Task<GreetOutput> ProcessInputAsync(GreetInput input, StepContext context, CancellationToken cancellationToken)
        => Task.FromResult(new GreetOutput { Greeting = "Hello, " + input.Name });
}

public sealed class FlakyStep(FailureSwitch failures) : WorkflowStep<FlakyInput, FlakyOutput>
{
    public const string Message = "the flaky service is down";

    protected override Task<FlakyOutput> ProcessInputAsync(FlakyInput input, StepContext context, CancellationToken cancellationToken)
    {
        if (!failures.IsReleased(input.ReleaseKey))
        {
            throw new InvalidOperationException(Message);
        }

        return Task.FromResult(new FlakyOutput { Attempt = context.Attempt });
    }
}

public sealed class FinishStep : WorkflowStep<FinishInput, FinishOutput>
{
    protected override Task<FinishOutput> ProcessInputAsync(FinishInput input, StepContext context, CancellationToken cancellationToken)
        => Task.FromResult(new FinishOutput { Done = true });
}

/// <summary>Two steps that always succeed.</summary>
[WorkflowName("dashboard-hello")]
public sealed class HelloWorkflow : WorkflowDefinition
{
    public override IReadOnlyList<Type> Steps { get; } = [typeof(GreetStep), typeof(FinishStep)];
}

/// <summary>Three steps; the second fails until released. No automatic retries, so a failure is final until an operator retries.</summary>
[WorkflowName("dashboard-flaky")]
public sealed class FlakyWorkflow : WorkflowDefinition
{
    public override IReadOnlyList<Type> Steps { get; } = [typeof(GreetStep), typeof(FlakyStep), typeof(FinishStep)];

    public override WorkflowRetryPolicy? Retry { get; } = new() { Attempts = 0, DelaysInSeconds = [0] };
}

/// <summary>The payload of the <c>approval</c> event.</summary>
public sealed class ApprovalPayload : WorkflowData
{
    [JsonProperty("approver"), System.ComponentModel.DataAnnotations.Required, System.ComponentModel.DataAnnotations.StringLength(50, MinimumLength = 1)]
    public string Approver { get; set; } = "";
}

[WorkflowKey("dashboard_approved_output")]
public sealed class ApprovedOutput : WorkflowData
{
    [JsonProperty("approver")] public string Approver { get; set; } = "";
}

/// <summary>Waits for the <c>approval</c> event.</summary>
public sealed class AwaitApprovalStep : WorkflowStep<GreetInput, ApprovedOutput>
{
    protected override async Task<ApprovedOutput> ProcessInputAsync(GreetInput input, StepContext context, CancellationToken cancellationToken)
        => new() { Approver = (await context.WaitForEventAsync<ApprovalPayload>("approval", cancellationToken: cancellationToken)).Approver };
}

[WorkflowName("dashboard-approval")]
public sealed class ApprovalWorkflow : WorkflowDefinition
{
    public override IReadOnlyList<Type> Steps => [typeof(AwaitApprovalStep)];
}

[WorkflowKey("dashboard_greet_all_input")]
public sealed class GreetAllInput : WorkflowData
{
    [JsonProperty("names")] public List<string> Names { get; set; } = [];
}

[WorkflowKey("dashboard_greet_all_output")]
public sealed class GreetAllOutput : WorkflowData
{
    [JsonProperty("greetings")] public List<string> Greetings { get; set; } = [];
}

/// <summary>Greets each name in a child run of <see cref="HelloWorkflow"/>.</summary>
public sealed class GreetAllStep : WorkflowStep<GreetAllInput, GreetAllOutput>
{
    protected override async Task<GreetAllOutput> ProcessInputAsync(GreetAllInput input, StepContext context, CancellationToken cancellationToken)
    {
        var outputs = await context.RunChildrenAsync<HelloWorkflow>(input.Names.Select(n => new WorkflowInput(new GreetInput { Name = n })).ToList(), cancellationToken);
        return new GreetAllOutput { Greetings = outputs.Select(o => o.Get<GreetOutput>()!.Greeting).ToList() };
    }
}

[WorkflowName("greet-all")]
public sealed class GreetAllWorkflow : WorkflowDefinition
{
    public override IReadOnlyList<Type> Steps => [typeof(GreetAllStep)];
}
