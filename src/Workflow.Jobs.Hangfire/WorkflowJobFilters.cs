using Hangfire;
using Hangfire.Common;
using Hangfire.States;
using Hangfire.Storage;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace Workflow.Jobs.Hangfire;

/// <summary>Job parameter names the integration sets on workflow jobs.</summary>
internal static class WorkflowJobParameters
{
    public const string WorkflowName = "WorkflowName";
    public const string RetryCount = "RetryCount";

    public static bool IsWorkflowJob(Job? job) => job?.Type == typeof(WorkflowJob) && job.Args.Count > 0 && job.Args[0] is Guid;
}

/// <summary>
/// Retries failed runs with the workflow's policy (attempts and delays), and never retries
/// non-retryable failures: <see cref="NonRetryableException"/>, validation failures, definition
/// mismatches, unknown or missing runs. A Requeue of a failed job restores the whole retry budget.
/// An execution that failed because the database was unreachable (not a step failure) is always retried
/// and does not use the budget: nothing failed but the connection.
/// </summary>
/// <remarks>
/// A final failure of a step of a workflow with <see cref="WorkflowDefinition.CompensateOnFailure"/> does not leave the job Failed:
/// the run is marked Compensating and the job is enqueued again with a fresh retry budget, so the run's own job runs the
/// compensations (a compensation's failure is never compensated again: it is retried, then fails the run for good).
/// </remarks>
internal sealed partial class WorkflowRetryFilter(WorkflowRegistry registry, WorkflowJobsOptions options, ILogger<WorkflowRetryFilter> logger,
    IWorkflowStore? store = null, TimeProvider? time = null)
    : IElectStateFilter
{
    public void OnStateElection(ElectStateContext context)
    {
        var job = context.BackgroundJob?.Job;
        if (!WorkflowJobParameters.IsWorkflowJob(job))
        {
            return;
        }

        if (context.CandidateState is EnqueuedState && (context.CurrentState == FailedState.StateName || context.CurrentState == DeletedState.StateName))
        {
            // An operator's Requeue: a fresh retry budget, not the one attempt Hangfire would leave.
            context.SetJobParameter(WorkflowJobParameters.RetryCount, 0);
            return;
        }

        if (context.CandidateState is not FailedState failed)
        {
            return;
        }

        var name = context.GetJobParameter<string>(WorkflowJobParameters.WorkflowName);
        if (IsFinal(failed.Exception))
        {
            failed.Reason = "Not retried: " + failed.Exception.Message;
            TryBeginCompensation(context, failed, name, job!);
            return;
        }

        var policy = (name is null ? null : registry.Find(name)?.Retry) ?? options.DefaultRetry;
        var retryCount = context.GetJobParameter<int>(WorkflowJobParameters.RetryCount) + 1;
        var databaseUnavailable = IsDatabaseUnavailable(failed.Exception);
        if (retryCount > policy.Attempts && !databaseUnavailable)
        {
            failed.Reason = policy.Attempts == 0 ? "Retries are off for this workflow" : $"Retries exhausted ({policy.Attempts})";
            TryBeginCompensation(context, failed, name, job!);
            return;
        }

        if (!databaseUnavailable)
        {
            context.SetJobParameter(WorkflowJobParameters.RetryCount, retryCount);
        }

        var delays = policy.DelaysInSeconds;
        var delay = delays.Count == 0 ? 0 : delays[Math.Min(retryCount - 1, delays.Count - 1)];
        var reason = databaseUnavailable
            ? $"Retried outside the retry budget, the database was unavailable: {failed.Exception.Message}"
            : $"Retry attempt {retryCount} of {policy.Attempts}: {failed.Exception.Message}";
        context.CandidateState = delay <= 0
            ? new EnqueuedState(job!.Queue ?? EnqueuedState.DefaultQueue) { Reason = reason }
            : new ScheduledState(TimeSpan.FromSeconds(delay)) { Reason = reason };
        if (databaseUnavailable)
        {
            LogDatabaseRetry(failed.Exception, job!.Args[0], delay);
        }
        else
        {
            LogRetry(job!.Args[0], retryCount, policy.Attempts, delay);
        }
    }

    /// <summary>
    /// On the final failure of a step of a workflow that compensates on failure: marks the run Compensating and turns the job's
    /// Failed state into Enqueued (a fresh retry budget) so that the run's job runs the compensations.
    /// </summary>
    private void TryBeginCompensation(ElectStateContext context, FailedState failed, string? name, Job job)
    {
        if (store is null || name is null || registry.Find(name) is not { CompensateOnFailure: true } || !WorkflowEngine.IsStepFailure(failed.Exception))
        {
            return;
        }

        var runId = (Guid)job.Args[0];
        var now = (time ?? TimeProvider.System).GetUtcNow();

        // Hangfire's election filters are synchronous: the store call runs on a thread-pool thread (no synchronization
        // context to deadlock). When the run cannot be compensated (cancelled meanwhile), the job stays Failed.
#pragma warning disable VSTHRD002 // Synchronous Hangfire filter API; bridged through Task.Run as above.
        var change = Task.Run(() => store.TransitionAsync(runId, RunOperation.BeginCompensation, now, message: null, JobRequestKind.None, CancellationToken.None))
            .GetAwaiter().GetResult();
#pragma warning restore VSTHRD002
        if (change is null)
        {
            return;
        }

        context.SetJobParameter(WorkflowJobParameters.RetryCount, 0);
        context.CandidateState = new EnqueuedState(job.Queue ?? EnqueuedState.DefaultQueue) { Reason = $"{failed.Reason}; compensating: {failed.Exception.Message}" };
        LogCompensating(runId, failed.Exception.Message);
    }

    internal static bool IsFinal(Exception? exception) => WorkflowFailures.IsFinal(exception);

    /// <summary>The engine itself could not reach the database (a step's own failure is a <see cref="UnitOfWorkException"/>).</summary>
    internal static bool IsDatabaseUnavailable(Exception? exception)
    {
        if (exception is null or UnitOfWorkException)
        {
            return false;
        }

        for (var e = exception; e is not null; e = e.InnerException)
        {
            if (e is NpgsqlException { IsTransient: true })
            {
                return true;
            }
        }

        return false;
    }

    [LoggerMessage(EventId = 211, Level = LogLevel.Warning, Message = "Workflow run {WorkflowId} could not reach the database; retried in {DelaySeconds} s without using its retry budget")]
    private partial void LogDatabaseRetry(Exception exception, object workflowId, int delaySeconds);

    [LoggerMessage(EventId = 212, Level = LogLevel.Warning, Message = "Workflow run {WorkflowId} failed for good ({Reason}); its job runs the compensations")]
    private partial void LogCompensating(Guid workflowId, string reason);

    [LoggerMessage(EventId = 210, Level = LogLevel.Warning, Message = "Workflow run {WorkflowId} failed; retry {RetryCount} of {Attempts} in {DelaySeconds} s")]
    private partial void LogRetry(object workflowId, int retryCount, int attempts, int delaySeconds);
}

