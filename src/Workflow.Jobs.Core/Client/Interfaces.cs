using Newtonsoft.Json.Linq;

namespace Workflow.Jobs;

/// <summary>Starts, reads, retries and cancels runs. Implemented by the job-scheduler adapter (Hangfire).</summary>
public interface IWorkflowClient
{
    /// <summary>
    /// Validates the input, creates the run and enqueues its job atomically, and returns the run id.
    /// With an idempotency key already used, returns the existing run's id.
    /// </summary>
    /// <exception cref="WorkflowDataValidationException">The input is invalid; nothing was persisted or enqueued.</exception>
    Task<Guid> EnqueueAsync<TWorkflow>(WorkflowInput input, EnqueueOptions? options = null, CancellationToken cancellationToken = default)
        where TWorkflow : WorkflowDefinition;

    /// <summary>As <see cref="EnqueueAsync{TWorkflow}"/>, by the workflow's persisted name and a composite JSON input.</summary>
    /// <exception cref="UnitOfWorkException">Code <c>unknown_workflow</c> for an unknown name.</exception>
    /// <exception cref="WorkflowDataValidationException">The input is invalid; nothing was persisted or enqueued.</exception>
    Task<Guid> EnqueueAsync(string workflowName, JObject input, EnqueueOptions? options = null, CancellationToken cancellationToken = default);

    /// <summary>
    /// Enqueues many runs of one workflow. Every input is validated before anything is written (errors carry
    /// the item's index in their path: <c>[3].customer_input.name</c>); then runs and their jobs are created
    /// in batches, each batch one transaction (atomic per batch; without idempotency keys several batches are
    /// written at once, so when the call fails, batches before and after the failed one may have committed). A
    /// repeated idempotency key (in the list or already used) returns the existing run. The ids come back in the
    /// order of <paramref name="items"/>.
    /// </summary>
    /// <exception cref="UnitOfWorkException">Code <c>unknown_workflow</c> for an unknown name.</exception>
    /// <exception cref="WorkflowDataValidationException">Some input is invalid; nothing was persisted or enqueued.</exception>
    Task<IReadOnlyList<Guid>> EnqueueManyAsync(string workflowName, IReadOnlyList<WorkflowEnqueueItem> items, CancellationToken cancellationToken = default);

    /// <summary>
    /// Starts a new run from an existing one (the original is unchanged): the steps before
    /// <see cref="ForkOptions.FromStep"/> are copied as Succeeded with their outputs and never executed; the
    /// rest run with the original input, parts of it replaced by <see cref="ForkOptions.Input"/> (validated like
    /// an enqueue). The fork uses the deployed definition, copies earlier steps by name, and records
    /// <see cref="WorkflowRun.ForkedFrom"/>. Returns the new run's id.
    /// </summary>
    /// <exception cref="WorkflowRunNotFoundException">There is no such run.</exception>
    /// <exception cref="WorkflowDataValidationException">The step or the input is invalid (paths <c>from_step</c>, <c>input...</c>); nothing was created.</exception>
    Task<Guid> ForkAsync(Guid workflowId, ForkOptions? options = null, CancellationToken cancellationToken = default);

    /// <summary>How many runs the query's filters select (its paging is ignored).</summary>
    Task<long> CountAsync(WorkflowQuery query, CancellationToken cancellationToken = default);

    /// <summary>
    /// Retries every Failed or Cancelled run the query's filters select (paging ignored), in batches of one transaction
    /// each; each resumes at its failed step as with <see cref="RetryAsync"/>. Returns how many were retried.
    /// </summary>
    Task<int> RetryManyAsync(WorkflowQuery query, CancellationToken cancellationToken = default);

    /// <summary>Cancels every unfinished or Failed run the filters select, in batches; returns how many were cancelled.</summary>
    Task<int> CancelManyAsync(WorkflowQuery query, CancellationToken cancellationToken = default);

    /// <summary>
    /// Hard-deletes every finished run (Succeeded, Failed, Cancelled, Compensated) the filters select, with its steps, in
    /// batches; their jobs move to Deleted. An unfinished run is never deleted. Returns how many were deleted.
    /// </summary>
    Task<int> PurgeAsync(WorkflowQuery query, CancellationToken cancellationToken = default);

    /// <summary>The run with its steps, or <c>null</c> if there is none (or it was removed).</summary>
    Task<WorkflowRun?> GetAsync(Guid workflowId, CancellationToken cancellationToken = default);

