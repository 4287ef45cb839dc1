using Microsoft.Extensions.Logging;
using Newtonsoft.Json.Linq;

namespace Workflow.Jobs;

/// <summary>Creates and removes the jobs that execute runs (implemented by the Hangfire adapter).</summary>
/// <summary>The job to create for a new run: its queue and the delay before it starts.</summary>
internal sealed record RunJob(Guid RunId, string? Queue, TimeSpan? Delay);

/// <summary>
/// A new run's job write that the store can send in the same round trip as the run's insert (both in one implicit
/// transaction): <paramref name="Command"/> is the store's own statement type (an <c>NpgsqlBatchCommand</c>), and
/// <paramref name="JobIdSql"/> a SQL expression giving the new job's id right after it, in the same session.
/// </summary>
internal sealed record InlineJobWrite(object Command, string JobIdSql);

/// <summary>A store that can insert a run and send its job's write in one round trip (<see cref="InlineJobWrite"/>).</summary>
internal interface IInlineRunStore
{
    /// <summary>Inserts the run (which has no idempotency key) with its job, atomically, in one round trip.</summary>
    Task<CreateRunResult> CreateRunWithJobAsync(NewRunRecord run, InlineJobWrite job, CancellationToken cancellationToken);
}

internal interface IWorkflowJobDispatcher
{
    /// <summary>
    /// Whether the job storage writes on the workflow data source's connection, so a job created inside
    /// the run's transaction commits with it. When false, jobs are paired with runs through the outbox.
    /// </summary>
    bool JoinsRunTransaction { get; }

    /// <summary>Creates the job for a run, inside the caller's ambient transaction; returns the job id.</summary>
    string Enqueue(Guid runId, string workflowName, string? queue, TimeSpan? delay);

    /// <summary>
    /// Creates the jobs of several runs of one workflow inside the caller's ambient transaction; returns their job
    /// ids in order. A dispatcher that can write jobs in bulk does; by default, one <see cref="Enqueue"/> each.
    /// </summary>
    IReadOnlyList<string> EnqueueMany(string workflowName, IReadOnlyList<RunJob> runs)
        => runs.Select(r => Enqueue(r.RunId, workflowName, r.Queue, r.Delay)).ToList();

    /// <summary>
    /// The job write of a new run without a delay, for the store to send with the run's insert
    /// (<see cref="IInlineRunStore"/>); null when the job must be created through <see cref="Enqueue"/>.
    /// </summary>
    InlineJobWrite? TryInline(Guid runId, string workflowName, string? queue) => null;

    /// <summary>Puts an existing job back in its queue with a fresh retry budget; false when the job no longer exists.</summary>
    bool Requeue(string jobId, string? queue);

    /// <summary>Deletes a job (its worker's cancellation token fires).</summary>
    void Delete(string jobId);

    /// <summary>
    /// Puts many existing jobs back in their queues with a fresh retry budget in one write of the job storage (a bulk
    /// retry), as <see cref="Requeue"/> does each. False when this dispatcher cannot (the caller requeues them one by
    /// one); throws when the write failed (a job no longer exists, the storage is unreachable), and then nothing was written.
    /// </summary>
    bool TryRequeueMany(IReadOnlyList<JobRequest> requests) => false;

    /// <summary>
    /// Puts the job of an abandoned execution (its process or connection died) back in its queue, keeping its
    /// retry budget; only while the job storage still shows it processing. False when it did not.
    /// </summary>
    bool RequeueAbandoned(string jobId, string? queue);

    /// <summary>
    /// Wakes a waiting run's job: Scheduled → Enqueued. Does nothing when the job is processing or enqueued (the parking
    /// execution's state election re-checks the run under the job's state lock); enqueues it again when it ended
    /// otherwise, and creates a job when there is none. Returns the id of a job it created.
    /// </summary>
    string? Wake(Guid runId, string workflowName, string? queue, string? jobId);
}

