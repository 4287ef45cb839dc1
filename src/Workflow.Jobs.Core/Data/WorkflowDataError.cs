namespace Workflow.Jobs;

/// <summary>One problem found in workflow data.</summary>
/// <param name="Path">Where the problem is, in JSON names (for example <c>test_step_input.argument_1</c> or <c>admin_users_input.admins[2].email</c>); empty for the whole document.</param>
/// <param name="Message">What is wrong.</param>
/// <remarks>Both are shortened (with "…") when hostile input makes them very long: at most 200 and 300 characters.</remarks>
public sealed record WorkflowDataError(string Path, string Message)
{
    /// <summary>Where the problem is, in JSON names; empty for the whole document.</summary>
    public string Path { get; init; } = Shorten(Path, 200);

    /// <summary>What is wrong.</summary>
    public string Message { get; init; } = Shorten(Message, 300);

    /// <summary>Cuts a text that came from input to a readable length.</summary>
    internal static string Shorten(string? text, int maxLength)
        => text is null ? "" : text.Length <= maxLength ? text : string.Concat(text.AsSpan(0, maxLength - 1), "…");

    /// <inheritdoc />
    public override string ToString() => Path.Length == 0 ? Message : $"{Path}: {Message}";
}
