using Hangfire.Server;

namespace Workflow.Jobs.Hangfire;

/// <summary>
/// Tells the engine which job and server perform a run (recorded with each step attempt), around each execution of a
/// workflow job: the job method keeps its signature, so jobs queued by earlier versions keep deserializing.
/// </summary>
/// <remarks>
/// Hangfire calls <see cref="OnPerforming"/> on the worker's flow just before the job method, so the value set there
/// (an async-local of the host's <see cref="WorkflowExecutionOrigin"/>) flows into the job's execution.
/// </remarks>
internal sealed class WorkflowJobOriginFilter(WorkflowExecutionOrigin origin) : IServerFilter
{
    public void OnPerforming(PerformingContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        // The server id as the dashboard's Servers page and the job's Processing state show it (machine, process, suffix).
        origin.Set(context.BackgroundJob?.Id, context.ServerId);
    }

    public void OnPerformed(PerformedContext context) => origin.Clear();
}