/// <summary>
/// The <see cref="IWorkflowClient"/>: creates runs (validation, persistence, pairing with a job) and asks
/// for status changes by name; jobs go through the dispatcher, in the run's transaction when the job
/// storage joins it, else through the outbox (<see cref="WorkflowJobRequests"/>).
/// </summary>
internal sealed partial class WorkflowClient : IWorkflowClient
{
    internal const string NoDispatcherMessage =
        "No job scheduler is configured for Workflow.Jobs: call AddHangfireJobs() on the builder returned by AddWorkflowJobs() " +
        "(package Workflow.Jobs.Hangfire), or use IWorkflowRunner to execute in-process.";

    private readonly IWorkflowStore _store;
    private readonly WorkflowRegistry _registry;
    private readonly IWorkflowJobDispatcher? _dispatcher;
    private readonly WorkflowJobRequests _jobs;
    private readonly WorkflowMetrics _metrics;
    private readonly TimeProvider _time;
    private readonly ILogger<WorkflowClient> _logger;

    public WorkflowClient(IWorkflowStore store, WorkflowRegistry registry, WorkflowJobRequests jobs, WorkflowMetrics metrics, TimeProvider time,
        ILogger<WorkflowClient> logger, IWorkflowJobDispatcher? dispatcher = null)
    {
        _store = store;
        _registry = registry;
        _jobs = jobs;
        _metrics = metrics;
        _time = time;
        _logger = logger;
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
            ?? throw new UnitOfWorkException($"Unknown workflow '{WorkflowDataError.Shorten(workflowName, 200)}'.", UnitOfWorkException.UnknownWorkflowCode);
        return EnqueueAsync(workflow, input, options, recurringId: null, cancellationToken);
    }

    internal async Task<Guid> EnqueueAsync(WorkflowDescriptor workflow, JObject input, EnqueueOptions? options, string? recurringId, CancellationToken cancellationToken)
    {
        var dispatcher = RequireDispatcher();
        var result = await CreatePairedAsync(dispatcher, workflow, NewRun(workflow, input, options, recurringId), cancellationToken).ConfigureAwait(false);
        return result.Id;
    }

    /// <summary>
    /// Creates a run with its job: in one transaction when the job storage joins it; otherwise the run commits
    /// marked as awaiting its job and the job is created after the commit (the outbox does it if that fails).
    /// </summary>
    private async Task<CreateRunResult> CreatePairedAsync(IWorkflowJobDispatcher dispatcher, WorkflowDescriptor workflow, NewRunRecord record,
        CancellationToken cancellationToken)
    {
        if (dispatcher.JoinsRunTransaction)
        {
            // The run and its job in one round trip when nothing needs the ambient transaction's scope: no caller's
            // transaction to join, no key that could make the insert a duplicate, no delay, nothing copied.
            if (_store is IInlineRunStore inline && record.IdempotencyKey is null && record.NotBefore is null && record.CopiedSteps.Count == 0
                && System.Transactions.Transaction.Current is null && dispatcher.TryInline(record.Id, workflow.Name, record.Queue) is { } job)
            {
                return Created(workflow, await inline.CreateRunWithJobAsync(record, job, cancellationToken).ConfigureAwait(false));
            }

            return await CreateAsync(workflow, record, runId => dispatcher.Enqueue(runId, workflow.Name, record.Queue, _jobs.RemainingDelay(record.NotBefore)),
                cancellationToken).ConfigureAwait(false);
        }

        var result = await CreateAsync(workflow, record with { AwaitingJob = true }, createJob: null, cancellationToken).ConfigureAwait(false);
        if (result.Created)
        {
            await _jobs.AfterCommitAsync(CreateJobRequest(result.Id, workflow, record), cancellationToken).ConfigureAwait(false);
        }

        return result;
    }

