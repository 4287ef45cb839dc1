using System.Globalization;
using Hangfire.Dashboard;
using Hangfire.Dashboard.Pages;

namespace Workflow.Jobs.Hangfire.Dashboard;

/// <summary>
/// <c>/workflows</c>: runs, newest first, filtered by status, name, error text, idempotency key, concurrency key, created range
/// and tags, paged. A run waiting for a flow-control slot shows so under its status, beside its concurrency key.
/// </summary>
internal sealed partial class WorkflowListPage(WorkflowListFilter filter, IReadOnlyList<WorkflowRun> runs, bool hasNext, IReadOnlyList<string> names)
    : WorkflowDashboardPage
{
    public override void Execute()
    {
        Layout = new LayoutPage("Workflows");
        WriteLiteral("<div class=\"row\"><div class=\"col-md-3\">");
        WriteSidebar(filter, onList: true);
        WriteLiteral("</div><div class=\"col-md-9\">");
        WriteLiteral("<h1 id=\"page-title\" class=\"page-header\">Workflows</h1>");
        WriteFilterForm();

        if (filter.Errors.Count > 0)
        {
            WriteLiteral("<div class=\"alert alert-danger\" id=\"workflow-filter-error\" role=\"alert\">");
            foreach (var error in filter.Errors)
            {
                WriteLiteral("<p>");
                Write(error);
                WriteLiteral("</p>");
            }

            WriteLiteral("</div></div></div>");
            return;
        }

        WriteBulkProgress();
        if (runs.Count > 0)
        {
            WriteBulkActions();
        }

        if (runs.Count == 0)
        {
            WriteLiteral("<div class=\"alert alert-info\">");
            Write(filter.From > 0 ? "No more workflow runs." : !filter.IsFiltered ? "No workflow runs yet." : "No workflow runs match the filter.");
            WriteLiteral("</div>");
        }
        else
        {
            WriteTable();
        }

        WritePager();
        WriteLiteral("</div></div>");
    }

    private void WriteFilterForm()
    {
        WriteLiteral("<form class=\"form-inline workflow-filter\" method=\"get\" action=\"");
        Write(Url.To(WorkflowDashboardRoutes.ListPath));
        WriteLiteral("\"><div class=\"form-group\"><label for=\"workflow-name\">Workflow</label>");
        WriteLiteral("<input type=\"text\" id=\"workflow-name\" name=\"name\" list=\"workflow-names\" class=\"form-control input-sm\" placeholder=\"any\" value=\"");
        Write(filter.Name ?? string.Empty);
        WriteLiteral("\"><datalist id=\"workflow-names\">");
        foreach (var name in names)
        {
            WriteLiteral("<option value=\"");
            Write(name);
            WriteLiteral("\"></option>");
        }

        WriteLiteral("</datalist></div><div class=\"form-group\"><label for=\"workflow-status\">Status</label>");
        WriteLiteral("<select id=\"workflow-status\" name=\"status\" class=\"form-control input-sm\"><option value=\"\">any</option>");
        foreach (var status in Enum.GetValues<WorkflowStatus>())
        {
            WriteLiteral("<option value=\"");
            Write(status.ToString());
            WriteLiteral(filter.Status == status ? "\" selected>" : "\">");
            Write(status.ToString());
            WriteLiteral("</option>");
        }

        WriteLiteral("</select></div>");
        WriteInput("workflow-error", "error", "Error contains", "text", filter.Error, "any");
        WriteInput("workflow-key", "key", "Idempotency key", "text", filter.Key, "any");
        WriteInput("workflow-ckey", "ckey", "Concurrency key", "text", filter.ConcurrencyKey, "any");
        WriteInput("workflow-parent", "parent", "Children of run", "text", filter.Parent?.ToString(), "run id");
        WriteInput("workflow-after", "after", "Created after (UTC)", "datetime-local", WorkflowListFilter.FormatTime(filter.After), null);
        WriteInput("workflow-before", "before", "Created before (UTC)", "datetime-local", WorkflowListFilter.FormatTime(filter.Before), null);
        // One input per tag filter, plus an empty one to add another; every run must have all of them.
        var index = 0;
        foreach (var tag in filter.Tags.Select(t => t.Key + ":" + t.Value).Append(null))
        {
            WriteInput("workflow-tag-" + index.ToString(CultureInfo.InvariantCulture), "tag", index == 0 ? "Tag" : "and tag", "text", tag, "key:value");
            index++;
        }

        if (filter.Count != WorkflowListFilter.DefaultCount)
        {
            WriteLiteral("<input type=\"hidden\" name=\"count\" value=\"");
            Write(filter.Count.ToString(CultureInfo.InvariantCulture));
            WriteLiteral("\">");
        }

        WriteLiteral("<button type=\"submit\" class=\"btn btn-sm btn-primary\"><span class=\"glyphicon glyphicon-filter\"></span> Filter</button> ");
        if (filter.IsFiltered || filter.Errors.Count > 0)
        {
            WriteLiteral("<a class=\"btn btn-sm btn-default\" href=\"");
            Write(Url.To(WorkflowDashboardRoutes.ListPath));
            WriteLiteral("\">Clear</a>");
        }

        WriteLiteral("</form>");
    }

    private void WriteInput(string id, string name, string label, string type, string? value, string? placeholder)
    {
        WriteLiteral("<div class=\"form-group\"><label for=\"");
        Write(id);
        WriteLiteral("\">");
        Write(label);
        WriteLiteral("</label><input type=\"");
        Write(type);
        WriteLiteral("\" id=\"");
        Write(id);
        WriteLiteral("\" name=\"");
        Write(name);
        WriteLiteral("\" class=\"form-control input-sm\"");
        if (type == "datetime-local")
        {
            WriteLiteral(" step=\"1\"");
        }

        if (placeholder is not null)
        {
            WriteLiteral(" placeholder=\"");
            Write(placeholder);
            WriteLiteral("\"");
        }

        WriteLiteral(" value=\"");
        Write(value ?? string.Empty);
        WriteLiteral("\"></div>");
    }

    private void WriteTable()
    {
        WriteLiteral("<div class=\"table-responsive\"><table class=\"table table-hover workflow-runs\" aria-describedby=\"page-title\"><thead><tr>");
        WriteLiteral("<th class=\"min-width\">Id</th><th>Workflow</th><th class=\"min-width\">Status</th><th class=\"min-width\">Concurrency key</th><th class=\"min-width\">Progress</th>");
        WriteLiteral("<th class=\"align-right\">Created</th><th class=\"align-right\">Finished</th><th class=\"min-width\">Job</th></tr></thead><tbody>");
        foreach (var run in runs)
        {
            var link = Url.To(WorkflowDashboardRoutes.RunPath(run.Id));
            WriteLiteral("<tr class=\"js-workflow-run\" data-workflow-id=\"");
            Write(run.Id.ToString());
            WriteLiteral("\" data-status=\"");
            Write(run.Status.ToString());
            WriteLiteral("\"><td class=\"min-width\"><a class=\"workflow-run-link\" href=\"");
            Write(link);
            WriteLiteral("\" title=\"");
            Write(run.Id.ToString());
            WriteLiteral("\">#");
            Write(ShortId(run.Id));
            WriteLiteral("</a></td><td><a href=\"");
            Write(link);
            WriteLiteral("\">");
            Write(run.WorkflowName);
            WriteLiteral("</a>");
            foreach (var (tagKey, tagValue) in run.Tags.OrderBy(t => t.Key, StringComparer.Ordinal))
            {
                WriteLiteral(" <span class=\"label label-default workflow-tag\">");
                Write(tagKey + ": " + tagValue);
                WriteLiteral("</span>");
            }

            if (run.Status == WorkflowStatus.Failed && !string.IsNullOrEmpty(run.ExceptionMessage))
            {
                WriteLiteral("<small class=\"text-danger workflow-error-excerpt\" title=\"");
                Write(run.ExceptionMessage);
                WriteLiteral("\">");
                Write(run.ExceptionMessage);
                WriteLiteral("</small>");
            }

            if (run.Status == WorkflowStatus.Waiting && run.WaitingFor is not null)
            {
                WriteLiteral("<small class=\"text-info workflow-waiting-excerpt\">Waiting for ");
                WriteWaiting(run);
                WriteLiteral("</small>");
            }

            WriteLiteral("</td><td class=\"min-width\">");
            WriteStatus(run.Status);
            if (run.WaitingFor is { } waitingFor && run.Status is WorkflowStatus.Waiting or WorkflowStatus.Pending)
            {
                // A run waiting for a flow-control slot (or offered one, about to start), a sleep or an event.
                WriteLiteral("<small class=\"workflow-waiting-for\" data-waiting-for=\"");
                Write(waitingFor);
                WriteLiteral("\">");
                Write(waitingFor == "concurrency" ? (run.Status == WorkflowStatus.Waiting ? "waiting for a slot" : "slot offered") : "waiting for " + waitingFor);
                WriteLiteral("</small>");
            }

            WriteLiteral("</td><td class=\"min-width\">");
            if (run.ConcurrencyKey is { } concurrencyKey)
            {
                WriteLiteral("<a class=\"workflow-concurrency-key\" href=\"");
                Write(Url.To(WorkflowDashboardRoutes.ListPath + (filter with { ConcurrencyKey = concurrencyKey }).ToQuery(from: 0)));
                WriteLiteral("\">");
                Write(concurrencyKey);
                WriteLiteral("</a>");
            }

            WriteLiteral("</td><td class=\"min-width\">");
            WriteProgress(run, bar: true);
            WriteLiteral("</td><td class=\"align-right\">");
            WriteTime(run.Created, relative: true);
            WriteLiteral("</td><td class=\"align-right\">");
            WriteTime(run.Status switch
            {
                WorkflowStatus.Succeeded => run.SucceededAt,
                WorkflowStatus.Failed => run.FailedAt,
                WorkflowStatus.Cancelled or WorkflowStatus.Compensated => run.Modified,
                _ => null,
            }, relative: true);
            WriteLiteral("</td><td class=\"min-width\">");
            if (run.JobId is { } jobId)
            {
                WriteLiteral("<a href=\"");
                Write(Url.JobDetails(jobId));
                WriteLiteral("\">#");
                Write(jobId);
                WriteLiteral("</a>");
            }

            WriteLiteral("</td></tr>");
        }

        WriteLiteral("</tbody></table></div>");
    }

    private void WritePager()
    {
        if (runs.Count == 0 && filter.From == 0)
        {
            return;
        }

        WriteLiteral("<div class=\"btn-toolbar\"><div class=\"btn-group pull-right\">");
        foreach (var count in WorkflowListFilter.Counts)
        {
            WriteLiteral("<a class=\"btn btn-sm btn-default");
            WriteLiteral(count == filter.Count ? " active" : string.Empty);
            WriteLiteral("\" href=\"");
            Write(Url.To(WorkflowDashboardRoutes.ListPath + filter.ToQuery(from: 0, count: count)));
            WriteLiteral("\">");
            Write(count.ToString(CultureInfo.InvariantCulture));
            WriteLiteral("</a>");
        }

        WriteLiteral("</div><ul class=\"pager workflow-pager pull-left\">");
        if (filter.From > 0)
        {
            WriteLiteral("<li><a rel=\"prev\" class=\"js-workflow-prev\" href=\"");
            Write(Url.To(WorkflowDashboardRoutes.ListPath + filter.ToQuery(from: Math.Max(0, filter.From - filter.Count))));
            WriteLiteral("\">&larr; Newer</a></li> ");
        }

        if (runs.Count > 0)
        {
            WriteLiteral("<li class=\"text-muted\">&nbsp;Runs ");
            Write(string.Create(CultureInfo.InvariantCulture, $"{filter.From + 1}–{filter.From + runs.Count}"));
            WriteLiteral("&nbsp;</li> ");
        }

        if (hasNext)
        {
            WriteLiteral("<li><a rel=\"next\" class=\"js-workflow-next\" href=\"");
            Write(Url.To(WorkflowDashboardRoutes.ListPath + filter.ToQuery(from: filter.From + filter.Count)));
            WriteLiteral("\">Older &rarr;</a></li>");
        }

        WriteLiteral("</ul></div>");
    }
}
