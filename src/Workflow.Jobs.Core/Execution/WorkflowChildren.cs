namespace Workflow.Jobs;

/// <summary>Creates the child runs of a step (the client's creation path: validation, batches, jobs through the outbox).</summary>
/// <param name="Workflow">The children's workflow type.</param>
/// <param name="ParentId">The parent run.</param>
/// <param name="ParentStepId">The parent's step.</param>
/// <param name="Children">The children to create: their index and composite input.</param>
internal sealed record ChildRunsRequest(Type Workflow, Guid ParentId, Guid ParentStepId, IReadOnlyList<(int Index, WorkflowInput Input)> Children);

/// <summary>The child runs of one step execution: created once per (step, index), waited for through the shared park and wake.</summary>
internal sealed partial class StepWaits
{
    private int _nextChild;

    /// <summary>Creates child runs (set by the engine; null where no job scheduler is configured).</summary>
    public Func<ChildRunsRequest, CancellationToken, Task>? CreateChildren { get; init; }

    public async Task<IReadOnlyList<WorkflowOutput>> RunChildrenAsync(Type workflow, IReadOnlyList<WorkflowInput> inputs, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        // Numbered like the step's other waits, and indexed after the children of the step's earlier calls: the same on every run.
        var number = _next++;
        var first = _nextChild;
        _nextChild += inputs.Count;
        if (inputs.Count == 0)
        {
            return [];
        }

        var known = (await _store.LoadChildrenAsync(_stepId, cancellationToken).ConfigureAwait(false))
            .Where(c => c.Index >= first && c.Index < first + inputs.Count)
            .ToDictionary(c => c.Index);
        if (known.Count < inputs.Count)
        {
            var create = CreateChildren ?? throw new InvalidOperationException(
                "Child workflows need a job scheduler: call AddHangfireJobs() on the builder returned by AddWorkflowJobs().");
            var missing = Enumerable.Range(0, inputs.Count).Where(i => !known.ContainsKey(first + i)).Select(i => (first + i, inputs[i])).ToList();
            await create(new ChildRunsRequest(workflow, _runId, _stepId, missing), cancellationToken).ConfigureAwait(false);
            throw new StepWaitUnwind(new ParkRequest(_stepId, number, WaitKinds.Children, null, null, null));
        }

        if (known.Values.Any(c => !WorkflowTransitions.IsFinished(c.Status)))
        {
            throw new StepWaitUnwind(new ParkRequest(_stepId, number, WaitKinds.Children, null, null, null));
        }

        var failed = known.Values.Where(c => c.Status != WorkflowStatus.Succeeded).OrderBy(c => c.Index).ToList();
        if (failed.Count > 0)
        {
            var child = failed[0];
            throw new WorkflowChildFailedException(child.Id, child.Index - first, child.Status, child.ExceptionMessage, failed.Count);
        }

        return Enumerable.Range(first, inputs.Count).Select(i => WorkflowOutput.FromJson(known[i].Output ?? new Newtonsoft.Json.Linq.JObject())).ToList();
    }
}