    private static JobRequest CreateJobRequest(Guid runId, WorkflowDescriptor workflow, NewRunRecord record)
        => new(runId, JobRequestKind.Create, workflow.Name, record.Queue, null, record.NotBefore);

    public async Task<IReadOnlyList<Guid>> EnqueueManyAsync(string workflowName, IReadOnlyList<WorkflowEnqueueItem> items,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(workflowName);
        ArgumentNullException.ThrowIfNull(items);
        var dispatcher = RequireDispatcher();
        var workflow = _registry.Find(workflowName)
            ?? throw new UnitOfWorkException($"Unknown workflow '{WorkflowDataError.Shorten(workflowName, 200)}'.", UnitOfWorkException.UnknownWorkflowCode);

        // Everything is validated before anything is written.
        var records = new NewRunRecord[items.Count];
        var errors = new List<WorkflowDataError>();
        for (var index = 0; index < items.Count; index++)
        {
            var item = items[index];
            if (item is null)
            {
                errors.Add(new WorkflowDataError($"[{index}]", "The item is required."));
                continue;
            }

            try
            {
                records[index] = NewRun(workflow, item.Input, item.Options, recurringId: null) with { AwaitingJob = !dispatcher.JoinsRunTransaction };
            }
            catch (WorkflowDataValidationException ex)
            {
                errors.AddRange(ex.Errors.Select(e => new WorkflowDataError(e.Path.Length == 0 ? $"[{index}]" : $"[{index}].{e.Path}", e.Message)));
            }
        }

        if (errors.Count > 0)
        {
            throw new WorkflowDataValidationException(errors);
        }

        var ids = await CreateBatchesAsync(dispatcher, workflow, records, cancellationToken).ConfigureAwait(false);
        LogCreatedMany(records.Length, workflow.Name);
        return ids;
    }

    /// <summary>
    /// Creates the child runs of a parent's step through the same path as <see cref="EnqueueManyAsync"/>: every input
    /// validated first, then batches of runs with their jobs. Each child's idempotency key is derived from (step, index),
    /// so a re-run of the step never creates a child twice.
    /// </summary>
    internal async Task CreateChildrenAsync(ChildRunsRequest request, CancellationToken cancellationToken)
    {
        var dispatcher = RequireDispatcher();
        var workflow = _registry.Get(request.Workflow);
        var records = new NewRunRecord[request.Children.Count];
        var errors = new List<WorkflowDataError>();
        for (var i = 0; i < request.Children.Count; i++)
        {
            var (index, input) = request.Children[i];
            try
            {
                records[i] = NewRun(workflow, input.ToJson(), new EnqueueOptions { IdempotencyKey = ChildIdempotencyKey(request.ParentStepId, index) }, recurringId: null) with
                {
                    AwaitingJob = !dispatcher.JoinsRunTransaction,
                    ParentId = request.ParentId,
                    ParentStepId = request.ParentStepId,
                    ChildIndex = index,
                };
            }
            catch (WorkflowDataValidationException ex)
            {
                errors.AddRange(ex.Errors.Select(e => new WorkflowDataError(e.Path.Length == 0 ? $"[{index}]" : $"[{index}].{e.Path}", e.Message)));
            }
        }

        if (errors.Count > 0)
        {
            throw new WorkflowDataValidationException(errors);
        }

        await CreateBatchesAsync(dispatcher, workflow, records, cancellationToken).ConfigureAwait(false);
        LogCreatedChildren(records.Length, workflow.Name, request.ParentId);
    }

    /// <summary>The idempotency key of a child run: one run per (parent step, child index).</summary>
    internal static string ChildIdempotencyKey(Guid parentStepId, int index) => $"child:{parentStepId:N}:{index}";

