using System.Globalization;
using Hangfire.Dashboard;
using Newtonsoft.Json;
using Newtonsoft.Json.Linq;

namespace Workflow.Jobs.Hangfire.Dashboard;

/// <summary>
/// A Workflows page: plain C# on Hangfire's <see cref="RazorPage"/>, inside Hangfire's <see cref="global::Hangfire.Dashboard.Pages.LayoutPage"/>.
/// Markup goes through <see cref="RazorPage.WriteLiteral"/>; every value goes through
/// <see cref="RazorPage.Write"/>, which HTML-encodes it (safe in text and in quoted attributes).
/// </summary>
internal abstract class WorkflowDashboardPage : RazorPage
{
    /// <summary>The HTTP status of the page (default 200).</summary>
    public int? StatusCode { get; init; }

    /// <summary>A status label: Bootstrap's colours as Hangfire uses them for job states, and a class per status.</summary>
    protected void WriteStatus(WorkflowStatus status)
    {
        var css = status switch
        {
            WorkflowStatus.Pending => "label-primary",
            WorkflowStatus.Running => "label-warning",
            WorkflowStatus.Succeeded => "label-success",
            WorkflowStatus.Failed => "label-danger",
            WorkflowStatus.Waiting => "label-info",
            _ => "label-default",
        };
        WriteLiteral("<span class=\"label ");
        WriteLiteral(css);
        WriteLiteral(" workflow-status-");
        Write(status.ToString().ToLowerInvariant());
        WriteLiteral("\" data-status=\"");
        Write(status.ToString());
        WriteLiteral("\">");
        Write(status.ToString());
        WriteLiteral("</span>");
    }

    /// <summary>A UTC time, shown in the browser's time zone by the dashboard's script.</summary>
    protected void WriteTime(DateTimeOffset? value, bool relative = false)
    {
        if (value is not { } time)
        {
            WriteLiteral("<span class=\"text-muted\">&ndash;</span>");
            return;
        }

        Write(relative ? Html.RelativeTime(time.UtcDateTime) : Html.LocalTime(time.UtcDateTime));
    }

    /// <summary>What a waiting run waits for and until when ("sleep until …", "event approved, no deadline").</summary>
    protected void WriteWaiting(WorkflowRun run)
    {
        WriteLiteral("<span class=\"workflow-waiting\" data-waiting-for=\"");
        Write(run.WaitingFor ?? "");
        WriteLiteral("\">");
        Write(run.WaitingFor switch
        {
            null => "",
            "sleep" => "sleep",
            "concurrency" => "a concurrency slot",
            "children" => "child runs",
            var name => "event " + name,
        });
        if (run.WakeAt is { } wakeAt)
        {
            WriteLiteral(" until ");
            WriteTime(wakeAt);
        }
        else
        {
            WriteLiteral(" <span class=\"text-muted\">(no deadline)</span>");
        }

        WriteLiteral("</span>");
    }

    protected void WriteProgress(WorkflowRun run, bool bar)
    {
        var total = run.StepNames.Count;
        var done = Math.Min(run.CompletedSteps, total);
        WriteLiteral("<span class=\"workflow-progress-text\">");
        Write(string.Create(CultureInfo.InvariantCulture, $"{done}/{total} steps"));
        WriteLiteral("</span>");
        if (bar && total > 0)
        {
            var percent = done * 100 / total;
            var css = run.Status switch
            {
                WorkflowStatus.Succeeded => "progress-bar-success",
                WorkflowStatus.Failed => "progress-bar-danger",
                WorkflowStatus.Running => "progress-bar-warning",
                WorkflowStatus.Waiting => "progress-bar-info",
                _ => string.Empty,
            };
            WriteLiteral("<div class=\"progress workflow-progress\"><div class=\"progress-bar ");
            WriteLiteral(css);
            WriteLiteral("\" style=\"width: ");
            Write(percent.ToString(CultureInfo.InvariantCulture));
            WriteLiteral("%\"></div></div>");
        }
    }

    protected void WriteJson(JObject? json, string emptyText)
    {
        if (json is null)
        {
            WriteLiteral("<p class=\"text-muted\">");
            Write(emptyText);
            WriteLiteral("</p>");
            return;
        }

        WriteLiteral("<pre class=\"workflow-json\"><code>");
        Write(json.ToString(Formatting.Indented));
        WriteLiteral("</code></pre>");
    }

    /// <summary>The sidebar: runs by status (keeping the name filter).</summary>
    protected void WriteSidebar(WorkflowListFilter filter, bool onList)
    {
        var items = new List<Func<RazorPage, MenuItem>>
        {
            page => new MenuItem("All runs", page.Url.To(WorkflowDashboardRoutes.ListPath + filter.ToQuery(clearStatus: true, from: 0)))
            {
                Active = onList && filter.Status is null,
            },
        };
        foreach (var status in Enum.GetValues<WorkflowStatus>())
        {
            items.Add(page => new MenuItem(status.ToString(), page.Url.To(WorkflowDashboardRoutes.ListPath + filter.ToQuery(status: status, from: 0)))
            {
                Active = onList && filter.Status == status,
            });
        }

        Write(Html.SidebarMenu(items));
    }

    /// <summary>The last 12 hex digits: run ids are time-ordered (their first digits are a timestamp), the end is random.</summary>
    protected static string ShortId(Guid id) => id.ToString("N")[^12..];

    protected static string FormatDuration(TimeSpan duration)
    {
        if (duration < TimeSpan.Zero)
        {
            duration = TimeSpan.Zero;
        }

        return duration.TotalSeconds switch
        {
            < 1 => string.Create(CultureInfo.InvariantCulture, $"{duration.TotalMilliseconds:0} ms"),
            < 60 => string.Create(CultureInfo.InvariantCulture, $"{duration.TotalSeconds:0.0#} s"),
            < 3600 => string.Create(CultureInfo.InvariantCulture, $"{(int)duration.TotalMinutes} min {duration.Seconds} s"),
            _ => string.Create(CultureInfo.InvariantCulture, $"{(int)duration.TotalHours} h {duration.Minutes} min"),
        };
    }
}