/// <summary>
/// Turns the end of an execution whose run waits (<see cref="WorkflowParkedException"/>) into the job's next state,
/// re-reading the run under the job's state lock (Hangfire elects states holding it): Scheduled for the wake time (far
/// in the future without one) while the run is Waiting; Enqueued when it was woken meanwhile (a signal between the
/// Waiting commit and this election found the job still processing and left the wake to this re-check); Deleted when
/// the run is gone or finished. Never a failure, so neither the retry budget nor the attempts change.
/// </summary>
internal sealed partial class WorkflowWaitFilter(IWorkflowStore store, TimeProvider time, ILogger<WorkflowWaitFilter> logger) : IElectStateFilter
{
    /// <summary>How far ahead a wait without a deadline is scheduled ("Enqueue now" or a signal wakes it).</summary>
    internal static readonly TimeSpan NoDeadline = TimeSpan.FromDays(3650);

    /// <summary>When the run cannot be re-read, the job comes back this soon to check again (never a lost wake).</summary>
    internal static readonly TimeSpan RecheckDelay = TimeSpan.FromSeconds(30);

    public void OnStateElection(ElectStateContext context)
    {
        var job = context.BackgroundJob?.Job;
        if (!WorkflowJobParameters.IsWorkflowJob(job) || context.CandidateState is not FailedState { Exception: WorkflowParkedException parked })
        {
            return;
        }

        var runId = (Guid)job!.Args[0];
        var queue = job.Queue ?? EnqueuedState.DefaultQueue;
        RunWaitInfo? info;
        try
        {
#pragma warning disable VSTHRD002 // Synchronous Hangfire filter API; bridged through Task.Run (no synchronization context to deadlock).
            info = Task.Run(() => store.GetWaitInfoAsync(runId, CancellationToken.None)).GetAwaiter().GetResult();
#pragma warning restore VSTHRD002
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // The run could not be re-read. A sleep keeps its wake time (nothing else wakes it, and a wake ends it); any other
            // wait comes back soon and checks again, in case it was woken meanwhile (it goes back to waiting if not).
            LogRecheck(ex, runId);
            var soon = time.GetUtcNow() + RecheckDelay;
            var at = parked.WaitingFor == WaitKinds.Sleep && parked.WakeAt is { } sleepEnd ? sleepEnd
                : parked.WakeAt is { } wake && wake < soon ? wake : soon;
            context.CandidateState = new ScheduledState(WholeSecondAtOrAfter(at)) { Reason = $"Waiting for {parked.WaitingFor}; the run could not be re-read, checked again at {at:O}" };
            return;
        }

        context.CandidateState = info switch
        {
            null => new DeletedState { Reason = "The run no longer exists" },
            { Status: WorkflowStatus.Waiting } => new ScheduledState(WholeSecondAtOrAfter(info.WakeAt ?? time.GetUtcNow() + NoDeadline))
            {
                Reason = info.WakeAt is { } at ? $"Waiting for {info.WaitingFor} until {at:O}" : $"Waiting for {info.WaitingFor} (no deadline)",
            },
            { Status: WorkflowStatus.Pending or WorkflowStatus.Running } => new EnqueuedState(queue) { Reason = "Woken while its run was parking" },
            _ => new DeletedState { Reason = $"The run is {info.Status}" },
        };
    }

