using Hangfire;
using Microsoft.Extensions.Logging;

namespace Workflow.Jobs.Hangfire;

/// <summary>
/// The Hangfire job of a run. Its only argument is the run id; it loads the run, takes the run's
/// execution guard, skips succeeded steps and executes the rest.
/// </summary>
/// <remarks>
/// Retries are decided by <see cref="WorkflowRetryFilter"/> (per-workflow policy), so Hangfire's global
/// <see cref="AutomaticRetryAttribute"/> is switched off for this method.
/// </remarks>
internal sealed partial class WorkflowJob
{
    private readonly WorkflowEngine _engine;
    private readonly ILogger<WorkflowJob> _logger;

    internal WorkflowJob(WorkflowEngine engine, ILogger<WorkflowJob> logger)
    {
        _engine = engine;
        _logger = logger;
    }

    /// <summary>Executes (or resumes) the run.</summary>
    /// <param name="workflowId">The run id.</param>
    /// <param name="cancellationToken">Filled in by Hangfire: server shutdown or job deletion.</param>
    [AutomaticRetry(Attempts = 0, LogEvents = false)]
    [WorkflowJobDisplayName]
    public async Task ExecuteAsync(Guid workflowId, CancellationToken cancellationToken)
    {
        try
        {
            await _engine.ExecuteAsync(workflowId, retriedByScheduler: true, cancellationToken).ConfigureAwait(false);
        }
        catch (WorkflowRunNotFoundException)
        {
            // A job whose run does not exist (its creation rolled back after the job was written, or it was
            // purged): nothing to run and nothing to retry, so the job completes quietly.
            LogNoRun(workflowId);
        }
        catch (UnitOfWorkException ex) when (ex.Code is UnitOfWorkException.CancelledCode or UnitOfWorkException.RunFinishedCode)
        {
            // The run was cancelled or has finished for good (its job is normally deleted too): nothing to run, nothing to retry.
            LogCancelled(workflowId, ex.Message);
        }
    }

    [LoggerMessage(EventId = 200, Level = LogLevel.Information, Message = "Workflow run {WorkflowId} will not run: {Reason}; its job ends without running a step")]
    private partial void LogCancelled(Guid workflowId, string reason);

    [LoggerMessage(EventId = 201, Level = LogLevel.Information, Message = "Workflow run {WorkflowId} does not exist; its job completes without doing anything")]
    private partial void LogNoRun(Guid workflowId);
}
