using System.ComponentModel.DataAnnotations;
using Newtonsoft.Json;

namespace Workflow.Jobs.TestSupport;

[WorkflowKey("sleep_input")]
public sealed class SleepInput : WorkflowData
{
    [JsonProperty("seconds")] public double Seconds { get; set; }
}

[WorkflowKey("sleep_output")]
public sealed class SleepOutput : WorkflowData
{
    [JsonProperty("attempt")] public int Attempt { get; set; }
}

[WorkflowKey("approval_input")]
public sealed class ApprovalInput : WorkflowData
{
    /// <summary>The event wait's timeout in seconds; 0 for none.</summary>
    [JsonProperty("timeout_seconds")] public double TimeoutSeconds { get; set; }
}

/// <summary>The payload of the <c>approved</c> event.</summary>
public sealed class ApprovalEvent : WorkflowData
{
    [JsonProperty("approver"), Required, StringLength(50)] public string Approver { get; set; } = "";
}

[WorkflowKey("approval_output")]
public sealed class ApprovalOutput : WorkflowData
{
    [JsonProperty("approver")] public string Approver { get; set; } = "";
}

[WorkflowKey("collect_input")]
public sealed class CollectInput : WorkflowData
{
    [JsonProperty("count")] public int Count { get; set; }
}

/// <summary>The payload of the <c>item</c> event.</summary>
public sealed class ItemEvent : WorkflowData
{
    [JsonProperty("value")] public int Value { get; set; }
}

[WorkflowKey("collect_output")]
public sealed class CollectOutput : WorkflowData
{
    [JsonProperty("values")] public List<int> Values { get; set; } = [];
}

/// <summary>Sleeps <c>seconds</c> durably (logging every run of its body).</summary>
public sealed class SleepStep(ExecutionLog log) : WorkflowStep<SleepInput, SleepOutput>
{
    protected override async Task<SleepOutput> ProcessInputAsync(SleepInput input, StepContext context, CancellationToken cancellationToken)
    {
        log.Add(context);
        await context.SleepAsync(TimeSpan.FromSeconds(input.Seconds), cancellationToken);
        return new SleepOutput { Attempt = context.Attempt };
    }
}

/// <summary>Waits for the <c>approved</c> event.</summary>
public sealed class ApprovalStep(ExecutionLog log) : WorkflowStep<ApprovalInput, ApprovalOutput>
{
    protected override async Task<ApprovalOutput> ProcessInputAsync(ApprovalInput input, StepContext context, CancellationToken cancellationToken)
    {
        log.Add(context);
        var approval = await context.WaitForEventAsync<ApprovalEvent>("approved",
            input.TimeoutSeconds > 0 ? TimeSpan.FromSeconds(input.TimeoutSeconds) : null, cancellationToken);
        return new ApprovalOutput { Approver = approval.Approver };
    }
}

/// <summary>Waits <c>count</c> times for the <c>item</c> event and returns the values in the order its waits consumed them.</summary>
public sealed class CollectStep(ExecutionLog log) : WorkflowStep<CollectInput, CollectOutput>
{
    protected override async Task<CollectOutput> ProcessInputAsync(CollectInput input, StepContext context, CancellationToken cancellationToken)
    {
        log.Add(context);
        var values = new List<int>();
        for (var i = 0; i < input.Count; i++)
        {
            values.Add((await context.WaitForEventAsync<ItemEvent>("item", cancellationToken: cancellationToken)).Value);
        }

        return new CollectOutput { Values = values };
    }
}

[WorkflowName("sleep-then-square")]
public sealed class SleepThenSquareWorkflow : WorkflowDefinition
{
    public override IReadOnlyList<Type> Steps => [typeof(AddStep), typeof(SleepStep), typeof(SquareStep)];
}

[WorkflowName("approval")]
public sealed class ApprovalWorkflow : WorkflowDefinition
{
    public override IReadOnlyList<Type> Steps => [typeof(AddStep), typeof(ApprovalStep)];

    public override IReadOnlyDictionary<string, Type> Events => new Dictionary<string, Type> { ["approved"] = typeof(ApprovalEvent) };
}

[WorkflowName("collect")]
public sealed class CollectWorkflow : WorkflowDefinition
{
    public override IReadOnlyList<Type> Steps => [typeof(CollectStep)];
}
