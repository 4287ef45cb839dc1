using System.Collections.ObjectModel;
using Newtonsoft.Json;
using Newtonsoft.Json.Linq;

namespace Workflow.Jobs;

/// <summary>
/// The rules of run tags (<see cref="EnqueueOptions.Tags"/>) and of tag filters (<see cref="WorkflowQuery.Tags"/>),
/// and their JSON form in storage (a flat object of strings, keys in ordinal order).
/// </summary>
internal static class WorkflowTags
{
    public const int MaxTags = 20;
    public const int MaxKeyLength = 64;
    public const int MaxValueLength = 200;

    public static IReadOnlyDictionary<string, string> Empty { get; } = new ReadOnlyDictionary<string, string>(new Dictionary<string, string>());

    /// <summary>
    /// Checks tags given at enqueue; throws <see cref="WorkflowDataValidationException"/> with a path per bad tag
    /// (<c>tags.customer</c>). Returns a copy (empty when none), so later changes by the caller do not reach the run.
    /// </summary>
    public static IReadOnlyDictionary<string, string> ValidateForEnqueue(IReadOnlyDictionary<string, string>? tags)
    {
        if (tags is null || tags.Count == 0)
        {
            return Empty;
        }

        var errors = new List<WorkflowDataError>();
        if (tags.Count > MaxTags)
        {
            errors.Add(new WorkflowDataError("tags", $"At most {MaxTags} tags; {tags.Count} were given."));
        }

        foreach (var (key, value) in tags)
        {
            if (KeyError(key) is { } keyError)
            {
                errors.Add(new WorkflowDataError(Path(key), keyError));
            }
            else if (ValueError(value) is { } valueError)
            {
                errors.Add(new WorkflowDataError(Path(key), valueError));
            }
        }

        if (errors.Count > 0)
        {
            throw new WorkflowDataValidationException(errors);
        }

        return new ReadOnlyDictionary<string, string>(tags.ToDictionary(t => t.Key, t => t.Value, StringComparer.Ordinal));
    }

    /// <summary>What is wrong with a tag filter of a query (the same rules as at enqueue: it could not match otherwise); null when it applies.</summary>
    public static string? FilterError(IReadOnlyDictionary<string, string> tags)
    {
        if (tags.Count > MaxTags)
        {
            return $"WorkflowQuery.Tags: at most {MaxTags} tags; {tags.Count} were given.";
        }

        foreach (var (key, value) in tags)
        {
            var error = KeyError(key) ?? ValueError(value);
            if (error is not null)
            {
                return $"WorkflowQuery.Tags: {Path(key)}: {error}";
            }
        }

        return null;
    }

    /// <summary>The stored form: a JSON object of strings.</summary>
    public static string ToJson(IReadOnlyDictionary<string, string>? tags)
    {
        var json = new JObject();
        if (tags is not null)
        {
            foreach (var (key, value) in tags.OrderBy(t => t.Key, StringComparer.Ordinal))
            {
                json[key] = value;
            }
        }

        return json.ToString(Formatting.None);
    }

    /// <summary>Reads the stored form; anything that is not a string value is skipped.</summary>
    public static IReadOnlyDictionary<string, string> FromJson(string? json)
    {
        if (string.IsNullOrEmpty(json) || json == "{}")
        {
            return Empty;
        }

        var tags = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var property in WorkflowJson.ParseObject(json).Properties())
        {
            if (property.Value.Type == JTokenType.String)
            {
                tags[property.Name] = property.Value.Value<string>()!;
            }
        }

        return new ReadOnlyDictionary<string, string>(tags);
    }

    private static string? KeyError(string? key) => key switch
    {
        null or "" => "A tag key must not be empty.",
        { Length: > MaxKeyLength } => $"A tag key has at most {MaxKeyLength} characters.",
        _ when !WorkflowStatusText.IsStorable(key) => "A tag key must not contain NUL characters.",
        _ => null,
    };

    private static string? ValueError(string? value) => value switch
    {
        null => "A tag value must not be null.",
        { Length: > MaxValueLength } => $"A tag value has at most {MaxValueLength} characters.",
        _ when !WorkflowStatusText.IsStorable(value) => "A tag value must not contain NUL characters.",
        _ => null,
    };

    private static string Path(string? key)
        => "tags." + new string((key ?? string.Empty).Take(MaxKeyLength + 1).Select(ch => char.IsControl(ch) ? '\uFFFD' : ch).ToArray());
}
