using Microsoft.Extensions.Logging;

namespace Workflow.Jobs;

/// <summary>
/// Finds runs whose execution died (Running or Compensating while nobody holds their guard: the lock went with the
/// dead process's session) and puts their jobs back in the queue at once, instead of after the job storage's
/// invisibility timeout. Only a job still Processing is requeued, so a Compensating run whose job waits in the queue
/// is left alone. A run must be seen abandoned for <see cref="WorkflowJobsOptions.RecoveryDelay"/> first (a live
/// worker that lost only its connection cancels its step body within that time), and the task takes the run's guard
/// and re-reads it before touching its job, so it never requeues a live execution.
/// </summary>
internal sealed partial class WorkflowRecoveryTask : IWorkflowLeaderTask
{
    private readonly IWorkflowStore _store;
    private readonly WorkflowJobsOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger<WorkflowRecoveryTask> _logger;
    private readonly IWorkflowJobDispatcher? _dispatcher;
    private readonly Dictionary<Guid, DateTimeOffset> _firstSeen = [];

    public WorkflowRecoveryTask(IWorkflowStore store, WorkflowJobsOptions options, TimeProvider time, ILogger<WorkflowRecoveryTask> logger,
        IWorkflowJobDispatcher? dispatcher = null)
    {
        _store = store;
        _options = options;
        _time = time;
        _logger = logger;
        _dispatcher = dispatcher;
    }

    public string Name => "recovery";

    /// <summary>Only while runs are Running or Compensating: an execution can only have died with its run in one of them.</summary>
    public bool IsNeeded(WorkflowLeaderSignals signals)
    {
        if (!signals.RunsRunning)
        {
            _firstSeen.Clear();
        }

        return signals.RunsRunning;
    }

    public async Task RunOnceAsync(CancellationToken cancellationToken)
    {
        if (_dispatcher is null)
        {
            return;
        }

        var abandoned = await _store.FindAbandonedRunsAsync(limit: 200, cancellationToken).ConfigureAwait(false);
        var now = _time.GetUtcNow();
        foreach (var gone in _firstSeen.Keys.Except(abandoned.Select(a => a.RunId)).ToList())
        {
            _firstSeen.Remove(gone);
        }

        foreach (var run in abandoned)
        {
            if (!_firstSeen.TryGetValue(run.RunId, out var since))
            {
                _firstSeen[run.RunId] = since = now;
            }

            if (now - since < _options.RecoveryDelay)
            {
                continue;
            }

            await RecoverAsync(run, cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task RecoverAsync(AbandonedRun run, CancellationToken cancellationToken)
    {
        var execution = await _store.TryBeginExecutionAsync(run.RunId, cancellationToken).ConfigureAwait(false);
        if (execution is null)
        {
            // A live execution holds the guard (it took the run meanwhile): not abandoned after all.
            _firstSeen.Remove(run.RunId);
            return;
        }

        await using (execution.ConfigureAwait(false))
        {
            _firstSeen.Remove(run.RunId);
            if (execution.Run?.Status is not (WorkflowStatus.Running or WorkflowStatus.Compensating) || run.JobId is null)
            {
                return;
            }

            // Requeued while this task holds the guard: the next execution starts only once it is released,
            // and it sees every checkpoint of the dead one.
            if (_dispatcher!.RequeueAbandoned(run.JobId, run.Queue))
            {
                LogRecovered(run.RunId, run.JobId);
            }
        }
    }

    [LoggerMessage(EventId = 30, Level = LogLevel.Warning, Message = "Workflow run {WorkflowId} was executing with no live execution; its job {JobId} is requeued")]
    private partial void LogRecovered(Guid workflowId, string jobId);
}
