using System.Collections.Concurrent;

namespace Workflow.Jobs.Hangfire;

/// <summary>Run id → workflow name for dashboard labels (a run's name never changes), bounded in size.</summary>
internal sealed class WorkflowNameCache(IWorkflowStore store)
{
    private const int Capacity = 10_000;
    private readonly ConcurrentDictionary<Guid, string> _names = new();

    public string? Find(Guid runId)
    {
        if (_names.TryGetValue(runId, out var name))
        {
            return name;
        }

        // Hangfire formats job display names synchronously (JobDisplayNameAttribute.Format) and the store is
        // asynchronous only: the read runs on a thread-pool thread, so no synchronization context can deadlock it.
#pragma warning disable VSTHRD002 // Synchronous Hangfire dashboard API; bridged through Task.Run as above.
        var run = Task.Run(() => store.GetRunAsync(runId, includeSteps: false, CancellationToken.None)).GetAwaiter().GetResult();
#pragma warning restore VSTHRD002
        if (run is null)
        {
            return null;
        }

        if (_names.Count >= Capacity)
        {
            _names.Clear();
        }

        _names[runId] = run.WorkflowName;
        return run.WorkflowName;
    }
}
