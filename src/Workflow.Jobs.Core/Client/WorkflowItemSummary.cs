namespace Workflow.Jobs;

/// <summary>
/// The fan-out items of a step (<see cref="StepContext.ForEachAsync{TItem, TResult}(IReadOnlyList{TItem}, Func{TItem, CancellationToken, Task{TResult}}, ForEachOptions?, CancellationToken)"/>),
/// counted over all its fan-out calls.
/// </summary>
public sealed record WorkflowItemSummary
{
    /// <summary>How many items the step's fan-outs have.</summary>
    public required int Total { get; init; }

    /// <summary>Items whose result is checkpointed (never run again).</summary>
    public required int Succeeded { get; init; }

    /// <summary>Items whose last run failed (run again when the step is retried).</summary>
    public required int Failed { get; init; }

    /// <summary>Items not finished yet: neither succeeded nor failed.</summary>
    public int Pending => Total - Succeeded - Failed;

    /// <summary>How many fan-out calls the step made.</summary>
    public int Calls { get; init; } = 1;
}
