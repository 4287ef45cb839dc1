namespace Workflow.Jobs.Hangfire.Dashboard;

/// <summary>
/// The list page's bulk actions over the current filter (Retry, Cancel, Purge: counted, confirmed, then run as a Hangfire
/// job) and the progress of one that was started (<c>?bulk={jobId}</c>, polled by the page's script until it is done).
/// </summary>
internal sealed partial class WorkflowListPage
{
    private void WriteBulkActions()
    {
        if (IsReadOnly)
        {
            return;
        }

        var filterQuery = filter.ToQuery(from: 0, count: WorkflowListFilter.DefaultCount);
        WriteLiteral("<div id=\"workflow-bulk\" class=\"workflow-bulk\" data-workflow-bulk-count=\"");
        Write(Url.To(WorkflowBulkDispatcher.CountPath + filterQuery));
        WriteLiteral("\" data-workflow-bulk-everything=\"");
        WriteLiteral(filter.IsFiltered ? "false" : "true");
        WriteLiteral("\"><span class=\"text-muted\">");
        Write(filter.IsFiltered ? "Every run of this filter, in the background:" : "Every run (no filter is set), in the background:");
        WriteLiteral("</span> ");
        WriteBulkButton("retry", "Retry", "glyphicon-repeat", "btn-primary", "Retry the Failed and Cancelled runs among the {count} runs of this filter?");
        WriteBulkButton("cancel", "Cancel", "glyphicon-remove", "btn-default", "Cancel the unfinished and Failed runs among the {count} runs of this filter? Their jobs are deleted.");
        WriteBulkButton("purge", "Purge", "glyphicon-trash", "btn-death", "Delete the finished runs among the {count} runs of this filter, with their steps? This cannot be undone.");
        WriteLiteral("<div id=\"workflow-bulk-error\" class=\"alert alert-danger\" role=\"alert\" hidden></div></div>");

        void WriteBulkButton(string action, string label, string icon, string css, string confirm)
        {
            WriteLiteral("<button type=\"button\" class=\"btn btn-xs ");
            WriteLiteral(css);
            WriteLiteral("\" id=\"workflow-bulk-");
            WriteLiteral(action);
            WriteLiteral("\" data-workflow-bulk=\"");
            Write(Url.To(WorkflowBulkDispatcher.StartPath(action) + filterQuery));
            WriteLiteral("\" data-confirm=\"");
            Write(confirm);
            WriteLiteral("\"><span class=\"glyphicon ");
            WriteLiteral(icon);
            WriteLiteral("\"></span> ");
            Write(label);
            WriteLiteral(" all&hellip;</button> ");
        }
    }

    private void WriteBulkProgress()
    {
        var jobId = Context.Request.GetQuery("bulk");
        if (string.IsNullOrEmpty(jobId) || !jobId.All(char.IsAsciiDigit))
        {
            return;
        }

        WriteLiteral("<div id=\"workflow-bulk-progress\" class=\"alert alert-info workflow-bulk-progress\" data-workflow-bulk-status=\"");
        Write(Url.To(WorkflowBulkDispatcher.StatusPath(jobId)));
        WriteLiteral("\" data-state=\"\"><span id=\"workflow-bulk-progress-text\" class=\"workflow-bulk-progress-text\">Bulk action (job <a href=\"");
        Write(Url.JobDetails(jobId));
        WriteLiteral("\">#");
        Write(jobId);
        WriteLiteral("</a>) starting&hellip;</span><div class=\"progress workflow-progress\"><div id=\"workflow-bulk-progress-bar\" class=\"progress-bar\" style=\"width: 0%\"></div></div>");
        WriteLiteral("<a id=\"workflow-bulk-job\" href=\"");
        Write(Url.JobDetails(jobId));
        WriteLiteral("\">Hangfire job #");
        Write(jobId);
        WriteLiteral("</a> <a id=\"workflow-bulk-reload\" class=\"btn btn-xs btn-default\" hidden href=\"");
        Write(Url.To(WorkflowDashboardRoutes.ListPath + filter.ToQuery()));
        WriteLiteral("\">Show the runs now</a></div>");
    }
}
