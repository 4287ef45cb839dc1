using System.Globalization;
using Hangfire.Dashboard;
using Hangfire.Dashboard.Pages;
using Newtonsoft.Json;
using Newtonsoft.Json.Linq;

namespace Workflow.Jobs.Hangfire.Dashboard;

/// <summary>
/// A Workflows page: plain C# on Hangfire's <see cref="RazorPage"/>, inside Hangfire's <see cref="LayoutPage"/>.
/// Markup goes through <see cref="RazorPage.WriteLiteral"/>; every value goes through
/// <see cref="RazorPage.Write"/>, which HTML-encodes it (safe in text and in quoted attributes).
/// </summary>
internal abstract class WorkflowDashboardPage : RazorPage
{
    /// <summary>The HTTP status of the page (default 200).</summary>
    public int? StatusCode { get; init; }

    protected const string Styles = """
        <style>
          .workflow-filter { margin-bottom: 15px; }
          .workflow-filter .form-group { margin-right: 10px; }
          .workflow-filter label { margin-right: 5px; font-weight: normal; color: #777; }
          .workflow-runs td { vertical-align: middle !important; }
          .workflow-runs .workflow-error-excerpt { display: block; max-width: 380px; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
          .workflow-progress { display: inline-block; width: 64px; height: 8px; margin: 0 0 0 8px; vertical-align: middle; }
          .workflow-progress-text { display: inline-block; min-width: 62px; }
          .workflow-summary dt { color: #777; font-weight: normal; }
          .workflow-summary dd { margin-bottom: 4px; word-break: break-all; }
          .workflow-error { white-space: pre-wrap; word-break: break-word; margin: 0; }
          .workflow-steps .workflow-error { font-size: 12px; }
          .workflow-json { max-height: 420px; overflow: auto; font-size: 12px; white-space: pre; }
          .workflow-step-data summary { cursor: pointer; color: #337ab7; margin: 4px 0; }
          .workflow-commands { margin-bottom: 15px; }
          .workflow-pager { margin: 0; }
          h3.workflow-section { margin-top: 30px; }
        </style>
        """;

