using System.Globalization;
using Hangfire.Dashboard;
using Microsoft.Extensions.DependencyInjection;

namespace Workflow.Jobs.Hangfire.Dashboard;

/// <summary>
/// Adds the Workflows pages, their commands, their stylesheet and script, and the menu item to Hangfire's dashboard.
/// Hangfire keeps routes, resources and menu items in process-wide lists, so they are added once per process (by the
/// type initializer, which the runtime runs exactly once); every request then resolves the workflow services of its
/// own host (<c>HttpContext.RequestServices</c>), so several hosts in one process each show their own runs.
/// </summary>
internal static class WorkflowDashboardRoutes
{
    /// <summary>The list page, relative to the dashboard.</summary>
    public const string ListPath = "/workflows";

    public const string StylesheetResource = "Workflow.Jobs.Hangfire.Dashboard.workflows.css";
    public const string ScriptResource = "Workflow.Jobs.Hangfire.Dashboard.workflows.js";

    private const string IdPattern = "(?<Id>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})";

    /// <summary>The badge stops counting here, so it costs the same with a million failed runs ("10000+").</summary>
    public const long FailedBadgeCap = 10_000;

    /// <summary>The menu badge: how many runs are Failed (red, absent when none).</summary>
    // Declared before Registered: static fields initialize in order, and Register() adds this one.
    public static readonly DashboardMetric FailedRunsMetric = new("workflows:failed", "Failed workflow runs", FailedRuns);

    private static readonly bool Registered = Register();

    /// <summary>Makes sure the routes and the menu item are registered (idempotent, thread-safe).</summary>
    public static bool EnsureRegistered() => Registered;

    public static string RunPath(Guid id) => $"{ListPath}/{id:D}";

    public static string CommandPath(Guid id, string command) => $"{ListPath}/{id:D}/{command}";

    private static bool Register()
    {
        var routes = DashboardRoutes.Routes;
        routes.Add(ListPath, new WorkflowPageDispatcher(WorkflowPageLoader.LoadListAsync));
        routes.Add(ListPath + "/" + IdPattern, new WorkflowPageDispatcher(WorkflowPageLoader.LoadRunAsync));
        routes.Add(ListPath + "/" + IdPattern + "/(?<Command>" + WorkflowCommandDispatcher.Retry + "|" + WorkflowCommandDispatcher.CancelAndCompensate + "|" + WorkflowCommandDispatcher.Cancel + "|"
            + WorkflowCommandDispatcher.Fork + "|" + WorkflowCommandDispatcher.Event + ")", new WorkflowCommandDispatcher());
        var bulk = new WorkflowBulkDispatcher();
        routes.Add(WorkflowBulkDispatcher.CountPath, bulk);
        routes.Add(ListPath + "/bulk/(?<Action>retry|cancel|purge)", bulk);
        routes.Add(ListPath + "/bulk/(?<JobId>[0-9]+)", bulk);

        // Served in the dashboard's combined stylesheet and script (cached by the browser like Hangfire's own).
        var assembly = typeof(WorkflowDashboardRoutes).Assembly;
        DashboardRoutes.AddStylesheet(assembly, StylesheetResource);
        DashboardRoutes.AddJavaScript(assembly, ScriptResource);

        // Second, after "Jobs": the place operators look first. The badge is also registered as a dashboard metric, so
        // the dashboard's script refreshes it through Hangfire's stats endpoint like its own counters.
        DashboardMetrics.AddMetric(FailedRunsMetric);
        NavigationMenu.Items.Insert(Math.Min(1, NavigationMenu.Items.Count), MenuItemFor);
        return true;
    }

    private static Metric? FailedRuns(RazorPage page)
    {
        if (page.Context is not AspNetCoreDashboardContext context || context.HttpContext.RequestServices.GetService<IWorkflowStore>() is not { } store)
        {
            return null;
        }

        long count;
        try
        {
            count = store.CountFailedRuns(FailedBadgeCap + 1);
        }
        catch (Exception ex) when (DatabaseUnavailable.Is(ex))
        {
            // The menu is on every dashboard page: an outage of the workflow database must not break Hangfire's own pages.
            return null;
        }

        if (count == 0)
        {
            return null;
        }

        return new Metric(count > FailedBadgeCap ? FailedBadgeCap.ToString(CultureInfo.InvariantCulture) + "+" : count.ToString(CultureInfo.InvariantCulture))
        {
            Style = MetricStyle.Danger,
            Highlighted = true,
        };
    }

    private static MenuItem? MenuItemFor(RazorPage page)
    {
        // Hosts of the same process without workflows (a plain Hangfire dashboard) do not show the item.
        if (page.Context is not AspNetCoreDashboardContext context || context.HttpContext.RequestServices.GetService<IWorkflowClient>() is null)
        {
            return null;
        }

        return new MenuItem("Workflows", page.Url.To(ListPath))
        {
            Active = page.RequestPath.StartsWith(ListPath, StringComparison.OrdinalIgnoreCase),
            Metric = FailedRunsMetric,
        };
    }
}
