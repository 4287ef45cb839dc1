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

    /// <summary>The run's flow-control key (validated), if any.</summary>
    public string? ConcurrencyKey { get; init; }

    /// <summary>Steps written with the run as already Succeeded (a fork's copies of the original's), in order.</summary>
    public IReadOnlyList<CopiedStep> CopiedSteps { get; init; } = [];

    /// <summary>
    /// Whether the run is written marked as awaiting its job (the outbox): the job is created after the
    /// run commits, and the outbox creates it if that does not happen.
    /// </summary>
    public bool AwaitingJob { get; init; }

    /// <summary>The parent run of a child run (<see cref="StepContext.RunChildrenAsync{TWorkflow}"/>).</summary>
    public Guid? ParentId { get; init; }

    /// <summary>The parent's step that started the child run.</summary>
    public Guid? ParentStepId { get; init; }

    /// <summary>The child run's position among its parent step's inputs.</summary>
    public int? ChildIndex { get; init; }
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

    /// <summary>
    /// A waiting run was woken: move its job from Scheduled to Enqueued (nothing when it is still processing: the
    /// parking execution's state election sees the run woken and enqueues it), or create one if it is gone.
    /// </summary>
    Wake,
}

/// <summary>A pending job write of a run, as the outbox reads it.</summary>
internal sealed record JobRequest(Guid RunId, JobRequestKind Kind, string WorkflowName, string? Queue, string? JobId, DateTimeOffset? NotBefore);

/// <summary>What a status transition changed.</summary>
/// <param name="Previous">The run's status before the change.</param>
/// <param name="Request">The job write recorded with the change (to be done after it commits), if any.</param>
internal sealed record RunChange(WorkflowStatus Previous, JobRequest? Request)
{
    /// <summary>
    /// The job writes of other runs the change committed with it or right after it: the wake of a parent whose last child
    /// this run was, the job deletions of the children a cancel cancelled. Empty when none.
    /// </summary>
    public IReadOnlyList<JobRequest> Related { get; init; } = [];
}

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
    int Attempts)
{
    /// <summary>What a Waiting run waits for (<c>sleep</c>, an event name, ...); null when it is not waiting.</summary>
    public string? WaitingFor { get; init; }

    /// <summary>When a Waiting run's wait ends by itself (its sleep's end, its event's deadline); null for never.</summary>
    public DateTimeOffset? WakeAt { get; init; }

    /// <summary>Whether the run was marked for compensation: its executions run compensations, never forward steps.</summary>
    public bool CompensationRequested { get; init; }

    /// <summary>The parent run of a child run; null otherwise.</summary>
    public Guid? ParentId { get; init; }

    /// <summary>The run's flow-control key, if any.</summary>
    public string? ConcurrencyKey { get; init; }

    /// <summary>When the run was created: its place in the flow-control queue.</summary>
    public DateTimeOffset Created { get; init; }
}

/// <summary>A live step record as loaded for execution.</summary>
internal sealed record StepRecord(Guid Id, string StepName, WorkflowStatus Status, JObject? Output, int Attempts)
{
    /// <summary>Whether the step's compensation has been checkpointed.</summary>
    public bool Compensated { get; init; }
}

