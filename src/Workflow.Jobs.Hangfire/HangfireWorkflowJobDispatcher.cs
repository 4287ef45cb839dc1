using Hangfire;
using Hangfire.Common;
using Microsoft.Extensions.DependencyInjection;
using Hangfire.States;
using Hangfire.Storage;
using Npgsql;
using NpgsqlTypes;

namespace Workflow.Jobs.Hangfire;

/// <summary>Creates, requeues and deletes workflow jobs through this host's Hangfire client and storage.</summary>
internal sealed class HangfireWorkflowJobDispatcher(IBackgroundJobClientV2 client, JobStorage storage, WorkflowHangfireStorage? hosting = null,
    WorkflowJobBulkWriter? bulk = null, WorkflowHangfireOptions? options = null,
    [FromKeyedServices(WorkflowStorageKeys.DataSource)] NpgsqlDataSource? dataSource = null)
    : IWorkflowJobDispatcher
{
    public bool JoinsRunTransaction => hosting?.JoinsRunTransaction ?? true;

    /// <remarks>
    /// A job created Enqueued is written by the bulk writer when it can write for this storage (one statement instead
    /// of Hangfire's client's round trips: the enqueue call is most of a run's start latency); a delayed job, or any
    /// storage or filter the writer does not know, goes through Hangfire's client.
    /// </remarks>
    public string Enqueue(Guid runId, string workflowName, string? queue, TimeSpan? delay)
    {
        if (bulk is not null && (delay is not { } wait || wait <= TimeSpan.Zero) && bulk.CanWrite(storage))
        {
            return bulk.Write(workflowName, [new RunJob(runId, queue, delay)])[0];
        }

        var job = Job.FromExpression<WorkflowJob>(j => j.ExecuteAsync(runId, CancellationToken.None), queue);
        IState state = delay is { } d && d > TimeSpan.Zero
            ? new ScheduledState(d)
            : new EnqueuedState(queue ?? EnqueuedState.DefaultQueue);
        var parameters = new Dictionary<string, object>
        {
            [WorkflowJobParameters.WorkflowName] = workflowName,
        };
        return client.Create(job, state, parameters);
    }

    /// <summary>The bulk writer's statement for the run's job, when it can write for this storage; the store sends it with the run's insert.</summary>
    public InlineJobWrite? TryInline(Guid runId, string workflowName, string? queue)
        => bulk is not null && bulk.CanWrite(storage) ? bulk.CreateInline(workflowName, new RunJob(runId, queue, Delay: null)) : null;

    /// <summary>
    /// In one statement when the bulk writer can write for this storage and no run is delayed; otherwise through
    /// Hangfire's client, one job at a time.
    /// </summary>
    public IReadOnlyList<string> EnqueueMany(string workflowName, IReadOnlyList<RunJob> runs)
    {
        if (bulk is not null && runs.Count > 0 && runs.All(r => r.Delay is not { } d || d <= TimeSpan.Zero) && bulk.CanWrite(storage))
        {
            return bulk.Write(workflowName, runs);
        }

        return runs.Select(r => Enqueue(r.RunId, workflowName, r.Queue, r.Delay)).ToList();
    }

    public bool Requeue(string jobId, string? queue)
    {
        using var connection = storage.GetConnection();
        var data = connection.GetJobData(jobId);
        if (data?.Job is null)
        {
            return false;
        }

        connection.SetJobParameter(jobId, WorkflowJobParameters.RetryCount, "0");
        return client.ChangeState(jobId, new EnqueuedState(queue ?? data.Job.Queue ?? EnqueuedState.DefaultQueue) { Reason = "Retried through IWorkflowClient.RetryAsync" }, null);
    }

    /// <remarks>
    /// One write for the whole batch, with what Hangfire's state machine writes when an Enqueued state is applied to a
    /// job: the state (history row and current state), the job kept (no expiry) and its queue entry; and the fresh
    /// retry budget (the retry count parameter), as <see cref="Requeue"/> and the retry filter do.
    /// <para>
    /// On the library's own storage (Hangfire.PostgreSql on the workflow database) the write is four set-based
    /// statements in one transaction on Hangfire's tables: its write transaction runs one statement per job and call and
    /// cannot set job parameters, and the one-by-one path (a state lock and a state change per job) measured about
    /// 20 ms per job, 40 minutes for 100,000. Another storage gets the same writes through its write transaction when
    /// it supports job parameters in transactions; otherwise false (one by one).
    /// </para>
    /// <para>
    /// Left out, with the reason: the job's state lock and the re-read of its state (the runs were just moved from
    /// Failed or Cancelled under a row lock, so their jobs are Failed or Deleted, and an execution started twice is
    /// refused by the run's execution guard), and the state filters (the runs are already Pending, which is what the
    /// library's state-sync filter would write). A job that no longer exists makes the write fail as a whole: the
    /// caller then requeues the batch one by one, which creates new jobs where needed.
    /// </para>
    /// </remarks>
    public bool TryRequeueMany(IReadOnlyList<JobRequest> requests)
    {
        var jobs = requests.Select(r => (JobId: r.JobId ?? throw new ArgumentException("Every request needs its job id.", nameof(requests)),
            Queue: r.Queue ?? EnqueuedState.DefaultQueue)).ToList();
        if ((hosting?.JoinsRunTransaction ?? false) && options is not null && dataSource is not null)
        {
            RequeueInSql(dataSource, options, jobs);
            return true;
        }

        if (!storage.HasFeature(JobStorageFeatures.Transaction.SetJobParameter))
        {
            return false;
        }

        using var connection = storage.GetConnection();
        using var transaction = (JobStorageTransaction)connection.CreateWriteTransaction();
        foreach (var (jobId, queue) in jobs)
        {
            transaction.SetJobParameter(jobId, WorkflowJobParameters.RetryCount, "0");
            transaction.SetJobState(jobId, new EnqueuedState(queue) { Reason = BulkRetryReason });
            transaction.PersistJob(jobId);
            transaction.AddToQueue(queue, jobId);
        }

        transaction.Commit();
        return true;
    }

    private const string BulkRetryReason = "Retried through IWorkflowClient.RetryManyAsync";

    private static void RequeueInSql(NpgsqlDataSource dataSource, WorkflowHangfireOptions options, List<(string JobId, string Queue)> jobs)
    {
        // With the wake-up on, one notification per queue wakes a worker there (it hands the signal on while jobs remain).
        var notify = options.WakeWorkersOnEnqueue
            ? "SELECT pg_notify(@channel, q) FROM (SELECT DISTINCT unnest(@queues) AS q) AS d;"
            : "";
        var schema = "\"" + options.SchemaName.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";
        var ids = jobs.Select(j => long.Parse(j.JobId, System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        var queues = jobs.Select(j => j.Queue).ToArray();
        // Each job's state data exactly as EnqueuedState serializes it.
        var data = jobs.Select(j => SerializationHelper.Serialize(new EnqueuedState(j.Queue).SerializeData())).ToArray();
        using var connection = dataSource.OpenConnection();
        using var transaction = connection.BeginTransaction();
        using var command = new NpgsqlCommand(
            $"""
            WITH input AS (SELECT * FROM unnest(@ids, @queues, @data) AS i(jobid, queue, data)),
            states AS (
                INSERT INTO {schema}."state" ("jobid", "name", "reason", "createdat", "data")
                SELECT jobid, 'Enqueued', @reason, now(), data::jsonb FROM input
                RETURNING "id", "jobid")
            UPDATE {schema}."job" j SET "stateid" = states."id", "statename" = 'Enqueued', "expireat" = NULL
            FROM states WHERE j."id" = states."jobid";
            INSERT INTO {schema}."jobqueue" ("jobid", "queue") SELECT * FROM unnest(@ids, @queues);
            UPDATE {schema}."jobparameter" SET "value" = '0' WHERE "jobid" = ANY(@ids) AND "name" = @parameter;
            INSERT INTO {schema}."jobparameter" ("jobid", "name", "value")
            SELECT u.jobid, @parameter, '0' FROM unnest(@ids) AS u(jobid)
            WHERE NOT EXISTS (SELECT 1 FROM {schema}."jobparameter" p WHERE p."jobid" = u.jobid AND p."name" = @parameter);
            {notify}
            """, connection, transaction);
        command.Parameters.Add(new NpgsqlParameter("ids", NpgsqlDbType.Array | NpgsqlDbType.Bigint) { Value = ids });
        command.Parameters.Add(new NpgsqlParameter("queues", NpgsqlDbType.Array | NpgsqlDbType.Text) { Value = queues });
        command.Parameters.Add(new NpgsqlParameter("data", NpgsqlDbType.Array | NpgsqlDbType.Text) { Value = data });
        command.Parameters.Add(new NpgsqlParameter("reason", NpgsqlDbType.Text) { Value = BulkRetryReason });
        command.Parameters.Add(new NpgsqlParameter("parameter", NpgsqlDbType.Text) { Value = WorkflowJobParameters.RetryCount });
        if (notify.Length > 0)
        {
            command.Parameters.Add(new NpgsqlParameter("channel", NpgsqlDbType.Text) { Value = NotifyingJobQueueProvider.ChannelName(options.SchemaName) });
        }

        command.ExecuteNonQuery();
        transaction.Commit();
    }

    public void Delete(string jobId) => client.Delete(jobId);

    public string? Wake(Guid runId, string workflowName, string? queue, string? jobId)
    {
        if (jobId is not null)
        {
            using var connection = storage.GetConnection();
            var data = connection.GetJobData(jobId);
            if (data?.Job is not null)
            {
                var queueName = queue ?? data.Job.Queue ?? EnqueuedState.DefaultQueue;
                if (data.State == ScheduledState.StateName || data.State == ProcessingState.StateName || data.State == EnqueuedState.StateName
                    || data.State == AwaitingState.StateName)
                {
                    // Only from Scheduled, under the job's state lock (which the parking execution's election holds while it
                    // re-reads the run): either the election already scheduled the job and this enqueues it, or the election
                    // runs later and sees the run woken. A job still processing or enqueued runs anyway.
                    client.ChangeState(jobId, new EnqueuedState(queueName) { Reason = "Woken: its wait is over" }, ScheduledState.StateName);
                    return null;
                }

                connection.SetJobParameter(jobId, WorkflowJobParameters.RetryCount, "0");
                client.ChangeState(jobId, new EnqueuedState(queueName) { Reason = "Woken: its wait is over" }, data.State);
                return null;
            }
        }

        return Enqueue(runId, workflowName, queue, delay: null);
    }

    public bool RequeueAbandoned(string jobId, string? queue)
        => client.ChangeState(jobId, new EnqueuedState(queue ?? EnqueuedState.DefaultQueue) { Reason = "Its execution died; requeued by Workflow.Jobs recovery" },
            ProcessingState.StateName);
}
