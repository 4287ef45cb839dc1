using Newtonsoft.Json.Linq;

namespace Workflow.Jobs;

/// <summary>The state of a run or a step.</summary>
public enum WorkflowStatus
{
    /// <summary>Created (or waiting for a retry) and not running.</summary>
    Pending = 0,

    /// <summary>Executing now.</summary>
    Running = 1,

    /// <summary>Finished successfully; its output is stored.</summary>
    Succeeded = 2,

    /// <summary>Failed; the error is stored. A retry resumes at the failed step.</summary>
    Failed = 3,

    /// <summary>Cancelled by an operator; never starts another step.</summary>
    Cancelled = 4,

    /// <summary>Waiting durably (a sleep, an event, a concurrency slot, child runs) without holding a worker.</summary>
    Waiting = 5,

    /// <summary>Finished: the compensations of its succeeded steps ran after a final failure or a cancel.</summary>
    Compensated = 6,

    /// <summary>
    /// Undoing: after a final failure (with <see cref="WorkflowDefinition.CompensateOnFailure"/>) or a cancel with
    /// <see cref="CancelOptions.Compensate"/>, the compensations of its succeeded steps run in reverse order; it never
    /// runs forward steps again and ends <see cref="Compensated"/> (or Failed when a compensation fails for good).
    /// </summary>
    Compensating = 7,
}

/// <summary>A persisted run of a workflow.</summary>
public sealed record WorkflowRun
{
    /// <summary>The run's id.</summary>
    public required Guid Id { get; init; }

    /// <summary>The workflow's persisted name.</summary>
    public required string WorkflowName { get; init; }

    /// <summary>The run's status.</summary>
    public required WorkflowStatus Status { get; init; }

    /// <summary>The composite input.</summary>
    public required JObject Input { get; init; }

    /// <summary>The composite output, once any step has succeeded.</summary>
    public JObject? Output { get; init; }

    /// <summary>When the run was created (UTC).</summary>
    public required DateTimeOffset Created { get; init; }

    /// <summary>When the run last changed (UTC).</summary>
    public required DateTimeOffset Modified { get; init; }

    /// <summary>When the run succeeded (UTC).</summary>
    public DateTimeOffset? SucceededAt { get; init; }

    /// <summary>When the run last failed (UTC).</summary>
    public DateTimeOffset? FailedAt { get; init; }

    /// <summary>The original message of the last failure.</summary>
    public string? ExceptionMessage { get; init; }

    /// <summary>
    /// When the run was marked for compensation (a final failure with <see cref="WorkflowDefinition.CompensateOnFailure"/>, or a
    /// cancel with <see cref="CancelOptions.Compensate"/>), UTC; null when it never was. Once set, the run never runs forward steps again.
    /// </summary>
    public DateTimeOffset? CompensationRequestedAt { get; init; }

    /// <summary>
    /// The message of the last compensation failure (the original failure stays in <see cref="ExceptionMessage"/>), with the step
    /// it belongs to; null when no compensation failed.
    /// </summary>
    public string? CompensationError { get; init; }

    /// <summary>The id of the Hangfire job that executes the run, when run as a job.</summary>
    public string? JobId { get; init; }

    /// <summary>The names of the definition's steps when the run was created.</summary>
    public IReadOnlyList<string> StepNames { get; init; } = [];

    /// <summary>How many of the steps have succeeded.</summary>
    public int CompletedSteps { get; init; }

    /// <summary>How many times the run has been executed.</summary>
    public int Attempts { get; init; }

    /// <summary>The recurring schedule that started the run, if any.</summary>
    public string? RecurringId { get; init; }

    /// <summary>
    /// What a <see cref="WorkflowStatus.Waiting"/> run waits for: <c>"sleep"</c>, an event's name, or <c>"concurrency"</c> (a
    /// slot of its workflow's flow control; a <see cref="WorkflowStatus.Pending"/> run keeps <c>"concurrency"</c> from the moment
    /// a freed slot is offered to it until it starts); null otherwise.
    /// </summary>
    public string? WaitingFor { get; init; }

    /// <summary>When a waiting run's wait ends by itself (its sleep's end, its event's deadline); null without one.</summary>
    public DateTimeOffset? WakeAt { get; init; }

    /// <summary>The idempotency key given at enqueue, if any.</summary>
    public string? IdempotencyKey { get; init; }

    /// <summary>The concurrency key given at enqueue (<see cref="EnqueueOptions.ConcurrencyKey"/>), if any.</summary>
    public string? ConcurrencyKey { get; init; }

