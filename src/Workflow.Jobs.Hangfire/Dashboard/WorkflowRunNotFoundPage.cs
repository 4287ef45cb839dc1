using Hangfire.Dashboard.Pages;

namespace Workflow.Jobs.Hangfire.Dashboard;

/// <summary>The run page of an unknown (or removed) run.</summary>
internal sealed class WorkflowRunNotFoundPage(Guid id) : WorkflowDashboardPage
{
    public override void Execute()
    {
        Layout = new LayoutPage("Workflow run not found");
        WriteLiteral("<div class=\"row\"><div class=\"col-md-3\">");
        WriteSidebar(WorkflowListFilter.Default, onList: false);
        WriteLiteral("</div><div class=\"col-md-9\"><h1 class=\"page-header\">Workflow run not found</h1><div class=\"alert alert-warning\">");
        Write($"There is no workflow run {id} (or it was removed).");
        WriteLiteral(" <a href=\"");
        Write(Url.To(WorkflowDashboardRoutes.ListPath));
        WriteLiteral("\">Back to the workflow runs</a></div></div></div>");
    }
}
