namespace Workflow.Jobs;

/// <summary>
/// The registered workflows as a host sees them (from DI): names, steps with their data keys, and the
/// JSON Schema of each workflow's composite input. Lets an application describe, document or validate
/// workflows without any internal type of the library.
/// </summary>
public interface IWorkflowCatalog
{
    /// <summary>Every registered workflow, ordered by name (ordinal).</summary>
    IReadOnlyList<WorkflowDefinitionInfo> Workflows { get; }

    /// <summary>The workflow registered under <paramref name="name"/> (case-sensitive), or <c>null</c>.</summary>
    WorkflowDefinitionInfo? Find(string name);
}
