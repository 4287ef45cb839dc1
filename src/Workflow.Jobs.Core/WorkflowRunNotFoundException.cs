namespace Workflow.Jobs;

/// <summary>No run has the given id (or it was removed). Code <c>not_found</c>.</summary>
public sealed class WorkflowRunNotFoundException : UnitOfWorkException
{
    /// <summary>Creates the exception.</summary>
    public WorkflowRunNotFoundException(Guid workflowId) : base($"Workflow run {workflowId} does not exist.", NotFoundCode)
    {
        WorkflowId = workflowId;
    }
}
