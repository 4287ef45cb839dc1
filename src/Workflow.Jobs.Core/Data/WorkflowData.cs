using System.Collections.Concurrent;
using System.Reflection;
using Newtonsoft.Json.Linq;

namespace Workflow.Jobs;

/// <summary>
/// Base class of every step input and output. Subclasses carry a <see cref="WorkflowKeyAttribute"/>,
/// map their properties with Newtonsoft.Json attributes and validate with
/// <see cref="System.ComponentModel.DataAnnotations"/> attributes or <see cref="System.ComponentModel.DataAnnotations.IValidatableObject"/>.
/// </summary>
public abstract class WorkflowData
{
    private static readonly ConcurrentDictionary<Type, string> Keys = new();

    /// <summary>Serializes this object to JSON with the workflow conventions.</summary>
    public JObject ToJson()
    {
        // Through text, so that Guids, dates and enums are plain JSON strings in the result.
        using var text = new StringWriter(System.Globalization.CultureInfo.InvariantCulture);
        WorkflowJson.Serializer.Serialize(text, this);
        return WorkflowJson.ParseTrusted(text.ToString());
    }

    /// <summary>
    /// Reads and validates an object of type <typeparamref name="T"/>. Unknown fields are refused.
    /// </summary>
    /// <exception cref="WorkflowDataValidationException">With every problem found, paths in JSON names prefixed by the data key.</exception>
    public static T FromJson<T>(JObject json) where T : WorkflowData
        => (T)WorkflowDataReader.Read(typeof(T), json, GetKey<T>(), WorkflowDataReadMode.Strict);

    /// <summary>
    /// Reads and validates an object of the given <see cref="WorkflowData"/> type. Unknown fields are refused.
    /// </summary>
    /// <exception cref="WorkflowDataValidationException">With every problem found.</exception>
    public static WorkflowData FromJson(Type dataType, JObject json)
    {
        ArgumentNullException.ThrowIfNull(dataType);
        return WorkflowDataReader.Read(dataType, json, GetKey(dataType), WorkflowDataReadMode.Strict);
    }

    /// <summary>The <see cref="WorkflowKeyAttribute"/> key of a data class.</summary>
    /// <exception cref="WorkflowDefinitionException">The type is not a <see cref="WorkflowData"/> or has no key.</exception>
    public static string GetKey<T>() where T : WorkflowData => GetKey(typeof(T));

    /// <summary>The <see cref="WorkflowKeyAttribute"/> key of a data class.</summary>
    /// <exception cref="WorkflowDefinitionException">The type is not a <see cref="WorkflowData"/> or has no key.</exception>
    public static string GetKey(Type dataType)
    {
        ArgumentNullException.ThrowIfNull(dataType);
        return Keys.GetOrAdd(dataType, static t =>
        {
            if (!typeof(WorkflowData).IsAssignableFrom(t))
            {
                throw new WorkflowDefinitionException($"Type '{t.FullName}' is not a {nameof(WorkflowData)}.");
            }

            return t.GetCustomAttribute<WorkflowKeyAttribute>(inherit: false)?.Key
                ?? throw new WorkflowDefinitionException($"Data class '{t.FullName}' has no [{nameof(WorkflowKeyAttribute).Replace("Attribute", "", StringComparison.Ordinal)}(\"...\")] attribute.");
        });
    }
}
