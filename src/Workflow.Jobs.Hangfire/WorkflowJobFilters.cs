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
    public const string WorkflowId = "WorkflowId";
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
internal sealed partial class WorkflowRetryFilter(WorkflowRegistry registry, WorkflowJobsOptions options, ILogger<WorkflowRetryFilter> logger)
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

        if (IsFinal(failed.Exception))
        {
            failed.Reason = "Not retried: " + failed.Exception.Message;
            return;
        }

        var name = context.GetJobParameter<string>(WorkflowJobParameters.WorkflowName);
        var policy = (name is null ? null : registry.Find(name)?.Retry) ?? options.DefaultRetry;
        var retryCount = context.GetJobParameter<int>(WorkflowJobParameters.RetryCount) + 1;
        var databaseUnavailable = IsDatabaseUnavailable(failed.Exception);
        if (retryCount > policy.Attempts && !databaseUnavailable)
        {
            failed.Reason = policy.Attempts == 0 ? "Retries are off for this workflow" : $"Retries exhausted ({policy.Attempts})";
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

    [LoggerMessage(EventId = 210, Level = LogLevel.Warning, Message = "Workflow run {WorkflowId} failed; retry {RetryCount} of {Attempts} in {DelaySeconds} s")]
    private partial void LogRetry(object workflowId, int retryCount, int attempts, int delaySeconds);
}

/// <summary>
/// Keeps the run's status in step with its job: Deleted → Cancelled, Failed → Failed, waiting for a
/// retry or requeued → Pending. (Processing → Running and Succeeded are written by the job itself,
/// in the transactions it makes anyway.)
/// </summary>
internal sealed class WorkflowStateSyncFilter(IWorkflowStore store, TimeProvider time) : IApplyStateFilter
{
    private static readonly WorkflowStatus[] Live = [WorkflowStatus.Pending, WorkflowStatus.Running, WorkflowStatus.Failed];
    private static readonly WorkflowStatus[] Active = [WorkflowStatus.Pending, WorkflowStatus.Running];
    private static readonly WorkflowStatus[] Resumable = [WorkflowStatus.Failed, WorkflowStatus.Cancelled, WorkflowStatus.Running];

    public void OnStateApplied(ApplyStateContext context, IWriteOnlyTransaction transaction)
    {
        var job = context.BackgroundJob?.Job;
        if (!WorkflowJobParameters.IsWorkflowJob(job))
        {
            return;
        }

        var runId = (Guid)job!.Args[0];
        var now = time.GetUtcNow();
        switch (context.NewState)
        {
            case DeletedState:
                Transition(runId, Live, WorkflowStatus.Cancelled, now, null);
                break;
            case FailedState failed:
                Transition(runId, Active, WorkflowStatus.Failed, now, failed.Exception?.Message);
                break;
            case EnqueuedState or ScheduledState when context.OldStateName is not null:
                Transition(runId, Resumable, WorkflowStatus.Pending, now, null);
                break;
        }
    }

    public void OnStateUnapplied(ApplyStateContext context, IWriteOnlyTransaction transaction)
    {
    }

    private void Transition(Guid runId, WorkflowStatus[] from, WorkflowStatus to, DateTimeOffset now, string? message)
        => store.TransitionAsync(runId, from, to, now, message, CancellationToken.None).GetAwaiter().GetResult();
}

/// <summary>Supplies the integration's filters for this host only (no global filter collection is touched).</summary>
internal sealed class WorkflowJobFilterProvider(WorkflowRetryFilter retry, WorkflowStateSyncFilter sync) : IJobFilterProvider
{
    public IEnumerable<JobFilter> GetFilters(Job job)
    {
        if (job?.Type != typeof(WorkflowJob))
        {
            return [];
        }

        return [new JobFilter(retry, JobFilterScope.Method, order: 100), new JobFilter(sync, JobFilterScope.Method, order: 100)];
    }
}