    /// <summary>Runs matching the query, newest first.</summary>
    Task<IReadOnlyList<WorkflowRun>> ListAsync(WorkflowQuery query, CancellationToken cancellationToken = default);

    /// <summary>Enqueues a failed (or cancelled) run again; it resumes at the failed step.</summary>
    /// <exception cref="InvalidOperationException">The run is not failed or cancelled.</exception>
    Task RetryAsync(Guid workflowId, CancellationToken cancellationToken = default);

    /// <summary>Marks the run cancelled and deletes its job; a step in flight is cancelled through its token.</summary>
    /// <exception cref="InvalidOperationException">The run has already succeeded.</exception>
    Task CancelAsync(Guid workflowId, CancellationToken cancellationToken = default);

    /// <summary>
    /// Sends the event <paramref name="eventName"/> to a run: stored in the caller's transaction (an ambient
    /// <c>TransactionScope</c> is joined) and consumed by exactly one wait for that name (<see cref="StepContext.WaitForEventAsync{T}"/>),
    /// the one waiting now or the first to come. A run waiting for it is woken at once.
    /// </summary>
    /// <exception cref="WorkflowRunNotFoundException">There is no such run.</exception>
    /// <exception cref="UnitOfWorkException">Code <c>run_finished</c>: the run has finished; nothing was stored.</exception>
    /// <exception cref="WorkflowDataValidationException">The payload does not fit the expected type (errors with paths); nothing was stored.</exception>
    Task SignalAsync(Guid workflowId, string eventName, WorkflowData payload, CancellationToken cancellationToken = default);

    /// <summary>As <see cref="SignalAsync(Guid, string, WorkflowData, CancellationToken)"/>, with a JSON payload validated like step input.</summary>
    /// <exception cref="WorkflowRunNotFoundException">There is no such run.</exception>
    /// <exception cref="UnitOfWorkException">Code <c>run_finished</c>: the run has finished; nothing was stored.</exception>
    /// <exception cref="WorkflowDataValidationException">The payload does not fit the expected type (errors with paths); nothing was stored.</exception>
    Task SignalAsync(Guid workflowId, string eventName, JObject payload, CancellationToken cancellationToken = default);

    /// <summary>
    /// Cancels the run as <see cref="CancelAsync(Guid, CancellationToken)"/> does; with <see cref="CancelOptions.Compensate"/>, the run
    /// turns Compensating instead and its job is requeued (created if it is gone) to run the compensations of the succeeded steps in
    /// reverse order; a step in flight finishes or fails but no further forward step starts. The job write is recorded with the
    /// status change (the outbox does it after a crash).
    /// </summary>
    /// <exception cref="WorkflowRunNotFoundException">There is no such run.</exception>
    /// <exception cref="InvalidOperationException">The run has finished (compensation: it succeeded, was cancelled or compensated).</exception>
    Task CancelAsync(Guid workflowId, CancelOptions? options, CancellationToken cancellationToken = default);
}

/// <summary>Creates and executes runs in-process, without a job scheduler.</summary>
public interface IWorkflowRunner
{
    /// <summary>Validates the input and persists a pending run; returns its id.</summary>
    /// <exception cref="WorkflowDataValidationException">The input is invalid; nothing was persisted.</exception>
    Task<Guid> CreateAsync<TWorkflow>(WorkflowInput input, CancellationToken cancellationToken = default) where TWorkflow : WorkflowDefinition;

    /// <summary>
    /// Executes the run: skips succeeded steps, runs the rest and checkpoints each. A succeeded run
    /// returns its stored output. A second concurrent execution of the same run waits for the first.
    /// </summary>
    /// <exception cref="UnitOfWorkException">A step failed (original message, original exception inner), or the run cannot execute.</exception>
    Task<WorkflowOutput> ExecuteAsync(Guid workflowId, CancellationToken cancellationToken = default);
}

/// <summary>Recurring workflows.</summary>
public interface IWorkflowScheduler
{
    /// <summary>
    /// Creates or updates a schedule; each firing starts a new run with a snapshot of <paramref name="input"/>.
    /// <paramref name="recurringId"/> is also the Hangfire recurring job id.
    /// </summary>
    Task AddOrUpdateRecurringAsync<TWorkflow>(string recurringId, string cron, WorkflowInput input,
        RecurringWorkflowOptions? options = null, CancellationToken cancellationToken = default) where TWorkflow : WorkflowDefinition;

    /// <summary>Removes a schedule; runs it started are kept.</summary>
    Task RemoveRecurringAsync(string recurringId, CancellationToken cancellationToken = default);
}
