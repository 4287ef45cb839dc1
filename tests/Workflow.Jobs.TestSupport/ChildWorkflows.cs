using Newtonsoft.Json;

namespace Workflow.Jobs.TestSupport;

[WorkflowKey("child_item_input")]
public sealed class ChildItemInput : WorkflowData
{
    [JsonProperty("value"), System.ComponentModel.DataAnnotations.Range(0, 1_000_000)] public int Value { get; set; }

    /// <summary>The child fails for good (no retries) when set.</summary>
    [JsonProperty("fail")] public bool Fail { get; set; }

    /// <summary>A gate (<see cref="Gates"/>) the child waits for; empty for none.</summary>
    [JsonProperty("gate")] public string Gate { get; set; } = "";
}

[WorkflowKey("child_item_output")]
public sealed class ChildItemOutput : WorkflowData
{
    [JsonProperty("doubled")] public int Doubled { get; set; }
}

[WorkflowKey("parent_fan_out_input")]
public sealed class ParentFanOutInput : WorkflowData
{
    [JsonProperty("count"), System.ComponentModel.DataAnnotations.Range(0, 100_000)] public int Count { get; set; }

    /// <summary>The index of the child that fails; -1 for none.</summary>
    [JsonProperty("fail_index")] public int FailIndex { get; set; } = -1;

    /// <summary>A gate every child waits for; empty for none.</summary>
    [JsonProperty("gate")] public string Gate { get; set; } = "";
}

[WorkflowKey("parent_fan_out_output")]
public sealed class ParentFanOutOutput : WorkflowData
{
    [JsonProperty("doubled")] public List<int> Doubled { get; set; } = [];
}

/// <summary>Doubles its value (logging every run of its body); fails for good or waits for a gate when asked.</summary>
public sealed class ChildItemStep(ExecutionLog log, Gates gates) : WorkflowStep<ChildItemInput, ChildItemOutput>
{
    protected override async Task<ChildItemOutput> ProcessInputAsync(ChildItemInput input, StepContext context, CancellationToken cancellationToken)
    {
        log.Add(context);
        if (input.Gate.Length > 0)
        {
            gates.Entered(input.Gate + ":" + input.Value).TrySetResult();
            await gates.Gate(input.Gate).Task.WaitAsync(cancellationToken);
        }

        if (input.Fail)
        {
            throw new NonRetryableException($"child {input.Value} failed");
        }

        return new ChildItemOutput { Doubled = input.Value * 2 };
    }
}

/// <summary>Runs one child per value 0..count-1 and returns their outputs in input order.</summary>
public sealed class ParentFanOutStep(ExecutionLog log) : WorkflowStep<ParentFanOutInput, ParentFanOutOutput>
{
    protected override async Task<ParentFanOutOutput> ProcessInputAsync(ParentFanOutInput input, StepContext context, CancellationToken cancellationToken)
    {
        log.Add(context);
        var inputs = Enumerable.Range(0, input.Count)
            .Select(i => new WorkflowInput(new ChildItemInput { Value = i, Fail = i == input.FailIndex, Gate = input.Gate }))
            .ToList();
        var outputs = await context.RunChildrenAsync<ChildItemWorkflow>(inputs, cancellationToken);
        return new ParentFanOutOutput { Doubled = outputs.Select(o => o.Get<ChildItemOutput>()!.Doubled).ToList() };
    }
}

[WorkflowName("child-item")]
public sealed class ChildItemWorkflow : WorkflowDefinition
{
    public override IReadOnlyList<Type> Steps => [typeof(ChildItemStep)];
}

[WorkflowName("parent-fan-out")]
public sealed class ParentFanOutWorkflow : WorkflowDefinition
{
    public override IReadOnlyList<Type> Steps => [typeof(ParentFanOutStep)];
}
