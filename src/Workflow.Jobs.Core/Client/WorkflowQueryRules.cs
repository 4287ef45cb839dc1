namespace Workflow.Jobs;

/// <summary>
/// Checks a <see cref="WorkflowQuery"/> before any of it reaches SQL: paging bounds, defined statuses, and no text
/// PostgreSQL would refuse (NUL characters). Each error names the property.
/// </summary>
internal static class WorkflowQueryRules
{
    public const int MaxErrorContainsLength = 500;

    /// <summary>Throws <see cref="ArgumentException"/> (or <see cref="ArgumentOutOfRangeException"/>) naming the first bad property.</summary>
    public static void Validate(WorkflowQuery query, string parameterName = "query")
    {
        ArgumentNullException.ThrowIfNull(query, parameterName);
        if (query.Limit is < 1 or > 1000)
        {
            throw new ArgumentOutOfRangeException(parameterName, query.Limit, "WorkflowQuery.Limit must be between 1 and 1000.");
        }

        if (query.Offset < 0)
        {
            throw new ArgumentOutOfRangeException(parameterName, query.Offset, "WorkflowQuery.Offset must not be negative.");
        }

        ValidateFilters(query, parameterName);
    }

    /// <summary>The filter checks alone (for operations without paging, such as counts and bulk actions).</summary>
    public static void ValidateFilters(WorkflowQuery query, string parameterName = "query")
    {
        ArgumentNullException.ThrowIfNull(query, parameterName);
        if (query.Status is { } status && !Enum.IsDefined(status))
        {
            throw new ArgumentOutOfRangeException(parameterName, status, "WorkflowQuery.Status is not a defined WorkflowStatus.");
        }

        Text(query.WorkflowName, nameof(WorkflowQuery.WorkflowName), parameterName);
        Text(query.RecurringId, nameof(WorkflowQuery.RecurringId), parameterName);
        Text(query.IdempotencyKey, nameof(WorkflowQuery.IdempotencyKey), parameterName);
        Text(query.ConcurrencyKey, nameof(WorkflowQuery.ConcurrencyKey), parameterName);
        Text(query.ErrorContains, nameof(WorkflowQuery.ErrorContains), parameterName);
        if (query.ErrorContains is { Length: > MaxErrorContainsLength })
        {
            throw new ArgumentException($"WorkflowQuery.ErrorContains has at most {MaxErrorContainsLength} characters.", parameterName);
        }

        if (query.Tags is { } tags && WorkflowTags.FilterError(tags) is { } tagError)
        {
            throw new ArgumentException(tagError, parameterName);
        }
    }

    private static void Text(string? value, string property, string parameterName)
    {
        if (!WorkflowStatusText.IsStorable(value))
        {
            throw new ArgumentException($"WorkflowQuery.{property} contains a NUL character, which PostgreSQL cannot compare.", parameterName);
        }
    }
}
