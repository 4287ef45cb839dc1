namespace Workflow.Jobs;

/// <summary>Child workflows of a step.</summary>
public sealed partial class StepContext
{
    /// <summary>
    /// Runs one child run of <typeparamref name="TWorkflow"/> per input, each its own job (so the children spread over
    /// every worker of every server), waits durably until all have finished and returns their outputs in input order.
    /// </summary>
    /// <remarks>
    /// Each child is created once per step and input index, however often the step runs again: a re-run finds the
    /// children it created before (<see cref="WorkflowRun.ParentId"/> links them to this run). While they run, this run is
    /// <see cref="WorkflowStatus.Waiting"/> (<c>WaitingFor = "children"</c>) and holds no worker; the last child to finish
    /// wakes it, and the step runs again from its start, this time getting the outputs. Code before the call therefore runs
    /// at least once more, like any step body; a step must reach its waits and child calls in the same order on every run.
    /// When a child does not succeed (fails for good after its own retries, or is cancelled), the step fails with
    /// <see cref="WorkflowChildFailedException"/> naming the child and its error. Cancelling this run cancels its unfinished
    /// children. The inputs are validated before any child is created (errors name the input index: <c>[3].order.id</c>).
    /// </remarks>
    /// <typeparam name="TWorkflow">The children's workflow (registered in this host).</typeparam>
    /// <param name="inputs">One composite input per child run.</param>
    /// <param name="cancellationToken">The step's token.</param>
    /// <returns>The children's composite outputs, in the order of <paramref name="inputs"/>.</returns>
    public Task<IReadOnlyList<WorkflowOutput>> RunChildrenAsync<TWorkflow>(IReadOnlyList<WorkflowInput> inputs, CancellationToken cancellationToken = default)
        where TWorkflow : WorkflowDefinition
    {
        ArgumentNullException.ThrowIfNull(inputs);
        return RequireWaits().RunChildrenAsync(typeof(TWorkflow), inputs, cancellationToken);
    }
}
