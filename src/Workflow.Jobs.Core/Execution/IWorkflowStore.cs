using Newtonsoft.Json.Linq;

namespace Workflow.Jobs;

/// <summary>A run to persist.</summary>
internal sealed record NewRunRecord(
    Guid Id,
    string WorkflowName,
    JObject Input,
    IReadOnlyList<string> StepNames,
    DateTimeOffset Created,
    string? IdempotencyKey = null,
    string? RecurringId = null,
    string? Queue = null)
{
    /// <summary>The run's tags (validated); empty when none.</summary>
    public IReadOnlyDictionary<string, string> Tags { get; init; } = WorkflowTags.Empty;

    /// <summary>When the job should run at the earliest (an enqueue delay); null for at once.</summary>
    public DateTimeOffset? NotBefore { get; init; }

    /// <summary>The run this one is forked from.</summary>
    public Guid? ForkedFrom { get; init; }

    /// <summary>Steps written with the run as already Succeeded (a fork's copies of the original's), in order.</summary>
    public IReadOnlyList<CopiedStep> CopiedSteps { get; init; } = [];

    /// <summary>
    /// Whether the run is written marked as awaiting its job (the outbox): the job is created after the
    /// run commits, and the outbox creates it if that does not happen.
    /// </summary>
    public bool AwaitingJob { get; init; }
}

/// <summary>A step written as Succeeded with a new run (never executed in it).</summary>
internal sealed record CopiedStep(string StepName, JObject Input, JObject Output);

/// <summary>A job write that must follow a run's committed change (the outbox).</summary>
internal enum JobRequestKind
{
    /// <summary>Nothing to do.</summary>
    None = 0,

    /// <summary>Create the run's job.</summary>
    Create,

    /// <summary>Put the run's job back in its queue with a fresh retry budget (or create one if it is gone).</summary>
    Requeue,

    /// <summary>Delete the run's job, if it has one.</summary>
    Delete,
}

/// <summary>A pending job write of a run, as the outbox reads it.</summary>
internal sealed record JobRequest(Guid RunId, JobRequestKind Kind, string WorkflowName, string? Queue, string? JobId, DateTimeOffset? NotBefore);

/// <summary>What a status transition changed.</summary>
/// <param name="Previous">The run's status before the change.</param>
/// <param name="Request">The job write recorded with the change (to be done after it commits), if any.</param>
internal sealed record RunChange(WorkflowStatus Previous, JobRequest? Request);

/// <summary>What creating a run did.</summary>
/// <param name="Id">The run's id: the new one, or the existing run's for a repeated idempotency key.</param>
/// <param name="Created">False when an existing run was returned for its idempotency key.</param>
/// <param name="JobId">The job created for the run, when a dispatcher was given.</param>
internal sealed record CreateRunResult(Guid Id, bool Created, string? JobId);

/// <summary>A run as loaded for execution.</summary>
internal sealed record RunRecord(
    Guid Id,
    string WorkflowName,
    WorkflowStatus Status,
    JObject Input,
    JObject? Output,
    IReadOnlyList<string> StepNames,
    int Attempts);

/// <summary>A live step record as loaded for execution.</summary>
internal sealed record StepRecord(Guid Id, string StepName, WorkflowStatus Status, JObject? Output, int Attempts);

/// <summary>A step about to start: the record is created (or its attempt counted) as Running.</summary>
internal sealed record StepStart(Guid StepId, string StepName, Guid? PrecedingStepId, JObject Input, int Attempt, bool Exists);

/// <summary>
/// Persistence of runs and steps. The engine knows only this; the EF Core adapter implements it.
/// </summary>
internal interface IWorkflowStore
{
    /// <summary>
    /// Inserts the run (honouring its idempotency key) and, when <paramref name="createJob"/> is given,
    /// creates its job in the same transaction and stores the job id (the job storage must join that
    /// transaction). Joins the caller's ambient transaction.
    /// </summary>
    Task<CreateRunResult> CreateRunAsync(NewRunRecord run, Func<Guid, string?>? createJob, CancellationToken cancellationToken);

