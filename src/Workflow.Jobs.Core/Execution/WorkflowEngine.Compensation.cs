using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Newtonsoft.Json.Linq;

namespace Workflow.Jobs;

/// <summary>
/// Compensation: a run marked Compensating (after a final failure of a workflow with
/// <see cref="WorkflowDefinition.CompensateOnFailure"/>, or a cancel with <see cref="CancelOptions.Compensate"/>) runs the
/// compensations of its succeeded steps in reverse order, each checkpointed in its own transaction, then ends Compensated.
/// A resumed compensation (crash, retry) starts at the first compensation not yet checkpointed.
/// </summary>
internal sealed partial class WorkflowEngine
{
    /// <summary>Whether a run's failure is a step's own (the only failure that compensation undoes).</summary>
    internal static bool IsStepFailure(Exception? exception)
    {
        for (var e = exception; e is not null; e = e.InnerException)
        {
            if (e is UnitOfWorkException { StepName: not null } u)
            {
                return u.Code is UnitOfWorkException.StepFailedCode or WorkflowDataValidationException.ValidationFailedCode;
            }
        }

        return false;
    }

    private async Task CompensateAfterFinalFailureAsync(IRunExecution execution, RunRecord run, WorkflowDescriptor workflow, CancellationToken cancellationToken)
    {
        if (!await execution.BeginCompensationAsync(_time.GetUtcNow(), CancellationToken.None).ConfigureAwait(false))
        {
            return;
        }

        // The steps checkpointed by this execution are compensated too.
        await execution.ReloadStepsAsync(CancellationToken.None).ConfigureAwait(false);
        await CompensateStepsAsync(execution, run, workflow, retriedByScheduler: false, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Runs (or resumes) the compensations of a run marked for compensation, and marks it Compensated.</summary>
    private async Task CompensateRunAsync(IRunExecution execution, RunRecord run, bool retriedByScheduler, CancellationToken cancellationToken)
    {
        var workflow = _registry.Find(run.WorkflowName);
        string? problem = null;
        if (workflow is null)
        {
            problem = $"Workflow '{run.WorkflowName}' is not registered in this host; the compensations of run {run.Id} cannot run.";
        }
        else if (!run.StepNames.SequenceEqual(workflow.StepNames, StringComparer.Ordinal))
        {
            problem = $"Workflow '{run.WorkflowName}' changed since run {run.Id} started: the run has steps [{string.Join(", ", run.StepNames)}] " +
                      $"but the deployed definition has [{string.Join(", ", workflow.StepNames)}]; its compensations cannot run.";
        }

        if (problem is not null)
        {
            await execution.FailRunAsync(problem, _time.GetUtcNow(), CancellationToken.None).ConfigureAwait(false);
            throw new UnitOfWorkException(problem, UnitOfWorkException.DefinitionMismatchCode, new NonRetryableException(problem)) { WorkflowId = run.Id };
        }

        if (run.Status != WorkflowStatus.Compensating
            && !await execution.BeginCompensationAsync(_time.GetUtcNow(), CancellationToken.None).ConfigureAwait(false))
        {
            // Resumed from Pending or Failed (a retry of a compensation that failed); anything else was cancelled or finished meanwhile.
            throw Cancelled(run);
        }

        _metrics.RunsInFlight.Add(1);
        try
        {
            await CompensateStepsAsync(execution, run, workflow!, retriedByScheduler, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _metrics.RunsInFlight.Add(-1);
        }
    }

    private async Task CompensateStepsAsync(IRunExecution execution, RunRecord run, WorkflowDescriptor workflow, bool retriedByScheduler,
        CancellationToken cancellationToken)
    {
        using var activity = WorkflowTelemetry.Source.StartActivity("workflow.compensate " + workflow.Name);
        activity?.SetTag("workflow.name", workflow.Name);
        activity?.SetTag("workflow.run_id", run.Id.ToString());
        var records = execution.Steps.ToDictionary(s => s.StepName, StringComparer.Ordinal);
        var accumulated = new WorkflowOutput();
        foreach (var step in workflow.Steps)
        {
            if (records.TryGetValue(step.Name, out var record) && record.Status == WorkflowStatus.Succeeded)
            {
                accumulated.SetJson(step.OutputKey, record.Output ?? new JObject());
            }
        }

        LogCompensating(run.Id, workflow.Name);
        await using var scope = _scopeFactory.CreateAsyncScope();
        for (var index = workflow.Steps.Count - 1; index >= 0; index--)
        {
            var step = workflow.Steps[index];
            if (!records.TryGetValue(step.Name, out var record) || record.Status != WorkflowStatus.Succeeded || record.Compensated)
            {
                continue;
            }

            await CompensateStepAsync(execution, run, workflow, step, record, accumulated, scope.ServiceProvider, retriedByScheduler, cancellationToken)
                .ConfigureAwait(false);
        }

        await execution.CompleteCompensationAsync(_time.GetUtcNow(), CancellationToken.None).ConfigureAwait(false);
        _metrics.RunsCompensated.Add(1, new KeyValuePair<string, object?>("workflow.name", workflow.Name));
        LogCompensated(run.Id, workflow.Name);
    }

    private async Task CompensateStepAsync(IRunExecution execution, RunRecord run, WorkflowDescriptor workflow, StepDescriptor step, StepRecord record,
        WorkflowOutput accumulated, IServiceProvider services, bool retriedByScheduler, CancellationToken cancellationToken)
    {
        using var activity = WorkflowTelemetry.Source.StartActivity("workflow.compensate_step " + step.Name);
        activity?.SetTag("workflow.step.name", step.Name);
        activity?.SetTag("workflow.step.id", record.Id.ToString());
        var watch = execution.WatchGuard();
        try
        {
            await using (watch.ConfigureAwait(false))
            {
                using var stepToken = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, watch.Lost);
                var input = WorkflowDataReader.Read(step.InputType, run.Input[step.InputKey] as JObject ?? new JObject(), step.InputKey, WorkflowDataReadMode.Lenient);
                var output = WorkflowDataReader.Read(step.OutputType, record.Output ?? new JObject(), step.OutputKey, WorkflowDataReadMode.Lenient);
                var instance = (IWorkflowStep)services.GetRequiredService(step.StepType);
                var context = new StepContext(run.Id, record.Id, record.Attempts, accumulated) { WorkflowName = workflow.Name, StepName = step.Name };
                await instance.CompensateAsync(input, output, context, stepToken.Token).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Shutdown: nothing is recorded, so the next execution starts again at this compensation.
            LogCompensationInterrupted(run.Id, step.Name, record.Id);
            throw;
        }
        catch (Exception ex) when (watch.Reason is { } lost)
        {
            LogGuardLost(ex, run.Id, step.Name, record.Id);
            throw new WorkflowGuardLostException($"Workflow run {run.Id} lost its execution guard during the compensation of step '{step.Name}': {lost.Message}", lost);
        }
        catch (Exception ex)
        {
            activity?.SetStatus(System.Diagnostics.ActivityStatusCode.Error, ex.Message);
            LogCompensationFailed(ex, run.Id, workflow.Name, step.Name, record.Id);
            var final = !retriedByScheduler || WorkflowFailures.IsFinal(ex);
            var message = $"Compensation of step '{step.Name}' failed: {ex.Message}";
            await execution.FailCompensationAsync(record.Id, message, final, _time.GetUtcNow(), CancellationToken.None).ConfigureAwait(false);
            throw new UnitOfWorkException(message, UnitOfWorkException.CompensationFailedCode, ex) { WorkflowId = run.Id, StepName = step.Name };
        }

        await execution.CompensateStepAsync(record.Id, _time.GetUtcNow(), CancellationToken.None).ConfigureAwait(false);
    }

    private static UnitOfWorkException Compensated(RunRecord run)
        => new($"Workflow run {run.Id} was compensated.", UnitOfWorkException.RunFinishedCode, new NonRetryableException($"Workflow run {run.Id} was compensated.")) { WorkflowId = run.Id };

    [LoggerMessage(EventId = 16, Level = LogLevel.Information, Message = "Compensating workflow run {WorkflowId} of {WorkflowName}")]
    private partial void LogCompensating(Guid workflowId, string workflowName);

    [LoggerMessage(EventId = 17, Level = LogLevel.Information, Message = "Workflow run {WorkflowId} of {WorkflowName} was compensated")]
    private partial void LogCompensated(Guid workflowId, string workflowName);

    [LoggerMessage(EventId = 18, Level = LogLevel.Warning, Message = "The compensation of step {StepName} ({StepId}) of workflow run {WorkflowId} of {WorkflowName} failed")]
    private partial void LogCompensationFailed(Exception exception, Guid workflowId, string workflowName, string stepName, Guid stepId);

    [LoggerMessage(EventId = 19, Level = LogLevel.Information, Message = "The compensation of step {StepName} ({StepId}) of workflow run {WorkflowId} was interrupted by cancellation; it will resume")]
    private partial void LogCompensationInterrupted(Guid workflowId, string stepName, Guid stepId);
}
