namespace Workflow.Jobs;

/// <summary>
/// The workflow database (or the job storage on it) could not be reached, so the operation did not
/// happen: nothing was written (or what was written is paired with its job by the outbox). The failure is
/// transient and the call is safe to retry — with the same idempotency key for an enqueue. Code
/// <c>storage_unavailable</c>; the driver's exception is the <see cref="Exception.InnerException"/>.
/// </summary>
public sealed class WorkflowStorageUnavailableException : UnitOfWorkException
{
    /// <summary>Creates the exception.</summary>
    public WorkflowStorageUnavailableException(string message, Exception? innerException)
        : base(message, StorageUnavailableCode, innerException)
    {
    }
}