    /// <summary>
    /// Inserts runs of one workflow in one transaction (joining the caller's), honouring idempotency keys,
    /// and, when <paramref name="createJob"/> is given, creates the jobs of the new runs in that transaction.
    /// Results are in the order of <paramref name="runs"/>.
    /// </summary>
    Task<IReadOnlyList<CreateRunResult>> CreateRunsAsync(IReadOnlyList<NewRunRecord> runs, Func<NewRunRecord, string?>? createJob,
        CancellationToken cancellationToken);

    Task<WorkflowRun?> GetRunAsync(Guid id, bool includeSteps, CancellationToken cancellationToken);

    /// <summary>
    /// A page of runs matching the (validated) query, newest first, without input or output JSON
    /// (<see cref="WorkflowRun.Input"/> empty, <see cref="WorkflowRun.Output"/> null, steps likewise).
    /// </summary>
    Task<IReadOnlyList<WorkflowRun>> ListRunsAsync(WorkflowQuery query, CancellationToken cancellationToken);

    /// <summary>
    /// How many runs are Failed, counting at most <paramref name="cap"/> (the dashboard's menu badge). Synchronous
    /// because Hangfire renders its menu synchronously; it reads only a small partial index.
    /// </summary>
    long CountFailedRuns(long cap);

    /// <summary>
    /// Takes the run's execution guard (waiting while another execution holds it) and loads the run
    /// with its live steps. Disposing the result releases the guard.
    /// </summary>
    Task<IRunExecution> BeginExecutionAsync(Guid runId, CancellationToken cancellationToken);

    /// <summary>
    /// Applies <paramref name="operation"/> to the run when <see cref="WorkflowTransitions"/> allows it from the
    /// run's current status, recording <paramref name="jobRequest"/> in the same transaction (a Delete only
    /// when the run has a job). Returns null when the run does not exist or its status does not allow it.
    /// </summary>
    Task<RunChange?> TransitionAsync(Guid runId, RunOperation operation, DateTimeOffset now, string? message, JobRequestKind jobRequest,
        CancellationToken cancellationToken);

    /// <summary>How many runs the query's filters select (its paging ignored).</summary>
    Task<long> CountRunsAsync(WorkflowQuery query, CancellationToken cancellationToken);

    /// <summary>
    /// Applies <paramref name="operation"/> to at most <paramref name="limit"/> runs selected by the query's filters whose
    /// status allows it, in one transaction, recording <paramref name="jobRequest"/> with each; returns the changed runs
    /// with their job writes (kind None when there is nothing to do).
    /// </summary>
    Task<IReadOnlyList<JobRequest>> TransitionManyAsync(WorkflowQuery query, RunOperation operation, JobRequestKind jobRequest, DateTimeOffset now,
        int limit, CancellationToken cancellationToken);

    /// <summary>Hard-deletes at most <paramref name="limit"/> runs in <paramref name="status"/> (a finished one) last changed before <paramref name="before"/>; returns their job ids.</summary>
    Task<IReadOnlyList<string?>> PurgeFinishedBeforeAsync(WorkflowStatus status, DateTimeOffset before, int limit, CancellationToken cancellationToken);

    /// <summary>Hard-deletes at most <paramref name="limit"/> finished runs selected by the filters, with their steps; returns their job ids.</summary>
    Task<IReadOnlyList<string?>> PurgeAsync(WorkflowQuery query, int limit, CancellationToken cancellationToken);

    /// <summary>The current status of a run, or null when it does not exist.</summary>
    Task<WorkflowStatus?> GetStatusAsync(Guid runId, CancellationToken cancellationToken);

    /// <summary>Job writes recorded before <paramref name="recordedBefore"/> and still not done, oldest first.</summary>
    Task<IReadOnlyList<JobRequest>> GetJobRequestsAsync(DateTimeOffset recordedBefore, int limit, CancellationToken cancellationToken);

    /// <summary>
    /// Marks a job write done (when it is still the run's pending one), storing the job id when one was created.
    /// Returns false when another write replaced it meanwhile.
    /// </summary>
    Task<bool> CompleteJobRequestAsync(Guid runId, JobRequestKind kind, string? jobId, CancellationToken cancellationToken);

