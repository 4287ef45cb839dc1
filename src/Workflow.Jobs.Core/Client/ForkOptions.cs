using Newtonsoft.Json.Linq;

namespace Workflow.Jobs;

/// <summary>How <see cref="IWorkflowClient.ForkAsync"/> starts a new run from an existing one.</summary>
public sealed record ForkOptions
{
    /// <summary>
    /// The step (persisted name) to start from; the steps before it are copied from the original run, which
    /// must have succeeded them. Default: the first step that did not succeed in the original run.
    /// </summary>
    public string? FromStep { get; init; }

    /// <summary>
    /// Parts of the composite input (by input key) that replace the original's; the result is validated like
    /// an enqueue. Null keeps the original input.
    /// </summary>
    public JObject? Input { get; init; }

    /// <summary>Options of the new run (idempotency key, queue, delay).</summary>
    public EnqueueOptions? Enqueue { get; init; }
}
