using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace Workflow.Jobs.Hangfire.Dashboard;

/// <summary>Loads the data of the Workflows pages (all I/O of the pages happens here, asynchronously).</summary>
internal static class WorkflowPageLoader
{
    public static async Task<WorkflowDashboardPage> LoadListAsync(WorkflowPageRequest request)
    {
        var filter = WorkflowListFilter.Parse(request.Http.Request.Query);
        var names = request.Http.RequestServices.GetService<WorkflowRegistry>()?.All.Select(d => d.Name).Order(StringComparer.Ordinal).ToList() ?? [];
        if (filter.Errors.Count > 0)
        {
            // Nothing is queried with a filter that cannot be applied: the page says what to change.
            return new WorkflowListPage(filter, [], hasNext: false, names) { StatusCode = StatusCodes.Status400BadRequest };
        }

        // One row more than the page tells whether there is a next page, without counting the table.
        var runs = await request.Client.ListAsync(filter.ToWorkflowQuery(limit: filter.Count + 1), request.Http.RequestAborted).ConfigureAwait(false);
        return new WorkflowListPage(filter, runs.Take(filter.Count).ToList(), runs.Count > filter.Count, names);
    }

    public static async Task<WorkflowDashboardPage> LoadRunAsync(WorkflowPageRequest request)
    {
        var id = request.RouteId;
        var run = await request.Client.GetAsync(id, request.Http.RequestAborted).ConfigureAwait(false);
        if (run is null)
        {
            return new WorkflowRunNotFoundPage(id) { StatusCode = StatusCodes.Status404NotFound };
        }

        var (forkSteps, forks) = await LoadForkDataAsync(request, run).ConfigureAwait(false);
        return new WorkflowRunPage(run, await LoadFailedItemsAsync(request, run).ConfigureAwait(false)) { ForkSteps = forkSteps, Forks = forks };
    }

    /// <summary>What the Fork panel needs: the deployed definition's steps (null when not registered here) and the run's forks.</summary>
    private static async Task<(IReadOnlyList<string>? Steps, IReadOnlyList<WorkflowForkLink> Forks)> LoadForkDataAsync(WorkflowPageRequest request, WorkflowRun run)
    {
        var steps = request.Http.RequestServices.GetService<WorkflowRegistry>()?.Find(run.WorkflowName)?.StepNames;
        var store = request.Http.RequestServices.GetService<IWorkflowStore>();
        var forks = store is null ? [] : await store.ListForksAsync(run.Id, WorkflowRunPage.MaxForksShown + 1, request.Http.RequestAborted).ConfigureAwait(false);
        return (steps, forks);
    }

    /// <summary>A page of the failed fan-out items of each step that has some (the step named by <c>items_step</c> at <c>items_from</c>).</summary>
    private static async Task<IReadOnlyDictionary<Guid, WorkflowItemsPage>> LoadFailedItemsAsync(WorkflowPageRequest request, WorkflowRun run)
    {
        var pages = new Dictionary<Guid, WorkflowItemsPage>();
        if (request.Http.RequestServices.GetService<IWorkflowStore>() is not { } store)
        {
            return pages;
        }

        var query = request.Http.Request.Query;
        foreach (var step in run.Steps.Where(s => s.Items is { Failed: > 0 }))
        {
            var from = string.Equals(query["items_step"], step.StepName, StringComparison.Ordinal)
                       && int.TryParse(query["items_from"], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var offset)
                ? offset
                : 0;
            var items = await store.GetStepItemsAsync(step.Id, WorkflowStatus.Failed, from, WorkflowItemsPage.Size + 1, request.Http.RequestAborted)
                .ConfigureAwait(false);
            pages[step.Id] = new WorkflowItemsPage(items.Take(WorkflowItemsPage.Size).ToList(), from, items.Count > WorkflowItemsPage.Size);
        }

        return pages;
    }
}
