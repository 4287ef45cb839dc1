using System.Globalization;
using Microsoft.AspNetCore.Http;

namespace Workflow.Jobs.Hangfire.Dashboard;

/// <summary>
/// The list page's filters and paging, read from the query string (<c>status</c>, <c>name</c>, <c>from</c>,
/// <c>count</c>). <see cref="Errors"/> names each parameter that cannot be applied (an unknown status, a name that
/// PostgreSQL cannot compare); the page then shows them instead of runs.
/// </summary>
internal sealed record WorkflowListFilter(WorkflowStatus? Status, string? Name, int From, int Count)
{
    public const int DefaultCount = 20;
    public static readonly IReadOnlyList<int> Counts = [10, 20, 50, 100, 500];

    /// <summary>What is wrong with the query string, one message per parameter; empty when the filter applies.</summary>
    public IReadOnlyList<string> Errors { get; init; } = [];

    public static WorkflowListFilter Default { get; } = new(null, null, 0, DefaultCount);

    public static WorkflowListFilter Parse(IQueryCollection query)
    {
        var errors = new List<string>();
        var statusText = query["status"].ToString();
        // The parser the HTTP API uses too: one declared name, case-insensitive; no numbers, no "Running,Succeeded".
        if (!WorkflowStatusText.TryParse(statusText, out var status))
        {
            errors.Add($"The parameter 'status' has the unknown value '{Printable(statusText)}'; expected one of: {WorkflowStatusText.Expected}.");
        }

        var name = query["name"].ToString().Trim();
        if (!WorkflowStatusText.IsStorable(name))
        {
            errors.Add("The parameter 'name' contains a NUL character, which no workflow name has.");
            name = string.Empty;
        }

        var from = int.TryParse(query["from"].ToString(), NumberStyles.None, CultureInfo.InvariantCulture, out var f) ? f : 0;
        var count = int.TryParse(query["count"].ToString(), NumberStyles.None, CultureInfo.InvariantCulture, out var c) && Counts.Contains(c) ? c : DefaultCount;
        return new WorkflowListFilter(status, name.Length == 0 ? null : name, from, count) { Errors = errors };
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

    /// <summary>A value as it may be shown back: control characters replaced, at most 40 characters.</summary>
    private static string Printable(string text)
    {
        var printable = new string(text.Trim().Select(ch => char.IsControl(ch) ? '\uFFFD' : ch).ToArray());
        return printable.Length <= 40 ? printable : printable[..40] + "…";
    }
}