/// <summary>A step about to start: the record is created (or its attempt counted) as Running.</summary>
internal sealed record StepStart(Guid StepId, string StepName, Guid? PrecedingStepId, JObject Input, int Attempt, bool Exists)
{
    /// <summary>The step resumes after a wait: neither the run nor the step counts a new attempt.</summary>
    public bool AfterWait { get; init; }
}

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
    /// and, when <paramref name="createJobs"/> is given, creates the jobs of the new runs in that transaction (one
    /// call with the runs actually inserted, returning their job ids in order). Results are in the order of <paramref name="runs"/>.
    /// </summary>
    Task<IReadOnlyList<CreateRunResult>> CreateRunsAsync(IReadOnlyList<NewRunRecord> runs, Func<IReadOnlyList<NewRunRecord>, IReadOnlyList<string>>? createJobs,
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

    /// <summary>The runs forked from <paramref name="runId"/> (<see cref="WorkflowRun.ForkedFrom"/>), oldest first, at most <paramref name="limit"/>.</summary>
    Task<IReadOnlyList<WorkflowForkLink>> ListForksAsync(Guid runId, int limit, CancellationToken cancellationToken);

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
    /// Marks the job writes of <paramref name="kind"/> of many runs done in one statement (those still pending; the job
    /// ids are unchanged). Returns how many were marked.
    /// </summary>
    Task<int> CompleteJobRequestsAsync(IReadOnlyList<Guid> runIds, JobRequestKind kind, CancellationToken cancellationToken);

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

    /// <summary>The waits a step has recorded and the events its waits consumed (by wait number), for its waits to replay.</summary>
    Task<StepWaitState> LoadStepWaitsAsync(Guid stepId, CancellationToken cancellationToken);

    /// <summary>
    /// Consumes the oldest unconsumed event <paramref name="name"/> of the run for wait (<paramref name="stepId"/>,
    /// <paramref name="waitNumber"/>) in one transaction, or returns the payload that wait already consumed; null when
    /// there is none. An event is consumed by exactly one wait, and a wait consumes at most one event.
    /// </summary>
    Task<JObject?> ConsumeEventAsync(Guid runId, Guid stepId, int waitNumber, string name, DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>Whether the run has an unconsumed event of that name.</summary>
    Task<bool> HasPendingEventAsync(Guid runId, string name, CancellationToken cancellationToken);

    /// <summary>A run's status and what it waits for (the job filter's re-check, a signal's validation); null when it does not exist.</summary>
    Task<RunWaitInfo?> GetWaitInfoAsync(Guid runId, CancellationToken cancellationToken);

    /// <summary>
    /// Stores an event for the run (joining the caller's ambient transaction) and, when the run is Waiting for that
    /// event, wakes it (<see cref="RunOperation.Wake"/>, recording a <see cref="JobRequestKind.Wake"/> job write) in the
    /// same transaction. The run's row is locked first, so a signal and a parking execution never miss each other.
    /// Returns null when the run does not exist; stores nothing when the run is finished.
    /// </summary>
    Task<SignalResult?> SignalAsync(Guid runId, string name, JObject payload, DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>The child runs a step started (<see cref="StepContext.RunChildrenAsync{TWorkflow}"/>), by child index.</summary>
    Task<IReadOnlyList<ChildRunState>> LoadChildrenAsync(Guid parentStepId, CancellationToken cancellationToken);

    /// <summary>
    /// The offer of freed flow-control slots for one workflow (the leader's pass, and an execution's hand-off when it gives
    /// its slots back): for each full group with runs waiting for a slot, offers each slot
    /// that is free (neither held by a live execution nor already offered) to the oldest waiting run, in creation order, by
    /// the <see cref="RunOperation.Wake"/> transition with a <see cref="JobRequestKind.Wake"/> job write, keeping
    /// <c>waiting_for</c> = <c>concurrency</c> until the run starts. Returns the job writes to do.
    /// </summary>
    Task<IReadOnlyList<JobRequest>> OfferFreeSlotsAsync(string workflowName, int? maxConcurrency, int? maxConcurrencyPerKey, DateTimeOffset now,
        CancellationToken cancellationToken);

    /// <summary>How many runs are Waiting, by workflow name (the waiting-runs metric).</summary>
    Task<IReadOnlyDictionary<string, long>> CountWaitingRunsAsync(CancellationToken cancellationToken);
}

/// <summary>A child run as its parent's step sees it.</summary>
/// <param name="Index">Its position among the step's inputs.</param>
/// <param name="Id">The child run's id.</param>
/// <param name="Status">Its status.</param>
/// <param name="Output">Its composite output, once it succeeded.</param>
/// <param name="ExceptionMessage">Its last failure's message.</param>
internal sealed record ChildRunState(int Index, Guid Id, WorkflowStatus Status, JObject? Output, string? ExceptionMessage);

/// <summary>What a signal did.</summary>
/// <param name="Status">The run's status when the signal was taken (before a wake).</param>
/// <param name="Stored">Whether the event was stored (false when the run is finished).</param>
/// <param name="Wake">The job write of the wake, when the signal woke the run.</param>
internal sealed record SignalResult(WorkflowStatus Status, bool Stored, JobRequest? Wake);

/// <summary>A run's status and its current wait.</summary>
/// <param name="Status">The run's status.</param>
/// <param name="WorkflowName">The run's workflow.</param>
/// <param name="WaitingFor">What it waits for, when Waiting.</param>
/// <param name="WakeAt">When its wait ends by itself, when Waiting with a deadline.</param>
/// <param name="EventType">The data type the current event wait expects (assembly-qualified name), when waiting for an event.</param>
internal sealed record RunWaitInfo(WorkflowStatus Status, string WorkflowName, string? WaitingFor, DateTimeOffset? WakeAt, string? EventType);

/// <summary>One execution of a run, holding its guard. Every write is one transaction.</summary>
internal interface IRunExecution : IAsyncDisposable
{
    /// <summary>The run, or null when it does not exist or was removed.</summary>
    RunRecord? Run { get; }

    /// <summary>The run's live step records.</summary>
    IReadOnlyList<StepRecord> Steps { get; }

    /// <summary>
    /// Marks the run Running (one more attempt) and starts its first pending step (recording the step's attempt). False when the
    /// run was cancelled or removed meanwhile.
    /// </summary>
    Task<bool> StartAsync(StepStart firstStep, DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>Marks a run whose steps have all been checkpointed as succeeded.</summary>
    Task SucceedRunAsync(JObject output, int completedSteps, DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>
    /// Checkpoints a succeeded step and, in the same transaction, starts the next one (unless the run
    /// was cancelled) or marks the run succeeded with <paramref name="runOutput"/>. False when the next step was not started.
    /// </summary>
    Task<bool> CompleteStepAsync(Guid stepId, JObject output, StepStart? next, JObject? runOutput, int completedSteps, DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>
    /// Records a failed step with the exception's message (and its attempt with the exception's type and stack trace), and
    /// applies <paramref name="runOperation"/> to the run (<see cref="RunOperation.Fail"/>, or <see cref="RunOperation.FailForRetry"/>
    /// when the job scheduler may retry) with the same message.
    /// </summary>
    Task FailStepAsync(Guid stepId, Exception exception, RunOperation runOperation, DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>
    /// Parks the run on a wait, in one transaction: records the wait (its deadline fixed the first time), then, unless an
    /// unconsumed event it waits for is already there, moves the run Running → Waiting (<see cref="RunOperation.Wait"/>)
    /// with its <c>waiting_for</c>/<c>wake_at</c> and the step to Waiting. The run's row is locked before the event check.
    /// </summary>
    Task<ParkResult> WaitAsync(ParkRequest park, DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>
    /// The job write of the parent run that the last finishing write of this (child) run woke in the same transaction (this
    /// was its last unfinished child), to be done after the commit; null when none.
    /// </summary>
    JobRequest? ParentWake { get; }

    /// <summary>
    /// The flow-control admission, on the guard's connection: unless an older run of the same queue waits (first in, first
    /// out), takes a slot of each group the run belongs to (a session-level lock, released with the guard). When not every
    /// slot could be taken, none is kept. With <see cref="SlotRequest.IgnoreQueue"/>, only the slots count.
    /// </summary>
    Task<SlotAdmission> TryTakeSlotsAsync(SlotRequest request, CancellationToken cancellationToken);

    /// <summary>
    /// Parks the run until a slot frees (<see cref="RunOperation.Wait"/>, <c>waiting_for</c> = <c>concurrency</c>, no
    /// deadline), recording which group was full. A run already waiting for a slot stays so. Neither an attempt nor a retry
    /// is counted.
    /// </summary>
    Task<ParkResult> WaitForSlotAsync(SlotGroup blockedOn, DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>Fails the run without a step (definition mismatch, unknown workflow).</summary>
    Task FailRunAsync(string message, DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>
    /// Marks the run Compensating (<see cref="RunOperation.BeginCompensation"/>) and records when compensation was first requested.
    /// False when its status does not allow it (cancelled, finished, removed).
    /// </summary>
    Task<bool> BeginCompensationAsync(DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>Reloads <see cref="Steps"/> (the steps this execution checkpointed included).</summary>
    Task ReloadStepsAsync(CancellationToken cancellationToken);

    /// <summary>Checkpoints a step's compensation (sets its compensated time) in one transaction; a step already compensated is left as it is.</summary>
    Task CompensateStepAsync(Guid stepId, DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>
    /// Records a compensation failure on the step and the run (the run's original failure is kept). With <paramref name="final"/>, the
    /// run turns Failed (<see cref="RunOperation.Fail"/>) in the same transaction; otherwise it stays Compensating for a retry.
    /// </summary>
    Task FailCompensationAsync(Guid stepId, string message, bool final, DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>Marks a compensating run Compensated (<see cref="RunOperation.Compensate"/>).</summary>
    Task CompleteCompensationAsync(DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>Puts an interrupted run and step back to Pending (shutdown mid-step), ending the step's attempt without an outcome.</summary>
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

/// <summary>A run forked from another: what the original's page lists.</summary>
internal sealed record WorkflowForkLink(Guid Id, WorkflowStatus Status, DateTimeOffset Created);
