namespace Workflow.Jobs;

/// <summary>
/// The error a unit of work (a run or a step) surfaces when it fails. The message is the original
/// failure's message, unchanged; the original exception is the <see cref="Exception.InnerException"/>.
/// </summary>
public class UnitOfWorkException : Exception
{
    /// <summary>Code for a step that threw.</summary>
    public const string StepFailedCode = "step_failed";

    /// <summary>Code for a run that does not exist (or was removed).</summary>
    public const string NotFoundCode = "not_found";

    /// <summary>Code for a run that was cancelled.</summary>
    public const string CancelledCode = "cancelled";

    /// <summary>Code for a run of a workflow that this host does not have (or an unknown name at enqueue).</summary>
    public const string UnknownWorkflowCode = "unknown_workflow";

    /// <summary>Code for a run whose steps no longer match the deployed definition.</summary>
    public const string DefinitionMismatchCode = "definition_mismatch";

    /// <summary>Code for an operation on a run that has finished (for example a signal).</summary>
    public const string RunFinishedCode = "run_finished";

    /// <summary>Code for a compensation that threw (the message names the step; the original is the inner exception).</summary>
    public const string CompensationFailedCode = "compensation_failed";

    /// <summary>Code for the workflow database being unreachable: nothing was written, the call is safe to retry.</summary>
    public const string StorageUnavailableCode = "storage_unavailable";

    /// <summary>Creates the exception.</summary>
    public UnitOfWorkException() : this("The unit of work failed.") { }

    /// <summary>Creates the exception.</summary>
    public UnitOfWorkException(string message) : this(message, StepFailedCode, null) { }

    /// <summary>Creates the exception.</summary>
    public UnitOfWorkException(string message, Exception? innerException) : this(message, StepFailedCode, innerException) { }

    /// <summary>Creates the exception with a machine-readable code.</summary>
    public UnitOfWorkException(string message, string code, Exception? innerException = null) : base(message, innerException)
    {
        Code = code;
    }

    /// <summary>A machine-readable code: <c>step_failed</c>, <c>validation_failed</c>, <c>definition_mismatch</c>, <c>not_found</c>, <c>cancelled</c>, <c>unknown_workflow</c>, <c>run_finished</c>, <c>compensation_failed</c>, <c>storage_unavailable</c>.</summary>
    public string Code { get; }

    /// <summary>The run the failure belongs to, when known.</summary>
    public Guid? WorkflowId { get; init; }

    /// <summary>The step that failed, when known.</summary>
    public string? StepName { get; init; }
}

/// <summary>
/// Workflow data that does not fit its class: wrong JSON types, missing required fields, failed
/// validation attributes. <see cref="Errors"/> lists every problem with its JSON path.
/// </summary>
public class WorkflowDataValidationException : UnitOfWorkException
{
    /// <summary>Code of validation failures.</summary>
    public const string ValidationFailedCode = "validation_failed";

    /// <summary>Creates the exception.</summary>
    public WorkflowDataValidationException() : this([]) { }

    /// <summary>Creates the exception.</summary>
    public WorkflowDataValidationException(string message) : this([new WorkflowDataError("", message)]) { }

    /// <summary>Creates the exception.</summary>
    public WorkflowDataValidationException(string message, Exception? innerException)
        : base(message, ValidationFailedCode, innerException)
    {
        Errors = [new WorkflowDataError("", message)];
    }

    /// <summary>Creates the exception from the errors found.</summary>
    public WorkflowDataValidationException(IReadOnlyList<WorkflowDataError> errors)
        : base(BuildMessage(errors), ValidationFailedCode)
    {
        Errors = errors;
    }

    /// <summary>Every problem found, with its JSON path.</summary>
    public IReadOnlyList<WorkflowDataError> Errors { get; }

    private static string BuildMessage(IReadOnlyList<WorkflowDataError> errors) => errors.Count switch
    {
        0 => "Workflow data is invalid.",
        1 => "Workflow data is invalid: " + errors[0],
        // The message names the first errors; Errors has them all.
        <= 10 => $"Workflow data is invalid ({errors.Count} errors): " + string.Join("; ", errors),
        _ => $"Workflow data is invalid ({errors.Count} errors): " + string.Join("; ", errors.Take(10)) + $"; and {errors.Count - 10} more",
    };
}

