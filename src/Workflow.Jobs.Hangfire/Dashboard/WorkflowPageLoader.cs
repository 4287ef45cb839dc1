using System.Globalization;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace Workflow.Jobs.Hangfire.Dashboard;

/// <summary>Loads the data of the Workflows pages (all I/O of the pages happens here, asynchronously).</summary>
internal static class WorkflowPageLoader
{
    public static async Task<WorkflowDashboardPage> LoadListAsync(WorkflowPageRequest request)
    {
        var filter = WorkflowListFilter.Parse(request.Http.Request.Query);
        // One row more than the page tells whether there is a next page, without counting the table.
        var runs = await request.Client.ListAsync(new WorkflowQuery
        {
            WorkflowName = filter.Name,
            Status = filter.Status,
            Offset = filter.From,
            Limit = filter.Count + 1,
        }, request.Http.RequestAborted).ConfigureAwait(false);
        var names = request.Http.RequestServices.GetService<WorkflowRegistry>()?.All.Select(d => d.Name).Order(StringComparer.Ordinal).ToList() ?? [];
        return new WorkflowListPage(filter, runs.Take(filter.Count).ToList(), runs.Count > filter.Count, names);
    }

    public static async Task<WorkflowDashboardPage> LoadRunAsync(WorkflowPageRequest request)
    {
        var id = request.RouteId;
        var run = await request.Client.GetAsync(id, request.Http.RequestAborted).ConfigureAwait(false);
        return run is null
            ? new WorkflowRunNotFoundPage(id) { StatusCode = StatusCodes.Status404NotFound }
            : new WorkflowRunPage(run);
    }
}

/// <summary>The list page's filters and paging, read from the query string (<c>status</c>, <c>name</c>, <c>from</c>, <c>count</c>).</summary>
internal sealed record WorkflowListFilter(WorkflowStatus? Status, string? Name, int From, int Count)
{
    public const int DefaultCount = 20;
    public static readonly IReadOnlyList<int> Counts = [10, 20, 50, 100, 500];

    public static WorkflowListFilter Parse(IQueryCollection query)
    {
        WorkflowStatus? status = null;
        var statusText = query["status"].ToString().Trim();
        if (statusText.Length > 0 && !char.IsAsciiDigit(statusText[0]) && Enum.TryParse<WorkflowStatus>(statusText, ignoreCase: true, out var parsed)
            && Enum.IsDefined(parsed))
        {
            status = parsed;
        }

        var name = query["name"].ToString().Trim();
        var from = int.TryParse(query["from"].ToString(), NumberStyles.None, CultureInfo.InvariantCulture, out var f) ? f : 0;
        var count = int.TryParse(query["count"].ToString(), NumberStyles.None, CultureInfo.InvariantCulture, out var c) && Counts.Contains(c) ? c : DefaultCount;
        return new WorkflowListFilter(status, name.Length == 0 ? null : name, from, count);
    }

    /// <summary>The query string of this filter with some values replaced (for links).</summary>
    public string ToQuery(WorkflowStatus? status = null, bool clearStatus = false, int? from = null, int? count = null)
    {
        var parts = new List<string>();
        var s = clearStatus ? null : status ?? Status;
        if (s is not null)
        {
            parts.Add("status=" + s.Value.ToString());
        }

        if (Name is not null)
        {
            parts.Add("name=" + Uri.EscapeDataString(Name));
        }

        var newFrom = from ?? From;
        if (newFrom > 0)
        {
            parts.Add("from=" + newFrom.ToString(CultureInfo.InvariantCulture));
        }

        var newCount = count ?? Count;
        if (newCount != DefaultCount)
        {
            parts.Add("count=" + newCount.ToString(CultureInfo.InvariantCulture));
        }

        return parts.Count == 0 ? string.Empty : "?" + string.Join("&", parts);
    }
}
