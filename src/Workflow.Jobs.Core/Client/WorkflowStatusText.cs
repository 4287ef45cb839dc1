namespace Workflow.Jobs;

/// <summary>
/// The one parser of status names given as text (HTTP query strings, dashboard filters), so every
/// surface accepts exactly the same values: one declared name, case-insensitive, nothing else
/// (no numbers, no flag combinations such as "Running,Succeeded").
/// </summary>
internal static class WorkflowStatusText
{
    /// <summary>The accepted names, for error messages.</summary>
    public static string Expected { get; } = string.Join(", ", Enum.GetNames<WorkflowStatus>());

    /// <summary>Parses one status name; false (and null) for anything else. Empty text is no filter (true, null).</summary>
    public static bool TryParse(string? text, out WorkflowStatus? status)
    {
        status = null;
        var trimmed = text?.Trim();
        if (string.IsNullOrEmpty(trimmed))
        {
            return true;
        }

        foreach (var name in Enum.GetNames<WorkflowStatus>())
        {
            if (name.Equals(trimmed, StringComparison.OrdinalIgnoreCase))
            {
                status = Enum.Parse<WorkflowStatus>(name);
                return true;
            }
        }

        return false;
    }

    /// <summary>Whether a text can be sent to PostgreSQL as a text parameter (it refuses NUL characters).</summary>
    public static bool IsStorable(string? text) => text is null || !text.Contains('\0', StringComparison.Ordinal);
}