    /// <summary>
    /// Creates validated runs of one workflow in batches (each one transaction), with their jobs; ids in input order.
    /// Batches of runs without idempotency keys whose jobs join the run's transaction, outside any ambient transaction,
    /// are written up to <see cref="ParallelBatches"/> at a time (each still its own transaction; the client's CPU and
    /// the database's then work at once); otherwise, and whenever a later batch could meet an earlier one's key, one
    /// after the other. When a batch fails, no new batch starts and the call throws; batches that committed stay (in
    /// parallel, a later batch may have committed while an earlier one failed).
    /// </summary>
    private async Task<Guid[]> CreateBatchesAsync(IWorkflowJobDispatcher dispatcher, WorkflowDescriptor workflow, NewRunRecord[] records,
        CancellationToken cancellationToken)
    {
        var ids = new Guid[records.Length];
        var offsets = Enumerable.Range(0, (records.Length + BatchSize - 1) / BatchSize).Select(b => b * BatchSize).ToList();
        var parallel = offsets.Count > 1 && dispatcher.JoinsRunTransaction && System.Transactions.Transaction.Current is null
            && Array.TrueForAll(records, r => r.IdempotencyKey is null);
        if (!parallel)
        {
            foreach (var offset in offsets)
            {
                await CreateBatchAsync(offset, cancellationToken).ConfigureAwait(false);
            }

            return ids;
        }

        await Parallel.ForEachAsync(offsets, new ParallelOptions { MaxDegreeOfParallelism = ParallelBatches, CancellationToken = cancellationToken },
            async (offset, token) => await CreateBatchAsync(offset, token).ConfigureAwait(false)).ConfigureAwait(false);
        return ids;

        // The token of one batch: the caller's, or in parallel the loop's (cancelled too once a batch has failed).
        async Task CreateBatchAsync(int offset, CancellationToken token)
        {
            var batch = records.Skip(offset).Take(BatchSize).ToList();
            var results = await _store.CreateRunsAsync(batch,
                dispatcher.JoinsRunTransaction
                    ? created => dispatcher.EnqueueMany(workflow.Name, created.Select(r => new RunJob(r.Id, r.Queue, _jobs.RemainingDelay(r.NotBefore))).ToList())
                    : null,
                token).ConfigureAwait(false);
            var createdCount = 0;
            for (var i = 0; i < results.Count; i++)
            {
                ids[offset + i] = results[i].Id;
                if (results[i].Created)
                {
                    createdCount++;
                    if (!dispatcher.JoinsRunTransaction)
                    {
                        await _jobs.AfterCommitAsync(CreateJobRequest(batch[i].Id, workflow, batch[i]), token).ConfigureAwait(false);
                    }
                }
            }

            if (createdCount > 0)
            {
                _metrics.RunsCreated.Add(createdCount, new KeyValuePair<string, object?>("workflow.name", workflow.Name));
            }
        }
    }

