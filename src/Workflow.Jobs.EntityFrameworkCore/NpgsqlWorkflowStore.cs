using System.Transactions;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Newtonsoft.Json;
using Newtonsoft.Json.Linq;
using Npgsql;
using NpgsqlTypes;

namespace Workflow.Jobs.EntityFrameworkCore;

/// <summary>
/// PostgreSQL storage. Queries go through EF Core; the execution path (guard, start, checkpoints) is
/// hand-written SQL batches so that each checkpoint is exactly one transaction and one round trip.
/// </summary>
internal sealed partial class NpgsqlWorkflowStore : IWorkflowStore, IInlineRunStore, IDisposable
{
    internal const string RunsTable = "workflow.workflow_runs";

    /// <summary>
    /// The SET list that ends a run's wait: what it waited for and until when. Written by every change that stops the run
    /// waiting (woken by an event or its children, started, finished for good, turned to compensation, cancelled); a
    /// flow-control offer keeps <c>waiting_for</c> until the run starts.
    /// </summary>
    internal const string ClearWaitsSql = "waiting_for = NULL, wake_at = NULL";

    /// <summary>
    /// The leader loop's probe (<see cref="WorkflowLeaderSignals"/>), one statement per tick: each part is the first
    /// entry of an index (the job-request, status and concurrency-queue indexes), so it stays cheap on large tables.
    /// </summary>
    internal const string LeaderProbeSql = $"""
        SELECT (SELECT min(modified) FROM {RunsTable} WHERE job_request IS NOT NULL),
               EXISTS (SELECT 1 FROM {RunsTable} WHERE status IN ('Running', 'Compensating') AND NOT is_removed),
               EXISTS (SELECT 1 FROM {RunsTable} WHERE waiting_for = '{FlowControl.WaitingFor}' AND NOT is_removed)
        """;
    internal const string StepsTable = "workflow.workflow_steps";
    internal const string AttemptsTable = "workflow.workflow_step_attempts";
    internal const string StepWaitsTable = "workflow.workflow_step_waits";
    internal const string EventsTable = "workflow.workflow_events";

    private readonly NpgsqlDataSource _dataSource;
    private readonly IDbContextFactory<WorkflowDbContext> _contexts;
    private readonly WorkflowJobsOptions _options;
    private readonly WorkflowNpgsqlOptions _npgsql;
    private readonly WorkflowRegistry _registry;
    private readonly WorkflowExecutionOrigin _origin;

    // Enqueues hold a pooled connection in a transaction while the (synchronous) Hangfire client runs;
    // bounding them keeps a burst of callers from exhausting the pool and starving each other.
    private readonly SemaphoreSlim _enqueueSlots;

    public NpgsqlWorkflowStore([FromKeyedServices(WorkflowStorageKeys.DataSource)] NpgsqlDataSource dataSource,
        IDbContextFactory<WorkflowDbContext> contexts, WorkflowJobsOptions options, WorkflowNpgsqlOptions npgsql, WorkflowRegistry registry,
        WorkflowExecutionOrigin origin)
    {
        _registry = registry;
        _origin = origin;
        var poolSize = new NpgsqlConnectionStringBuilder(dataSource.ConnectionString).MaxPoolSize;
        _enqueueSlots = new SemaphoreSlim(Math.Max(1, Math.Min(npgsql.MaxConcurrentEnqueues, poolSize / 2)));
        _dataSource = dataSource;
        _contexts = contexts;
        _options = options;
        _npgsql = npgsql;
    }

    internal NpgsqlDataSource DataSource => _dataSource;

    /// <summary>Releases the enqueue slots (the store is a singleton: the service provider disposes it).</summary>
    public void Dispose() => _enqueueSlots.Dispose();

    private static TimeSpan BatchTimeout => TransactionManager.DefaultTimeout * 5 < TransactionManager.MaximumTimeout
        ? TransactionManager.DefaultTimeout * 5
        : TransactionManager.MaximumTimeout;

