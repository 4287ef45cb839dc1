using Newtonsoft.Json.Linq;

namespace Workflow.Jobs;

/// <summary>The in-process <see cref="IWorkflowRunner"/>: the client creates the run, the engine executes it.</summary>
internal sealed class WorkflowRunner(WorkflowClient client, WorkflowEngine engine, WorkflowRegistry registry) : IWorkflowRunner
{
    public Task<Guid> CreateAsync<TWorkflow>(WorkflowInput input, CancellationToken cancellationToken = default)
        where TWorkflow : WorkflowDefinition
    {
        ArgumentNullException.ThrowIfNull(input);
        return client.CreateWithoutJobAsync(registry.Get(typeof(TWorkflow)), input.ToJson(), cancellationToken);
    }

    public Task<WorkflowOutput> ExecuteAsync(Guid workflowId, CancellationToken cancellationToken = default)
        => engine.ExecuteAsync(workflowId, retriedByScheduler: false, cancellationToken);

    /// <summary>Creates a run from composite input JSON (tests and tools).</summary>
    internal Task<Guid> CreateAsync(string workflowName, JObject input, CancellationToken cancellationToken = default)
        => client.CreateWithoutJobAsync(registry.Find(workflowName) ?? throw new UnitOfWorkException($"Unknown workflow '{workflowName}'.",
            UnitOfWorkException.UnknownWorkflowCode), input, cancellationToken);
}
