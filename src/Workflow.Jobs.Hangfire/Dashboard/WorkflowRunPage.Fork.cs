using Newtonsoft.Json;

namespace Workflow.Jobs.Hangfire.Dashboard;

/// <summary>The run page's Fork button and panel, the link to the original of a fork, and the list of a run's forks.</summary>
internal sealed partial class WorkflowRunPage
{
    /// <summary>How many forks the page lists (the rest are counted as "more").</summary>
    public const int MaxForksShown = 20;

    /// <summary>The steps of the deployed definition (what a fork runs); null when the workflow is not registered in this host.</summary>
    public IReadOnlyList<string>? ForkSteps { get; init; }

    /// <summary>The runs forked from this one, oldest first (one more than <see cref="MaxForksShown"/> tells there are more).</summary>
    public IReadOnlyList<WorkflowForkLink> Forks { get; init; } = [];

    private void WriteForkButton()
    {
        if (ForkSteps is null)
        {
            return;
        }

        WriteLiteral("<button type=\"button\" id=\"workflow-fork\" class=\"btn btn-sm btn-default\" data-workflow-toggle=\"workflow-fork-panel\">");
        WriteLiteral("<span class=\"glyphicon glyphicon-duplicate\"></span> Fork&hellip;</button>");
    }

    /// <summary>
    /// The Fork form (hidden until the button opens it): the step to start from, with the steps that cannot be chosen
    /// (an earlier step did not succeed here) disabled, and the run's input in an editor. Errors come back with paths.
    /// </summary>
    private void WriteForkPanel()
    {
        if (IsReadOnly || ForkSteps is not { } steps)
        {
            return;
        }

        var succeeded = run.Steps.Where(s => s.Status == WorkflowStatus.Succeeded && s.Output is not null).Select(s => s.StepName).ToHashSet(StringComparer.Ordinal);
        // A step can be chosen when every step before it succeeded here (those are copied); the default is the first that did not.
        var choosable = steps.Select((_, i) => steps.Take(i).All(succeeded.Contains)).ToList();
        var firstNotSucceeded = steps.TakeWhile(succeeded.Contains).Count();
        var selected = firstNotSucceeded < steps.Count ? firstNotSucceeded : 0;

        WriteLiteral("<div id=\"workflow-fork-panel\" class=\"panel panel-default workflow-fork\" hidden><div class=\"panel-heading\">Fork this run</div><div class=\"panel-body\">");
        WriteLiteral("<p class=\"text-muted\">A new run starts from the chosen step with the input below; the steps before it are copied with their outputs and not executed. This run is not changed.</p>");
        WriteLiteral("<form id=\"workflow-fork-form\" data-workflow-fork=\"");
        Write(Url.To(WorkflowDashboardRoutes.CommandPath(run.Id, WorkflowCommandDispatcher.Fork)));
        WriteLiteral("\"><div class=\"form-group\"><label for=\"workflow-fork-step\">Start from step</label><select id=\"workflow-fork-step\" name=\"fromStep\" class=\"form-control input-sm\">");
        for (var i = 0; i < steps.Count; i++)
        {
            WriteLiteral("<option value=\"");
            Write(steps[i]);
            WriteLiteral("\"");
            if (i == selected)
            {
                WriteLiteral(" selected");
            }

            if (!choosable[i])
            {
                WriteLiteral(" disabled");
            }

            WriteLiteral(">");
            Write($"{i + 1}. {steps[i]}" + (succeeded.Contains(steps[i]) ? " (succeeded)" : string.Empty));
            WriteLiteral("</option>");
        }

        WriteLiteral("</select></div><div class=\"form-group\"><label for=\"workflow-fork-input\">Input (JSON)</label>");
        WriteLiteral("<textarea id=\"workflow-fork-input\" name=\"input\" class=\"form-control workflow-json-editor\" rows=\"14\" spellcheck=\"false\">");
        Write(run.Input.ToString(Formatting.Indented));
        WriteLiteral("</textarea><p class=\"help-block\">Each top-level part given here replaces the original's; a part left out keeps the original's.</p></div>");
        WriteLiteral("<div id=\"workflow-fork-errors\" class=\"alert alert-danger\" role=\"alert\" hidden><p>Nothing was created:</p><ul></ul></div>");
        WriteLiteral("<button type=\"submit\" id=\"workflow-fork-submit\" class=\"btn btn-sm btn-primary\"><span class=\"glyphicon glyphicon-duplicate\"></span> Start the fork</button> ");
        WriteLiteral("<button type=\"button\" class=\"btn btn-sm btn-default\" data-workflow-toggle=\"workflow-fork-panel\">Close</button>");
        WriteLiteral("</form></div></div>");
    }

    /// <summary>Where this run was forked from, and the runs forked from it.</summary>
    private void WriteForkLinks()
    {
        if (run.ForkedFrom is null && Forks.Count == 0)
        {
            return;
        }

        WriteLiteral("<dl class=\"dl-horizontal workflow-summary workflow-forks\">");
        if (run.ForkedFrom is { } original)
        {
            WriteLiteral("<dt>Forked from</dt><dd><a id=\"workflow-forked-from\" href=\"");
            Write(Url.To(WorkflowDashboardRoutes.RunPath(original)));
            WriteLiteral("\">run ");
            Write(original.ToString());
            WriteLiteral("</a></dd>");
        }

        if (Forks.Count > 0)
        {
            WriteLiteral("<dt>Forks</dt><dd><ul class=\"list-unstyled\" id=\"workflow-fork-list\">");
            foreach (var fork in Forks.Take(MaxForksShown))
            {
                WriteLiteral("<li><a class=\"workflow-fork-link\" href=\"");
                Write(Url.To(WorkflowDashboardRoutes.RunPath(fork.Id)));
                WriteLiteral("\">#");
                Write(ShortId(fork.Id));
                WriteLiteral("</a> ");
                WriteStatus(fork.Status);
                WriteLiteral(" <small class=\"text-muted\">");
                WriteTime(fork.Created, relative: true);
                WriteLiteral("</small></li>");
            }

            if (Forks.Count > MaxForksShown)
            {
                WriteLiteral("<li class=\"text-muted\">and more</li>");
            }

            WriteLiteral("</ul></dd>");
        }

        WriteLiteral("</dl>");
    }
}
