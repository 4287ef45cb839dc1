using System.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Newtonsoft.Json.Linq;

namespace Workflow.Jobs;

/// <summary>
/// Executes runs: the seed's <c>execute()</c> with checkpoints, resume, the execution guard and the
/// definition check. It only executes (runs are created by the client); every status it writes is a named
/// operation of <see cref="WorkflowTransitions"/>. Knows nothing of EF Core or Hangfire.
/// </summary>
internal sealed partial class WorkflowEngine
{
    private readonly IWorkflowStore _store;
    private readonly WorkflowRegistry _registry;
    private readonly IServiceScopeFactory _scopeFactory;
    private readonly TimeProvider _time;
    private readonly ILogger<WorkflowEngine> _logger;
    private readonly WorkflowMetrics _metrics;
    private readonly WorkflowWaker _waker;

    /// <summary>How often an in-process execution tries again for a flow-control slot.</summary>
    private static readonly TimeSpan InProcessSlotPoll = TimeSpan.FromMilliseconds(100);

    public WorkflowEngine(IWorkflowStore store, WorkflowRegistry registry, IServiceScopeFactory scopeFactory, TimeProvider time,
        WorkflowMetrics metrics, WorkflowWaker waker, ILogger<WorkflowEngine> logger)
    {
        _metrics = metrics;
        _waker = waker;
        _store = store;
        _registry = registry;
        _scopeFactory = scopeFactory;
        _time = time;
        _logger = logger;
    }

    /// <summary>Executes the run in-process (a failure is final: no job scheduler retries it).</summary>
    public Task<WorkflowOutput> ExecuteAsync(Guid workflowId, CancellationToken cancellationToken = default)
        => ExecuteAsync(workflowId, retriedByScheduler: false, cancellationToken);