    /// <summary>The run this one was forked from (<see cref="IWorkflowClient.ForkAsync"/>), if any.</summary>
    public Guid? ForkedFrom { get; init; }

    /// <summary>The run whose step started this one (<see cref="StepContext.RunChildrenAsync{TWorkflow}"/>); null for a run enqueued otherwise.</summary>
    public Guid? ParentId { get; init; }

    /// <summary>A child run's position among the inputs its parent's step gave (from 0); null for a run without a parent.</summary>
    public int? ChildIndex { get; init; }

    /// <summary>
    /// The progress of the child runs this run started (<see cref="StepContext.RunChildrenAsync{TWorkflow}"/>), when it has any
    /// and was read by id (<see cref="IWorkflowClient.GetAsync"/>); null otherwise.
    /// </summary>
    public WorkflowChildrenSummary? Children { get; init; }

    /// <summary>The tags given at enqueue (<see cref="EnqueueOptions.Tags"/>); empty when none.</summary>
    public IReadOnlyDictionary<string, string> Tags { get; init; } = WorkflowTags.Empty;

    /// <summary>The step records, in execution order (empty when a listing did not ask for them).</summary>
    public IReadOnlyList<WorkflowStepRun> Steps { get; init; } = [];
}

/// <summary>A persisted step of a run.</summary>
public sealed record WorkflowStepRun
{
    /// <summary>The step record's id (the <see cref="StepContext.StepId"/>).</summary>
    public required Guid Id { get; init; }

    /// <summary>The step's persisted name.</summary>
    public required string StepName { get; init; }

    /// <summary>The step's status.</summary>
    public required WorkflowStatus Status { get; init; }

    /// <summary>The record of the step before this one.</summary>
    public Guid? PrecedingStepId { get; init; }

    /// <summary>The step's input.</summary>
    public required JObject Input { get; init; }

    /// <summary>The step's output, once it succeeded.</summary>
    public JObject? Output { get; init; }

    /// <summary>When the record was created (UTC): the first attempt's start.</summary>
    public required DateTimeOffset Created { get; init; }

    /// <summary>When the record last changed (UTC).</summary>
    public required DateTimeOffset Modified { get; init; }

    /// <summary>When the latest attempt started (UTC).</summary>
    public DateTimeOffset? StartedAt { get; init; }

    /// <summary>When the step succeeded (UTC).</summary>
    public DateTimeOffset? SucceededAt { get; init; }

    /// <summary>When the step last failed (UTC).</summary>
    public DateTimeOffset? FailedAt { get; init; }

    /// <summary>The original message of the last failure.</summary>
    public string? ExceptionMessage { get; init; }

    /// <summary>How many times the step body has been started.</summary>
    public int Attempts { get; init; }

    /// <summary>
    /// The step's attempts, oldest first: when each ran, on which job and server, and how it ended (with its error).
    /// Filled by <see cref="IWorkflowClient.GetAsync"/>; empty in listings.
    /// </summary>
    public IReadOnlyList<WorkflowStepAttempt> History { get; init; } = [];

    /// <summary>When the step's compensation was checkpointed (UTC); null while it has not run (or the step needs none).</summary>
    public DateTimeOffset? CompensatedAt { get; init; }

    /// <summary>The original message of the step's last compensation failure, if its compensation ever threw.</summary>
    public string? CompensationError { get; init; }

    /// <summary>The step's fan-out items (done, failed, pending), when it fanned out; null otherwise (and in listings).</summary>
    public WorkflowItemSummary? Items { get; init; }
}

/// <summary>
/// Filters and paging for <see cref="IWorkflowClient.ListAsync"/>: a run is listed when it matches every filter given.
/// Results are newest first. A listed run carries no input or output JSON (<see cref="WorkflowRun.Input"/> is empty,
/// <see cref="WorkflowRun.Output"/> null); <see cref="IWorkflowClient.GetAsync"/> returns them.
/// </summary>
public sealed record WorkflowQuery
{
    /// <summary>Only runs of this workflow.</summary>
    public string? WorkflowName { get; init; }

    /// <summary>Only runs in this status.</summary>
    public WorkflowStatus? Status { get; init; }

    /// <summary>Only runs started by this recurring schedule.</summary>
    public string? RecurringId { get; init; }

    /// <summary>Only runs whose last error message contains this text, ignoring case.</summary>
    public string? ErrorContains { get; init; }

    /// <summary>Only runs created at or after this time.</summary>
    public DateTimeOffset? CreatedAfter { get; init; }

    /// <summary>Only runs created before this time.</summary>
    public DateTimeOffset? CreatedBefore { get; init; }

