namespace Workflow.Jobs;

/// <summary>
/// Periodic work that one host at a time does for every host on the same database (creating jobs left
/// behind by the outbox, requeueing dead executions, waking runs waiting for a slot, retention).
/// The leader loop calls every registered task about once a second while it holds leadership.
/// </summary>
internal interface IWorkflowLeaderTask
{
    /// <summary>A short name for logs.</summary>
    string Name { get; }

    /// <summary>Does one pass of the work; cheap when there is nothing to do.</summary>
    Task RunOnceAsync(CancellationToken cancellationToken);
}
