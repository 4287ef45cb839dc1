using Newtonsoft.Json.Linq;

namespace Workflow.Jobs;

/// <summary>
/// A JSON object with one part per data key (<see cref="WorkflowKeyAttribute"/>), read back as typed
/// objects with <see cref="Get{T}"/>. Base of <see cref="WorkflowInput"/> and <see cref="WorkflowOutput"/>.
/// </summary>
public abstract class CompositeWorkflowData
{
    private readonly Dictionary<string, JObject> _parts = new(StringComparer.Ordinal);
    private readonly Dictionary<string, WorkflowData> _typed = new(StringComparer.Ordinal);

    /// <summary>Creates an empty composite.</summary>
    protected CompositeWorkflowData() { }

    /// <summary>Creates a composite holding the given parts, each under its key.</summary>
    protected CompositeWorkflowData(IEnumerable<WorkflowData> parts)
    {
        ArgumentNullException.ThrowIfNull(parts);
        foreach (var part in parts)
        {
            Set(part);
        }
    }

    /// <summary>The keys present.</summary>
    public IReadOnlyCollection<string> Keys => _parts.Keys;

    /// <summary>Whether a part is present under the key of <typeparamref name="T"/>.</summary>
    public bool Contains<T>() where T : WorkflowData => _parts.ContainsKey(WorkflowData.GetKey<T>());

    /// <summary>The part stored under the key of <typeparamref name="T"/>, or <c>null</c> when absent.</summary>
    public T? Get<T>() where T : WorkflowData
    {
        var key = WorkflowData.GetKey<T>();
        if (_typed.TryGetValue(key, out var cached) && cached is T typed)
        {
            return typed;
        }

        if (!_parts.TryGetValue(key, out var json))
        {
            return null;
        }

        var value = (T)WorkflowDataReader.Read(typeof(T), json, key, WorkflowDataReadMode.Lenient);
        _typed[key] = value;
        return value;
    }

    /// <summary>The raw JSON of one part, or <c>null</c>.</summary>
    public JObject? GetJson(string key) => _parts.TryGetValue(key, out var json) ? json : null;

    /// <summary>Stores a part under its key, replacing any earlier one.</summary>
    public void Set(WorkflowData part)
    {
        ArgumentNullException.ThrowIfNull(part);
        var key = WorkflowData.GetKey(part.GetType());
        _parts[key] = part.ToJson();
        _typed[key] = part;
    }

    internal void SetJson(string key, JObject json, WorkflowData? typed = null)
    {
        _parts[key] = json;
        if (typed is null)
        {
            _typed.Remove(key);
        }
        else
        {
            _typed[key] = typed;
        }
    }

    /// <summary>The whole composite as one JSON object (a copy).</summary>
    public JObject ToJson()
    {
        var result = new JObject();
        foreach (var (key, value) in _parts)
        {
            result[key] = value.DeepClone();
        }

        return result;
    }

    /// <summary>Fills the composite from a JSON object whose properties must all be objects.</summary>
    protected void Load(JObject json)
    {
        ArgumentNullException.ThrowIfNull(json);
        var errors = new List<WorkflowDataError>();
        foreach (var property in json.Properties())
        {
            if (property.Value is JObject part && WorkflowJson.IsDeeperThan(part, WorkflowJson.MaxDepth))
            {
                errors.Add(new WorkflowDataError(property.Name, $"Nested deeper than the maximum depth of {WorkflowJson.MaxDepth} levels."));
            }
            else if (property.Value is JObject valid)
            {
                _parts[property.Name] = (JObject)valid.DeepClone();
            }
            else
            {
                errors.Add(new WorkflowDataError(property.Name, $"Expected an object but got {WorkflowJson.Describe(property.Value.Type)}."));
            }
        }

        if (errors.Count > 0)
        {
            throw new WorkflowDataValidationException(errors);
        }
    }

    /// <inheritdoc />
    public override string ToString() => ToJson().ToString(Newtonsoft.Json.Formatting.None);
}

/// <summary>
/// The composite input of a run: one part per step input key. A step whose key is absent gets its
/// input built from <c>{}</c> (its defaults).
/// </summary>
public sealed class WorkflowInput : CompositeWorkflowData
{
    /// <summary>Creates an input holding the given step inputs, each under its key.</summary>
    public WorkflowInput(params WorkflowData[] parts) : base(parts) { }

    /// <summary>Creates an input holding the given step inputs, each under its key.</summary>
    public WorkflowInput(IEnumerable<WorkflowData> parts) : base(parts) { }

    /// <summary>Wraps a composite JSON object (<c>{"test_step_input": {...}}</c>). It is validated against a workflow when enqueued.</summary>
    /// <exception cref="WorkflowDataValidationException">A part is not a JSON object.</exception>
    public static WorkflowInput FromJson(JObject json)
    {
        var input = new WorkflowInput();
        input.Load(json);
        return input;
    }
}

/// <summary>The composite output of a run: one part per step output key.</summary>
public sealed class WorkflowOutput : CompositeWorkflowData
{
    /// <summary>Creates an output holding the given step outputs, each under its key.</summary>
    public WorkflowOutput(params WorkflowData[] parts) : base(parts) { }

    /// <summary>Wraps a composite JSON object.</summary>
    /// <exception cref="WorkflowDataValidationException">A part is not a JSON object.</exception>
    public static WorkflowOutput FromJson(JObject json)
    {
        var output = new WorkflowOutput();
        output.Load(json);
        return output;
    }
}
