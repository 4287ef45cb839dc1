using Newtonsoft.Json.Linq;

namespace Workflow.Jobs;

/// <summary>A registered workflow, as <see cref="IWorkflowCatalog"/> describes it.</summary>
public sealed class WorkflowDefinitionInfo
{
    private readonly Lazy<JObject> _inputSchema;

    internal WorkflowDefinitionInfo(string name, Type definitionType, IReadOnlyList<WorkflowStepInfo> steps, WorkflowRetryPolicy? retry,
        Func<JObject> inputSchema)
    {
        Name = name;
        DefinitionType = definitionType;
        Steps = steps;
        Retry = retry;
        _inputSchema = new Lazy<JObject>(inputSchema, LazyThreadSafetyMode.ExecutionAndPublication);
    }

    /// <summary>The persisted name (<see cref="WorkflowNameAttribute"/>, else the class name).</summary>
    public string Name { get; }

    /// <summary>The <see cref="WorkflowDefinition"/> class.</summary>
    public Type DefinitionType { get; }

    /// <summary>The steps in execution order.</summary>
    public IReadOnlyList<WorkflowStepInfo> Steps { get; }

    /// <summary>The workflow's own retry policy, or <c>null</c> when it uses <see cref="WorkflowJobsOptions.DefaultRetry"/>.</summary>
    public WorkflowRetryPolicy? Retry { get; }

    /// <summary>
    /// The JSON Schema (draft 4 vocabulary, as NJsonSchema writes it) of the composite input accepted by
    /// <see cref="IWorkflowClient.EnqueueAsync(string, JObject, EnqueueOptions?, CancellationToken)"/>: one
    /// property per step input key, each described from the Newtonsoft contract (JSON names, enums as
    /// strings) and the DataAnnotations attributes. A field is <c>required</c> when an input that leaves it
    /// out is refused; fields that fall back to a valid default carry it as <c>default</c>. Built once, on
    /// first use; each call returns a copy the caller may change.
    /// </summary>
    public JObject InputSchema => (JObject)_inputSchema.Value.DeepClone();
}