    /// <summary>
    /// The job storage keeps schedules in whole seconds (truncated): rounding up keeps the job from running before the
    /// wake time, so the scheduler's wake never ends a sleep early.
    /// </summary>
    internal static DateTime WholeSecondAtOrAfter(DateTimeOffset time)
    {
        var utc = time.UtcDateTime;
        var remainder = utc.Ticks % TimeSpan.TicksPerSecond;
        return remainder == 0 ? utc : utc.AddTicks(TimeSpan.TicksPerSecond - remainder);
    }

    [LoggerMessage(EventId = 213, Level = LogLevel.Warning, Message = "Workflow run {WorkflowId} parked but could not be re-read; its job checks its wait again shortly")]
    private partial void LogRecheck(Exception exception, Guid workflowId);
}

/// <summary>
/// Keeps the run's status in step with its job: Deleted → cancel, Failed → fail, waiting for a retry or
/// requeued → requeue (each a named operation of <see cref="WorkflowTransitions"/>; the table decides
/// whether the run's current status allows it). Processing → Running and Succeeded are written by the job
/// itself, in the transactions it makes anyway.
/// </summary>
/// <remarks>
/// Hangfire's state filters are synchronous; the store call runs on a thread-pool thread so that no
/// synchronization context can deadlock it.
/// </remarks>
internal sealed class WorkflowStateSyncFilter(IWorkflowStore store, TimeProvider time) : IApplyStateFilter
{
    public void OnStateApplied(ApplyStateContext context, IWriteOnlyTransaction transaction)
    {
        var job = context.BackgroundJob?.Job;
        if (!WorkflowJobParameters.IsWorkflowJob(job))
        {
            return;
        }

        if (OperationFor(context.NewState, context.OldStateName) is { } operation)
        {
            Apply((Guid)job!.Args[0], operation, (context.NewState as FailedState)?.Exception?.Message);
        }

        if (context.NewState is EnqueuedState && context.OldStateName == ScheduledState.StateName)
        {
            // A waiting run's job enqueued from Scheduled: its wake time came, or an operator chose "Enqueue now" (an
            // early wake). A wake is the run's own transition; a run that is not Waiting is left alone.
            Apply((Guid)job!.Args[0], RunOperation.Wake, message: null);
        }
    }

    public void OnStateUnapplied(ApplyStateContext context, IWriteOnlyTransaction transaction)
    {
    }

    /// <summary>The status change a job state leads to (exposed for tests).</summary>
    internal static RunOperation? OperationFor(IState newState, string? oldStateName) => newState switch
    {
        DeletedState => RunOperation.Cancel,
        FailedState => RunOperation.Fail,
        EnqueuedState or ScheduledState when oldStateName is not null => RunOperation.Requeue,
        _ => null,
    };

    private void Apply(Guid runId, RunOperation operation, string? message)
    {
        // Hangfire's IApplyStateFilter is synchronous and the store is asynchronous only: the call runs on a
        // thread-pool thread (no synchronization context to deadlock) and this state change waits for it.
#pragma warning disable VSTHRD002 // Synchronous Hangfire filter API; bridged through Task.Run as above.
        Task.Run(() => store.TransitionAsync(runId, operation, time.GetUtcNow(), message, JobRequestKind.None, CancellationToken.None))
            .GetAwaiter().GetResult();
#pragma warning restore VSTHRD002
    }
}

/// <summary>Supplies the integration's filters for this host only (no global filter collection is touched).</summary>
internal sealed class WorkflowJobFilterProvider(WorkflowRetryFilter retry, WorkflowStateSyncFilter sync, WorkflowJobOriginFilter origin,
    WorkflowWaitFilter wait) : IJobFilterProvider
{
    public IEnumerable<JobFilter> GetFilters(Job job)
    {
        if (job?.Type != typeof(WorkflowJob))
        {
            return [];
        }

        // The wait filter elects before the retry filter: a parked execution is never a failure.
        return
        [
            new JobFilter(wait, JobFilterScope.Method, order: 50),
            new JobFilter(retry, JobFilterScope.Method, order: 100),
            new JobFilter(sync, JobFilterScope.Method, order: 100),
            new JobFilter(origin, JobFilterScope.Method, order: 100),
        ];
    }
}
