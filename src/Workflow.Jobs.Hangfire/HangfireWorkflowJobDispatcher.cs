using Hangfire;
using Hangfire.Common;
using Hangfire.States;

namespace Workflow.Jobs.Hangfire;

/// <summary>Creates, requeues and deletes workflow jobs through this host's Hangfire client and storage.</summary>
internal sealed class HangfireWorkflowJobDispatcher(IBackgroundJobClientV2 client, JobStorage storage, WorkflowHangfireStorage? hosting = null,
    WorkflowJobBulkWriter? bulk = null)
    : IWorkflowJobDispatcher
{
    public bool JoinsRunTransaction => hosting?.JoinsRunTransaction ?? true;

    public string Enqueue(Guid runId, string workflowName, string? queue, TimeSpan? delay)
    {
        var job = Job.FromExpression<WorkflowJob>(j => j.ExecuteAsync(runId, CancellationToken.None), queue);
        IState state = delay is { } d && d > TimeSpan.Zero
            ? new ScheduledState(d)
            : new EnqueuedState(queue ?? EnqueuedState.DefaultQueue);
        var parameters = new Dictionary<string, object>
        {
            [WorkflowJobParameters.WorkflowName] = workflowName,
            [WorkflowJobParameters.WorkflowId] = runId.ToString(),
        };
        return client.Create(job, state, parameters);
    }

    /// <summary>
    /// In one statement when the bulk writer can write for this storage and no run is delayed; otherwise through
    /// Hangfire's client, one job at a time.
    /// </summary>
    public IReadOnlyList<string> EnqueueMany(string workflowName, IReadOnlyList<RunJob> runs)
    {
        if (bulk is not null && runs.Count > 1 && runs.All(r => r.Delay is not { } d || d <= TimeSpan.Zero) && bulk.CanWrite(storage))
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

    public void Delete(string jobId) => client.Delete(jobId);

    public bool RequeueAbandoned(string jobId, string? queue)
        => client.ChangeState(jobId, new EnqueuedState(queue ?? EnqueuedState.DefaultQueue) { Reason = "Its execution died; requeued by Workflow.Jobs recovery" },
            ProcessingState.StateName);
}
