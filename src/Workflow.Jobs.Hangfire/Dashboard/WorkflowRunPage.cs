using System.Globalization;
using Hangfire.Dashboard;
using Hangfire.Dashboard.Pages;

namespace Workflow.Jobs.Hangfire.Dashboard;

/// <summary><c>/workflows/{id}</c>: the run, its step timeline, each step's attempts, input and output, job link, Retry, Cancel and Fork.</summary>
internal sealed partial class WorkflowRunPage(WorkflowRun run, IReadOnlyDictionary<Guid, WorkflowItemsPage>? failedItems = null) : WorkflowDashboardPage
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
        if (run.Status is WorkflowStatus.Failed or WorkflowStatus.Cancelled or WorkflowStatus.Compensated or WorkflowStatus.Compensating && !string.IsNullOrEmpty(run.ExceptionMessage))
        {
            WriteLiteral("<div class=\"alert alert-danger\"><strong>");
            Write(run.Status == WorkflowStatus.Failed ? "Failed: " : "Last error: ");
            WriteLiteral("</strong><pre class=\"workflow-error workflow-error-inline\">");
            Write(run.ExceptionMessage);
            WriteLiteral("</pre></div>");
        }

        WriteForkPanel();
        WriteCompensationError();
        WriteSummary();
        WriteForkLinks();
        WriteSendEvent();
        WriteSteps();
        WriteAttemptHistory();
        WriteCompensation();

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
        var canCancel = run.Status is WorkflowStatus.Pending or WorkflowStatus.Running or WorkflowStatus.Failed or WorkflowStatus.Waiting
            or WorkflowStatus.Compensating;
        var canCompensate = CanCompensate(run.Status);
        WriteLiteral("<div id=\"workflow-command-error\" class=\"alert alert-danger\" role=\"alert\" hidden></div>");
        if (IsReadOnly)
        {
            if (canRetry || canCancel || canCompensate)
            {
                WriteLiteral("<p class=\"text-muted\"><span class=\"glyphicon glyphicon-lock\"></span> Read-only dashboard: Retry, Cancel and Fork are not available.</p>");
            }

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

        WriteForkButton();
        WriteCompensateCommand(canCompensate);
        WriteLiteral("</div>");
    }

    /// <summary>
    /// The Send event form of an unfinished run: the event's name (the one the run waits for, when it waits for an event)
    /// and its JSON payload, checked as JSON in the browser and validated against the wait's type by the server.
    /// </summary>
    private void WriteSendEvent()
    {
        if (IsReadOnly || WorkflowTransitions.IsFinished(run.Status))
        {
            return;
        }

        var waitingForEvent = run.Status == WorkflowStatus.Waiting && run.WaitingFor is { } name && name is not "sleep" and not "concurrency" and not "children";
        WriteLiteral("<details class=\"workflow-send-event\"");
        WriteLiteral(waitingForEvent ? " open" : "");
        WriteLiteral("><summary>Send event</summary><form id=\"workflow-event-form\" class=\"workflow-event-form\" data-workflow-event=\"");
        Write(Url.To(WorkflowDashboardRoutes.CommandPath(run.Id, WorkflowCommandDispatcher.Event)));
        WriteLiteral("\"><div class=\"form-group\"><label for=\"workflow-event-name\">Event name</label>");
        WriteLiteral("<input type=\"text\" class=\"form-control input-sm\" id=\"workflow-event-name\" name=\"name\" maxlength=\"200\" required value=\"");
        Write(waitingForEvent ? run.WaitingFor : "");
        WriteLiteral("\"></div><div class=\"form-group\"><label for=\"workflow-event-payload\">Payload (JSON object)</label>");
        WriteLiteral("<textarea class=\"form-control workflow-json-editor\" id=\"workflow-event-payload\" name=\"payload\" rows=\"6\" spellcheck=\"false\">{\n  \n}</textarea>");
        WriteLiteral("<p id=\"workflow-event-json-error\" class=\"text-danger\" hidden></p></div>");
        WriteLiteral("<button type=\"submit\" id=\"workflow-send-event\" class=\"btn btn-sm btn-primary\"><span class=\"glyphicon glyphicon-send\"></span> Send event</button>");
        WriteLiteral("</form></details>");
    }

    private void WriteSummary()
    {
        WriteLiteral("<div class=\"row\"><div class=\"col-md-6\"><dl class=\"dl-horizontal workflow-summary\">");
        WriteLiteral("<dt>Status</dt><dd id=\"workflow-status\">");
        WriteStatus(run.Status);
        WriteLiteral("</dd>");
        if (run.Status == WorkflowStatus.Waiting && run.WaitingFor is not null)
        {
            WriteLiteral("<dt>Waiting for</dt><dd id=\"workflow-waiting\">");
            WriteWaiting(run);
            WriteLiteral("</dd>");
        }

        WriteLiteral("<dt>Progress</dt><dd id=\"workflow-progress\">");
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

        if (run.ParentId is { } parentId)
        {
            WriteLiteral("<dt>Parent</dt><dd><a id=\"workflow-parent-link\" href=\"");
            Write(Url.To(WorkflowDashboardRoutes.RunPath(parentId)));
            WriteLiteral("\">");
            Write(ShortId(parentId));
            WriteLiteral("</a>");
            if (run.ChildIndex is { } index)
            {
                WriteLiteral(" <span class=\"text-muted\">child ");
                Write(index.ToString(CultureInfo.InvariantCulture));
                WriteLiteral("</span>");
            }

            WriteLiteral("</dd>");
        }

        if (run.Children is { } children)
        {
            WriteChildren(run.Id, children);
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
            if (step?.Items is { } items)
            {
                WriteItemCounts(items);
            }

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
        WriteFailedItems();

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

    /// <summary>
    /// The children's progress (k of n succeeded), a link to all of them on the list page (filtered by parent, where bulk
    /// actions apply to them), and the children that did not succeed (up to 100), each linked to its page.
    /// </summary>
    private void WriteChildren(Guid runId, WorkflowChildrenSummary children)
    {
        WriteLiteral("<dt>Children</dt><dd id=\"workflow-children\">");
        Write(string.Create(CultureInfo.InvariantCulture, $"{children.Succeeded} of {children.Total} succeeded"));
        if (children.Finished < children.Total)
        {
            WriteLiteral(" <span class=\"text-muted\">(");
            Write(string.Create(CultureInfo.InvariantCulture, $"{children.Total - children.Finished} running or waiting"));
            WriteLiteral(")</span>");
        }

        WriteLiteral(" <a id=\"workflow-children-list\" href=\"");
        Write(Url.To(WorkflowDashboardRoutes.ListPath + (WorkflowListFilter.Default with { Parent = runId }).ToQuery()));
        WriteLiteral("\">list them</a>");

        foreach (var failed in children.Failed)
        {
            WriteLiteral("<div class=\"workflow-child-failed\"><a href=\"");
            Write(Url.To(WorkflowDashboardRoutes.RunPath(failed.Id)));
            WriteLiteral("\">");
            Write(string.Create(CultureInfo.InvariantCulture, $"child {failed.ChildIndex}"));
            WriteLiteral("</a> <span class=\"label label-danger\">");
            Write(failed.Status.ToString());
            WriteLiteral("</span> ");
            Write(failed.ExceptionMessage);
            WriteLiteral("</div>");
        }

        WriteLiteral("</dd>");
    }

    /// <summary>The fan-out items of a step: done, failed and pending counts.</summary>
    private void WriteItemCounts(WorkflowItemSummary items)
    {
        WriteLiteral("<div class=\"workflow-items\" data-items-total=\"");
        Write(items.Total.ToString(CultureInfo.InvariantCulture));
        WriteLiteral("\"><span class=\"text-success\" data-items=\"done\">");
        Write(string.Create(CultureInfo.InvariantCulture, $"{items.Succeeded}/{items.Total} items done"));
        WriteLiteral("</span>");
        if (items.Failed > 0)
        {
            WriteLiteral(" &middot; <span class=\"text-danger\" data-items=\"failed\">");
            Write(string.Create(CultureInfo.InvariantCulture, $"{items.Failed} failed"));
            WriteLiteral("</span>");
        }

        if (items.Pending > 0)
        {
            WriteLiteral(" &middot; <span class=\"text-muted\" data-items=\"pending\">");
            Write(string.Create(CultureInfo.InvariantCulture, $"{items.Pending} pending"));
            WriteLiteral("</span>");
        }

        WriteLiteral("</div>");
    }

    /// <summary>For each step with failed fan-out items: their errors, a page at a time.</summary>
    private void WriteFailedItems()
    {
        foreach (var step in run.Steps)
        {
            if (failedItems is null || !failedItems.TryGetValue(step.Id, out var page) || step.Items is not { } summary)
            {
                continue;
            }

            WriteLiteral("<h4 class=\"workflow-section\">Failed items of ");
            Write(step.StepName);
            WriteLiteral(" <small>");
            Write(string.Create(CultureInfo.InvariantCulture, $"{summary.Failed} of {summary.Total}; a retry runs them (and the pending ones) again"));
            WriteLiteral("</small></h4><div class=\"table-responsive\"><table class=\"table table-condensed workflow-items-failed\" data-step=\"");
            Write(step.StepName);
            WriteLiteral("\"><thead><tr><th class=\"min-width\">Item</th>");
            if (summary.Calls > 1)
            {
                WriteLiteral("<th class=\"min-width\">Fan-out</th>");
            }

            WriteLiteral("<th class=\"min-width\">Attempt</th><th class=\"min-width\">Failed</th><th>Error</th></tr></thead><tbody>");
            foreach (var item in page.Items)
            {
                WriteLiteral("<tr><td class=\"min-width\">");
                Write(item.Index.ToString(CultureInfo.InvariantCulture));
                WriteLiteral("</td>");
                if (summary.Calls > 1)
                {
                    WriteLiteral("<td class=\"min-width\">");
                    Write(item.Call.ToString(CultureInfo.InvariantCulture));
                    WriteLiteral("</td>");
                }

                WriteLiteral("<td class=\"min-width\">");
                Write(item.Attempt?.ToString(CultureInfo.InvariantCulture) ?? "");
                WriteLiteral("</td><td class=\"min-width\">");
                WriteTime(item.FinishedAt);
                WriteLiteral("</td><td><pre class=\"workflow-error text-danger\">");
                Write(item.ExceptionMessage ?? "");
                WriteLiteral("</pre></td></tr>");
            }

            WriteLiteral("</tbody></table></div>");
            if (page.From > 0 || page.HasNext)
            {
                WriteLiteral("<ul class=\"pager workflow-pager\">");
                if (page.From > 0)
                {
                    WriteLiteral("<li class=\"previous\"><a href=\"");
                    Write(ItemsLink(step.StepName, Math.Max(0, page.From - WorkflowItemsPage.Size)));
                    WriteLiteral("\">&larr; Previous</a></li>");
                }

                if (page.HasNext)
                {
                    WriteLiteral("<li class=\"next\"><a href=\"");
                    Write(ItemsLink(step.StepName, page.From + WorkflowItemsPage.Size));
                    WriteLiteral("\">Next &rarr;</a></li>");
                }

                WriteLiteral("</ul>");
            }
        }
    }

    private string ItemsLink(string stepName, int from)
        => Url.To(WorkflowDashboardRoutes.RunPath(run.Id) + "?items_step=" + Uri.EscapeDataString(stepName) + "&items_from=" + from.ToString(CultureInfo.InvariantCulture));
}

/// <summary>A page of a step's failed fan-out items on the run page.</summary>
internal sealed record WorkflowItemsPage(IReadOnlyList<WorkflowStepItem> Items, int From, bool HasNext)
{
    /// <summary>Failed items shown per page.</summary>
    public const int Size = 20;
}