    protected void WriteStatus(WorkflowStatus status)
    {
        var css = status switch
        {
            WorkflowStatus.Pending => "active",
            WorkflowStatus.Running => "warning",
            WorkflowStatus.Succeeded => "success",
            WorkflowStatus.Failed => "danger",
            _ => "inactive",
        };
        WriteLiteral("<span class=\"label label-default label-state-");
        WriteLiteral(css);
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

/// <summary><c>/workflows</c>: runs, newest first, filtered by status and name, paged.</summary>
internal sealed class WorkflowListPage(WorkflowListFilter filter, IReadOnlyList<WorkflowRun> runs, bool hasNext, IReadOnlyList<string> names)
    : WorkflowDashboardPage
{
    public override void Execute()
    {
        Layout = new LayoutPage("Workflows");
        WriteLiteral(Styles);
        WriteLiteral("<div class=\"row\"><div class=\"col-md-3\">");
        WriteSidebar(filter, onList: true);
        WriteLiteral("</div><div class=\"col-md-9\">");
        WriteLiteral("<h1 id=\"page-title\" class=\"page-header\">Workflows</h1>");
        WriteFilterForm();

        if (runs.Count == 0)
        {
            WriteLiteral("<div class=\"alert alert-info\">");
            Write(filter.From > 0 ? "No more workflow runs." : filter.Status is null && filter.Name is null ? "No workflow runs yet." : "No workflow runs match the filter.");
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
        if (filter.Count != WorkflowListFilter.DefaultCount)
        {
            WriteLiteral("<input type=\"hidden\" name=\"count\" value=\"");
            Write(filter.Count.ToString(CultureInfo.InvariantCulture));
            WriteLiteral("\">");
        }

        WriteLiteral("<button type=\"submit\" class=\"btn btn-sm btn-primary\"><span class=\"glyphicon glyphicon-filter\"></span> Filter</button> ");
        if (filter.Status is not null || filter.Name is not null)
        {
            WriteLiteral("<a class=\"btn btn-sm btn-default\" href=\"");
            Write(Url.To(WorkflowDashboardRoutes.ListPath));
            WriteLiteral("\">Clear</a>");
        }

        WriteLiteral("</form>");
    }

    private void WriteTable()
    {
        WriteLiteral("<div class=\"table-responsive\"><table class=\"table table-hover workflow-runs\" aria-describedby=\"page-title\"><thead><tr>");
        WriteLiteral("<th class=\"min-width\">Id</th><th>Workflow</th><th class=\"min-width\">Status</th><th class=\"min-width\">Progress</th>");
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
            if (run.Status == WorkflowStatus.Failed && !string.IsNullOrEmpty(run.ExceptionMessage))
            {
                WriteLiteral("<small class=\"text-danger workflow-error-excerpt\" title=\"");
                Write(run.ExceptionMessage);
                WriteLiteral("\">");
                Write(run.ExceptionMessage);
                WriteLiteral("</small>");
            }

            WriteLiteral("</td><td class=\"min-width\">");
            WriteStatus(run.Status);
            WriteLiteral("</td><td class=\"min-width\">");
            WriteProgress(run, bar: true);
            WriteLiteral("</td><td class=\"align-right\">");
            WriteTime(run.Created, relative: true);
            WriteLiteral("</td><td class=\"align-right\">");
            WriteTime(run.Status switch
            {
                WorkflowStatus.Succeeded => run.SucceededAt,
                WorkflowStatus.Failed => run.FailedAt,
                WorkflowStatus.Cancelled => run.Modified,
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

/// <summary><c>/workflows/{id}</c>: the run, its step timeline, input and output, job link, Retry and Cancel.</summary>
internal sealed class WorkflowRunPage(WorkflowRun run) : WorkflowDashboardPage
{
    private const string CommandScript = """
        <script>
        (function () {
          document.addEventListener('click', function (e) {
            var button = e.target.closest ? e.target.closest('[data-workflow-command]') : null;
            if (!button) { return; }
            e.preventDefault();
            var confirmText = button.getAttribute('data-confirm');
            if (confirmText && !window.confirm(confirmText)) { return; }
            var headers = {};
            var header = document.querySelector('meta[name="csrf-header"]');
            var token = document.querySelector('meta[name="csrf-token"]');
            if (header && token) { headers[header.getAttribute('content')] = token.getAttribute('content'); }
            var box = document.getElementById('workflow-command-error');
            box.hidden = true;
            button.disabled = true;
            fetch(button.getAttribute('data-workflow-command'), { method: 'POST', headers: headers, credentials: 'same-origin' })
              .then(function (response) {
                if (response.ok) { window.location.reload(); return; }
                return response.text().then(function (text) { throw new Error(text || ('HTTP ' + response.status)); });
              })
              .catch(function (error) {
                button.disabled = false;
                box.textContent = error.message;
                box.hidden = false;
              });
          });
        })();
        </script>
        """;

    public override void Execute()
    {
        Layout = new LayoutPage($"{run.WorkflowName} run {ShortId(run.Id)}");
        WriteLiteral(Styles);
        WriteLiteral("<div class=\"row\"><div class=\"col-md-3\">");
        WriteSidebar(new WorkflowListFilter(null, null, 0, WorkflowListFilter.DefaultCount), onList: false);
        WriteLiteral("</div><div class=\"col-md-9\">");
        Write(Html.Breadcrumbs("Run " + ShortId(run.Id), new Dictionary<string, string> { ["Workflows"] = Url.To(WorkflowDashboardRoutes.ListPath) }));
        WriteLiteral("<h1 id=\"page-title\" class=\"page-header\">");
        Write(run.WorkflowName);
        WriteLiteral(" <small>run ");
        Write(run.Id.ToString());
        WriteLiteral("</small></h1>");

        WriteCommands();
        if (run.Status is WorkflowStatus.Failed or WorkflowStatus.Cancelled && !string.IsNullOrEmpty(run.ExceptionMessage))
        {
            WriteLiteral("<div class=\"alert alert-danger\"><strong>");
            Write(run.Status == WorkflowStatus.Failed ? "Failed: " : "Last error: ");
            WriteLiteral("</strong><pre class=\"workflow-error\" style=\"background: none; border: 0; padding: 0; display: inline\">");
            Write(run.ExceptionMessage);
            WriteLiteral("</pre></div>");
        }

        WriteSummary();
        WriteSteps();

        WriteLiteral("<h3 class=\"workflow-section\">Data</h3><div class=\"row\"><div class=\"col-md-6\"><h4>Input</h4>");
        WriteJson(run.Input, "No input.");
        WriteLiteral("</div><div class=\"col-md-6\"><h4>Output</h4>");
        WriteJson(run.Output, "No output yet.");
        WriteLiteral("</div></div>");
        WriteLiteral("</div></div>");
    }

    private void WriteCommands()
    {
        var canRetry = run.Status is WorkflowStatus.Failed or WorkflowStatus.Cancelled;
        var canCancel = run.Status is WorkflowStatus.Pending or WorkflowStatus.Running or WorkflowStatus.Failed;
        WriteLiteral("<div id=\"workflow-command-error\" class=\"alert alert-danger\" role=\"alert\" hidden></div>");
        if (IsReadOnly)
        {
            if (canRetry || canCancel)
            {
                WriteLiteral("<p class=\"text-muted\"><span class=\"glyphicon glyphicon-lock\"></span> Read-only dashboard: Retry and Cancel are not available.</p>");
            }

            return;
        }

        if (!canRetry && !canCancel)
        {
            return;
        }

        WriteLiteral("<div class=\"btn-toolbar workflow-commands\">");
        if (canRetry)
        {
            WriteLiteral("<button type=\"button\" id=\"workflow-retry\" class=\"btn btn-sm btn-primary\" data-workflow-command=\"");
            Write(Url.To(WorkflowDashboardRoutes.CommandPath(run.Id, WorkflowCommandDispatcher.Retry)));
            WriteLiteral("\"><span class=\"glyphicon glyphicon-repeat\"></span> Retry</button>");
        }

        if (canCancel)
        {
            WriteLiteral("<button type=\"button\" id=\"workflow-cancel\" class=\"btn btn-sm btn-death\" data-confirm=\"Cancel this run? Its job is deleted and no further step starts.\" data-workflow-command=\"");
            Write(Url.To(WorkflowDashboardRoutes.CommandPath(run.Id, WorkflowCommandDispatcher.Cancel)));
            WriteLiteral("\"><span class=\"glyphicon glyphicon-remove\"></span> Cancel</button>");
        }

        WriteLiteral("</div>");
        WriteLiteral(CommandScript);
    }

    private void WriteSummary()
    {
        WriteLiteral("<div class=\"row\"><div class=\"col-md-6\"><dl class=\"dl-horizontal workflow-summary\">");
        WriteLiteral("<dt>Status</dt><dd id=\"workflow-status\">");
        WriteStatus(run.Status);
        WriteLiteral("</dd><dt>Progress</dt><dd id=\"workflow-progress\">");
        WriteProgress(run, bar: true);
        WriteLiteral("</dd><dt>Executions</dt><dd>");
        Write(run.Attempts.ToString(CultureInfo.InvariantCulture));
        WriteLiteral("</dd><dt>Hangfire job</dt><dd>");
        if (run.JobId is { } jobId)
        {
            WriteLiteral("<a id=\"workflow-job-link\" href=\"");
            Write(Url.JobDetails(jobId));
            WriteLiteral("\">#");
            Write(jobId);
            WriteLiteral("</a>");
        }
        else
        {
            WriteLiteral("<span class=\"text-muted\">none</span>");
        }

        WriteLiteral("</dd>");
        if (run.RecurringId is { } recurringId)
        {
            WriteLiteral("<dt>Schedule</dt><dd><a href=\"");
            Write(Url.To("/recurring"));
            WriteLiteral("\">");
            Write(recurringId);
            WriteLiteral("</a></dd>");
        }

        if (run.IdempotencyKey is { } key)
        {
            WriteLiteral("<dt>Idempotency key</dt><dd>");
            Write(key);
            WriteLiteral("</dd>");
        }

        WriteLiteral("</dl></div><div class=\"col-md-6\"><dl class=\"dl-horizontal workflow-summary\"><dt>Created</dt><dd>");
        WriteTime(run.Created);
        WriteLiteral("</dd><dt>Modified</dt><dd>");
        WriteTime(run.Modified);
        WriteLiteral("</dd>");
        if (run.SucceededAt is not null)
        {
            WriteLiteral("<dt>Succeeded</dt><dd>");
            WriteTime(run.SucceededAt);
            WriteLiteral("</dd><dt>Took</dt><dd>");
            Write(FormatDuration(run.SucceededAt.Value - run.Created));
            WriteLiteral("</dd>");
        }

        if (run.FailedAt is not null)
        {
            WriteLiteral("<dt>Last failed</dt><dd>");
            WriteTime(run.FailedAt);
            WriteLiteral("</dd>");
        }

        WriteLiteral("</dl></div></div>");
    }

    private void WriteSteps()
    {
        var records = run.Steps.ToDictionary(s => s.StepName, StringComparer.Ordinal);
        var names = run.StepNames.Concat(run.Steps.Select(s => s.StepName).Where(n => !run.StepNames.Contains(n))).ToList();
        WriteLiteral("<h3 class=\"workflow-section\">Steps</h3><div class=\"table-responsive\"><table class=\"table workflow-steps\"><thead><tr>");
        WriteLiteral("<th class=\"min-width\">#</th><th>Step</th><th class=\"min-width\">Status</th><th class=\"min-width\">Attempts</th>");
        WriteLiteral("<th class=\"min-width\">Started</th><th class=\"min-width\">Finished</th><th class=\"min-width\">Duration</th><th>Error</th></tr></thead><tbody>");
        for (var i = 0; i < names.Count; i++)
        {
            records.TryGetValue(names[i], out var step);
            WriteLiteral("<tr class=\"js-workflow-step\" data-step=\"");
            Write(names[i]);
            WriteLiteral("\"><td class=\"min-width\">");
            Write((i + 1).ToString(CultureInfo.InvariantCulture));
            WriteLiteral("</td><td>");
            Write(names[i]);
            WriteLiteral("</td><td class=\"min-width\">");
            if (step is null)
            {
                WriteLiteral("<span class=\"label label-default\" data-status=\"NotStarted\">Not started</span></td><td></td><td></td><td></td><td></td><td></td></tr>");
                continue;
            }

            WriteStatus(step.Status);
            WriteLiteral("</td><td class=\"min-width\">");
            Write(step.Attempts.ToString(CultureInfo.InvariantCulture));
            WriteLiteral("</td><td class=\"min-width\">");
            var started = step.StartedAt ?? step.Created;
            WriteTime(started);
            var finished = step.Status switch
            {
                WorkflowStatus.Succeeded => step.SucceededAt,
                WorkflowStatus.Failed => step.FailedAt,
                _ => null,
            };
            WriteLiteral("</td><td class=\"min-width\">");
            WriteTime(finished);
            WriteLiteral("</td><td class=\"min-width\">");
            if (finished is { } end)
            {
                Write(FormatDuration(end - started));
            }

            WriteLiteral("</td><td>");
            if (!string.IsNullOrEmpty(step.ExceptionMessage))
            {
                // A step that failed before and then succeeded keeps its last error: shown, but as history.
                var current = step.Status == WorkflowStatus.Failed;
                WriteLiteral(current ? "<pre class=\"workflow-error text-danger\"" : "<pre class=\"workflow-error text-muted\" title=\"An earlier attempt failed\"");
                WriteLiteral(" style=\"background: none; border: 0; padding: 0\">");
                Write(current ? step.ExceptionMessage : "Earlier attempt: " + step.ExceptionMessage);
                WriteLiteral("</pre>");
            }

            WriteLiteral("</td></tr>");
        }

        WriteLiteral("</tbody></table></div>");

        foreach (var step in run.Steps)
        {
            WriteLiteral("<details class=\"workflow-step-data\"><summary>Step ");
            Write(step.StepName);
            WriteLiteral(": input and output</summary><div class=\"row\"><div class=\"col-md-6\"><h5>Input</h5>");
            WriteJson(step.Input, "No input.");
            WriteLiteral("</div><div class=\"col-md-6\"><h5>Output</h5>");
            WriteJson(step.Output, "No output.");
            WriteLiteral("</div></div></details>");
        }
    }
}

/// <summary>The run page of an unknown (or removed) run.</summary>
internal sealed class WorkflowRunNotFoundPage(Guid id) : WorkflowDashboardPage
{
    public override void Execute()
    {
        Layout = new LayoutPage("Workflow run not found");
        WriteLiteral("<div class=\"row\"><div class=\"col-md-3\">");
        WriteSidebar(new WorkflowListFilter(null, null, 0, WorkflowListFilter.DefaultCount), onList: false);
        WriteLiteral("</div><div class=\"col-md-9\"><h1 class=\"page-header\">Workflow run not found</h1><div class=\"alert alert-warning\">");
        Write($"There is no workflow run {id} (or it was removed).");
        WriteLiteral(" <a href=\"");
        Write(Url.To(WorkflowDashboardRoutes.ListPath));
        WriteLiteral("\">Back to the workflow runs</a></div></div></div>");
    }
}
