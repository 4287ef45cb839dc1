namespace Workflow.Jobs;

/// <summary>A step of a registered workflow, as <see cref="IWorkflowCatalog"/> describes it.</summary>
/// <param name="Name">The persisted step name (<see cref="WorkflowNameAttribute"/>, else the class name).</param>
/// <param name="InputKey">The key of the step's input in the composite input (<see cref="WorkflowKeyAttribute"/>).</param>
/// <param name="OutputKey">The key of the step's output in the accumulated output.</param>
/// <param name="InputType">The step's input class.</param>
/// <param name="OutputType">The step's output class.</param>
public sealed record WorkflowStepInfo(string Name, string InputKey, string OutputKey, Type InputType, Type OutputType);
