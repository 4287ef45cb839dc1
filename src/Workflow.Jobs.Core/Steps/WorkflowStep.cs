namespace Workflow.Jobs;

/// <summary>What the engine needs of a step, whatever its input and output types.</summary>
internal interface IWorkflowStep
{
    /// <summary>Runs the step on an input of its input type and returns an output of its output type.</summary>
    Task<WorkflowData> ExecuteAsync(WorkflowData input, StepContext context, CancellationToken cancellationToken);

    /// <summary>Undoes the step's effect, given the input it ran with and the output it checkpointed.</summary>
    Task CompensateAsync(WorkflowData input, WorkflowData output, StepContext context, CancellationToken cancellationToken);
}

/// <summary>
/// One step of a workflow. Subclasses are resolved from dependency injection (constructor injection
/// works) and implement <see cref="ProcessInputAsync"/>.
/// </summary>
/// <remarks>
/// A step body runs at least once: a crash after its side effect but before its checkpoint runs it
/// again. Use <see cref="StepContext.StepId"/> as the idempotency key of external calls. A step whose
/// result was checkpointed never runs again.
/// </remarks>
/// <typeparam name="TInput">The step's input; read from the run input under its key.</typeparam>
/// <typeparam name="TOutput">The step's output; stored on the step and under its key in the run output.</typeparam>
public abstract class WorkflowStep<TInput, TOutput> : IWorkflowStep
    where TInput : WorkflowData
    where TOutput : WorkflowData
{
    /// <summary>The step's logic.</summary>
    /// <param name="input">The validated input.</param>
    /// <param name="context">The run, the step, the attempt and the outputs of earlier steps.</param>
    /// <param name="cancellationToken">Cancelled when the host shuts down or the run is cancelled.</param>
    protected abstract Task<TOutput> ProcessInputAsync(TInput input, StepContext context, CancellationToken cancellationToken);

    /// <summary>
    /// Undoes what <see cref="ProcessInputAsync"/> did, once the run is compensated (a final failure with
    /// <see cref="WorkflowDefinition.CompensateOnFailure"/>, or a cancel with <see cref="CancelOptions.Compensate"/>). Called only
    /// for a step that succeeded, in reverse step order; its completion is checkpointed, so a compensation that returned is never
    /// called again. Like a step body it is at-least-once (a crash before its checkpoint calls it again): make it idempotent,
    /// keyed by <see cref="StepContext.StepId"/>. A compensation that throws is retried with the workflow's retry policy.
    /// The default does nothing (nothing to undo).
    /// </summary>
    /// <param name="input">The input the step ran with.</param>
    /// <param name="output">The output the step checkpointed.</param>
    /// <param name="context">The run and the step (the same <see cref="StepContext.StepId"/> as its forward run), with the outputs of every succeeded step.</param>
    /// <param name="cancellationToken">Cancelled when the host shuts down; the compensation runs again elsewhere.</param>
    protected virtual Task CompensateAsync(TInput input, TOutput output, StepContext context, CancellationToken cancellationToken) => Task.CompletedTask;

    Task IWorkflowStep.CompensateAsync(WorkflowData input, WorkflowData output, StepContext context, CancellationToken cancellationToken)
        => CompensateAsync((TInput)input, (TOutput)output, context, cancellationToken);

    async Task<WorkflowData> IWorkflowStep.ExecuteAsync(WorkflowData input, StepContext context, CancellationToken cancellationToken)
    {
        var output = await ProcessInputAsync((TInput)input, context, cancellationToken).ConfigureAwait(false);
        return output ?? throw new InvalidOperationException($"Step '{GetType().FullName}' returned null instead of a {typeof(TOutput).Name}.");
    }
}

