namespace Workflow.Jobs;

/// <summary>The bulk actions over a filter (the dashboard runs them as a Hangfire job).</summary>
internal enum WorkflowBulkAction
{
    /// <summary>Retry every Failed or Cancelled run.</summary>
    Retry,

    /// <summary>Cancel every unfinished or Failed run.</summary>
    Cancel,

    /// <summary>Hard-delete every finished run.</summary>
    Purge,
}
