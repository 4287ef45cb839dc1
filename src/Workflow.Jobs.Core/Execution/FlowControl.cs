namespace Workflow.Jobs;

/// <summary>The flow-control groups a run can wait for a slot of.</summary>
internal enum SlotGroup
{
    /// <summary>No group (admitted).</summary>
    None = 0,

    /// <summary>The runs of the workflow (<see cref="WorkflowDefinition.MaxConcurrency"/>).</summary>
    Workflow,

    /// <summary>The runs of the workflow with the same concurrency key (<see cref="WorkflowDefinition.MaxConcurrencyPerKey"/>).</summary>
    Key,
}

/// <summary>What an execution asks of flow control.</summary>
/// <param name="WorkflowName">The run's workflow.</param>
/// <param name="ConcurrencyKey">The run's key (null: the per-key limit does not apply).</param>
/// <param name="MaxConcurrency">The workflow's limit, if any.</param>
/// <param name="MaxConcurrencyPerKey">The per-key limit, if any and the run has a key.</param>
/// <param name="Created">The run's creation time (its place in the queue).</param>
/// <param name="Offered">Whether the run was offered a freed slot (only older runs still waiting come before it).</param>
internal sealed record SlotRequest(string WorkflowName, string? ConcurrencyKey, int? MaxConcurrency, int? MaxConcurrencyPerKey, DateTimeOffset Created, bool Offered)
{
    /// <summary>Only the slots count, not the queue (an in-process execution, which waits for a slot instead of parking).</summary>
    public bool IgnoreQueue { get; init; }
}

/// <summary>What admission decided.</summary>
/// <param name="Admitted">Whether the run holds a slot of each of its groups.</param>
/// <param name="BlockedOn">When not admitted, the group it waits for (an older run queued first, or every slot held).</param>
internal sealed record SlotAdmission(bool Admitted, SlotGroup BlockedOn)
{
    public static SlotAdmission Yes { get; } = new(true, SlotGroup.None);
}

/// <summary>Flow control's names and rules.</summary>
internal static class FlowControl
{
    /// <summary>The <c>waiting_for</c> of a run waiting for a slot.</summary>
    public const string WaitingFor = "concurrency";

    /// <summary>The largest limit a definition may set.</summary>
    public const int MaxLimit = 10_000;

    /// <summary>The longest concurrency key.</summary>
    public const int MaxKeyLength = 200;

    /// <summary>Checks an enqueue's concurrency key: 1 to 200 characters, not blank, no NUL (error path <c>concurrency_key</c>).</summary>
    public static void ValidateKey(string? key)
    {
        if (key is null)
        {
            return;
        }

        if (key.Trim().Length == 0 || key.Length > MaxKeyLength || key.Contains('\0', StringComparison.Ordinal))
        {
            throw new WorkflowDataValidationException([new WorkflowDataError("concurrency_key", $"A concurrency key is 1 to {MaxKeyLength} characters, not blank, without NUL.")]);
        }
    }

    /// <summary>The slot request of a run of <paramref name="workflow"/>, or null when no limit applies to it.</summary>
    public static SlotRequest? RequestFor(WorkflowDescriptor workflow, RunRecord run)
    {
        var perKey = run.ConcurrencyKey is null ? null : workflow.MaxConcurrencyPerKey;
        if (workflow.MaxConcurrency is null && perKey is null)
        {
            return null;
        }

        return new SlotRequest(workflow.Name, run.ConcurrencyKey, workflow.MaxConcurrency, perKey, run.Created, Offered: run.WaitingFor == WaitingFor);
    }
}
