namespace Workflow.Jobs.EntityFrameworkCore;

/// <summary>Reads a step's attempt rows as its <see cref="WorkflowStepRun.History"/>.</summary>
internal static class StepHistory
{
    /// <summary>
    /// The attempts, oldest first. An attempt still open in the table is running only while it is the step's latest
    /// and the run may be executing (Running or Waiting); otherwise its execution died before writing an outcome and
    /// nothing has closed it yet (the next attempt's start does that), so it reads as ended without one.
    /// </summary>
    public static IReadOnlyList<WorkflowStepAttempt> Read(IEnumerable<WorkflowStepAttemptEntity> rows, WorkflowStepRun step, WorkflowStatus runStatus)
    {
        var history = new List<WorkflowStepAttempt>();
        foreach (var row in rows.OrderBy(a => a.Attempt))
        {
            var live = row.Attempt == step.Attempts && runStatus is WorkflowStatus.Running or WorkflowStatus.Waiting;
            var open = row.FinishedAt is null;
            history.Add(new WorkflowStepAttempt
            {
                Attempt = row.Attempt,
                StartedAt = row.StartedAt,
                FinishedAt = row.FinishedAt,
                Status = open && !live ? WorkflowStatus.Pending : row.Status,
                ExceptionMessage = open && !live ? NpgsqlRunExecution.AbandonedMessage : row.ExceptionMessage,
                ExceptionType = row.ExceptionType,
                StackTrace = row.StackTrace,
                JobId = row.JobId,
                ServerName = row.ServerName,
            });
        }

        return history;
    }
}