    public async Task<Guid> ForkAsync(Guid workflowId, ForkOptions? options = null, CancellationToken cancellationToken = default)
    {
        var dispatcher = RequireDispatcher();
        var original = await _store.GetRunAsync(workflowId, includeSteps: true, cancellationToken).ConfigureAwait(false)
            ?? throw new WorkflowRunNotFoundException(workflowId);
        var workflow = _registry.Find(original.WorkflowName)
            ?? throw new UnitOfWorkException($"Workflow '{original.WorkflowName}' of run {workflowId} is not registered in this host.", UnitOfWorkException.UnknownWorkflowCode);

        // The deployed definition decides the steps; earlier steps are copied from the original by name.
        var succeeded = original.Steps.Where(s => s.Status == WorkflowStatus.Succeeded && s.Output is not null)
            .ToDictionary(s => s.StepName, StringComparer.Ordinal);
        int from;
        if (options?.FromStep is { } fromStep)
        {
            from = workflow.Steps.Select(s => s.Name).ToList().IndexOf(fromStep);
            if (from < 0)
            {
                throw new WorkflowDataValidationException([new WorkflowDataError("from_step",
                    $"Unknown step '{WorkflowDataError.Shorten(fromStep, 200)}'; the steps of '{workflow.Name}' are: {string.Join(", ", workflow.StepNames)}.")]);
            }
        }
        else
        {
            from = workflow.Steps.TakeWhile(s => succeeded.ContainsKey(s.Name)).Count();
            if (from == workflow.Steps.Count)
            {
                throw new WorkflowDataValidationException([new WorkflowDataError("from_step",
                    $"Every step of run {workflowId} succeeded; name the step to start from.")]);
            }
        }

        var missing = workflow.Steps.Take(from).Where(s => !succeeded.ContainsKey(s.Name)).Select(s => s.Name).ToList();
        if (missing.Count > 0)
        {
            throw new WorkflowDataValidationException([new WorkflowDataError("from_step",
                $"Run {workflowId} did not succeed the steps before '{workflow.Steps[from].Name}' ({string.Join(", ", missing)}), so they cannot be copied.")]);
        }

        var input = (JObject)original.Input.DeepClone();
        if (options?.Input is { } parts)
        {
            foreach (var part in parts.Properties())
            {
                input[part.Name] = part.Value.DeepClone();
            }
        }

        NewRunRecord record;
        try
        {
            record = NewRun(workflow, input, options?.Enqueue, recurringId: null);
        }
        catch (WorkflowDataValidationException ex)
        {
            // The input's paths are named under "input" (the fork's own fields are beside it).
            throw new WorkflowDataValidationException(ex.Errors.Select(e => new WorkflowDataError(e.Path.Length == 0 ? "input" : "input." + e.Path, e.Message)).ToList());
        }

        record = record with
        {
            ForkedFrom = workflowId,
            CopiedSteps = workflow.Steps.Take(from)
                .Select(s => new CopiedStep(s.Name, succeeded[s.Name].Input, succeeded[s.Name].Output!)).ToList(),
        };
        var result = await CreatePairedAsync(dispatcher, workflow, record, cancellationToken).ConfigureAwait(false);

        LogForked(result.Id, workflowId, workflow.Steps[from].Name);
        return result.Id;
    }

    public Task<long> CountAsync(WorkflowQuery query, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(query);
        WorkflowQueryRules.ValidateFilters(query, nameof(query));
        return _store.CountRunsAsync(query, cancellationToken);
    }

    public Task<int> RetryManyAsync(WorkflowQuery query, CancellationToken cancellationToken = default)
    {
        RequireDispatcher();
        return TransitionManyAsync(query, RunOperation.Retry, JobRequestKind.Requeue, afterBatch: null, cancellationToken);
    }

    public Task<int> CancelManyAsync(WorkflowQuery query, CancellationToken cancellationToken = default)
        => TransitionManyAsync(query, RunOperation.Cancel, _dispatcher is null ? JobRequestKind.None : JobRequestKind.Delete, afterBatch: null, cancellationToken);

    public Task<int> PurgeAsync(WorkflowQuery query, CancellationToken cancellationToken = default)
        => PurgeAsync(query, afterBatch: null, cancellationToken);

    /// <summary>
    /// A bulk action (retry, cancel or purge) over the query's filters, as <see cref="RetryManyAsync"/>,
    /// <see cref="CancelManyAsync"/> and <see cref="PurgeAsync(WorkflowQuery, CancellationToken)"/> do it;
    /// <paramref name="afterBatch"/> is told the running total after each batch (progress of a long action).
    /// </summary>
    internal Task<int> BulkAsync(WorkflowBulkAction action, WorkflowQuery query, Func<int, CancellationToken, Task>? afterBatch, CancellationToken cancellationToken)
    {
        switch (action)
        {
            case WorkflowBulkAction.Retry:
                RequireDispatcher();
                return TransitionManyAsync(query, RunOperation.Retry, JobRequestKind.Requeue, afterBatch, cancellationToken);
            case WorkflowBulkAction.Cancel:
                return TransitionManyAsync(query, RunOperation.Cancel, _dispatcher is null ? JobRequestKind.None : JobRequestKind.Delete, afterBatch, cancellationToken);
            case WorkflowBulkAction.Purge:
                return PurgeAsync(query, afterBatch, cancellationToken);
            default:
                throw new ArgumentOutOfRangeException(nameof(action), action, "Unknown bulk action.");
        }
    }

