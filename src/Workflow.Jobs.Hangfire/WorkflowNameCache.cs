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

        var run = store.GetRunAsync(runId, includeSteps: false, CancellationToken.None).GetAwaiter().GetResult();
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
