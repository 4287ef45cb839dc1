namespace Workflow.Jobs;

/// <summary>The registry's workflows as public descriptions; built once (the registry does not change while the host runs).</summary>
internal sealed class WorkflowCatalog : IWorkflowCatalog
{
    private readonly Dictionary<string, WorkflowDefinitionInfo> _byName;

    public WorkflowCatalog(WorkflowRegistry registry)
    {
        ArgumentNullException.ThrowIfNull(registry);
        Workflows = registry.All
            .OrderBy(w => w.Name, StringComparer.Ordinal)
            .Select(w => new WorkflowDefinitionInfo(
                w.Name,
                w.DefinitionType,
                w.Steps.Select(s => new WorkflowStepInfo(s.Name, s.InputKey, s.OutputKey, s.InputType, s.OutputType)).ToArray(),
                w.Retry,
                () => WorkflowInputSchema.Build(w)))
            .ToArray();
        _byName = Workflows.ToDictionary(w => w.Name, StringComparer.Ordinal);
    }

    public IReadOnlyList<WorkflowDefinitionInfo> Workflows { get; }

    public WorkflowDefinitionInfo? Find(string name) => name is null ? null : _byName.GetValueOrDefault(name);
}
