using System.Globalization;

namespace Workflow.Jobs.Hangfire.Dashboard;

/// <summary>The run page's attempt history: per step, a timeline of its attempts (kept apart from the rest of the page).</summary>
internal sealed partial class WorkflowRunPage
{
    /// <summary>
    /// Each step's attempts, oldest first: status, start, end, a bar proportional to the duration, the job and server that
    /// ran it, and the full error of each failed attempt; the stack trace of the step's last failed attempt is collapsed.
    /// </summary>
    private void WriteAttemptHistory()
    {
        var steps = run.Steps.Where(s => s.History.Count > 0).ToList();
        if (steps.Count == 0)
        {
            return;
        }

        WriteLiteral("<h3 class=\"workflow-section\" id=\"workflow-history\">Attempts</h3>");
        foreach (var step in steps)
        {
            var longest = step.History.Max(a => a.Duration ?? TimeSpan.Zero);
            var lastFailed = step.History.LastOrDefault(a => a.Status == WorkflowStatus.Failed);
            WriteLiteral("<div class=\"workflow-attempts\" data-step=\"");
            Write(step.StepName);
            WriteLiteral("\"><h4>");
            Write(step.StepName);
            WriteLiteral(" <small>");
            Write(step.History.Count == 1 ? "1 attempt" : string.Create(CultureInfo.InvariantCulture, $"{step.History.Count} attempts"));
            WriteLiteral("</small></h4><div class=\"table-responsive\"><table class=\"table table-condensed workflow-attempts-table\"><thead><tr>");
            WriteLiteral("<th class=\"min-width\">#</th><th class=\"min-width\">Outcome</th><th class=\"min-width\">Started</th><th class=\"min-width\">Finished</th>");
            WriteLiteral("<th class=\"min-width\">Duration</th><th class=\"min-width\">Job</th><th class=\"min-width\">Server</th><th>Error</th></tr></thead><tbody>");
            foreach (var attempt in step.History)
            {
                WriteAttempt(attempt, longest, showStackTrace: ReferenceEquals(attempt, lastFailed));
            }

            WriteLiteral("</tbody></table></div></div>");
        }
    }

    private void WriteAttempt(WorkflowStepAttempt attempt, TimeSpan longest, bool showStackTrace)
    {
        WriteLiteral("<tr class=\"js-workflow-attempt\" data-attempt=\"");
        Write(attempt.Attempt.ToString(CultureInfo.InvariantCulture));
        WriteLiteral("\" data-status=\"");
        Write(attempt.Status.ToString());
        WriteLiteral("\"><td class=\"min-width\">");
        Write(attempt.Attempt.ToString(CultureInfo.InvariantCulture));
        WriteLiteral("</td><td class=\"min-width\">");
        if (attempt.Status == WorkflowStatus.Pending && attempt.FinishedAt is not null)
        {
            // Ended without an outcome (interrupted or abandoned): the error column says which.
            WriteLiteral("<span class=\"label label-default workflow-attempt-no-outcome\">No outcome</span>");
        }
        else
        {
            WriteStatus(attempt.Status);
        }

        WriteLiteral("</td><td class=\"min-width\">");
        WriteTime(attempt.StartedAt);
        WriteLiteral("</td><td class=\"min-width\">");
        WriteTime(attempt.FinishedAt);
        WriteLiteral("</td><td class=\"min-width workflow-attempt-duration\">");
        if (attempt.Duration is { } duration)
        {
            Write(FormatDuration(duration));
            var percent = longest > TimeSpan.Zero ? Math.Max(2, (int)(duration.Ticks * 100 / longest.Ticks)) : 2;
            WriteLiteral("<div class=\"workflow-attempt-bar workflow-attempt-bar-");
            Write(attempt.Status.ToString().ToLowerInvariant());
            WriteLiteral("\" style=\"width: ");
            Write(percent.ToString(CultureInfo.InvariantCulture));
            WriteLiteral("%\"></div>");
        }
        else
        {
            WriteLiteral("<span class=\"text-muted\">running</span>");
        }

        WriteLiteral("</td><td class=\"min-width\">");
        if (attempt.JobId is { } jobId)
        {
            WriteLiteral("<a href=\"");
            Write(Url.JobDetails(jobId));
            WriteLiteral("\">#");
            Write(jobId);
            WriteLiteral("</a>");
        }
        else
        {
            WriteLiteral("<span class=\"text-muted\">&ndash;</span>");
        }

        WriteLiteral("</td><td class=\"min-width workflow-attempt-server\">");
        Write(attempt.ServerName ?? "");
        WriteLiteral("</td><td>");
        if (!string.IsNullOrEmpty(attempt.ExceptionMessage))
        {
            var failed = attempt.Status == WorkflowStatus.Failed;
            WriteLiteral(failed ? "<pre class=\"workflow-error text-danger\">" : "<pre class=\"workflow-error text-muted\">");
            Write(attempt.ExceptionMessage);
            WriteLiteral("</pre>");
            if (attempt.ExceptionType is { } type)
            {
                WriteLiteral("<small class=\"text-muted workflow-exception-type\">");
                Write(type);
                WriteLiteral("</small>");
            }
        }

        if (showStackTrace && !string.IsNullOrEmpty(attempt.StackTrace))
        {
            WriteLiteral("<details class=\"workflow-stack-trace\"><summary>Stack trace</summary><pre class=\"workflow-error\">");
            Write(attempt.StackTrace);
            WriteLiteral("</pre></details>");
        }

        WriteLiteral("</td></tr>");
    }
}
