namespace Workflow.Jobs;

/// <summary>
/// Names the key under which a <see cref="WorkflowData"/> class is stored inside a composite
/// <see cref="WorkflowInput"/> or <see cref="WorkflowOutput"/> (for example <c>"create_customer_output"</c>).
/// </summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = false, Inherited = false)]
public sealed class WorkflowKeyAttribute : Attribute
{
    /// <summary>Creates the attribute.</summary>
    /// <param name="key">The JSON key; must not be empty.</param>
    public WorkflowKeyAttribute(string key)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(key);
        Key = key;
    }

    /// <summary>The JSON key of the data class.</summary>
    public string Key { get; }
}

/// <summary>
/// Gives a workflow definition or a step the name that is persisted with its runs. Without it the
/// class name is used. Because the name, not the CLR type, is stored, renaming a class while keeping
/// the attribute does not orphan existing runs.
/// </summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = false, Inherited = false)]
public sealed class WorkflowNameAttribute : Attribute
{
    /// <summary>Creates the attribute.</summary>
    /// <param name="name">The persisted name; must not be empty.</param>
    public WorkflowNameAttribute(string name)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        Name = name;
    }

    /// <summary>The persisted name.</summary>
    public string Name { get; }
}