    private async Task<int> PurgeAsync(WorkflowQuery query, Func<int, CancellationToken, Task>? afterBatch, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(query);
        WorkflowQueryRules.ValidateFilters(query, nameof(query));
        var purged = 0;
        while (true)
        {
            var jobs = await _store.PurgeAsync(query, BulkBatchSize, cancellationToken).ConfigureAwait(false);
            purged += jobs.Count;
            DeleteJobsOfPurgedRuns(jobs);
            if (afterBatch is not null)
            {
                await afterBatch(purged, cancellationToken).ConfigureAwait(false);
            }

            if (jobs.Count < BulkBatchSize)
            {
                return purged;
            }
        }
    }

    /// <summary>
    /// One pass of retention (<see cref="WorkflowJobsOptions.Retention"/>): deletes the finished runs older than their
    /// status's age, in batches, and deletes their jobs. Returns how many runs were deleted.
    /// </summary>
    internal async Task<int> ApplyRetentionAsync(WorkflowRetention retention, CancellationToken cancellationToken)
    {
        var deleted = 0;
        foreach (var (status, age) in retention.Ages())
        {
            var before = _time.GetUtcNow() - age;
            IReadOnlyList<string?> jobs;
            do
            {
                jobs = await _store.PurgeFinishedBeforeAsync(status, before, BulkBatchSize, cancellationToken).ConfigureAwait(false);
                deleted += jobs.Count;
                DeleteJobsOfPurgedRuns(jobs);
            }
            while (jobs.Count == BulkBatchSize);
        }

        LogRetention(deleted);
        return deleted;
    }

    /// <summary>The runs are gone: their jobs move to Deleted (a job of a missing run would do nothing anyway).</summary>
    private void DeleteJobsOfPurgedRuns(IEnumerable<string?> jobIds)
    {
        foreach (var jobId in jobIds.OfType<string>())
        {
            try
            {
                _dispatcher?.Delete(jobId);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                LogPurgedJobNotDeleted(ex, jobId);
            }
        }
    }

    /// <summary>Runs changed per transaction by the bulk actions.</summary>
    internal const int BulkBatchSize = 1_000;

    private async Task<int> TransitionManyAsync(WorkflowQuery query, RunOperation operation, JobRequestKind jobRequest,
        Func<int, CancellationToken, Task>? afterBatch, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(query);
        WorkflowQueryRules.ValidateFilters(query, nameof(query));
        var changed = 0;
        while (true)
        {
            // Each batch commits its status changes with their job writes; the writes follow (the outbox does what a
            // crash leaves). A changed run no longer has a status the operation starts from, so the loop ends.
            var batch = await _store.TransitionManyAsync(query, operation, jobRequest, _time.GetUtcNow(), BulkBatchSize, cancellationToken).ConfigureAwait(false);
            changed += batch.Count;
            await _jobs.AfterCommitManyAsync(batch.Where(r => r.Kind != JobRequestKind.None).ToList(), cancellationToken).ConfigureAwait(false);

            if (afterBatch is not null)
            {
                await afterBatch(changed, cancellationToken).ConfigureAwait(false);
            }

            if (batch.Count < BulkBatchSize)
            {
                LogBulk(operation, changed);
                return changed;
            }
        }
    }

    /// <summary>Runs (and jobs) created per transaction by <see cref="EnqueueManyAsync"/>.</summary>
    internal const int BatchSize = 100;

    /// <summary>Batches of one <see cref="EnqueueManyAsync"/> written at once, when they may be (see <see cref="CreateBatchesAsync"/>).</summary>
    internal const int ParallelBatches = 4;

