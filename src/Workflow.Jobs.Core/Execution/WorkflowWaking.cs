namespace Workflow.Jobs;

/// <summary>
/// The one way to wake a Waiting run from outside its execution (an event, and later a freed concurrency slot or the
/// last child finishing): the <see cref="RunOperation.Wake"/> transition (Waiting → Pending, its waits marked woken)
/// records a <see cref="JobRequestKind.Wake"/> job write in the same transaction; the write (the job moved from
/// Scheduled to Enqueued) follows the commit, and the outbox does it if this process dies first.
/// </summary>
internal sealed class WorkflowWaker(IWorkflowStore store, WorkflowJobRequests jobs, TimeProvider time)
{
    /// <summary>Wakes the run if it is Waiting; false when it is not (already woken, finished, missing).</summary>
    public async Task<bool> WakeAsync(Guid runId, CancellationToken cancellationToken)
    {
        var change = await store.TransitionAsync(runId, RunOperation.Wake, time.GetUtcNow(), message: null, JobRequestKind.Wake, cancellationToken)
            .ConfigureAwait(false);
        if (change is null)
        {
            return false;
        }

        if (change.Request is { } request)
        {
            await jobs.AfterCommitAsync(request, cancellationToken).ConfigureAwait(false);
        }

        return true;
    }
}

/// <summary>The leader loop's count of Waiting runs by workflow, for the <c>workflow.runs.waiting</c> gauge (about every 15 s).</summary>
internal sealed class WorkflowWaitingMetricsTask(IWorkflowStore store, WorkflowMetrics metrics, TimeProvider time) : IWorkflowLeaderTask
{
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(15);
    private DateTimeOffset _next;

    public string Name => "waiting-metrics";

    public async Task RunOnceAsync(CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        if (now < _next)
        {
            return;
        }

        _next = now + Interval;
        metrics.SetWaiting(await store.CountWaitingRunsAsync(cancellationToken).ConfigureAwait(false));
    }
}
