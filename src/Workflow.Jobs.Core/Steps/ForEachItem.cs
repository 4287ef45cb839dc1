namespace Workflow.Jobs;

/// <summary>One item of a fan-out as its body sees it: the item, its position and its stable idempotency key.</summary>
/// <typeparam name="TItem">The item type.</typeparam>
public sealed record ForEachItem<TItem>
{
    /// <summary>Creates an item context (the step context does; tests of a body may too).</summary>
    public ForEachItem(int index, TItem item, string idempotencyKey, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentException.ThrowIfNullOrEmpty(idempotencyKey);
        Index = index;
        Item = item;
        IdempotencyKey = idempotencyKey;
        CancellationToken = cancellationToken;
    }

    /// <summary>The item's position in the list given to the fan-out (0-based).</summary>
    public int Index { get; }

    /// <summary>The item.</summary>
    public TItem Item { get; }

    /// <summary>
    /// The same on every run of the step (step id, fan-out call number and item index, as
    /// <c>{StepId}:{call}:{index}</c>): use it as the idempotency key of the item's external calls.
    /// </summary>
    public string IdempotencyKey { get; }

    /// <summary>Cancelled when the step is cancelled (shutdown, run cancelled, guard lost) or a checkpoint cannot be written.</summary>
    public CancellationToken CancellationToken { get; }
}