    /// <summary>Validates and persists a run without a job (in-process execution through <see cref="IWorkflowRunner"/>).</summary>
    internal async Task<Guid> CreateWithoutJobAsync(WorkflowDescriptor workflow, JObject input, CancellationToken cancellationToken)
    {
        var result = await CreateAsync(workflow, NewRun(workflow, input, options: null, recurringId: null), createJob: null, cancellationToken).ConfigureAwait(false);
        return result.Id;
    }

    private NewRunRecord NewRun(WorkflowDescriptor workflow, JObject input, EnqueueOptions? options, string? recurringId)
    {
        var validated = WorkflowInputValidator.Validate(workflow, input);
        if (options?.IdempotencyKey is { Length: > 200 })
        {
            throw new WorkflowDataValidationException([new WorkflowDataError("idempotency_key", "At most 200 characters.")]);
        }

        var tags = WorkflowTags.ValidateForEnqueue(options?.Tags);
        FlowControl.ValidateKey(options?.ConcurrencyKey);
        var now = _time.GetUtcNow();
        return new NewRunRecord(Guid.CreateVersion7(), workflow.Name, validated, workflow.StepNames, now,
            options?.IdempotencyKey, recurringId, options?.Queue)
        {
            Tags = tags,
            ConcurrencyKey = options?.ConcurrencyKey,
            // An enqueue delay is kept as a time, so a job written later (the outbox) still runs when it was meant to.
            NotBefore = options?.Delay is { } delay && delay > TimeSpan.Zero ? now + delay : null,
        };
    }

    private async Task<CreateRunResult> CreateAsync(WorkflowDescriptor workflow, NewRunRecord record, Func<Guid, string?>? createJob,
        CancellationToken cancellationToken)
        => Created(workflow, await _store.CreateRunAsync(record, createJob, cancellationToken).ConfigureAwait(false));

    /// <summary>Counts and logs a run the store created (not one an idempotency key found).</summary>
    private CreateRunResult Created(WorkflowDescriptor workflow, CreateRunResult result)
    {
        if (result.Created)
        {
            _metrics.RunsCreated.Add(1, new KeyValuePair<string, object?>("workflow.name", workflow.Name));
            LogCreated(result.Id, workflow.Name, result.JobId);
        }

        return result;
    }

    public Task<WorkflowRun?> GetAsync(Guid workflowId, CancellationToken cancellationToken = default)
        => _store.GetRunAsync(workflowId, includeSteps: true, cancellationToken);

    public Task<IReadOnlyList<WorkflowRun>> ListAsync(WorkflowQuery query, CancellationToken cancellationToken = default)
    {
        WorkflowQueryRules.Validate(query);
        return _store.ListRunsAsync(query, cancellationToken);
    }

    public async Task RetryAsync(Guid workflowId, CancellationToken cancellationToken = default)
    {
        RequireDispatcher();

        // The run turns Pending and records "requeue its job" in one transaction; the requeue follows the
        // commit, and the outbox does it if this process dies first (never a Pending run with a Failed job).
        var change = await _store.TransitionAsync(workflowId, RunOperation.Retry, _time.GetUtcNow(), message: null, JobRequestKind.Requeue, cancellationToken)
            .ConfigureAwait(false);
        if (change is null)
        {
            var status = await _store.GetStatusAsync(workflowId, cancellationToken).ConfigureAwait(false)
                ?? throw new WorkflowRunNotFoundException(workflowId);
            throw new WorkflowStateException(workflowId, status, "retried");
        }

        if (change.Request is { } request)
        {
            await _jobs.AfterCommitAsync(request, cancellationToken).ConfigureAwait(false);
            _metrics.RunsRetried.Add(1, new KeyValuePair<string, object?>("workflow.name", request.WorkflowName));
        }
    }

