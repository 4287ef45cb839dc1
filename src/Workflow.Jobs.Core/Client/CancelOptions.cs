namespace Workflow.Jobs;

/// <summary>How <see cref="IWorkflowClient.CancelAsync(Guid, CancelOptions?, CancellationToken)"/> cancels a run.</summary>
public sealed record CancelOptions
{
    /// <summary>
    /// Undo instead of only stopping: the compensations of the run's succeeded steps run in reverse order (in the run's
    /// job, each checkpointed once) and the run ends <see cref="WorkflowStatus.Compensated"/>. Default false: the run
    /// ends Cancelled and its job is deleted.
    /// </summary>
    public bool Compensate { get; init; }
}
