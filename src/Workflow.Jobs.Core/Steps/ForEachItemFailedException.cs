namespace Workflow.Jobs;

/// <summary>
/// Thrown by a fan-out when items failed (after every other item has run and been checkpointed). The message names
/// the failed item's index; the inner exception is that item's error (a final one first, so a
/// <see cref="NonRetryableException"/> of any item makes the step's failure final).
/// </summary>
public sealed class ForEachItemFailedException : Exception
{
    /// <summary>Creates the exception.</summary>
    public ForEachItemFailedException() { }

    /// <summary>Creates the exception.</summary>
    public ForEachItemFailedException(string message) : base(message) { }

    /// <summary>Creates the exception.</summary>
    public ForEachItemFailedException(string message, Exception? innerException) : base(message, innerException) { }

    /// <summary>The index of the item whose error is the inner exception.</summary>
    public int Index { get; init; }

    /// <summary>The indexes of every item that failed, ascending.</summary>
    public IReadOnlyList<int> FailedIndexes { get; init; } = [];

    /// <summary>How many items the fan-out had.</summary>
    public int ItemCount { get; init; }
}
