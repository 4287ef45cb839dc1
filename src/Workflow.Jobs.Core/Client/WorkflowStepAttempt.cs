namespace Workflow.Jobs;

/// <summary>
/// One attempt of a step (<see cref="WorkflowStepRun.History"/>): one start of the step body, with where it ran
/// and how it ended. Written in the same transactions as the step's own checkpoints.
/// </summary>
public sealed record WorkflowStepAttempt
{
    /// <summary>The attempt's number, from 1 (the <see cref="StepContext.Attempt"/> the step body saw).</summary>
    public required int Attempt { get; init; }

    /// <summary>When the attempt started (UTC).</summary>
    public required DateTimeOffset StartedAt { get; init; }

    /// <summary>When the attempt ended (UTC); null while it runs.</summary>
    public DateTimeOffset? FinishedAt { get; init; }

    /// <summary>
    /// How the attempt ended: <see cref="WorkflowStatus.Running"/> while it runs, <see cref="WorkflowStatus.Succeeded"/>
    /// or <see cref="WorkflowStatus.Failed"/> with its outcome, or <see cref="WorkflowStatus.Pending"/> when it ended
    /// without one (interrupted by a shutdown or a cancel, or abandoned because its process or database connection
    /// died); <see cref="ExceptionMessage"/> then says which, and the step runs again unless the run was cancelled.
    /// </summary>
    public required WorkflowStatus Status { get; init; }

    /// <summary>The failure's message (for an attempt that ended without an outcome, what ended it).</summary>
    public string? ExceptionMessage { get; init; }

    /// <summary>The failure's exception type (full name), for a <see cref="WorkflowStatus.Failed"/> attempt.</summary>
    public string? ExceptionType { get; init; }

    /// <summary>
    /// The failure as .NET prints it (type, message, stack trace and inner exceptions), at most
    /// 16,000 characters, for a <see cref="WorkflowStatus.Failed"/> attempt.
    /// </summary>
    public string? StackTrace { get; init; }

    /// <summary>The Hangfire job that ran the attempt; null when the run was executed in-process.</summary>
    public string? JobId { get; init; }

    /// <summary>
    /// Where the attempt ran: the Hangfire server's id (as on the dashboard's Servers page: machine name, process
    /// id and a unique suffix) for a job, else the machine name.
    /// </summary>
    public string? ServerName { get; init; }

    /// <summary>How long the attempt took; null while it runs.</summary>
    public TimeSpan? Duration => FinishedAt - StartedAt;
}