    /// <summary>
    /// A page of the fan-out items of a step (<see cref="StepContext.ForEachAsync{TItem, TResult}(IReadOnlyList{TItem}, Func{TItem, CancellationToken, Task{TResult}}, ForEachOptions?, CancellationToken)"/>),
    /// in (call, index) order, only those in <paramref name="status"/> when given; without their results.
    /// </summary>
    Task<IReadOnlyList<WorkflowStepItem>> GetStepItemsAsync(Guid stepId, WorkflowStatus? status, int offset, int limit, CancellationToken cancellationToken);

    /// <summary>Runs that are Running while no session holds their execution guard (their execution died).</summary>
    Task<IReadOnlyList<AbandonedRun>> FindAbandonedRunsAsync(int limit, CancellationToken cancellationToken);

    /// <summary>
    /// Takes the run's execution guard if nobody holds it (never waits) and loads the run; null when another
    /// execution holds it. Disposing the result releases the guard.
    /// </summary>
    Task<IRunExecution?> TryBeginExecutionAsync(Guid runId, CancellationToken cancellationToken);
}

/// <summary>One execution of a run, holding its guard. Every write is one transaction.</summary>
internal interface IRunExecution : IAsyncDisposable
{
    /// <summary>The run, or null when it does not exist or was removed.</summary>
    RunRecord? Run { get; }

    /// <summary>The run's live step records.</summary>
    IReadOnlyList<StepRecord> Steps { get; }

    /// <summary>Marks the run Running (one more attempt) and starts its first pending step. False when the run was cancelled or removed meanwhile.</summary>
    Task<bool> StartAsync(StepStart firstStep, DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>Marks a run whose steps have all been checkpointed as succeeded.</summary>
    Task SucceedRunAsync(JObject output, int completedSteps, DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>
    /// Checkpoints a succeeded step and, in the same transaction, starts the next one (unless the run
    /// was cancelled) or marks the run succeeded with <paramref name="runOutput"/>. False when the next step was not started.
    /// </summary>
    Task<bool> CompleteStepAsync(Guid stepId, JObject output, StepStart? next, JObject? runOutput, int completedSteps, DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>
    /// Records a failed step with the original message, and applies <paramref name="runOperation"/> to the run
    /// (<see cref="RunOperation.Fail"/>, or <see cref="RunOperation.FailForRetry"/> when the job scheduler may retry) with the same message.
    /// </summary>
    Task FailStepAsync(Guid stepId, string message, RunOperation runOperation, DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>Fails the run without a step (definition mismatch, unknown workflow).</summary>
    Task FailRunAsync(string message, DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>Puts an interrupted run and step back to Pending (shutdown mid-step).</summary>
    Task InterruptAsync(Guid? stepId, DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>
    /// Watches the guard while a step body runs (nothing else may use the execution until the watch is
    /// disposed, except the item checkpoints below): the watch's token fires when the guard is lost (its connection died).
    /// </summary>
    IGuardWatch WatchGuard();

    /// <summary>
    /// Registers fan-out <paramref name="call"/> of a running step with <paramref name="count"/> items (once; later
    /// calls keep the first count) and returns its recorded count and the results of its finished items. Allowed
    /// while a guard watch is active: it takes turns with the watch's probes on the guard's connection.
    /// </summary>
    Task<ItemCallState> BeginItemsAsync(Guid stepId, int call, int count, DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>
    /// Checkpoints finished items of fan-out <paramref name="call"/> in one transaction (succeeded ones with their
    /// result, failed ones with their error). Allowed while a guard watch is active, like <see cref="BeginItemsAsync"/>;
    /// a lost connection marks the active watch's guard lost.
    /// </summary>
    Task SaveItemsAsync(Guid stepId, int call, IReadOnlyList<ItemOutcome> outcomes, int attempt, DateTimeOffset now, CancellationToken cancellationToken);
}

/// <summary>A watch over an execution's guard; disposing it stops the watch before the execution writes again.</summary>
internal interface IGuardWatch : IAsyncDisposable
{
    /// <summary>Fires when the guard is lost.</summary>
    CancellationToken Lost { get; }

    /// <summary>Why the guard was lost (the connection's error), once <see cref="Lost"/> has fired.</summary>
    Exception? Reason { get; }
}

/// <summary>A run that is Running while nobody holds its guard: its execution died.</summary>
internal sealed record AbandonedRun(Guid RunId, string? JobId, string? Queue);
