namespace Workflow.Jobs;

/// <summary>One problem found in workflow data.</summary>
/// <param name="Path">Where the problem is, in JSON names (for example <c>test_step_input.argument_1</c> or <c>admin_users_input.admins[2].email</c>); empty for the whole document.</param>
/// <param name="Message">What is wrong.</param>
public sealed record WorkflowDataError(string Path, string Message)
{
    /// <inheritdoc />
    public override string ToString() => Path.Length == 0 ? Message : $"{Path}: {Message}";
}
