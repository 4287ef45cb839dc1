namespace Workflow.Jobs;

/// <summary>
/// How long finished runs are kept (<see cref="WorkflowJobsOptions.Retention"/>): a recurring maintenance job
/// hard-deletes runs that finished (last changed) longer ago than the age of their status, with their steps, in
/// batches. A null age keeps those runs forever; an unfinished run is never deleted.
/// </summary>
public sealed class WorkflowRetention
{
    /// <summary>Age after which Succeeded runs are deleted.</summary>
    public TimeSpan? SucceededFor { get; set; }

    /// <summary>Age after which Failed runs are deleted.</summary>
    public TimeSpan? FailedFor { get; set; }

    /// <summary>Age after which Cancelled runs are deleted.</summary>
    public TimeSpan? CancelledFor { get; set; }

    /// <summary>Age after which Compensated runs are deleted.</summary>
    public TimeSpan? CompensatedFor { get; set; }

    /// <summary>When the maintenance job runs (a Hangfire cron expression). Default every 10 minutes.</summary>
    public string Cron { get; set; } = "*/10 * * * *";

    /// <summary>The ages by status (only those set).</summary>
    internal IEnumerable<(WorkflowStatus Status, TimeSpan Age)> Ages()
    {
        if (SucceededFor is { } succeeded) yield return (WorkflowStatus.Succeeded, succeeded);
        if (FailedFor is { } failed) yield return (WorkflowStatus.Failed, failed);
        if (CancelledFor is { } cancelled) yield return (WorkflowStatus.Cancelled, cancelled);
        if (CompensatedFor is { } compensated) yield return (WorkflowStatus.Compensated, compensated);
    }

    internal void Validate()
    {
        if (Ages().Any(a => a.Age < TimeSpan.Zero))
        {
            throw new InvalidOperationException($"{nameof(WorkflowJobsOptions)}.{nameof(WorkflowJobsOptions.Retention)}: ages must not be negative.");
        }

        if (string.IsNullOrWhiteSpace(Cron))
        {
            throw new InvalidOperationException($"{nameof(WorkflowJobsOptions)}.{nameof(WorkflowJobsOptions.Retention)}.{nameof(Cron)} is required.");
        }
    }
}
