namespace Workflow.Jobs;

/// <summary>
/// Periodic work that one host at a time does for every host on the same database (creating jobs left
/// behind by the outbox, requeueing dead executions, waking runs waiting for a slot, retention).
/// The leader loop calls every registered task about once a second while it holds leadership, when the
/// loop's probe says the task has something to do.
/// </summary>
internal interface IWorkflowLeaderTask
{
    /// <summary>A short name for logs.</summary>
    string Name { get; }

    /// <summary>
    /// Whether this tick's pass is needed, from what the loop's probe found (one query per tick for all tasks,
    /// so that an idle database costs about one statement a tick). A task that skips a pass forgets what it
    /// tracked between passes. Called inside the loop's error handling: a throw is logged like a failed pass.
    /// </summary>
    bool IsNeeded(WorkflowLeaderSignals signals) => true;

    /// <summary>Does one pass of the work; cheap when there is nothing to do.</summary>
    Task RunOnceAsync(CancellationToken cancellationToken);
}

/// <summary>What the leader loop's probe found at one tick (one statement on the leader's own connection).</summary>
/// <param name="OldestJobRequest">When the oldest job write still recorded on a run (the outbox's work) was recorded; null when there is none.</param>
/// <param name="RunsRunning">Whether any run is Running or Compensating (the recovery of dead executions looks only then).</param>
/// <param name="RunsWaitingForSlots">Whether any run waits for a flow-control slot.</param>
internal sealed record WorkflowLeaderSignals(DateTimeOffset? OldestJobRequest, bool RunsRunning, bool RunsWaitingForSlots)
{
    /// <summary>Every task's pass: used when the probe itself failed on a live connection.</summary>
    public static WorkflowLeaderSignals All { get; } = new(DateTimeOffset.MinValue, RunsRunning: true, RunsWaitingForSlots: true);
}
