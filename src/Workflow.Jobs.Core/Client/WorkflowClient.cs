using Newtonsoft.Json.Linq;

namespace Workflow.Jobs;

/// <summary>Creates and removes the jobs that execute runs (implemented by the Hangfire adapter).</summary>
internal interface IWorkflowJobDispatcher
{
    /// <summary>
    /// Whether the job storage writes on the workflow data source's connection, so a job created inside
    /// the run's transaction commits with it. When false, jobs are paired with runs through the outbox.
    /// </summary>
    bool JoinsRunTransaction { get; }

    /// <summary>Creates the job for a run, inside the caller's ambient transaction; returns the job id.</summary>
    string Enqueue(Guid runId, string workflowName, string? queue, TimeSpan? delay);

    /// <summary>Puts an existing job back in its queue with a fresh retry budget; false when the job no longer exists.</summary>
    bool Requeue(string jobId, string? queue);

    /// <summary>Deletes a job (its worker's cancellation token fires).</summary>
    void Delete(string jobId);
}

/// <summary>The <see cref="IWorkflowClient"/>: validation and persistence here, jobs through the dispatcher.</summary>
internal sealed class WorkflowClient : IWorkflowClient
{
    private static readonly WorkflowStatus[] Retryable = [WorkflowStatus.Failed, WorkflowStatus.Cancelled];
    private static readonly WorkflowStatus[] Cancellable = [WorkflowStatus.Pending, WorkflowStatus.Running, WorkflowStatus.Failed];

    private readonly WorkflowEngine _engine;
    private readonly IWorkflowStore _store;
    private readonly WorkflowRegistry _registry;
    private readonly IWorkflowJobDispatcher? _dispatcher;
    private readonly WorkflowMetrics _metrics;
    private readonly TimeProvider _time;

    public WorkflowClient(WorkflowEngine engine, IWorkflowStore store, WorkflowRegistry registry, WorkflowMetrics metrics, TimeProvider time,
        IWorkflowJobDispatcher? dispatcher = null)
    {
        _engine = engine;
        _store = store;
        _registry = registry;
        _metrics = metrics;
        _time = time;
        _dispatcher = dispatcher;
    }

    public Task<Guid> EnqueueAsync<TWorkflow>(WorkflowInput input, EnqueueOptions? options = null, CancellationToken cancellationToken = default)
        where TWorkflow : WorkflowDefinition
    {
        ArgumentNullException.ThrowIfNull(input);
        return EnqueueAsync(_registry.Get(typeof(TWorkflow)), input.ToJson(), options, recurringId: null, cancellationToken);
    }

    public Task<Guid> EnqueueAsync(string workflowName, JObject input, EnqueueOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(workflowName);
        var workflow = _registry.Find(workflowName)
            ?? throw new UnitOfWorkException($"Unknown workflow '{WorkflowDataError.Shorten(workflowName, 200)}'.", "unknown_workflow");
        return EnqueueAsync(workflow, input, options, recurringId: null, cancellationToken);
    }

    internal async Task<Guid> EnqueueAsync(WorkflowDescriptor workflow, JObject input, EnqueueOptions? options, string? recurringId, CancellationToken cancellationToken)
    {
        var dispatcher = RequireDispatcher();
        var result = await _engine.CreateAsync(workflow, input, options, recurringId,
            runId => dispatcher.Enqueue(runId, workflow.Name, options?.Queue, options?.Delay), cancellationToken).ConfigureAwait(false);
        return result.Id;
    }

    public Task<WorkflowRun?> GetAsync(Guid workflowId, CancellationToken cancellationToken = default)
        => _store.GetRunAsync(workflowId, includeSteps: true, cancellationToken);

    public Task<IReadOnlyList<WorkflowRun>> ListAsync(WorkflowQuery query, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(query);
        if (query.Limit is < 1 or > 1000)
        {
            throw new ArgumentOutOfRangeException(nameof(query), query.Limit, "WorkflowQuery.Limit must be between 1 and 1000.");
        }

        if (query.Offset < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(query), query.Offset, "WorkflowQuery.Offset must not be negative.");
        }

        return _store.ListRunsAsync(query, cancellationToken);
    }

    public async Task RetryAsync(Guid workflowId, CancellationToken cancellationToken = default)
    {
        var dispatcher = RequireDispatcher();
        var run = await _store.GetRunAsync(workflowId, includeSteps: false, cancellationToken).ConfigureAwait(false)
            ?? throw new WorkflowRunNotFoundException(workflowId);
        if (!await _store.TransitionAsync(workflowId, Retryable, WorkflowStatus.Pending, _time.GetUtcNow(), null, cancellationToken).ConfigureAwait(false))
        {
            throw new WorkflowStateException(workflowId, run.Status, "retried");
        }

        if (run.JobId is null || !dispatcher.Requeue(run.JobId, null))
        {
            var jobId = dispatcher.Enqueue(workflowId, run.WorkflowName, null, null);
            await _store.SetJobIdAsync(workflowId, jobId, cancellationToken).ConfigureAwait(false);
        }

        _metrics.RunsRetried.Add(1, new KeyValuePair<string, object?>("workflow.name", run.WorkflowName));
    }

    public async Task CancelAsync(Guid workflowId, CancellationToken cancellationToken = default)
    {
        var run = await _store.GetRunAsync(workflowId, includeSteps: false, cancellationToken).ConfigureAwait(false)
            ?? throw new WorkflowRunNotFoundException(workflowId);
        if (run.Status == WorkflowStatus.Cancelled)
        {
            return;
        }

        if (!await _store.TransitionAsync(workflowId, Cancellable, WorkflowStatus.Cancelled, _time.GetUtcNow(), null, cancellationToken).ConfigureAwait(false))
        {
            var current = await _store.GetRunAsync(workflowId, includeSteps: false, cancellationToken).ConfigureAwait(false);
            if (current?.Status == WorkflowStatus.Cancelled)
            {
                return;
            }

            throw new WorkflowStateException(workflowId, current?.Status ?? run.Status, "cancelled");
        }

        if (run.JobId is not null)
        {
            _dispatcher?.Delete(run.JobId);
        }
    }

    private IWorkflowJobDispatcher RequireDispatcher()
        => _dispatcher ?? throw new InvalidOperationException(
            "No job scheduler is configured for Workflow.Jobs: call AddHangfireJobs() on the builder returned by AddWorkflowJobs(...) (package Workflow.Jobs.Hangfire), or use IWorkflowRunner to execute in-process.");
}

/// <summary>No run has the given id (or it was removed).</summary>
public sealed class WorkflowRunNotFoundException : UnitOfWorkException
{
    /// <summary>Creates the exception.</summary>
    public WorkflowRunNotFoundException(Guid workflowId) : base($"Workflow run {workflowId} does not exist.", "not_found")
    {
        WorkflowId = workflowId;
    }
}

/// <summary>The run's status does not allow the requested operation (retry a running run, cancel a succeeded one).</summary>
public sealed class WorkflowStateException : InvalidOperationException
{
    /// <summary>Creates the exception.</summary>
    public WorkflowStateException(Guid workflowId, WorkflowStatus status, string operation)
        : base($"Workflow run {workflowId} is {status} and cannot be {operation}.")
    {
        WorkflowId = workflowId;
        Status = status;
    }

    /// <summary>The run.</summary>
    public Guid WorkflowId { get; }

    /// <summary>Its status at the time.</summary>
    public WorkflowStatus Status { get; }
}
