using System.Globalization;
using Hangfire.Dashboard;
using Hangfire.Dashboard.Pages;

namespace Workflow.Jobs.Hangfire.Dashboard;

/// <summary><c>/workflows/{id}</c>: the run, its step timeline, input and output, job link, Retry and Cancel.</summary>
internal sealed class WorkflowRunPage(WorkflowRun run) : WorkflowDashboardPage
{
    public override void Execute()
    {
        Layout = new LayoutPage($"{run.WorkflowName} run {ShortId(run.Id)}");
        WriteLiteral("<div class=\"row\"><div class=\"col-md-3\">");
        WriteSidebar(WorkflowListFilter.Default, onList: false);
        WriteLiteral("</div><div class=\"col-md-9\">");
        Write(Html.Breadcrumbs("Run " + ShortId(run.Id), new Dictionary<string, string> { ["Workflows"] = Url.To(WorkflowDashboardRoutes.ListPath) }));
        WriteLiteral("<h1 id=\"page-title\" class=\"page-header\">");
        Write(run.WorkflowName);
        WriteLiteral(" <small>run ");
        Write(run.Id.ToString());
        WriteLiteral("</small></h1>");

        WriteCommands();
        if (run.Status is WorkflowStatus.Failed or WorkflowStatus.Cancelled or WorkflowStatus.Compensated && !string.IsNullOrEmpty(run.ExceptionMessage))
        {
            WriteLiteral("<div class=\"alert alert-danger\"><strong>");
            Write(run.Status == WorkflowStatus.Failed ? "Failed: " : "Last error: ");
            WriteLiteral("</strong><pre class=\"workflow-error workflow-error-inline\">");
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
        var canCancel = run.Status is WorkflowStatus.Pending or WorkflowStatus.Running or WorkflowStatus.Failed or WorkflowStatus.Waiting;
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
            WriteLiteral("<dt>Idempotency key</dt><dd><a href=\"");
            Write(Url.To(WorkflowDashboardRoutes.ListPath + "?key=" + Uri.EscapeDataString(key)));
            WriteLiteral("\">");
            Write(key);
            WriteLiteral("</a></dd>");
        }

        if (run.ConcurrencyKey is { } concurrencyKey)
        {
            // The key's runs: the ones waiting for a slot show so in the list.
            WriteLiteral("<dt>Concurrency key</dt><dd><a class=\"workflow-concurrency-key\" href=\"");
            Write(Url.To(WorkflowDashboardRoutes.ListPath + "?ckey=" + Uri.EscapeDataString(concurrencyKey)));
            WriteLiteral("\">");
            Write(concurrencyKey);
            WriteLiteral("</a></dd>");
        }

        if (run.WaitingFor is { } waitingFor && run.Status is WorkflowStatus.Waiting or WorkflowStatus.Pending)
        {
            WriteLiteral("<dt>Waiting for</dt><dd class=\"workflow-waiting-for\">");
            Write(waitingFor == "concurrency" ? (run.Status == WorkflowStatus.Waiting ? "a concurrency slot" : "a concurrency slot (offered, starting)") : waitingFor);
            if (run.WakeAt is { } wakeAt)
            {
                WriteLiteral(" until ");
                WriteTime(wakeAt, relative: true);
            }

            WriteLiteral("</dd>");
        }

        if (run.Tags.Count > 0)
        {
            // Each tag links to the runs that share it.
            WriteLiteral("<dt>Tags</dt><dd class=\"workflow-tags\">");
            foreach (var (tagKey, tagValue) in run.Tags.OrderBy(t => t.Key, StringComparer.Ordinal))
            {
                WriteLiteral("<a class=\"label label-default workflow-tag\" href=\"");
                Write(Url.To(WorkflowDashboardRoutes.ListPath + "?tag=" + Uri.EscapeDataString(tagKey + ":" + tagValue)));
                WriteLiteral("\">");
                Write(tagKey + ": " + tagValue);
                WriteLiteral("</a> ");
            }

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
                WriteLiteral(">");
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
