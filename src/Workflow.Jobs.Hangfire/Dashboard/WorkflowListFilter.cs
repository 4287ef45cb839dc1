using System.Globalization;
using Microsoft.AspNetCore.Http;

namespace Workflow.Jobs.Hangfire.Dashboard;

/// <summary>
/// The list page's filters and paging, read from the query string: <c>status</c>, <c>name</c>, <c>error</c> (text in the
/// last error, ignoring case), <c>key</c> (idempotency key), <c>ckey</c> (concurrency key), <c>after</c> and <c>before</c> (created range, ISO 8601,
/// UTC unless an offset is given), <c>tag</c> (<c>key:value</c>, repeatable, all must match), <c>from</c> and
/// <c>count</c>, and <c>parent</c> (the child runs of one run, by its id). <see cref="Errors"/> names each parameter that cannot be applied (an unknown status, a text that
/// PostgreSQL cannot compare, a date it cannot read); the page then shows them instead of runs.
/// </summary>
internal sealed record WorkflowListFilter(WorkflowStatus? Status, string? Name, int From, int Count)
{
    public const int DefaultCount = 20;
    public static readonly IReadOnlyList<int> Counts = [10, 20, 50, 100, 500];

    /// <summary>What is wrong with the query string, one message per parameter; empty when the filter applies.</summary>
    public IReadOnlyList<string> Errors { get; init; } = [];

    /// <summary>Text the run's last error must contain (ignoring case).</summary>
    public string? Error { get; init; }

    /// <summary>The run's idempotency key (exact).</summary>
    public string? Key { get; init; }

    /// <summary>The run's concurrency key (exact).</summary>
    public string? ConcurrencyKey { get; init; }

    /// <summary>The child runs of this run.</summary>
    public Guid? Parent { get; init; }

    /// <summary>Runs created at or after this time.</summary>
    public DateTimeOffset? After { get; init; }

    /// <summary>Runs created before this time.</summary>
    public DateTimeOffset? Before { get; init; }

    /// <summary>Tags the run must all have, in the order given.</summary>
    public IReadOnlyList<KeyValuePair<string, string>> Tags { get; init; } = [];

    public static WorkflowListFilter Default { get; } = new(null, null, 0, DefaultCount);

    /// <summary>Whether any filter (besides paging) is set.</summary>
    public bool IsFiltered => Status is not null || Name is not null || Error is not null || Key is not null || ConcurrencyKey is not null || Parent is not null || After is not null || Before is not null
        || Tags.Count > 0;

    public static WorkflowListFilter Parse(IQueryCollection query)
    {
        var errors = new List<string>();
        var statusText = query["status"].ToString();
        // The parser the HTTP API uses too: one declared name, case-insensitive; no numbers, no "Running,Succeeded".
        if (!WorkflowStatusText.TryParse(statusText, out var status))
        {
            errors.Add($"The parameter 'status' has the unknown value '{Printable(statusText)}'; expected one of: {WorkflowStatusText.Expected}.");
        }

        var name = Text(query, "name", "no workflow name has", errors);
        var error = Text(query, "error", "no error message has", errors);
        if (error is { Length: > WorkflowQueryRules.MaxErrorContainsLength })
        {
            errors.Add($"The parameter 'error' has more than {WorkflowQueryRules.MaxErrorContainsLength} characters.");
            error = null;
        }

        var key = Text(query, "key", "no idempotency key has", errors);
        var concurrencyKey = Text(query, "ckey", "no concurrency key has", errors);
        var parentText = query["parent"].ToString().Trim();
        Guid? parent = null;
        if (parentText.Length > 0)
        {
            if (Guid.TryParse(parentText, out var parentId))
            {
                parent = parentId;
            }
            else
            {
                errors.Add($"The parameter 'parent' has the value '{Printable(parentText)}', which is not a run id.");
            }
        }

        var after = Time(query, "after", errors);
        var before = Time(query, "before", errors);
        var tags = new List<KeyValuePair<string, string>>();
        foreach (var tag in query["tag"])
        {
            if (string.IsNullOrWhiteSpace(tag))
            {
                continue;
            }

            var colon = tag.IndexOf(':', StringComparison.Ordinal);
            var pair = colon <= 0 ? default : KeyValuePair.Create(tag[..colon].Trim(), tag[(colon + 1)..].Trim());
            var problem = colon <= 0 ? "is not key:value"
                : WorkflowTags.FilterError(new Dictionary<string, string> { [pair.Key] = pair.Value }) is { } rule ? rule.Replace("WorkflowQuery.Tags: ", string.Empty, StringComparison.Ordinal)
                : tags.Any(t => t.Key == pair.Key) ? "repeats a key (a run has one value per key)"
                : null;
            if (problem is not null)
            {
                errors.Add($"The parameter 'tag' '{Printable(tag)}' {problem}.");
                continue;
            }

            tags.Add(pair);
        }

        var from = int.TryParse(query["from"].ToString(), NumberStyles.None, CultureInfo.InvariantCulture, out var f) ? f : 0;
        var count = int.TryParse(query["count"].ToString(), NumberStyles.None, CultureInfo.InvariantCulture, out var c) && Counts.Contains(c) ? c : DefaultCount;
        return new WorkflowListFilter(status, name, from, count)
        {
            Errors = errors,
            Error = error,
            Key = key,
            ConcurrencyKey = concurrencyKey,
            Parent = parent,
            After = after,
            Before = before,
            Tags = tags,
        };
    }

