namespace Workflow.Jobs;

/// <summary>Options of <see cref="StepContext.ForEachAsync{TItem, TResult}(IReadOnlyList{TItem}, Func{TItem, CancellationToken, Task{TResult}}, ForEachOptions?, CancellationToken)"/>.</summary>
public sealed record ForEachOptions
{
    private readonly int _maxDegreeOfParallelism = 4;

    /// <summary>How many item bodies run at once, at least 1. Default 4.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is less than 1.</exception>
    public int MaxDegreeOfParallelism
    {
        get => _maxDegreeOfParallelism;
        init => _maxDegreeOfParallelism = value >= 1
            ? value
            : throw new ArgumentOutOfRangeException(nameof(MaxDegreeOfParallelism), value, $"ForEachOptions.MaxDegreeOfParallelism must be at least 1 but was {value}.");
    }
}
