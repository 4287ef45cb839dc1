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
    string? Queue = null);

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
    /// Inserts the run (honouring its idempotency key) and, when <paramref name="dispatch"/> is given,
    /// creates its job in the same transaction and stores the job id.
    /// </summary>
    Task<CreateRunResult> CreateRunAsync(NewRunRecord run, Func<Guid, string?>? dispatch, CancellationToken cancellationToken);

    Task<WorkflowRun?> GetRunAsync(Guid id, bool includeSteps, CancellationToken cancellationToken);

    Task<IReadOnlyList<WorkflowRun>> ListRunsAsync(WorkflowQuery query, CancellationToken cancellationToken);

    /// <summary>
    /// Takes the run's execution guard (waiting while another execution holds it) and loads the run
    /// with its live steps. Disposing the result releases the guard.
    /// </summary>
    Task<IRunExecution> BeginExecutionAsync(Guid runId, CancellationToken cancellationToken);

    /// <summary>Changes a run's status when it is in one of <paramref name="from"/>; returns whether it did.</summary>
    Task<bool> TransitionAsync(Guid runId, IReadOnlyCollection<WorkflowStatus> from, WorkflowStatus to, DateTimeOffset now, string? message, CancellationToken cancellationToken);

    /// <summary>Stores the job id of a run.</summary>
    Task SetJobIdAsync(Guid runId, string jobId, CancellationToken cancellationToken);
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
    /// Records a failed step with the original message, and sets the run to <paramref name="runStatus"/>
    /// (Failed; or Pending when a retry by the job scheduler may follow) with the same message.
    /// </summary>
    Task FailStepAsync(Guid stepId, string message, WorkflowStatus runStatus, DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>Fails the run without a step (definition mismatch, unknown workflow).</summary>
    Task FailRunAsync(string message, DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>Puts an interrupted run and step back to Pending (shutdown mid-step).</summary>
    Task InterruptAsync(Guid? stepId, DateTimeOffset now, CancellationToken cancellationToken);
}
