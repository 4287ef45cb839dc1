using System.Transactions;
using Microsoft.Extensions.Logging;

namespace Workflow.Jobs;

/// <summary>
/// Does the job writes that follow a run's committed change (the outbox): create the job of a new run,
/// requeue the job of a retried run, enqueue the job of a woken one, delete the job of a cancelled one. Each write is recorded on the run
/// in the same transaction as the change; it is done right after the commit, and the outbox task of the
/// leader loop does whatever was left (a crash, the job storage unreachable) a few seconds later.
/// </summary>
internal sealed partial class WorkflowJobRequests
{
    private readonly IWorkflowStore _store;
    private readonly IWorkflowJobDispatcher? _dispatcher;
    private readonly TimeProvider _time;
    private readonly ILogger<WorkflowJobRequests> _logger;

    public WorkflowJobRequests(IWorkflowStore store, TimeProvider time, ILogger<WorkflowJobRequests> logger, IWorkflowJobDispatcher? dispatcher = null)
    {
        _store = store;
        _time = time;
        _logger = logger;
        _dispatcher = dispatcher;
    }

    /// <summary>
    /// Does <paramref name="request"/> once the change that recorded it has committed: now when there is no
    /// ambient transaction, else when the caller's transaction commits (nothing when it rolls back).
    /// Failures are logged and left to the outbox.
    /// </summary>
    public async Task AfterCommitAsync(JobRequest request, CancellationToken cancellationToken)
    {
        if (Transaction.Current is { } transaction)
        {
            transaction.TransactionCompleted += (_, e) =>
            {
                if (e.Transaction?.TransactionInformation.Status == TransactionStatus.Committed)
                {
                    _ = Task.Run(() => TryFulfilAsync(request, CancellationToken.None), CancellationToken.None);
                }
            };
            return;
        }

        await TryFulfilAsync(request, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Does the job writes of a batch of runs changed in one transaction (a bulk action) once it has committed. The
    /// requeues of existing jobs go to the job storage in one write when the dispatcher can, and are then marked done in
    /// one statement; anything else, or a batch the storage refused, is done one request at a time as
    /// <see cref="AfterCommitAsync"/> does. Failures are logged and left to the outbox.
    /// </summary>
    public async Task AfterCommitManyAsync(IReadOnlyList<JobRequest> requests, CancellationToken cancellationToken)
    {
        var rest = requests;
        var requeues = requests.Where(r => r.Kind == JobRequestKind.Requeue && r.JobId is not null).ToList();
        if (Transaction.Current is null && _dispatcher is not null && requeues.Count > 1)
        {
            var written = false;
            try
            {
                using (new TransactionScope(TransactionScopeOption.Suppress, TransactionScopeAsyncFlowOption.Enabled))
                {
                    written = _dispatcher.TryRequeueMany(requeues);
                }
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                // Nothing was written (one write): each request is done on its own below, as a single retry does it.
                LogBulkRequeueRefused(ex, requeues.Count);
            }

            if (written)
            {
                try
                {
                    await _store.CompleteJobRequestsAsync(requeues.Select(r => r.RunId).ToList(), JobRequestKind.Requeue, cancellationToken).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    // The jobs are requeued; the outbox finds the requests still recorded and requeues again (harmless: one execution wins).
                    LogDeferred(ex, JobRequestKind.Requeue, requeues[0].RunId);
                }

                rest = requests.Where(r => !(r.Kind == JobRequestKind.Requeue && r.JobId is not null)).ToList();
            }
        }

        foreach (var request in rest)
        {
            await AfterCommitAsync(request, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Does one pass of the outbox: the job writes recorded more than <paramref name="minimumAge"/> ago.</summary>
    public async Task<int> FulfilPendingAsync(TimeSpan minimumAge, int limit, CancellationToken cancellationToken)
    {
        var requests = await _store.GetJobRequestsAsync(_time.GetUtcNow() - minimumAge, limit, cancellationToken).ConfigureAwait(false);
        var done = 0;
        foreach (var request in requests)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (await TryFulfilAsync(request, cancellationToken).ConfigureAwait(false))
            {
                done++;
            }
        }

        return done;
    }

    /// <summary>Does the job write and marks it done; false (logged) when it failed and stays for the outbox.</summary>
    public async Task<bool> TryFulfilAsync(JobRequest request, CancellationToken cancellationToken)
    {
        try
        {
            await FulfilAsync(request, cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;
        }
        // Whatever failed, the request stays recorded on the run and the outbox does it later.
        catch (Exception ex)
        {
            LogDeferred(ex, request.Kind, request.RunId);
            return false;
        }
    }

    private async Task FulfilAsync(JobRequest request, CancellationToken cancellationToken)
    {
        var dispatcher = _dispatcher ?? throw new InvalidOperationException(WorkflowClient.NoDispatcherMessage);
        string? jobId = null;

        // The run's change has committed; the job is written on its own (never a second connection enlisted
        // in a caller's transaction: PostgreSQL refuses the two-phase commit that would need).
        using (new TransactionScope(TransactionScopeOption.Suppress, TransactionScopeAsyncFlowOption.Enabled))
        {
            switch (request.Kind)
            {
                case JobRequestKind.Create:
                    jobId = dispatcher.Enqueue(request.RunId, request.WorkflowName, request.Queue, RemainingDelay(request.NotBefore));
                    break;
                case JobRequestKind.Requeue:
                    if (request.JobId is null || !dispatcher.Requeue(request.JobId, request.Queue))
                    {
                        jobId = dispatcher.Enqueue(request.RunId, request.WorkflowName, request.Queue, delay: null);
                    }

                    break;
                case JobRequestKind.Wake:
                    jobId = dispatcher.Wake(request.RunId, request.WorkflowName, request.Queue, request.JobId);
                    break;
                case JobRequestKind.Delete:
                    if (request.JobId is not null)
                    {
                        dispatcher.Delete(request.JobId);
                    }

                    break;
                default:
                    return;
            }

            await _store.CompleteJobRequestAsync(request.RunId, request.Kind, jobId, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>How long until <paramref name="notBefore"/> (a run's enqueue delay), or null when it has passed or there is none.</summary>
    public TimeSpan? RemainingDelay(DateTimeOffset? notBefore)
        => notBefore is { } time && time > _time.GetUtcNow() ? time - _time.GetUtcNow() : null;

    [LoggerMessage(EventId = 22, Level = LogLevel.Warning, Message = "The job storage refused the requeue of {Count} jobs in one write; they are requeued one by one")]
    private partial void LogBulkRequeueRefused(Exception exception, int count);

    [LoggerMessage(EventId = 20, Level = LogLevel.Warning, Message = "The {Kind} job write of workflow run {WorkflowId} failed; the outbox retries it")]
    private partial void LogDeferred(Exception exception, JobRequestKind kind, Guid workflowId);
}

/// <summary>The outbox's pass in the leader loop: job writes left behind by a crash or an unreachable job storage.</summary>
internal sealed class WorkflowOutboxTask(WorkflowJobRequests requests, WorkflowJobsOptions options, TimeProvider time) : IWorkflowLeaderTask
{
    public string Name => "outbox";

    /// <summary>Only when a job write has waited longer than <see cref="WorkflowJobsOptions.OutboxDelay"/>.</summary>
    public bool IsNeeded(WorkflowLeaderSignals signals)
        => signals.OldestJobRequest is { } oldest && oldest < time.GetUtcNow() - options.OutboxDelay;

    public Task RunOnceAsync(CancellationToken cancellationToken)
        => requests.FulfilPendingAsync(options.OutboxDelay, limit: 500, cancellationToken);
}