    /// <summary>The client query of this filter.</summary>
    public WorkflowQuery ToWorkflowQuery(int limit) => new()
    {
        WorkflowName = Name,
        Status = Status,
        ErrorContains = Error,
        IdempotencyKey = Key,
        ConcurrencyKey = ConcurrencyKey,
        ParentId = Parent,
        CreatedAfter = After,
        CreatedBefore = Before,
        Tags = Tags.Count == 0 ? null : Tags.ToDictionary(t => t.Key, t => t.Value, StringComparer.Ordinal),
        Offset = From,
        Limit = limit,
    };

    /// <summary>The query string of this filter with some values replaced (for links): every filter is carried along.</summary>
    public string ToQuery(WorkflowStatus? status = null, bool clearStatus = false, int? from = null, int? count = null)
    {
        var parts = new List<string>();
        var s = clearStatus ? null : status ?? Status;
        if (s is not null)
        {
            parts.Add("status=" + s.Value.ToString());
        }

        Add(parts, "name", Name);
        Add(parts, "error", Error);
        Add(parts, "key", Key);
        Add(parts, "ckey", ConcurrencyKey);
        Add(parts, "parent", Parent?.ToString());
        Add(parts, "after", FormatTime(After));
        Add(parts, "before", FormatTime(Before));
        foreach (var (key, value) in Tags)
        {
            Add(parts, "tag", key + ":" + value);
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

    /// <summary>A time as the form shows it and the query string carries it: UTC, to the second, no offset.</summary>
    public static string? FormatTime(DateTimeOffset? time)
        => time?.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss", CultureInfo.InvariantCulture);

    private static void Add(List<string> parts, string name, string? value)
    {
        if (value is not null)
        {
            parts.Add(name + "=" + Uri.EscapeDataString(value));
        }
    }

    private static string? Text(IQueryCollection query, string parameter, string nulReason, List<string> errors)
    {
        var text = query[parameter].ToString().Trim();
        if (!WorkflowStatusText.IsStorable(text))
        {
            errors.Add($"The parameter '{parameter}' contains a NUL character, which {nulReason}.");
            return null;
        }

        return text.Length == 0 ? null : text;
    }

    private static DateTimeOffset? Time(IQueryCollection query, string parameter, List<string> errors)
    {
        var text = query[parameter].ToString().Trim();
        if (text.Length == 0)
        {
            return null;
        }

        if (DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var time))
        {
            return time;
        }

        errors.Add($"The parameter '{parameter}' has the value '{Printable(text)}', which is not a date and time (expected ISO 8601, such as 2026-01-31T08:00, UTC).");
        return null;
    }

    /// <summary>A value as it may be shown back: control characters replaced, at most 40 characters.</summary>
    private static string Printable(string text)
    {
        var printable = new string(text.Trim().Select(ch => char.IsControl(ch) ? '\uFFFD' : ch).ToArray());
        return printable.Length <= 40 ? printable : printable[..40] + "…";
    }
}
