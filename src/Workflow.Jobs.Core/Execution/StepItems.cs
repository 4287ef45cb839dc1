using Newtonsoft.Json.Linq;

namespace Workflow.Jobs;

/// <summary>A finished fan-out item to checkpoint: its result (succeeded) or its error (failed).</summary>
/// <param name="Index">The item's index in its fan-out.</param>
/// <param name="Output">The result as JSON (a JSON null for a null result) when the item succeeded.</param>
/// <param name="Error">The error message when the item failed (then <paramref name="Output"/> is null).</param>
internal sealed record ItemOutcome(int Index, JToken? Output, string? Error)
{
    public bool Succeeded => Error is null;
}

/// <summary>What a fan-out call found recorded: its item count and the results of its succeeded items by index.</summary>
internal sealed record ItemCallState(int Count, IReadOnlyDictionary<int, JToken> Results);

/// <summary>A fan-out item as the run page lists it.</summary>
internal sealed record WorkflowStepItem(int Call, int Index, WorkflowStatus Status, string? ExceptionMessage, int? Attempt, DateTimeOffset? FinishedAt);

/// <summary>The item checkpoints of one step execution: what the step context's fan-outs write through.</summary>
internal sealed class RunExecutionStepItems(IRunExecution execution, Guid stepId, int attempt, TimeProvider time)
{
    public Guid StepId => stepId;

    public Task<ItemCallState> BeginAsync(int call, int count, CancellationToken cancellationToken)
        => execution.BeginItemsAsync(stepId, call, count, time.GetUtcNow(), cancellationToken);

    public Task SaveAsync(int call, IReadOnlyList<ItemOutcome> outcomes, CancellationToken cancellationToken)
        => execution.SaveItemsAsync(stepId, call, outcomes, attempt, time.GetUtcNow(), cancellationToken);
}
