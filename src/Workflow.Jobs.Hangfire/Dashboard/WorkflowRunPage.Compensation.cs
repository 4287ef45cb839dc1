using System.Globalization;

namespace Workflow.Jobs.Hangfire.Dashboard;

/// <summary>The run page's compensation parts: the "Cancel and compensate" command, the compensation error and timeline.</summary>
internal sealed partial class WorkflowRunPage
{
    /// <summary>Whether a run in this status can be cancelled with compensation (the statuses compensation begins from).</summary>
    private static bool CanCompensate(WorkflowStatus status) => WorkflowTransitions.Allows(RunOperation.BeginCompensation, status);

    private void WriteCompensateCommand(bool canCompensate)
    {
        if (!canCompensate)
        {
            return;
        }

        WriteLiteral("<button type=\"button\" id=\"workflow-cancel-compensate\" class=\"btn btn-sm btn-warning\" data-confirm=\"Cancel this run and compensate it? ");
        WriteLiteral("No further step starts; the compensations of its succeeded steps run in reverse order and the run ends Compensated.\" data-workflow-command=\"");
        Write(Url.To(WorkflowDashboardRoutes.CommandPath(run.Id, WorkflowCommandDispatcher.CancelAndCompensate)));
        WriteLiteral("\"><span class=\"glyphicon glyphicon-backward\"></span> Cancel and compensate</button>");
    }

    private void WriteCompensationError()
    {
        if (string.IsNullOrEmpty(run.CompensationError) || run.Status == WorkflowStatus.Compensated)
        {
            return;
        }

        WriteLiteral("<div id=\"workflow-compensation-error\" class=\"alert alert-danger\"><strong>");
        Write(run.Status == WorkflowStatus.Failed ? "Compensation failed: " : "Compensation error (retrying): ");
        WriteLiteral("</strong><pre class=\"workflow-error workflow-error-inline\">");
        Write(run.CompensationError);
        WriteLiteral("</pre>");
        if (run.Status == WorkflowStatus.Failed)
        {
            WriteLiteral("<p>Retry resumes the compensation at the first step not yet compensated; forward steps never run again.</p>");
        }

        WriteLiteral("</div>");
    }

    /// <summary>The compensation timeline: the succeeded steps in the order they are undone (reverse), with when and any error.</summary>
    private void WriteCompensation()
    {
        if (run.CompensationRequestedAt is not { } requested)
        {
            return;
        }

        var order = run.StepNames.Select((name, index) => (name, index)).ToDictionary(x => x.name, x => x.index, StringComparer.Ordinal);
        var steps = run.Steps.Where(s => s.Status == WorkflowStatus.Succeeded || s.CompensatedAt is not null)
            .OrderByDescending(s => order.GetValueOrDefault(s.StepName, -1)).ToList();
        WriteLiteral("<h3 class=\"workflow-section\">Compensation</h3><p id=\"workflow-compensation-requested\">Requested ");
        WriteTime(requested);
        WriteLiteral("; succeeded steps are undone in reverse order, each recorded once.</p>");
        WriteLiteral("<div class=\"table-responsive\"><table class=\"table workflow-compensation\"><thead><tr><th class=\"min-width\">#</th><th>Step</th>");
        WriteLiteral("<th class=\"min-width\">Compensation</th><th class=\"min-width\">Compensated</th><th>Error</th></tr></thead><tbody>");
        for (var i = 0; i < steps.Count; i++)
        {
            var step = steps[i];
            WriteLiteral("<tr class=\"js-workflow-compensation\" data-step=\"");
            Write(step.StepName);
            WriteLiteral("\"><td class=\"min-width\">");
            Write((i + 1).ToString(CultureInfo.InvariantCulture));
            WriteLiteral("</td><td>");
            Write(step.StepName);
            WriteLiteral("</td><td class=\"min-width\">");
            if (step.CompensatedAt is not null)
            {
                WriteLiteral("<span class=\"label workflow-status-compensated\" data-compensation=\"Done\">Done</span>");
            }
            else if (!string.IsNullOrEmpty(step.CompensationError))
            {
                WriteLiteral("<span class=\"label label-danger\" data-compensation=\"Failed\">Failed</span>");
            }
            else
            {
                WriteLiteral("<span class=\"label label-default\" data-compensation=\"Pending\">Pending</span>");
            }

            WriteLiteral("</td><td class=\"min-width\">");
            WriteTime(step.CompensatedAt);
            WriteLiteral("</td><td>");
            if (!string.IsNullOrEmpty(step.CompensationError))
            {
                var current = step.CompensatedAt is null;
                WriteLiteral(current ? "<pre class=\"workflow-error text-danger\">" : "<pre class=\"workflow-error text-muted\" title=\"An earlier attempt failed\">");
                Write(current ? step.CompensationError : "Earlier attempt: " + step.CompensationError);
                WriteLiteral("</pre>");
            }

            WriteLiteral("</td></tr>");
        }

        if (steps.Count == 0)
        {
            WriteLiteral("<tr><td colspan=\"5\" class=\"text-muted\">No step had succeeded: nothing to undo.</td></tr>");
        }

        WriteLiteral("</tbody></table></div>");
    }
}