/// <summary>What a step knows about the run it is part of.</summary>
public sealed partial class StepContext
{
    /// <summary>Creates a context (the engine does; tests of a step may too).</summary>
    public StepContext(Guid workflowId, Guid stepId, int attempt, WorkflowOutput accumulatedOutput)
    {
        ArgumentNullException.ThrowIfNull(accumulatedOutput);
        WorkflowId = workflowId;
        StepId = stepId;
        Attempt = attempt;
        AccumulatedOutput = accumulatedOutput;
    }

    /// <summary>The run's id.</summary>
    public Guid WorkflowId { get; }

    /// <summary>The step record's id: stable across retries, so use it as the idempotency key for external calls.</summary>
    public Guid StepId { get; }

    /// <summary>1 on the first try of this step, 2 on the second, and so on.</summary>
    public int Attempt { get; }

    /// <summary>The outputs of the steps before this one, by their keys.</summary>
    public WorkflowOutput AccumulatedOutput { get; }

    /// <summary>The workflow's persisted name.</summary>
    public string WorkflowName { get; init; } = "";

    /// <summary>The step's persisted name.</summary>
    public string StepName { get; init; } = "";
}

/// <summary>
/// A workflow: the ordered list of its step types. Subclasses are registered with
/// <c>AddWorkflow&lt;T&gt;()</c>; the optional <see cref="WorkflowNameAttribute"/> gives the persisted name.
/// </summary>
public abstract class WorkflowDefinition
{
    /// <summary>The step types, in execution order. Each derives from <see cref="WorkflowStep{TInput, TOutput}"/>.</summary>
    public abstract IReadOnlyList<Type> Steps { get; }

    /// <summary>
    /// How failed runs are retried when run as jobs; <c>null</c> for the host's default
    /// (<see cref="WorkflowJobsOptions.DefaultRetry"/>).
    /// </summary>
    public virtual WorkflowRetryPolicy? Retry => null;

    /// <summary>
    /// The events the steps wait for (<see cref="StepContext.WaitForEventAsync{T}"/>), by name, with their payload types.
    /// A signal is validated against the type of the wait the run is parked on; an event sent before its wait is reached
    /// is validated against the type declared here (undeclared, it only needs to be a JSON object, and is read with the
    /// wait's type when consumed). Empty by default.
    /// </summary>
    public virtual IReadOnlyDictionary<string, Type> Events => new Dictionary<string, Type>();

    /// <summary>
    /// Whether a run that fails for good (retries exhausted, or a non-retryable failure of a step) undoes its succeeded steps:
    /// their <see cref="WorkflowStep{TInput, TOutput}"/> compensations run in reverse order, each checkpointed once, and the run
    /// ends <see cref="WorkflowStatus.Compensated"/>. Default false: the run ends Failed.
    /// </summary>
    public virtual bool CompensateOnFailure => false;

    /// <summary>
    /// At most this many runs of the workflow execute at once, across every server; the others wait (status
    /// <see cref="WorkflowStatus.Waiting"/>, <see cref="WorkflowRun.WaitingFor"/> = <c>"concurrency"</c>) without holding a
    /// worker, and start in creation order as slots free. <c>null</c> (the default) for no limit; at least 1.
    /// </summary>
    public virtual int? MaxConcurrency => null;

    /// <summary>
    /// At most this many runs with the same <see cref="EnqueueOptions.ConcurrencyKey"/> execute at once, across every
    /// server; the others wait in creation order (first in, first out per key) without holding a worker. Runs without a key
    /// are not limited by it. <c>null</c> (the default) for no limit; at least 1.
    /// </summary>
    public virtual int? MaxConcurrencyPerKey => null;
}

/// <summary>How a failed run is retried by the job scheduler.</summary>
public sealed record WorkflowRetryPolicy
{
    /// <summary>Retries after the first failure (0 = fail at once). Default 3.</summary>
    public int Attempts { get; init; } = 3;

    /// <summary>Delays between retries, in seconds; the last one repeats. Default 2, 10, 60.</summary>
    public IReadOnlyList<int> DelaysInSeconds { get; init; } = [2, 10, 60];
}
