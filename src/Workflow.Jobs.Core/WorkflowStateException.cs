namespace Workflow.Jobs;

/// <summary>The run's status does not allow the requested operation (retry a running run, cancel a succeeded one).</summary>
public sealed class WorkflowStateException : InvalidOperationException
{
    /// <summary>Creates the exception.</summary>
    public WorkflowStateException(Guid workflowId, WorkflowStatus status, string operation)
        : base($"Workflow run {workflowId} is {status} and cannot be {operation}.")
    {
        WorkflowId = workflowId;
        Status = status;
    }

    /// <summary>The run.</summary>
    public Guid WorkflowId { get; }

    /// <summary>Its status at the time.</summary>
    public WorkflowStatus Status { get; }
}
