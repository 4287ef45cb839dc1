namespace Workflow.Jobs;

/// <summary>The operations that change a run's status. Every status write names one of these.</summary>
internal enum RunOperation
{
    /// <summary>An execution takes the run (one more attempt).</summary>
    Start,

    /// <summary>The last step's checkpoint, or a run whose steps were all already checkpointed.</summary>
    Succeed,

    /// <summary>A step failed and the job scheduler may retry it: the run waits for that retry.</summary>
    FailForRetry,

    /// <summary>A final failure: of a step (no retry follows), of the definition check, or of the job.</summary>
    Fail,

    /// <summary>The execution was interrupted (shutdown) before its step finished: another one resumes.</summary>
    Interrupt,

    /// <summary>An operator (or the deletion of the run's job) cancels the run.</summary>
    Cancel,

    /// <summary>An operator retries a failed or cancelled run.</summary>
    Retry,

    /// <summary>The run's job was put back in a queue (a requeue in the dashboard, a retry by the scheduler).</summary>
    Requeue,

    /// <summary>A step waits durably (sleep, event, slot, children) without holding a worker.</summary>
    Wait,

    /// <summary>A wait is over (its time came, its event arrived, it was woken early).</summary>
    Wake,

    /// <summary>The compensations of the succeeded steps have all run.</summary>
    Compensate,

    /// <summary>
    /// The run is to be undone (a final failure of a workflow that compensates on failure, a cancel with compensation, or
    /// the resumption of a compensation after a retry): it never runs forward steps again, its job runs the compensations.
    /// </summary>
    BeginCompensation,
}

/// <summary>One allowed change: from any of <see cref="From"/> to <see cref="To"/> by <see cref="Operation"/>.</summary>
internal sealed record WorkflowTransition(RunOperation Operation, IReadOnlySet<WorkflowStatus> From, WorkflowStatus To)
{
    /// <summary>Whether a run in <paramref name="status"/> may take this transition.</summary>
    public bool AllowsFrom(WorkflowStatus status) => From.Contains(status);

    /// <summary>The <c>From</c> statuses as a SQL list of text literals, for <c>status IN (...)</c>.</summary>
    public string SqlFrom { get; } = "(" + string.Join(", ", From.Order().Select(s => "'" + s + "'")) + ")";
}

/// <summary>
/// The one owner of run status: every status a run can move to, from which statuses, by which
/// operation. Stores build their conditional updates from this table (never from their own lists), so
/// a status change that the table does not allow cannot be written.
/// </summary>
internal static class WorkflowTransitions
{
    private static readonly Dictionary<RunOperation, WorkflowTransition> Table = new[]
    {
        // Failed: a run executed again directly (IWorkflowRunner) resumes at its failed step. Finished
        // runs other than Failed never start again; a Compensated run never re-runs forward steps.
        T(RunOperation.Start, WorkflowStatus.Running, WorkflowStatus.Pending, WorkflowStatus.Running, WorkflowStatus.Failed, WorkflowStatus.Waiting),
        // Pending/Failed/Waiting: an execution that finds every step already checkpointed only records the success.
        T(RunOperation.Succeed, WorkflowStatus.Succeeded, WorkflowStatus.Running, WorkflowStatus.Pending, WorkflowStatus.Failed, WorkflowStatus.Waiting),
        T(RunOperation.FailForRetry, WorkflowStatus.Pending, WorkflowStatus.Running, WorkflowStatus.Pending),
        // Compensating: a compensation failed for good (the original failure stays beside the compensation's).
        T(RunOperation.Fail, WorkflowStatus.Failed, WorkflowStatus.Running, WorkflowStatus.Pending, WorkflowStatus.Waiting, WorkflowStatus.Compensating),
        T(RunOperation.Interrupt, WorkflowStatus.Pending, WorkflowStatus.Running),
        // Compensating: an operator stops a compensation (deletes its job); a retry later resumes it.
        T(RunOperation.Cancel, WorkflowStatus.Cancelled, WorkflowStatus.Pending, WorkflowStatus.Running, WorkflowStatus.Failed, WorkflowStatus.Waiting,
            WorkflowStatus.Compensating),
        T(RunOperation.Retry, WorkflowStatus.Pending, WorkflowStatus.Failed, WorkflowStatus.Cancelled),
        // Running: the job of a running execution was requeued (the guard keeps the two apart).
        T(RunOperation.Requeue, WorkflowStatus.Pending, WorkflowStatus.Failed, WorkflowStatus.Cancelled, WorkflowStatus.Running),
        // Pending: a run that finds no flow-control slot waits for one before it starts (no attempt counted).
        T(RunOperation.Wait, WorkflowStatus.Waiting, WorkflowStatus.Running, WorkflowStatus.Pending),
        T(RunOperation.Wake, WorkflowStatus.Pending, WorkflowStatus.Waiting),
        // Not from Compensating: Start, Succeed, Requeue and Retry leave a compensating run as it is (its job keeps compensating).
        T(RunOperation.BeginCompensation, WorkflowStatus.Compensating, WorkflowStatus.Running, WorkflowStatus.Pending, WorkflowStatus.Failed, WorkflowStatus.Waiting),
        T(RunOperation.Compensate, WorkflowStatus.Compensated, WorkflowStatus.Compensating),
    }.ToDictionary(t => t.Operation);

    /// <summary>The statuses in which a run is finished: no execution runs its forward steps again by itself.</summary>
    public static IReadOnlySet<WorkflowStatus> Finished { get; } = new HashSet<WorkflowStatus>
    {
        WorkflowStatus.Succeeded, WorkflowStatus.Failed, WorkflowStatus.Cancelled, WorkflowStatus.Compensated,
    };

    /// <summary>Every transition, one per operation.</summary>
    public static IReadOnlyCollection<WorkflowTransition> All => Table.Values;

    /// <summary>The transition of an operation.</summary>
    public static WorkflowTransition For(RunOperation operation) => Table[operation];

    /// <summary>Whether <paramref name="operation"/> may move a run in <paramref name="from"/>.</summary>
    public static bool Allows(RunOperation operation, WorkflowStatus from) => Table[operation].AllowsFrom(from);

    /// <summary>Whether a run in this status is finished.</summary>
    public static bool IsFinished(WorkflowStatus status) => Finished.Contains(status);

    private static WorkflowTransition T(RunOperation operation, WorkflowStatus to, params WorkflowStatus[] from)
        => new(operation, new HashSet<WorkflowStatus>(from), to);
}
