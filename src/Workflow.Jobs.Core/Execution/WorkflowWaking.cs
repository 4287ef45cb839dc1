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

    /// <summary>
    /// Wakes the runs of <paramref name="workflow"/> that a freed flow-control slot is offered to (oldest first; the same
    /// Wake transition and job write as any wake, done in one statement for the workflow). Returns how many were woken.
    /// </summary>
    public async Task<int> WakeForFreeSlotsAsync(WorkflowDescriptor workflow, CancellationToken cancellationToken)
    {
        var requests = await store.OfferFreeSlotsAsync(workflow.Name, workflow.MaxConcurrency, workflow.MaxConcurrencyPerKey, time.GetUtcNow(), cancellationToken)
            .ConfigureAwait(false);
        foreach (var request in requests)
        {
            await jobs.AfterCommitAsync(request, cancellationToken).ConfigureAwait(false);
        }

        return requests.Count;
    }
}

/// <summary>
/// The leader loop's flow-control pass (about once a second): for each workflow with a concurrency limit, offers the slots
/// freed since the last pass to the runs waiting for them, in creation order. A slot counts as held while an execution
/// holds its lock (on its guard connection, so a dead process's slot frees with its connection), and as offered while
/// the run it was offered to has not started yet, so a pass never offers one slot twice.
/// </summary>
internal sealed class WorkflowConcurrencyTask(WorkflowRegistry registry, WorkflowWaker waker) : IWorkflowLeaderTask
{
    private readonly WorkflowDescriptor[] _limited = registry.All.Where(w => w.HasFlowControl).ToArray();

    public string Name => "concurrency";

    public bool IsNeeded(WorkflowLeaderSignals signals) => _limited.Length > 0 && signals.RunsWaitingForSlots;

    public async Task RunOnceAsync(CancellationToken cancellationToken)
    {
        foreach (var workflow in _limited)
        {
            await waker.WakeForFreeSlotsAsync(workflow, cancellationToken).ConfigureAwait(false);
        }
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
