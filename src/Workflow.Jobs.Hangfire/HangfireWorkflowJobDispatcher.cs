using Hangfire;
using Hangfire.Common;
using Hangfire.States;

namespace Workflow.Jobs.Hangfire;

/// <summary>Creates, requeues and deletes workflow jobs through this host's Hangfire client and storage.</summary>
internal sealed class HangfireWorkflowJobDispatcher(IBackgroundJobClientV2 client, JobStorage storage, WorkflowHangfireStorage? hosting = null)
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