    public async Task<CreateRunResult> CreateRunAsync(NewRunRecord run, Func<Guid, string?>? createJob, CancellationToken cancellationToken)
    {
        await _enqueueSlots.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return await CreateRunCoreAsync(run, createJob, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (NpgsqlErrors.IsUnavailable(ex))
        {
            throw NpgsqlErrors.Unavailable("The run was not created", ex);
        }
        finally
        {
            _enqueueSlots.Release();
        }
    }

    public async Task<CreateRunResult> CreateRunWithJobAsync(NewRunRecord run, InlineJobWrite job, CancellationToken cancellationToken)
    {
        if (run.IdempotencyKey is not null || run.CopiedSteps.Count > 0 || job.Command is not NpgsqlBatchCommand jobCommand)
        {
            throw new ArgumentException("A run written with its job in one round trip has no idempotency key and no copied steps, and its job write is an NpgsqlBatchCommand.", nameof(job));
        }

        await _enqueueSlots.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            // One batch, no explicit transaction: PostgreSQL runs a batch's statements in one implicit transaction, so
            // the job and the run commit together (the job's notification at that commit) or neither does.
            NpgsqlConnection connection;
            using (new TransactionScope(TransactionScopeOption.Suppress, TransactionScopeAsyncFlowOption.Enabled))
            {
                connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            }

            await using (connection.ConfigureAwait(false))
            {
                var insert = new NpgsqlBatchCommand(InsertRunSql($"({job.JobIdSql})") + " RETURNING job_id");
                AddRunParameters(insert.Parameters, run);
                await using var batch = new NpgsqlBatch(connection) { BatchCommands = { jobCommand, insert }, Timeout = _npgsql.CommandTimeoutSeconds };
                await using var reader = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    // The job write's own result (its id): the run's row says the same.
                }

                await reader.NextResultAsync(cancellationToken).ConfigureAwait(false);
                await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
                return new CreateRunResult(run.Id, Created: true, reader.GetString(0));
            }
        }
        catch (Exception ex) when (NpgsqlErrors.IsUnavailable(ex))
        {
            throw NpgsqlErrors.Unavailable("The run was not created", ex);
        }
        finally
        {
            _enqueueSlots.Release();
        }
    }

    /// <summary>The insert of one new run; <paramref name="jobId"/> is the SQL of its job id (a parameter, or an expression).</summary>
    private static string InsertRunSql(string jobId) => $"""
        INSERT INTO {RunsTable} (uuid, workflow_name, status, input_data, created, modified, is_removed, step_names,
                                 completed_steps, attempts, idempotency_key, recurring_id, queue, job_request, not_before, forked_from, tags, concurrency_key, job_id)
        VALUES (@id, @name, 'Pending', @input, @now, @now, false, @steps, @completed, 0, @key, @recurring, @queue, @job_request, @not_before, @forked_from, @tags, @concurrency_key, {jobId})
        """;

    private static void AddRunParameters(NpgsqlParameterCollection parameters, NewRunRecord run)
    {
        parameters.AddWithValue("id", run.Id);
        parameters.AddWithValue("name", run.WorkflowName);
        parameters.Add(Jsonb("input", run.Input));
        parameters.AddWithValue("now", run.Created);
        parameters.AddWithValue("steps", run.StepNames.ToArray());
        parameters.Add(Text("key", run.IdempotencyKey));
        parameters.Add(Text("recurring", run.RecurringId));
        parameters.Add(Text("queue", run.Queue));
        parameters.Add(Text("job_request", run.AwaitingJob ? JobRequestText(JobRequestKind.Create) : null));
        parameters.Add(new NpgsqlParameter("not_before", NpgsqlDbType.TimestampTz) { Value = (object?)run.NotBefore ?? DBNull.Value });
        parameters.Add(new NpgsqlParameter("forked_from", NpgsqlDbType.Uuid) { Value = (object?)run.ForkedFrom ?? DBNull.Value });
        parameters.AddWithValue("completed", run.CopiedSteps.Count);
        parameters.Add(new NpgsqlParameter("tags", NpgsqlDbType.Jsonb) { Value = WorkflowTags.ToJson(run.Tags) });
        parameters.Add(Text("concurrency_key", run.ConcurrencyKey));
    }

    private async Task<CreateRunResult> CreateRunCoreAsync(NewRunRecord run, Func<Guid, string?>? dispatch, CancellationToken cancellationToken)
    {
        // The run row and its job commit together: the job storage enlists in this scope and, sharing
        // the data source, gets the same physical connection (no two-phase commit). A caller's own
        // TransactionScope is joined, so rolling it back leaves neither run nor job.
        using var scope = dispatch is null && Transaction.Current is null && run.CopiedSteps.Count == 0
            ? null
            : new TransactionScope(TransactionScopeOption.Required,
                new TransactionOptions { IsolationLevel = IsolationLevel.ReadCommitted, Timeout = TransactionManager.DefaultTimeout },
                TransactionScopeAsyncFlowOption.Enabled);

        // Without an idempotency key the insert cannot turn out to be a duplicate, so the job is created first and the
        // run inserted with its job id: one round trip fewer than inserting, creating the job, then recording its id.
        // (With a key, a duplicate must not create a job: the job follows the insert.)
        string? jobId = null;
        var jobFirst = dispatch is not null && run.IdempotencyKey is null;
        if (jobFirst)
        {
            jobId = dispatch!(run.Id);
        }

        Guid id;
        await using (var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false))
        {
            await using var insert = new NpgsqlCommand(InsertRunSql("@job_id") + """

                ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
                RETURNING uuid
                """, connection);
            insert.CommandTimeout = _npgsql.CommandTimeoutSeconds;
            AddRunParameters(insert.Parameters, run);
            insert.Parameters.Add(Text("job_id", jobId));
            var inserted = await insert.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
            if (inserted is null)
            {
                await using var existing = new NpgsqlCommand($"SELECT uuid, job_id FROM {RunsTable} WHERE idempotency_key = @key", connection);
                existing.Parameters.AddWithValue("key", run.IdempotencyKey!);
                await using var reader = await existing.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                if (!await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    throw new InvalidOperationException($"Idempotency key '{run.IdempotencyKey}' conflicted but its run was not found.");
                }

                var result = new CreateRunResult(reader.GetGuid(0), Created: false, await reader.IsDBNullAsync(1, cancellationToken).ConfigureAwait(false) ? null : reader.GetString(1));
                await reader.DisposeAsync().ConfigureAwait(false);
                scope?.Complete();
                return result;
            }

            id = (Guid)inserted;
            if (run.CopiedSteps.Count > 0)
            {
                await InsertCopiedStepsAsync(connection, id, run, cancellationToken).ConfigureAwait(false);
            }
        }

        if (dispatch is not null && !jobFirst)
        {
            jobId = dispatch(id);
            if (jobId is not null)
            {
                await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
                await using var update = new NpgsqlCommand($"UPDATE {RunsTable} SET job_id = @job WHERE uuid = @id", connection);
                update.Parameters.AddWithValue("job", jobId);
                update.Parameters.AddWithValue("id", id);
                await update.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }
        }

        scope?.Complete();
        return new CreateRunResult(id, Created: true, jobId);
    }

    /// <summary>Writes a fork's copied steps as Succeeded, chained in order (same transaction as the run).</summary>
    private async Task InsertCopiedStepsAsync(NpgsqlConnection connection, Guid runId, NewRunRecord run, CancellationToken cancellationToken)
    {
        var ids = run.CopiedSteps.Select(_ => Guid.CreateVersion7()).ToArray();
        var preceding = ids.Select((_, i) => i == 0 ? (Guid?)null : ids[i - 1]).ToArray();
        await using var copy = new NpgsqlCommand(
            $"""
            INSERT INTO {StepsTable} (uuid, workflow_record_uuid, preceding_step_uuid, step_name, status, input_data, output_data,
                                      created, modified, succeeded_at, is_removed, attempts)
            SELECT s.id, @run, s.preceding, s.name, 'Succeeded', s.input, s.output, @now, @now, @now, false, 0
            FROM unnest(@ids, @preceding, @names, @inputs, @outputs) AS s(id, preceding, name, input, output)
            """, connection);
        copy.CommandTimeout = _npgsql.CommandTimeoutSeconds;
        copy.Parameters.AddWithValue("run", runId);
        copy.Parameters.AddWithValue("now", run.Created);
        copy.Parameters.AddWithValue("ids", ids);
        copy.Parameters.Add(new NpgsqlParameter("preceding", NpgsqlDbType.Array | NpgsqlDbType.Uuid) { Value = preceding });
        copy.Parameters.AddWithValue("names", run.CopiedSteps.Select(c => c.StepName).ToArray());
        copy.Parameters.Add(new NpgsqlParameter("inputs", NpgsqlDbType.Array | NpgsqlDbType.Jsonb) { Value = run.CopiedSteps.Select(c => c.Input.ToString(Formatting.None)).ToArray() });
        copy.Parameters.Add(new NpgsqlParameter("outputs", NpgsqlDbType.Array | NpgsqlDbType.Jsonb) { Value = run.CopiedSteps.Select(c => c.Output.ToString(Formatting.None)).ToArray() });
        await copy.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    public async Task<IReadOnlyList<CreateRunResult>> CreateRunsAsync(IReadOnlyList<NewRunRecord> runs, Func<IReadOnlyList<NewRunRecord>, IReadOnlyList<string>>? createJobs,
        CancellationToken cancellationToken)
    {
        if (runs.Count == 0)
        {
            return [];
        }

        await _enqueueSlots.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return await CreateRunsCoreAsync(runs, createJobs, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (NpgsqlErrors.IsUnavailable(ex))
        {
            throw NpgsqlErrors.Unavailable("The runs were not created", ex);
        }
        finally
        {
            _enqueueSlots.Release();
        }
    }

    private async Task<IReadOnlyList<CreateRunResult>> CreateRunsCoreAsync(IReadOnlyList<NewRunRecord> runs, Func<IReadOnlyList<NewRunRecord>, IReadOnlyList<string>>? createJobs,
        CancellationToken cancellationToken)
    {
        // Same transaction rules as one run: the jobs enlist in this scope on the same connection. A batch
        // writes a job per run, so it gets more time than one enqueue before the scope aborts it.
        using var scope = createJobs is null && Transaction.Current is null
            ? null
            : new TransactionScope(TransactionScopeOption.Required,
                new TransactionOptions { IsolationLevel = IsolationLevel.ReadCommitted, Timeout = BatchTimeout },
                TransactionScopeAsyncFlowOption.Enabled);
        // Without a scope the batch is one INSERT statement: atomic on its own. With one, every connection
        // opened below is the one connector enlisted in it (each is closed before the next is opened, so the
        // job storage, sharing the data source, gets that connector too: no second enlisted connection).
        var inserted = new HashSet<Guid>();
        var existing = new Dictionary<string, (Guid Id, string? JobId)>(StringComparer.Ordinal);
        var jobs = new Dictionary<Guid, string>();
        // Without idempotency keys no run of the batch can turn out to be a duplicate: the jobs are created first and
        // the runs inserted with their job ids, instead of updating every new run row again afterwards.
        var keyless = runs.All(r => r.IdempotencyKey is null);
        var jobFirst = createJobs is not null && keyless;
        string?[] firstJobIds = new string?[runs.Count];
        if (jobFirst)
        {
            var jobIds = createJobs!(runs);
            for (var i = 0; i < runs.Count; i++)
            {
                firstJobIds[i] = jobIds[i];
                jobs[runs[i].Id] = jobIds[i];
            }
        }

        await using (var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false))
        {
            // One statement for the whole batch; a key used earlier in the batch or by an existing run is skipped (without
            // keys there is nothing to skip, and the insert is a plain one rather than a speculative one per row).
            var first = runs[0];
            await using var insert = new NpgsqlCommand(
                $"""
                INSERT INTO {RunsTable} (uuid, workflow_name, status, input_data, created, modified, is_removed, step_names,
                                         completed_steps, attempts, idempotency_key, recurring_id, queue, job_request, not_before, tags,
                                         parent_uuid, parent_step_uuid, child_index, concurrency_key, job_id)
                SELECT r.id, @name, 'Pending', r.input, @now, @now, false, @steps, 0, 0, r.key, NULL, r.queue, r.job_request, r.not_before, r.tags,
                       r.parent, r.parent_step, r.child_index, r.concurrency_key, r.job_id
                FROM unnest(@ids, @inputs, @keys, @queues, @job_requests, @not_befores, @tags, @parents, @parent_steps, @child_indexes, @concurrency_keys, @job_ids)
                     AS r(id, input, key, queue, job_request, not_before, tags, parent, parent_step, child_index, concurrency_key, job_id)
                {(keyless ? "" : "ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING")}
                RETURNING uuid
                """, connection);
            insert.CommandTimeout = _npgsql.CommandTimeoutSeconds;
            insert.Parameters.AddWithValue("name", first.WorkflowName);
            insert.Parameters.AddWithValue("now", first.Created);
            insert.Parameters.AddWithValue("steps", first.StepNames.ToArray());
            insert.Parameters.AddWithValue("ids", runs.Select(r => r.Id).ToArray());
            insert.Parameters.Add(new NpgsqlParameter("inputs", NpgsqlDbType.Array | NpgsqlDbType.Jsonb) { Value = runs.Select(r => r.Input.ToString(Formatting.None)).ToArray() });
            insert.Parameters.Add(new NpgsqlParameter("keys", NpgsqlDbType.Array | NpgsqlDbType.Text) { Value = runs.Select(r => r.IdempotencyKey).ToArray() });
            insert.Parameters.Add(new NpgsqlParameter("queues", NpgsqlDbType.Array | NpgsqlDbType.Text) { Value = runs.Select(r => r.Queue).ToArray() });
            insert.Parameters.Add(new NpgsqlParameter("job_requests", NpgsqlDbType.Array | NpgsqlDbType.Text)
            {
                Value = runs.Select(r => r.AwaitingJob ? JobRequestText(JobRequestKind.Create) : null).ToArray(),
            });
            insert.Parameters.Add(new NpgsqlParameter("not_befores", NpgsqlDbType.Array | NpgsqlDbType.TimestampTz)
            {
                Value = runs.Select(r => r.NotBefore).ToArray(),
            });
            insert.Parameters.Add(new NpgsqlParameter("tags", NpgsqlDbType.Array | NpgsqlDbType.Jsonb) { Value = runs.Select(r => WorkflowTags.ToJson(r.Tags)).ToArray() });
            insert.Parameters.Add(NullableUuids("parents", runs.Select(r => r.ParentId)));
            insert.Parameters.Add(NullableUuids("parent_steps", runs.Select(r => r.ParentStepId)));
            insert.Parameters.Add(NullableInts("child_indexes", runs.Select(r => r.ChildIndex)));
            insert.Parameters.Add(new NpgsqlParameter("concurrency_keys", NpgsqlDbType.Array | NpgsqlDbType.Text) { Value = runs.Select(r => r.ConcurrencyKey).ToArray() });
            insert.Parameters.Add(new NpgsqlParameter("job_ids", NpgsqlDbType.Array | NpgsqlDbType.Text) { Value = firstJobIds });
            await using (var reader = await insert.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
            {
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    inserted.Add(reader.GetGuid(0));
                }
            }

            // Runs whose key was taken: the existing run (by an earlier call, or earlier in this batch).
            var taken = runs.Where(r => !inserted.Contains(r.Id) && r.IdempotencyKey is not null).Select(r => r.IdempotencyKey!).Distinct().ToArray();
            if (taken.Length > 0)
            {
                await using var select = new NpgsqlCommand($"SELECT idempotency_key, uuid, job_id FROM {RunsTable} WHERE idempotency_key = ANY(@keys)", connection);
                select.CommandTimeout = _npgsql.CommandTimeoutSeconds;
                select.Parameters.AddWithValue("keys", taken);
                await using var reader = await select.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    existing[reader.GetString(0)] = (reader.GetGuid(1), await reader.IsDBNullAsync(2, cancellationToken).ConfigureAwait(false) ? null : reader.GetString(2));
                }
            }
        }

        if (createJobs is not null && !jobFirst)
        {
            var created = runs.Where(r => inserted.Contains(r.Id)).ToList();
            var jobIds = created.Count == 0 ? [] : createJobs(created);
            for (var i = 0; i < created.Count; i++)
            {
                jobs[created[i].Id] = jobIds[i];
            }

            if (jobs.Count > 0)
            {
                await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
                await using var update = new NpgsqlCommand(
                    $"UPDATE {RunsTable} r SET job_id = j.job FROM unnest(@ids, @jobs) AS j(id, job) WHERE r.uuid = j.id", connection);
                update.CommandTimeout = _npgsql.CommandTimeoutSeconds;
                update.Parameters.AddWithValue("ids", jobs.Keys.ToArray());
                update.Parameters.AddWithValue("jobs", jobs.Values.ToArray());
                await update.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }
        }

        scope?.Complete();
        return runs.Select(r => inserted.Contains(r.Id)
                ? new CreateRunResult(r.Id, Created: true, jobs.GetValueOrDefault(r.Id))
                : existing.TryGetValue(r.IdempotencyKey ?? "", out var found)
                    ? new CreateRunResult(found.Id, Created: false, found.JobId)
                    : throw new InvalidOperationException($"Idempotency key '{r.IdempotencyKey}' conflicted but its run was not found."))
            .ToList();
    }

    public async Task<WorkflowRun?> GetRunAsync(Guid id, bool includeSteps, CancellationToken cancellationToken)
    {
        await using var db = await _contexts.CreateDbContextAsync(cancellationToken).ConfigureAwait(false);
        var run = await db.Runs.AsNoTracking().FirstOrDefaultAsync(r => r.Id == id, cancellationToken).ConfigureAwait(false);
        if (run is null)
        {
            return null;
        }

        var steps = includeSteps || run.Status != WorkflowStatus.Succeeded
            ? await db.Steps.AsNoTracking().Where(s => s.WorkflowRecordId == id).ToListAsync(cancellationToken).ConfigureAwait(false)
            : [];
        var mapped = Map(run, steps, includeSteps);
        if (!includeSteps || steps.Count == 0)
        {
            return mapped;
        }

        // The steps' attempts, by the (step, attempt) primary key.
        var stepIds = steps.Select(s => s.Id).ToArray();
        var attempts = await db.StepAttempts.AsNoTracking().Where(a => stepIds.Contains(a.StepId)).OrderBy(a => a.Attempt)
            .ToListAsync(cancellationToken).ConfigureAwait(false);
        var byStep = attempts.ToLookup(a => a.StepId);
        mapped = mapped with
        {
            Steps = mapped.Steps.Select(step => step with { History = StepHistory.Read(byStep[step.Id], step, run.Status) }).ToList(),
        };
        mapped = await WithItemSummariesAsync(db, mapped, cancellationToken).ConfigureAwait(false);
        return mapped with { Children = await LoadChildrenSummaryAsync(id, cancellationToken).ConfigureAwait(false) };
    }

    public async Task<long> CountRunsAsync(WorkflowQuery query, CancellationToken cancellationToken)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand { Connection = connection, CommandTimeout = _npgsql.CommandTimeoutSeconds };
        command.CommandText = $"SELECT count(*) FROM {RunsTable} r WHERE {WorkflowQuerySql.Where(query, command)}";
        return (long)(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
    }

    public async Task<IReadOnlyList<JobRequest>> TransitionManyAsync(WorkflowQuery query, RunOperation operation, JobRequestKind jobRequest, DateTimeOffset now,
        int limit, CancellationToken cancellationToken)
    {
        // One batch of the runs the filter selects whose status allows the operation (the same table as one run's
        // transition), locked and skipped when another transaction holds them; the job writes go with the change.
        var transition = WorkflowTransitions.For(operation);
        var changed = new List<JobRequest>();
        // The connection, command and reader end with this block, before the follow-up work below: Npgsql reuses a
        // connector's reader object, so a reader disposed again after its connection went back to the pool would close
        // the reader of whichever connection has that connector by then.
        await using (var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false))
        {
            await using var command = new NpgsqlCommand { Connection = connection, CommandTimeout = _npgsql.CommandTimeoutSeconds };
            var where = WorkflowQuerySql.Where(query, command);
            command.CommandText = $"""
                WITH chosen AS (
                    SELECT r.uuid FROM {RunsTable} r
                    WHERE {where} AND r.status IN {transition.SqlFrom}
                    ORDER BY r.created LIMIT @limit FOR UPDATE SKIP LOCKED)
                UPDATE {RunsTable} r
                SET status = @to, modified = @now,
                    waiting_for = CASE WHEN @to = 'Waiting' THEN r.waiting_for END, wake_at = CASE WHEN @to = 'Waiting' THEN r.wake_at END,
                    job_request = {JobRequestAfterChange}
                FROM chosen
                WHERE r.uuid = chosen.uuid
                RETURNING r.uuid, r.job_request, r.workflow_name, r.queue, r.job_id, r.not_before
                """;
            command.Parameters.AddWithValue("limit", limit);
            command.Parameters.Add(Text("to", transition.To.ToString()));
            command.Parameters.AddWithValue("now", now);
            command.Parameters.AddWithValue("cancel", operation == RunOperation.Cancel);
            command.Parameters.Add(Text("request", jobRequest == JobRequestKind.None ? null : JobRequestText(jobRequest)));
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                var kind = await reader.IsDBNullAsync(1, cancellationToken).ConfigureAwait(false) ? JobRequestKind.None : ParseJobRequest(reader.GetString(1));
                changed.Add(new JobRequest(reader.GetGuid(0), kind, reader.GetString(2),
                    await reader.IsDBNullAsync(3, cancellationToken).ConfigureAwait(false) ? null : reader.GetString(3),
                    await reader.IsDBNullAsync(4, cancellationToken).ConfigureAwait(false) ? null : reader.GetString(4),
                    await reader.IsDBNullAsync(5, cancellationToken).ConfigureAwait(false) ? null : await reader.GetFieldValueAsync<DateTimeOffset>(5, cancellationToken).ConfigureAwait(false)));
            }
        }

        // After the batch commits: the children of cancelled runs are cancelled, and parents whose last child this batch
        // finished are woken, each in a transaction of its own; their job writes are left to the outbox.
        await AfterStatusChangeAsync(operation, changed.Select(c => c.RunId).ToArray(), now, cancellationToken).ConfigureAwait(false);
        return changed;
    }

    public async Task<IReadOnlyList<string?>> PurgeFinishedBeforeAsync(WorkflowStatus status, DateTimeOffset before, int limit, CancellationToken cancellationToken)
    {
        if (!WorkflowTransitions.IsFinished(status))
        {
            throw new ArgumentOutOfRangeException(nameof(status), status, "Only finished runs are ever deleted.");
        }

        // A small batch per statement (short locks), served by the (status, created) index's status prefix.
        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(
            $"""
            WITH chosen AS (
                SELECT uuid FROM {RunsTable} WHERE status = @status AND modified < @before
                ORDER BY created LIMIT @limit FOR UPDATE SKIP LOCKED)
            DELETE FROM {RunsTable} r USING chosen WHERE r.uuid = chosen.uuid
            RETURNING r.job_id
            """, connection) { CommandTimeout = _npgsql.CommandTimeoutSeconds };
        command.Parameters.Add(Text("status", status.ToString()));
        command.Parameters.AddWithValue("before", before);
        command.Parameters.AddWithValue("limit", limit);
        var jobs = new List<string?>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            jobs.Add(await reader.IsDBNullAsync(0, cancellationToken).ConfigureAwait(false) ? null : reader.GetString(0));
        }

        return jobs;
    }

    public async Task<IReadOnlyList<string?>> PurgeAsync(WorkflowQuery query, int limit, CancellationToken cancellationToken)
    {
        // Hard delete of one batch of finished runs (their steps go with them: cascade); an unfinished run is never
        // selected. Returns the deleted runs' job ids.
        var finished = "(" + string.Join(", ", WorkflowTransitions.Finished.Order().Select(s => "'" + s + "'")) + ")";
        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand { Connection = connection, CommandTimeout = _npgsql.CommandTimeoutSeconds };
        var where = WorkflowQuerySql.Where(query, command);
        command.CommandText = $"""
            WITH chosen AS (
                SELECT r.uuid FROM {RunsTable} r
                WHERE {where} AND r.status IN {finished}
                ORDER BY r.created LIMIT @limit FOR UPDATE SKIP LOCKED)
            DELETE FROM {RunsTable} r USING chosen WHERE r.uuid = chosen.uuid
            RETURNING r.job_id
            """;
        command.Parameters.AddWithValue("limit", limit);
        var jobs = new List<string?>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            jobs.Add(await reader.IsDBNullAsync(0, cancellationToken).ConfigureAwait(false) ? null : reader.GetString(0));
        }

        return jobs;
    }

    public async Task<IReadOnlyList<WorkflowRun>> ListRunsAsync(WorkflowQuery query, CancellationToken cancellationToken)
    {
        // Only the columns a listing shows: input_data and output_data (often the largest values, TOASTed) are never
        // read, so a page costs the same whatever the runs carry. Newest first, by the (filter, created) indexes.
        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        var page = new List<WorkflowRun>();
        await using (var command = new NpgsqlCommand { Connection = connection, CommandTimeout = _npgsql.CommandTimeoutSeconds })
        {
            var where = WorkflowQuerySql.Where(query, command);
            command.CommandText = $"""
                SELECT r.uuid, r.workflow_name, r.status, r.created, r.modified, r.succeeded_at, r.failed_at, r.exception_message,
                       r.job_id, r.step_names, r.completed_steps, r.attempts, r.recurring_id, r.idempotency_key, r.tags, r.waiting_for, r.wake_at,
                       r.compensation_requested_at, r.compensation_error,
                       r.parent_uuid, r.child_index, r.concurrency_key
                FROM {RunsTable} r
                WHERE {where}
                ORDER BY r.created DESC, r.uuid DESC
                LIMIT @limit OFFSET @offset
                """;
            command.Parameters.AddWithValue("limit", query.Limit);
            command.Parameters.AddWithValue("offset", query.Offset);
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                page.Add(new WorkflowRun
                {
                    Id = reader.GetGuid(0),
                    WorkflowName = reader.GetString(1),
                    Status = Enum.Parse<WorkflowStatus>(reader.GetString(2)),
                    Input = [],
                    Output = null,
                    Created = await reader.GetFieldValueAsync<DateTimeOffset>(3, cancellationToken).ConfigureAwait(false),
                    Modified = await reader.GetFieldValueAsync<DateTimeOffset>(4, cancellationToken).ConfigureAwait(false),
                    SucceededAt = await reader.IsDBNullAsync(5, cancellationToken).ConfigureAwait(false) ? null : await reader.GetFieldValueAsync<DateTimeOffset>(5, cancellationToken).ConfigureAwait(false),
                    FailedAt = await reader.IsDBNullAsync(6, cancellationToken).ConfigureAwait(false) ? null : await reader.GetFieldValueAsync<DateTimeOffset>(6, cancellationToken).ConfigureAwait(false),
                    ExceptionMessage = await reader.IsDBNullAsync(7, cancellationToken).ConfigureAwait(false) ? null : reader.GetString(7),
                    JobId = await reader.IsDBNullAsync(8, cancellationToken).ConfigureAwait(false) ? null : reader.GetString(8),
                    StepNames = await reader.GetFieldValueAsync<string[]>(9, cancellationToken).ConfigureAwait(false),
                    CompletedSteps = reader.GetInt32(10),
                    Attempts = reader.GetInt32(11),
                    RecurringId = await reader.IsDBNullAsync(12, cancellationToken).ConfigureAwait(false) ? null : reader.GetString(12),
                    IdempotencyKey = await reader.IsDBNullAsync(13, cancellationToken).ConfigureAwait(false) ? null : reader.GetString(13),
                    Tags = WorkflowTags.FromJson(reader.GetString(14)),
                    WaitingFor = await reader.IsDBNullAsync(15, cancellationToken).ConfigureAwait(false) ? null : reader.GetString(15),
                    WakeAt = await reader.IsDBNullAsync(16, cancellationToken).ConfigureAwait(false) ? null : await reader.GetFieldValueAsync<DateTimeOffset>(16, cancellationToken).ConfigureAwait(false),
                    CompensationRequestedAt = await reader.IsDBNullAsync(17, cancellationToken).ConfigureAwait(false) ? null : await reader.GetFieldValueAsync<DateTimeOffset>(17, cancellationToken).ConfigureAwait(false),
                    CompensationError = await reader.IsDBNullAsync(18, cancellationToken).ConfigureAwait(false) ? null : reader.GetString(18),
                    ParentId = await reader.IsDBNullAsync(19, cancellationToken).ConfigureAwait(false) ? null : reader.GetGuid(19),
                    ChildIndex = await reader.IsDBNullAsync(20, cancellationToken).ConfigureAwait(false) ? null : reader.GetInt32(20),
                    ConcurrencyKey = await reader.IsDBNullAsync(21, cancellationToken).ConfigureAwait(false) ? null : reader.GetString(21),
                });
            }
        }

        if (!query.IncludeSteps || page.Count == 0)
        {
            return page;
        }

        // The steps of the page, likewise without their input and output JSON.
        var steps = new List<WorkflowStepRun>();
        var runOf = new Dictionary<Guid, Guid>();
        await using (var command = new NpgsqlCommand(
            $"""
            SELECT uuid, workflow_record_uuid, step_name, status, preceding_step_uuid, created, modified, started_at, succeeded_at,
                   failed_at, exception_message, attempts
            FROM {StepsTable} WHERE workflow_record_uuid = ANY(@runs) AND NOT is_removed
            ORDER BY created
            """, connection) { CommandTimeout = _npgsql.CommandTimeoutSeconds })
        {
            command.Parameters.AddWithValue("runs", page.Select(r => r.Id).ToArray());
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                var step = new WorkflowStepRun
                {
                    Id = reader.GetGuid(0),
                    StepName = reader.GetString(2),
                    Status = Enum.Parse<WorkflowStatus>(reader.GetString(3)),
                    PrecedingStepId = await reader.IsDBNullAsync(4, cancellationToken).ConfigureAwait(false) ? null : reader.GetGuid(4),
                    Input = [],
                    Output = null,
                    Created = await reader.GetFieldValueAsync<DateTimeOffset>(5, cancellationToken).ConfigureAwait(false),
                    Modified = await reader.GetFieldValueAsync<DateTimeOffset>(6, cancellationToken).ConfigureAwait(false),
                    StartedAt = await reader.IsDBNullAsync(7, cancellationToken).ConfigureAwait(false) ? null : await reader.GetFieldValueAsync<DateTimeOffset>(7, cancellationToken).ConfigureAwait(false),
                    SucceededAt = await reader.IsDBNullAsync(8, cancellationToken).ConfigureAwait(false) ? null : await reader.GetFieldValueAsync<DateTimeOffset>(8, cancellationToken).ConfigureAwait(false),
                    FailedAt = await reader.IsDBNullAsync(9, cancellationToken).ConfigureAwait(false) ? null : await reader.GetFieldValueAsync<DateTimeOffset>(9, cancellationToken).ConfigureAwait(false),
                    ExceptionMessage = await reader.IsDBNullAsync(10, cancellationToken).ConfigureAwait(false) ? null : reader.GetString(10),
                    Attempts = reader.GetInt32(11),
                };
                steps.Add(step);
                runOf[step.Id] = reader.GetGuid(1);
            }
        }

        var byRun = steps.ToLookup(s => runOf[s.Id]);
        return page.Select(run =>
        {
            var order = run.StepNames.Select((name, index) => (name, index)).ToDictionary(x => x.name, x => x.index, StringComparer.Ordinal);
            return run with { Steps = byRun[run.Id].OrderBy(s => order.GetValueOrDefault(s.StepName, int.MaxValue)).ThenBy(s => s.Created).ToList() };
        }).ToList();
    }

    public long CountFailedRuns(long cap)
    {
        // Counts the partial index ix_workflow_runs_failed_created (its predicate is repeated here so the planner uses
        // it), stopping at the cap: the cost is bounded whatever the table holds.
        using var connection = _dataSource.OpenConnection();
        using var command = new NpgsqlCommand(
            $"SELECT count(*) FROM (SELECT 1 FROM {RunsTable} WHERE status = 'Failed' AND NOT is_removed LIMIT @cap) f", connection)
        {
            CommandTimeout = _npgsql.CommandTimeoutSeconds,
        };
        command.Parameters.AddWithValue("cap", cap);
        return (long)command.ExecuteScalar()!;
    }

    public async Task<RunChange?> TransitionAsync(Guid runId, RunOperation operation, DateTimeOffset now, string? message, JobRequestKind jobRequest,
        CancellationToken cancellationToken)
    {
        var transition = WorkflowTransitions.For(operation);
        var failing = transition.To == WorkflowStatus.Failed;

        // One statement: the status change (only from the statuses the table allows), the job write to
        // follow it (a delete only when there is a job), and the run's previous status. A cancel drops any
        // other pending job write: a cancelled run gets no new or requeued job.
        // A wake also marks the run's open waits woken (a sleep woken early returns; an event wait checks its event).
        var woken = operation == RunOperation.Wake
            ? $", woken AS (UPDATE {StepWaitsTable} SET woken_at = @now WHERE run_uuid = @run AND woken_at IS NULL AND EXISTS (SELECT 1 FROM current WHERE status IN {transition.SqlFrom}))"
            : "";
        var sql = $"""
            WITH current AS (SELECT uuid, status FROM {RunsTable} WHERE uuid = @run AND NOT is_removed FOR UPDATE){woken}
            UPDATE {RunsTable} r
            SET status = @to, modified = @now,
                waiting_for = CASE WHEN @to = 'Waiting' THEN r.waiting_for END, wake_at = CASE WHEN @to = 'Waiting' THEN r.wake_at END,
                failed_at = CASE WHEN @failing THEN @now ELSE r.failed_at END,
                exception_message = CASE
                    WHEN NOT @failing THEN r.exception_message
                    -- A compensation that failed for good keeps the run's original failure (its own is in compensation_error).
                    WHEN current.status = '{WorkflowStatus.Compensating}' THEN COALESCE(r.exception_message, @message)
                    ELSE COALESCE(@message, r.exception_message) END,
                compensation_requested_at = CASE WHEN @compensating THEN COALESCE(r.compensation_requested_at, @now) ELSE r.compensation_requested_at END,
                job_request = {JobRequestAfterChange}
            FROM current
            WHERE r.uuid = current.uuid AND current.status IN {transition.SqlFrom}
            RETURNING current.status, r.job_request, r.workflow_name, r.queue, r.job_id, r.not_before
            """;
        try
        {
            // A change that finishes the run also wakes its parent when it was the parent's last unfinished child, in the
            // same transaction (the parent's row locked after this run's, in a statement of its own).
            var finishes = WorkflowTransitions.IsFinished(transition.To);
            RunChange? change = null;
            List<JobRequest> related = [];
            await using (var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false))
            {
                await using var batch = new NpgsqlBatch(connection) { Timeout = _npgsql.CommandTimeoutSeconds };
                var command = new NpgsqlBatchCommand(sql);
                batch.BatchCommands.Add(command);
                command.Parameters.AddWithValue("run", runId);
                command.Parameters.Add(Text("to", transition.To.ToString()));
                command.Parameters.AddWithValue("now", now);
                command.Parameters.AddWithValue("failing", failing);
                command.Parameters.AddWithValue("compensating", operation == RunOperation.BeginCompensation);
                command.Parameters.AddWithValue("cancel", operation == RunOperation.Cancel);
                command.Parameters.Add(Text("message", message));
                command.Parameters.Add(Text("request", jobRequest == JobRequestKind.None ? null : JobRequestText(jobRequest)));
                if (finishes)
                {
                    foreach (var wake in WakeParentsCommands([runId], now))
                    {
                        batch.BatchCommands.Add(wake);
                    }
                }

                await using var reader = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                if (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    var previous = Enum.Parse<WorkflowStatus>(reader.GetString(0));
                    var kind = await reader.IsDBNullAsync(1, cancellationToken).ConfigureAwait(false) ? JobRequestKind.None : ParseJobRequest(reader.GetString(1));
                    var request = jobRequest != JobRequestKind.None && kind == jobRequest
                        ? new JobRequest(runId, kind, reader.GetString(2), await reader.IsDBNullAsync(3, cancellationToken).ConfigureAwait(false) ? null : reader.GetString(3), await reader.IsDBNullAsync(4, cancellationToken).ConfigureAwait(false) ? null : reader.GetString(4),
                            await reader.IsDBNullAsync(5, cancellationToken).ConfigureAwait(false) ? null : await reader.GetFieldValueAsync<DateTimeOffset>(5, cancellationToken).ConfigureAwait(false))
                        : null;
                    change = new RunChange(previous, request);
                }

                if (finishes && await reader.NextResultAsync(cancellationToken).ConfigureAwait(false))
                {
                    related.AddRange(await ReadParentWakesAsync(reader, cancellationToken).ConfigureAwait(false));
                }
            }

            if (change is null)
            {
                return null;
            }

            if (operation == RunOperation.Cancel)
            {
                // The parent's cancel is committed: its unfinished children are cancelled in a transaction of their own.
                related.AddRange(await CancelDescendantsAsync([runId], now, cancellationToken).ConfigureAwait(false));
            }

            return change with { Related = related };
        }
        catch (Exception ex) when (NpgsqlErrors.IsUnavailable(ex))
        {
            throw NpgsqlErrors.Unavailable($"Workflow run {runId} was not changed ({operation})", ex);
        }
    }

    public async Task<IReadOnlyList<WorkflowForkLink>> ListForksAsync(Guid runId, int limit, CancellationToken cancellationToken)
    {
        // The partial index on forked_from answers this.
        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(
            $"SELECT uuid, status, created FROM {RunsTable} WHERE forked_from = @id AND NOT is_removed ORDER BY created, uuid LIMIT @limit", connection)
        {
            CommandTimeout = _npgsql.CommandTimeoutSeconds,
        };
        command.Parameters.AddWithValue("id", runId);
        command.Parameters.AddWithValue("limit", limit);
        var forks = new List<WorkflowForkLink>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            var status = Enum.Parse<WorkflowStatus>(await reader.GetFieldValueAsync<string>(1, cancellationToken).ConfigureAwait(false));
            forks.Add(new WorkflowForkLink(await reader.GetFieldValueAsync<Guid>(0, cancellationToken).ConfigureAwait(false), status,
                await reader.GetFieldValueAsync<DateTimeOffset>(2, cancellationToken).ConfigureAwait(false)));
        }

        return forks;
    }

    public async Task<WorkflowStatus?> GetStatusAsync(Guid runId, CancellationToken cancellationToken)
    {
        await using var db = await _contexts.CreateDbContextAsync(cancellationToken).ConfigureAwait(false);
        var statuses = await db.Runs.AsNoTracking().Where(r => r.Id == runId).Select(r => r.Status).ToListAsync(cancellationToken).ConfigureAwait(false);
        return statuses.Count == 0 ? null : statuses[0];
    }

    public async Task<IReadOnlyList<JobRequest>> GetJobRequestsAsync(DateTimeOffset recordedBefore, int limit, CancellationToken cancellationToken)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(
            $"""
            SELECT uuid, job_request, workflow_name, queue, job_id, not_before FROM {RunsTable}
            WHERE job_request IS NOT NULL AND modified < @before ORDER BY modified LIMIT @limit
            """, connection) { CommandTimeout = _npgsql.CommandTimeoutSeconds };
        command.Parameters.AddWithValue("before", recordedBefore);
        command.Parameters.AddWithValue("limit", limit);
        var requests = new List<JobRequest>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            requests.Add(new JobRequest(reader.GetGuid(0), ParseJobRequest(reader.GetString(1)), reader.GetString(2), await reader.IsDBNullAsync(3, cancellationToken).ConfigureAwait(false) ? null : reader.GetString(3),
                await reader.IsDBNullAsync(4, cancellationToken).ConfigureAwait(false) ? null : reader.GetString(4), await reader.IsDBNullAsync(5, cancellationToken).ConfigureAwait(false) ? null : await reader.GetFieldValueAsync<DateTimeOffset>(5, cancellationToken).ConfigureAwait(false)));
        }

        return requests;
    }

    public async Task<int> CompleteJobRequestsAsync(IReadOnlyList<Guid> runIds, JobRequestKind kind, CancellationToken cancellationToken)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(
            $"UPDATE {RunsTable} SET job_request = NULL WHERE uuid = ANY(@runs) AND job_request = @kind", connection)
        {
            CommandTimeout = _npgsql.CommandTimeoutSeconds,
        };
        command.Parameters.Add(new NpgsqlParameter("runs", NpgsqlDbType.Array | NpgsqlDbType.Uuid) { Value = runIds.ToArray() });
        command.Parameters.Add(Text("kind", JobRequestText(kind)));
        return await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    public async Task<bool> CompleteJobRequestAsync(Guid runId, JobRequestKind kind, string? jobId, CancellationToken cancellationToken)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(
            $"UPDATE {RunsTable} SET job_request = NULL, job_id = COALESCE(@job, job_id) WHERE uuid = @run AND job_request = @kind", connection)
        {
            CommandTimeout = _npgsql.CommandTimeoutSeconds,
        };
        command.Parameters.AddWithValue("run", runId);
        command.Parameters.Add(Text("job", jobId));
        command.Parameters.Add(Text("kind", JobRequestText(kind)));
        return await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) == 1;
    }

    /// <summary>
    /// The run's pending job write after a status change that records <c>@request</c> (a delete only when the run has a
    /// job); a cancel (<c>@cancel</c>) drops any other pending write, so a cancelled run gets no new or requeued job.
    /// </summary>
    private static readonly string JobRequestAfterChange =
        $"""
        CASE
            WHEN @request IS NULL THEN CASE WHEN @cancel THEN NULL ELSE r.job_request END
            WHEN @request = '{JobRequestText(JobRequestKind.Delete)}' AND r.job_id IS NULL THEN NULL
            ELSE @request END
        """;

    internal static string JobRequestText(JobRequestKind kind) => kind switch
    {
        JobRequestKind.Create => "create",
        JobRequestKind.Requeue => "requeue",
        JobRequestKind.Delete => "delete",
        JobRequestKind.Wake => "wake",
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "No job write."),
    };

    private static JobRequestKind ParseJobRequest(string text) => text switch
    {
        "create" => JobRequestKind.Create,
        "requeue" => JobRequestKind.Requeue,
        "delete" => JobRequestKind.Delete,
        "wake" => JobRequestKind.Wake,
        _ => JobRequestKind.None,
    };

    public async Task<IRunExecution> BeginExecutionAsync(Guid runId, CancellationToken cancellationToken)
    {
        var execution = await NewExecutionAsync(runId, cancellationToken).ConfigureAwait(false);
        try
        {
            while (!await execution.TryAcquireAndLoadAsync(cancellationToken).ConfigureAwait(false))
            {
                await Task.Delay(_options.ExecutionLockPollInterval, cancellationToken).ConfigureAwait(false);
            }

            return execution;
        }
        catch
        {
            // Also when the guard was taken but loading failed or was cancelled: releases it, then the connection.
            await execution.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>An execution on a dedicated connection that holds nothing yet (the guard is taken by the caller).</summary>
    private async Task<NpgsqlRunExecution> NewExecutionAsync(Guid runId, CancellationToken cancellationToken)
    {
        NpgsqlConnection connection;
        using (new TransactionScope(TransactionScopeOption.Suppress, TransactionScopeAsyncFlowOption.Enabled))
        {
            // The guard lives on this connection: it must not join a caller's transaction.
            connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        }

        // The job and server of this flow's execution (set by the job scheduler's filter), recorded with each step attempt.
        return new NpgsqlRunExecution(connection, _dataSource, runId, _npgsql.CommandTimeoutSeconds, _npgsql.GuardCheckInterval, _origin.JobId, _origin.ServerName);
    }

    public async Task<IRunExecution?> TryBeginExecutionAsync(Guid runId, CancellationToken cancellationToken)
    {
        var execution = await NewExecutionAsync(runId, cancellationToken).ConfigureAwait(false);
        try
        {
            if (await execution.TryAcquireAndLoadAsync(cancellationToken).ConfigureAwait(false))
            {
                return execution;
            }
        }
        catch
        {
            await execution.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        await execution.DisposeAsync().ConfigureAwait(false);
        return null;
    }

    public async Task<IReadOnlyList<AbandonedRun>> FindAbandonedRunsAsync(int limit, CancellationToken cancellationToken)
    {
        // Running and Compensating runs first (cheap, from the status index; usually none or a few), then the
        // advisory locks held in this database. A Running run always has its guard held by its execution (the
        // status is written under the guard and changed before the guard is released), so one without is
        // abandoned. A Compensating run without its guard is either abandoned or queued for its compensations: the
        // recovery only requeues a job that is still Processing, so a queued one is left as it is.
        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        var running = new List<AbandonedRun>();
        await using (var command = new NpgsqlCommand(
            $"SELECT uuid, job_id, queue FROM {RunsTable} WHERE status IN ('Running', 'Compensating') AND NOT is_removed ORDER BY modified LIMIT @limit", connection))
        {
            command.CommandTimeout = _npgsql.CommandTimeoutSeconds;
            command.Parameters.AddWithValue("limit", limit);
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                running.Add(new AbandonedRun(reader.GetGuid(0), await reader.IsDBNullAsync(1, cancellationToken).ConfigureAwait(false) ? null : reader.GetString(1), await reader.IsDBNullAsync(2, cancellationToken).ConfigureAwait(false) ? null : reader.GetString(2)));
            }
        }

        if (running.Count == 0)
        {
            return running;
        }

        var held = new HashSet<long>();
        await using (var command = new NpgsqlCommand(
            """
            SELECT (classid::bigint << 32) | objid::bigint FROM pg_locks
            WHERE locktype = 'advisory' AND objsubid = 1 AND granted
              AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
            """, connection))
        {
            command.CommandTimeout = _npgsql.CommandTimeoutSeconds;
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                held.Add(reader.GetInt64(0));
            }
        }

        return running.Where(r => !held.Contains(NpgsqlRunExecution.LockKey(r.RunId))).ToList();
    }

    internal static NpgsqlParameter Jsonb(string name, JToken? value)
        => new(name, NpgsqlDbType.Jsonb) { Value = value is null ? DBNull.Value : value.ToString(Formatting.None) };

    internal static NpgsqlParameter Text(string name, string? value)
        => new(name, NpgsqlDbType.Text) { Value = (object?)value ?? DBNull.Value };

    internal static JObject ParseJson(string json) => WorkflowJson.ParseObject(json);

    private WorkflowRun Map(WorkflowRunEntity run, IReadOnlyList<WorkflowStepEntity> steps, bool includeSteps)
    {
        var order = run.StepNames.Select((name, index) => (name, index)).ToDictionary(x => x.name, x => x.index, StringComparer.Ordinal);
        var ordered = steps.OrderBy(s => order.GetValueOrDefault(s.StepName, int.MaxValue)).ThenBy(s => s.Created).ToList();
        JObject? output = run.OutputData is null ? null : ParseJson(run.OutputData);
        if (output is null && ordered.Any(s => s.Status == WorkflowStatus.Succeeded && s.OutputData is not null))
        {
            // A run in progress or failed: its output so far is the outputs of its succeeded steps, by output key.
            var keys = _registry.Find(run.WorkflowName)?.Steps.ToDictionary(s => s.Name, s => s.OutputKey, StringComparer.Ordinal);
            output = [];
            foreach (var step in ordered.Where(s => s.Status == WorkflowStatus.Succeeded && s.OutputData is not null))
            {
                output[keys?.GetValueOrDefault(step.StepName) ?? step.StepName] = ParseJson(step.OutputData!);
            }
        }

        return new WorkflowRun
        {
            Id = run.Id,
            WorkflowName = run.WorkflowName,
            Status = run.Status,
            Input = ParseJson(run.InputData),
            Output = output,
            Created = run.Created,
            Modified = run.Modified,
            SucceededAt = run.SucceededAt,
            FailedAt = run.FailedAt,
            ExceptionMessage = run.ExceptionMessage,
            CompensationRequestedAt = run.CompensationRequestedAt,
            CompensationError = run.CompensationError,
            JobId = run.JobId,
            StepNames = run.StepNames,
            CompletedSteps = run.CompletedSteps,
            Attempts = run.Attempts,
            RecurringId = run.RecurringId,
            ForkedFrom = run.ForkedFrom,
            ParentId = run.ParentId,
            ChildIndex = run.ChildIndex,
            IdempotencyKey = run.IdempotencyKey,
            Tags = WorkflowTags.FromJson(run.Tags),
            WaitingFor = run.WaitingFor,
            WakeAt = run.WakeAt,
            ConcurrencyKey = run.ConcurrencyKey,
            Steps = includeSteps ? ordered.Select(MapStep).ToList() : [],
        };
    }

    private static WorkflowStepRun MapStep(WorkflowStepEntity step) => new()
    {
        Id = step.Id,
        StepName = step.StepName,
        Status = step.Status,
        PrecedingStepId = step.PrecedingStepId,
        Input = ParseJson(step.InputData),
        Output = step.OutputData is null ? null : ParseJson(step.OutputData),
        Created = step.Created,
        Modified = step.Modified,
        StartedAt = step.StartedAt,
        SucceededAt = step.SucceededAt,
        FailedAt = step.FailedAt,
        ExceptionMessage = step.ExceptionMessage,
        Attempts = step.Attempts,
        CompensatedAt = step.CompensatedAt,
        CompensationError = step.CompensationError,
    };
}