/// <summary>
/// Thrown by a step (directly or as a subclass) to fail its run at once, without retries.
/// </summary>
public class NonRetryableException : Exception
{
    /// <summary>Creates the exception.</summary>
    public NonRetryableException() { }

    /// <summary>Creates the exception.</summary>
    public NonRetryableException(string message) : base(message) { }

    /// <summary>Creates the exception.</summary>
    public NonRetryableException(string message, Exception? innerException) : base(message, innerException) { }
}

/// <summary>A workflow definition is not valid (found when the host starts).</summary>
public sealed class WorkflowDefinitionException : Exception
{
    /// <summary>Creates the exception.</summary>
    public WorkflowDefinitionException() { }

    /// <summary>Creates the exception.</summary>
    public WorkflowDefinitionException(string message) : base(message) { }

    /// <summary>Creates the exception.</summary>
    public WorkflowDefinitionException(string message, Exception? innerException) : base(message, innerException) { }
}

/// <summary>
/// Thrown in a step by <see cref="StepContext.WaitForEventAsync{T}"/> when its event did not arrive before the
/// deadline (fixed when the wait was first reached, so re-runs of the step do not extend it). Code <c>event_timeout</c>.
/// </summary>
public class WorkflowEventTimeoutException : UnitOfWorkException
{
    /// <summary>Code of an event wait that timed out.</summary>
    public const string EventTimeoutCode = "event_timeout";

    /// <summary>Creates the exception.</summary>
    public WorkflowEventTimeoutException() : this("The event did not arrive in time.") { }

    /// <summary>Creates the exception.</summary>
    public WorkflowEventTimeoutException(string message) : base(message, EventTimeoutCode) { }

    /// <summary>Creates the exception.</summary>
    public WorkflowEventTimeoutException(string message, Exception? innerException) : base(message, EventTimeoutCode, innerException) { }

    /// <summary>Creates the exception for an event and its deadline.</summary>
    public WorkflowEventTimeoutException(string eventName, DateTimeOffset deadline)
        : base($"Event '{eventName}' did not arrive before {deadline:O}.", EventTimeoutCode)
    {
        EventName = eventName;
        Deadline = deadline;
    }

    /// <summary>The event waited for.</summary>
    public string EventName { get; } = "";

    /// <summary>The wait's deadline.</summary>
    public DateTimeOffset? Deadline { get; }
}

/// <summary>
/// Thrown in a step by <see cref="StepContext.RunChildrenAsync{TWorkflow}"/> when a child run finished without succeeding
/// (failed for good after its own retries, cancelled or compensated). The parent's step fails without retries (the child
/// already used its own); retry the child, then the parent, to go on.
/// </summary>
public class WorkflowChildFailedException : NonRetryableException
{
    /// <summary>Creates the exception.</summary>
    public WorkflowChildFailedException() { }

    /// <summary>Creates the exception.</summary>
    public WorkflowChildFailedException(string message) : base(message) { }

    /// <summary>Creates the exception.</summary>
    public WorkflowChildFailedException(string message, Exception? innerException) : base(message, innerException) { }

    /// <summary>Creates the exception for a child run that did not succeed.</summary>
    /// <param name="childId">The child run's id.</param>
    /// <param name="childIndex">Its position among the step's inputs.</param>
    /// <param name="status">Its status.</param>
    /// <param name="childMessage">Its failure's message, if any.</param>
    /// <param name="notSucceeded">How many children did not succeed in all.</param>
    public WorkflowChildFailedException(Guid childId, int childIndex, WorkflowStatus status, string? childMessage, int notSucceeded)
        : base($"Child workflow run {childId} (input {childIndex}) is {status}" + (childMessage is null ? "" : $": {childMessage}")
               + (notSucceeded > 1 ? $" ({notSucceeded} children did not succeed)" : ""))
    {
        ChildId = childId;
        ChildIndex = childIndex;
        ChildStatus = status;
        ChildMessage = childMessage;
    }

    /// <summary>The first child (by input index) that did not succeed.</summary>
    public Guid ChildId { get; }

    /// <summary>Its position among the step's inputs.</summary>
    public int ChildIndex { get; }

    /// <summary>Its status (Failed, Cancelled or Compensated).</summary>
    public WorkflowStatus ChildStatus { get; }

    /// <summary>Its failure's message, if any.</summary>
    public string? ChildMessage { get; }
}