    public async Task CancelAsync(Guid workflowId, CancellationToken cancellationToken = default)
    {
        var change = await _store.TransitionAsync(workflowId, RunOperation.Cancel, _time.GetUtcNow(), message: null,
            _dispatcher is null ? JobRequestKind.None : JobRequestKind.Delete, cancellationToken).ConfigureAwait(false);
        if (change is null)
        {
            var status = await _store.GetStatusAsync(workflowId, cancellationToken).ConfigureAwait(false)
                ?? throw new WorkflowRunNotFoundException(workflowId);
            if (status == WorkflowStatus.Cancelled)
            {
                return;
            }

            throw new WorkflowStateException(workflowId, status, "cancelled");
        }

        if (change.Request is { } request)
        {
            await _jobs.AfterCommitAsync(request, cancellationToken).ConfigureAwait(false);
        }

        foreach (var related in change.Related)
        {
            await _jobs.AfterCommitAsync(related, cancellationToken).ConfigureAwait(false);
        }
    }

    public async Task CancelAsync(Guid workflowId, CancelOptions? options, CancellationToken cancellationToken = default)
    {
        if (options is not { Compensate: true })
        {
            await CancelAsync(workflowId, cancellationToken).ConfigureAwait(false);
            return;
        }

        RequireDispatcher();

        // The run turns Compensating and records "requeue its job" in one transaction: the job (requeued, or created when it
        // is gone) runs the compensations; the outbox does the requeue if this process dies before it.
        var change = await _store.TransitionAsync(workflowId, RunOperation.BeginCompensation, _time.GetUtcNow(), message: null, JobRequestKind.Requeue,
            cancellationToken).ConfigureAwait(false);
        if (change is null)
        {
            var status = await _store.GetStatusAsync(workflowId, cancellationToken).ConfigureAwait(false)
                ?? throw new WorkflowRunNotFoundException(workflowId);
            if (status is WorkflowStatus.Compensating or WorkflowStatus.Compensated)
            {
                return;
            }

            throw new WorkflowStateException(workflowId, status, "cancelled with compensation");
        }

        if (change.Request is { } request)
        {
            await _jobs.AfterCommitAsync(request, cancellationToken).ConfigureAwait(false);
        }
    }

    private IWorkflowJobDispatcher RequireDispatcher() => _dispatcher ?? throw new InvalidOperationException(NoDispatcherMessage);

    [LoggerMessage(EventId = 8, Level = LogLevel.Information, Message = "Forked workflow run {WorkflowId} from run {OriginalId} at step {StepName}")]
    private partial void LogForked(Guid workflowId, Guid originalId, string stepName);

    [LoggerMessage(EventId = 9, Level = LogLevel.Information, Message = "Bulk {Operation}: {Count} workflow runs changed")]
    private partial void LogBulk(RunOperation operation, int count);

    [LoggerMessage(EventId = 11, Level = LogLevel.Information, Message = "Retention deleted {Count} finished workflow runs")]
    private partial void LogRetention(int count);

    [LoggerMessage(EventId = 10, Level = LogLevel.Warning, Message = "The job {JobId} of a purged workflow run was not deleted")]
    private partial void LogPurgedJobNotDeleted(Exception exception, string jobId);

    [LoggerMessage(EventId = 26, Level = LogLevel.Information, Message = "Created {Count} child runs of {WorkflowName} for workflow run {ParentId}")]
    private partial void LogCreatedChildren(int count, string workflowName, Guid parentId);

    [LoggerMessage(EventId = 7, Level = LogLevel.Information, Message = "Enqueued {Count} workflow runs of {WorkflowName} in batches")]
    private partial void LogCreatedMany(int count, string workflowName);

    [LoggerMessage(EventId = 1, Level = LogLevel.Information, Message = "Created workflow run {WorkflowId} of {WorkflowName} (job {JobId})")]
    private partial void LogCreated(Guid workflowId, string workflowName, string? jobId);
}
