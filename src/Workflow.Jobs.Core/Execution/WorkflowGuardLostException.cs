namespace Workflow.Jobs;

/// <summary>
/// An execution lost its guard (the database connection that held it died) while a step ran: the step
/// body was cancelled and nothing more was written. The original database error is the inner exception;
/// the run resumes in another execution.
/// </summary>
internal sealed class WorkflowGuardLostException(string message, Exception innerException) : Exception(message, innerException);