    /// <summary>
    /// Executes the run. With <paramref name="retriedByScheduler"/>, a retryable step failure leaves the run
    /// Pending (the job scheduler decides whether it retries; its state filter marks the run Failed when not),
    /// so a run reads Failed only once its failure is final.
    /// </summary>
    internal async Task<WorkflowOutput> ExecuteAsync(Guid workflowId, bool retriedByScheduler, CancellationToken cancellationToken)
    {
        var slots = new HeldSlots();
        try
        {
            return await ExecuteGuardedAsync(workflowId, retriedByScheduler, slots, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            // The execution is over and its slots were released with its guard: the runs queued for them are offered them
            // now rather than at the leader's next flow-control pass (which still covers whatever this misses).
            if (slots.Workflow is { } limited)
            {
                await HandOffSlotsAsync(limited, workflowId).ConfigureAwait(false);
            }
        }
    }

    private async Task<WorkflowOutput> ExecuteGuardedAsync(Guid workflowId, bool retriedByScheduler, HeldSlots slots, CancellationToken cancellationToken)
    {
        await using var execution = await _store.BeginExecutionAsync(workflowId, cancellationToken).ConfigureAwait(false);
        var run = execution.Run
            ?? throw new WorkflowRunNotFoundException(workflowId);

        if (run.Status == WorkflowStatus.Succeeded)
        {
            return WorkflowOutput.FromJson(run.Output ?? new JObject());
        }

        if (run.Status == WorkflowStatus.Cancelled)
        {
            throw Cancelled(run);
        }

        if (run.Status != WorkflowStatus.Compensated && (run.CompensationRequested || run.Status == WorkflowStatus.Compensating))
        {
            // Marked for compensation: only compensations run (WorkflowEngine.Compensation.cs), never a forward step.
            await CompensateRunAsync(execution, run, retriedByScheduler, cancellationToken).ConfigureAwait(false);
            throw Compensated(run);
        }

        if (!WorkflowTransitions.Allows(RunOperation.Start, run.Status))
        {
            // Finished for good (compensated): its forward steps never run again.
            var message = $"Workflow run {run.Id} is {run.Status}; it does not run again.";
            throw new UnitOfWorkException(message, UnitOfWorkException.RunFinishedCode, new NonRetryableException(message)) { WorkflowId = run.Id };
        }

        if (run.Status == WorkflowStatus.Waiting && !await IsWaitOverAsync(run, cancellationToken).ConfigureAwait(false))
        {
            // Its job ran before the wait is over (a stale queue entry, a second job): nothing runs, the job goes back to waiting.
            LogStillWaiting(run.Id, run.WaitingFor ?? "", run.WakeAt);
            throw new WorkflowParkedException(run.Id, run.WaitingFor ?? "", run.WakeAt);
        }

        var workflow = _registry.Find(run.WorkflowName);
        if (workflow is null)
        {
            var message = $"Workflow '{run.WorkflowName}' is not registered in this host.";
            await execution.FailRunAsync(message, _time.GetUtcNow(), CancellationToken.None).ConfigureAwait(false);
            throw new UnitOfWorkException(message, UnitOfWorkException.UnknownWorkflowCode, new NonRetryableException(message)) { WorkflowId = run.Id };
        }

        if (!run.StepNames.SequenceEqual(workflow.StepNames, StringComparer.Ordinal))
        {
            var message = $"Workflow '{run.WorkflowName}' changed since run {run.Id} started: the run has steps [{string.Join(", ", run.StepNames)}] " +
                          $"but the deployed definition has [{string.Join(", ", workflow.StepNames)}]. Finish it with the old definition or start a new run.";
            await execution.FailRunAsync(message, _time.GetUtcNow(), CancellationToken.None).ConfigureAwait(false);
            throw new UnitOfWorkException(message, UnitOfWorkException.DefinitionMismatchCode, new NonRetryableException(message)) { WorkflowId = run.Id };
        }

        if (FlowControl.RequestFor(workflow, run) is { } request)
        {
            await AdmitAsync(execution, run, request, retriedByScheduler, cancellationToken).ConfigureAwait(false);
            slots.Workflow = workflow;
        }

        using var activity = WorkflowTelemetry.Source.StartActivity("workflow.run " + workflow.Name);
        activity?.SetTag("workflow.name", workflow.Name);
        activity?.SetTag("workflow.run_id", run.Id.ToString());
        _metrics.RunsInFlight.Add(1);
        try
        {
            return await ExecuteStepsAsync(execution, run, workflow, retriedByScheduler, cancellationToken).ConfigureAwait(false);
        }
        catch (UnitOfWorkException ex) when (!retriedByScheduler && workflow.CompensateOnFailure && IsStepFailure(ex))
        {
            // In-process, a step failure is final: the compensations run now, in this execution, and the failure surfaces.
            await CompensateAfterFinalFailureAsync(execution, run, workflow, cancellationToken).ConfigureAwait(false);
            throw;
        }
        finally
        {
            _metrics.RunsInFlight.Add(-1);
        }
    }

    private async Task<WorkflowOutput> ExecuteStepsAsync(IRunExecution execution, RunRecord run, WorkflowDescriptor workflow, bool retriedByScheduler,
        CancellationToken cancellationToken)
    {
        var records = execution.Steps.ToDictionary(s => s.StepName, StringComparer.Ordinal);
        var accumulated = new WorkflowOutput();
        Guid? preceding = null;
        var first = 0;
        for (; first < workflow.Steps.Count; first++)
        {
            var step = workflow.Steps[first];
            if (!records.TryGetValue(step.Name, out var record) || record.Status != WorkflowStatus.Succeeded)
            {
                break;
            }

            accumulated.SetJson(step.OutputKey, record.Output ?? new JObject());
            preceding = record.Id;
        }

        if (first == workflow.Steps.Count)
        {
            // Every step was already checkpointed (the run was only left unfinished).
            await execution.SucceedRunAsync(accumulated.ToJson(), first, _time.GetUtcNow(), CancellationToken.None).ConfigureAwait(false);
            return accumulated;
        }

        var start = PlanStart(workflow.Steps[first], run, records, preceding);
        if (!await execution.StartAsync(start, _time.GetUtcNow(), cancellationToken).ConfigureAwait(false))
        {
            throw Cancelled(run);
        }

        LogStarted(run.Id, workflow.Name, first, workflow.Steps.Count, run.Attempts + 1);
        await using var scope = _scopeFactory.CreateAsyncScope();
        for (var index = first; index < workflow.Steps.Count; index++)
        {
            var step = workflow.Steps[index];
            var output = await RunStepAsync(execution, run, workflow, step, start, accumulated, scope.ServiceProvider, retriedByScheduler, cancellationToken)
                .ConfigureAwait(false);
            var outputJson = output.ToJson();
            accumulated.SetJson(step.OutputKey, outputJson, output);
            var last = index == workflow.Steps.Count - 1;
            var next = last ? null : PlanStart(workflow.Steps[index + 1], run, records, start.StepId);
            var started = await execution.CompleteStepAsync(start.StepId, outputJson, next, last ? accumulated.ToJson() : null, index + 1,
                _time.GetUtcNow(), CancellationToken.None).ConfigureAwait(false);
            if (!last && !started)
            {
                throw Cancelled(run);
            }

            if (last)
            {
                await WakeParentAsync(execution, scope.ServiceProvider).ConfigureAwait(false);
            }

            start = next!;
        }

        _metrics.RunsSucceeded.Add(1, new KeyValuePair<string, object?>("workflow.name", workflow.Name));
        LogSucceeded(run.Id, workflow.Name);
        return accumulated;
    }

    private async Task<WorkflowData> RunStepAsync(IRunExecution execution, RunRecord run, WorkflowDescriptor workflow, StepDescriptor step, StepStart start,
        WorkflowOutput accumulated, IServiceProvider services, bool retriedByScheduler, CancellationToken cancellationToken)
    {
        using var activity = WorkflowTelemetry.Source.StartActivity("workflow.step " + step.Name);
        activity?.SetTag("workflow.name", workflow.Name);
        activity?.SetTag("workflow.run_id", run.Id.ToString());
        activity?.SetTag("workflow.step.name", step.Name);
        activity?.SetTag("workflow.step.id", start.StepId.ToString());
        activity?.SetTag("workflow.step.attempt", start.Attempt);
        var startedAt = Stopwatch.GetTimestamp();
        var tags = new TagList { { "workflow.name", workflow.Name }, { "workflow.step.name", step.Name } };
        var watch = execution.WatchGuard();
        try
        {
            WorkflowData? output = null;
            while (output is null)
            {
                StepWaitUnwind? unwind = null;
                await using (watch.ConfigureAwait(false))
                {
                    using var stepToken = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, watch.Lost);
                    var input = WorkflowDataReader.Read(step.InputType, start.Input, step.InputKey, WorkflowDataReadMode.Lenient);
                    var instance = (IWorkflowStep)services.GetRequiredService(step.StepType);
                    var context = new StepContext(run.Id, start.StepId, start.Attempt, accumulated)
                    {
                        WorkflowName = workflow.Name,
                        StepName = step.Name,
                        Waits = new StepWaits(_store, _time, run.Id, start.StepId)
                        {
                            CreateChildren = services.GetService<WorkflowClient>() is { } client ? client.CreateChildrenAsync : null,
                        },
                        Items = new RunExecutionStepItems(execution, start.StepId, start.Attempt, _time),
                    };
                    try
                    {
                        output = await instance.ExecuteAsync(input, context, stepToken.Token).ConfigureAwait(false);
                    }
                    catch (StepWaitUnwind u) when (u.Park.StepId == start.StepId)
                    {
                        unwind = u;
                    }
                }

                if (unwind is not null)
                {
                    // The guard watch is stopped: the park is written on the execution's connection, in one transaction.
                    var park = unwind.Park;
                    switch (await execution.WaitAsync(park, _time.GetUtcNow(), CancellationToken.None).ConfigureAwait(false))
                    {
                        case ParkResult.Parked:
                            tags.Add("workflow.step.outcome", "waiting");
                            _metrics.RunsParked.Add(1, new KeyValuePair<string, object?>("workflow.name", workflow.Name));
                            LogParked(run.Id, step.Name, park.WaitingFor, park.Deadline);
                            throw new WorkflowParkedException(run.Id, park.WaitingFor, park.Deadline);
                        case ParkResult.NotRunning:
                            throw Cancelled(run);
                        default:
                            // The event arrived between the wait's check and the park: the step runs again now and consumes it.
                            watch = execution.WatchGuard();
                            break;
                    }
                }
            }

            if (output.GetType() != step.OutputType && !step.OutputType.IsInstanceOfType(output))
            {
                throw new NonRetryableException($"Step '{step.Name}' returned {output.GetType().Name} instead of {step.OutputType.Name}.");
            }

            tags.Add("workflow.step.outcome", "succeeded");
            return output;
        }
        catch (WorkflowParkedException)
        {
            throw;
        }
        catch (UnitOfWorkException ex) when (ex.Code == UnitOfWorkException.CancelledCode && ex.WorkflowId == run.Id && ex.StepName is null)
        {
            throw;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            tags.Add("workflow.step.outcome", "interrupted");
            LogInterrupted(run.Id, step.Name, start.StepId);
            await execution.InterruptAsync(start.StepId, _time.GetUtcNow(), CancellationToken.None).ConfigureAwait(false);
            throw;
        }
        catch (Exception ex) when (watch.Reason is { } lost)
        {
            // The guard's connection died under the step: nothing can be written on it any more, and another
            // execution may take the run. The step body was cancelled; the database's own error surfaces, so
            // the job scheduler treats it as an outage (retried without using the run's budget).
            tags.Add("workflow.step.outcome", "guard_lost");
            LogGuardLost(ex, run.Id, step.Name, start.StepId);
            throw new WorkflowGuardLostException($"Workflow run {run.Id} lost its execution guard during step '{step.Name}': {lost.Message}", lost);
        }
        catch (Exception ex)
        {
            tags.Add("workflow.step.outcome", "failed");
            activity?.SetStatus(ActivityStatusCode.Error, ex.Message);
            LogStepFailed(ex, run.Id, workflow.Name, step.Name, start.StepId, start.Attempt);
            var runOperation = retriedByScheduler && !WorkflowFailures.IsFinal(ex) ? RunOperation.FailForRetry : RunOperation.Fail;
            await execution.FailStepAsync(start.StepId, ex, runOperation, _time.GetUtcNow(), CancellationToken.None).ConfigureAwait(false);
            await WakeParentAsync(execution, services).ConfigureAwait(false);
            _metrics.RunsFailed.Add(1, new KeyValuePair<string, object?>("workflow.name", workflow.Name));
            throw new UnitOfWorkException(ex.Message, ex is WorkflowDataValidationException v ? v.Code : UnitOfWorkException.StepFailedCode, ex)
            {
                WorkflowId = run.Id,
                StepName = step.Name,
            };
        }
        finally
        {
            _metrics.StepDuration.Record(Stopwatch.GetElapsedTime(startedAt).TotalSeconds, tags);
        }
    }