    /// <summary>Only the run created with this idempotency key (exact).</summary>
    public string? IdempotencyKey { get; init; }

    /// <summary>Only runs enqueued with this concurrency key (exact; <see cref="EnqueueOptions.ConcurrencyKey"/>).</summary>
    public string? ConcurrencyKey { get; init; }

    /// <summary>Only runs that have all of these tags, each with the same value (<see cref="EnqueueOptions.Tags"/>).</summary>
    public IReadOnlyDictionary<string, string>? Tags { get; init; }

    /// <summary>
    /// Only the child runs of this run (<see cref="WorkflowRun.ParentId"/>: started by one of its steps with
    /// <see cref="StepContext.RunChildrenAsync{TWorkflow}"/>), for example its children that failed.
    /// </summary>
    public Guid? ParentId { get; init; }

    /// <summary>Page size, 1 to 1000. Default 50.</summary>
    public int Limit { get; init; } = 50;

    /// <summary>Runs to skip (paging). Default 0.</summary>
    public int Offset { get; init; }

    /// <summary>Whether to load each run's steps too (without their input and output JSON). Default false.</summary>
    public bool IncludeSteps { get; init; }
}

/// <summary>Options of <see cref="IWorkflowClient.EnqueueAsync{TWorkflow}"/>.</summary>
public sealed record EnqueueOptions
{
    /// <summary>A repeated key returns the run created by the first call instead of a new one (enforced by a unique index).</summary>
    public string? IdempotencyKey { get; init; }

    /// <summary>The Hangfire queue; default <c>"default"</c>.</summary>
    public string? Queue { get; init; }

    /// <summary>Start the run after this delay instead of at once.</summary>
    public TimeSpan? Delay { get; init; }

    /// <summary>
    /// Business labels stored with the run (for example <c>customer</c> = <c>c-42</c>), returned as
    /// <see cref="WorkflowRun.Tags"/> and searchable with <see cref="WorkflowQuery.Tags"/>. At most 20 tags; a key is
    /// 1 to 64 characters, a value at most 200; no NUL characters.
    /// </summary>
    public IReadOnlyDictionary<string, string>? Tags { get; init; }

    /// <summary>
    /// The flow-control key of the run (for example a customer id): when the workflow sets
    /// <see cref="WorkflowDefinition.MaxConcurrencyPerKey"/>, at most that many runs with the same key execute at once and
    /// the others wait in creation order. 1 to 200 characters, not blank, no NUL characters. Stored and returned as
    /// <see cref="WorkflowRun.ConcurrencyKey"/>.
    /// </summary>
    public string? ConcurrencyKey { get; init; }
}

/// <summary>Options of a recurring workflow.</summary>
public sealed record RecurringWorkflowOptions
{
    /// <summary>The time zone the cron expression is read in; default UTC.</summary>
    public TimeZoneInfo? TimeZone { get; init; }

    /// <summary>The Hangfire queue of the runs; default <c>"default"</c>.</summary>
    public string? Queue { get; init; }

    /// <summary>What to do with firings missed while no server ran. Default: run once.</summary>
    public RecurringMisfireHandling MisfireHandling { get; init; } = RecurringMisfireHandling.Relaxed;
}

/// <summary>What a recurring workflow does with firings missed while no server was running.</summary>
public enum RecurringMisfireHandling
{
    /// <summary>Run once for all the missed firings.</summary>
    Relaxed = 0,

    /// <summary>Run once for each missed firing.</summary>
    Strict = 1,

    /// <summary>Skip missed firings and wait for the next one.</summary>
    Ignorable = 2,
}

/// <summary>The progress of a run's child runs.</summary>
public sealed record WorkflowChildrenSummary
{
    /// <summary>How many child runs the run started.</summary>
    public required int Total { get; init; }

    /// <summary>How many of them succeeded.</summary>
    public required int Succeeded { get; init; }

    /// <summary>How many of them are finished (succeeded, failed, cancelled or compensated).</summary>
    public required int Finished { get; init; }

    /// <summary>The children that failed, were cancelled or compensated (at most 100, by child index).</summary>
    public IReadOnlyList<WorkflowChildFailure> Failed { get; init; } = [];
}

/// <summary>A child run that did not succeed.</summary>
/// <param name="Id">The child run's id.</param>
/// <param name="ChildIndex">Its position among its parent step's inputs.</param>
/// <param name="Status">Its status (Failed, Cancelled or Compensated).</param>
/// <param name="ExceptionMessage">Its last failure's message, if any.</param>
public sealed record WorkflowChildFailure(Guid Id, int ChildIndex, WorkflowStatus Status, string? ExceptionMessage);