    /// <summary>
    /// A child run just finished as its parent's last unfinished child: the parent was woken in the same transaction; its job
    /// write follows now (the outbox does it if this fails or the process dies first).
    /// </summary>
    private static async Task WakeParentAsync(IRunExecution execution, IServiceProvider services)
    {
        if (execution.ParentWake is { } wake && services.GetService<WorkflowJobRequests>() is { } jobs)
        {
            await jobs.AfterCommitAsync(wake, CancellationToken.None).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Takes the run's flow-control slots before it starts. A job execution that gets none parks the run (Waiting for
    /// <c>concurrency</c>, the worker released, no attempt and no retry used) and an offer wakes it when a slot frees; an
    /// in-process execution (no job to park) waits for a slot instead.
    /// </summary>
    private async Task AdmitAsync(IRunExecution execution, RunRecord run, SlotRequest slots, bool retriedByScheduler, CancellationToken cancellationToken)
    {
        var request = retriedByScheduler ? slots : slots with { IgnoreQueue = true };
        while (true)
        {
            var admission = await execution.TryTakeSlotsAsync(request, cancellationToken).ConfigureAwait(false);
            if (admission.Admitted)
            {
                return;
            }

            if (!retriedByScheduler)
            {
                await Task.Delay(InProcessSlotPoll, _time, cancellationToken).ConfigureAwait(false);
                continue;
            }

            switch (await execution.WaitForSlotAsync(admission.BlockedOn, _time.GetUtcNow(), CancellationToken.None).ConfigureAwait(false))
            {
                case ParkResult.Parked:
                    _metrics.RunsParked.Add(1, new KeyValuePair<string, object?>("workflow.name", run.WorkflowName));
                    LogWaitingForSlot(run.Id, run.WorkflowName, run.ConcurrencyKey, admission.BlockedOn);
                    throw new WorkflowParkedException(run.Id, FlowControl.WaitingFor, null);
                default:
                    throw Cancelled(run);
            }
        }
    }

    /// <summary>
    /// Offers the slots an execution just gave back to the runs queued for them (the leader's offer, for this workflow
    /// only). A failure is logged and left to the leader's next pass.
    /// </summary>
    private async Task HandOffSlotsAsync(WorkflowDescriptor workflow, Guid workflowId)
    {
        try
        {
            await _waker.WakeForFreeSlotsAsync(workflow, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            LogHandOffFailed(ex, workflowId, workflow.Name);
        }
    }

    /// <summary>The workflow whose flow-control slots an execution took (null: it took none).</summary>
    private sealed class HeldSlots
    {
        public WorkflowDescriptor? Workflow { get; set; }
    }

    /// <summary>Whether a Waiting run's wait is over: its time came, or the event it waits for is there.</summary>
    private async Task<bool> IsWaitOverAsync(RunRecord run, CancellationToken cancellationToken)
    {
        if (run.WaitingFor == FlowControl.WaitingFor)
        {
            // Only an offer of a freed slot ends a wait for one (in creation order); a stale job changes nothing.
            return false;
        }

        if (run.WakeAt is { } wakeAt && wakeAt <= _time.GetUtcNow())
        {
            return true;
        }

        return run.WaitingFor is { } name && name != WaitKinds.Sleep
            && await _store.HasPendingEventAsync(run.Id, name, cancellationToken).ConfigureAwait(false);
    }

    private static StepStart PlanStart(StepDescriptor step, RunRecord run, Dictionary<string, StepRecord> records, Guid? preceding)
    {
        records.TryGetValue(step.Name, out var existing);
        var input = run.Input[step.InputKey] as JObject ?? new JObject();
        // A step that parked on a wait resumes in the same attempt: a wake is not a new attempt.
        var afterWait = existing?.Status == WorkflowStatus.Waiting;
        return new StepStart(existing?.Id ?? Guid.CreateVersion7(), step.Name, preceding, input, (existing?.Attempts ?? 0) + (afterWait ? 0 : 1), existing is not null)
        {
            AfterWait = afterWait,
        };
    }

    private static UnitOfWorkException Cancelled(RunRecord run)
        => new($"Workflow run {run.Id} was cancelled.", UnitOfWorkException.CancelledCode, new NonRetryableException($"Workflow run {run.Id} was cancelled.")) { WorkflowId = run.Id };

    [LoggerMessage(EventId = 2, Level = LogLevel.Information, Message = "Executing workflow run {WorkflowId} of {WorkflowName} from step {StepIndex}/{StepCount}, attempt {Attempt}")]
    private partial void LogStarted(Guid workflowId, string workflowName, int stepIndex, int stepCount, int attempt);

    [LoggerMessage(EventId = 3, Level = LogLevel.Information, Message = "Workflow run {WorkflowId} of {WorkflowName} succeeded")]
    private partial void LogSucceeded(Guid workflowId, string workflowName);

    [LoggerMessage(EventId = 4, Level = LogLevel.Warning, Message = "Step {StepName} ({StepId}) of workflow run {WorkflowId} of {WorkflowName} failed on attempt {Attempt}")]
    private partial void LogStepFailed(Exception exception, Guid workflowId, string workflowName, string stepName, Guid stepId, int attempt);

    [LoggerMessage(EventId = 6, Level = LogLevel.Warning, Message = "Step {StepName} ({StepId}) of workflow run {WorkflowId} was cancelled: its execution guard was lost; the run resumes elsewhere")]
    private partial void LogGuardLost(Exception exception, Guid workflowId, string stepName, Guid stepId);

    [LoggerMessage(EventId = 12, Level = LogLevel.Information, Message = "Step {StepName} of workflow run {WorkflowId} waits for {WaitingFor} until {WakeAt}; the worker is released")]
    private partial void LogParked(Guid workflowId, string stepName, string waitingFor, DateTimeOffset? wakeAt);

    [LoggerMessage(EventId = 13, Level = LogLevel.Information, Message = "Workflow run {WorkflowId} is still waiting for {WaitingFor} until {WakeAt}; its job goes back to waiting without running anything")]
    private partial void LogStillWaiting(Guid workflowId, string waitingFor, DateTimeOffset? wakeAt);

    [LoggerMessage(EventId = 14, Level = LogLevel.Information, Message = "Workflow run {WorkflowId} of {WorkflowName} (concurrency key {ConcurrencyKey}) waits for a {SlotGroup} slot; the worker is released")]
    private partial void LogWaitingForSlot(Guid workflowId, string workflowName, string? concurrencyKey, SlotGroup slotGroup);

    [LoggerMessage(EventId = 21, Level = LogLevel.Warning, Message = "Workflow run {WorkflowId} of {WorkflowName} gave back its flow-control slots, but offering them to the queued runs failed; the leader's next pass offers them")]
    private partial void LogHandOffFailed(Exception exception, Guid workflowId, string workflowName);

    [LoggerMessage(EventId = 5, Level = LogLevel.Information, Message = "Step {StepName} ({StepId}) of workflow run {WorkflowId} was interrupted by cancellation; it will resume")]
    private partial void LogInterrupted(Guid workflowId, string stepName, Guid stepId);
}
