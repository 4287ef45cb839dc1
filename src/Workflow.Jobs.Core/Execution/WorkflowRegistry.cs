using System.Reflection;

namespace Workflow.Jobs;

/// <summary>A registered workflow, as the engine sees it.</summary>
internal sealed class WorkflowDescriptor
{
    public required string Name { get; init; }
    public required Type DefinitionType { get; init; }
    public required IReadOnlyList<StepDescriptor> Steps { get; init; }
    public required IReadOnlyList<string> StepNames { get; init; }
    public WorkflowRetryPolicy? Retry { get; init; }

    /// <summary>The payload types of the events the definition declares (<see cref="WorkflowDefinition.Events"/>), by name.</summary>
    public IReadOnlyDictionary<string, Type> Events { get; init; } = new Dictionary<string, Type>();

    public bool CompensateOnFailure { get; init; }

    /// <summary>At most this many runs of the workflow execute at once (<see cref="WorkflowDefinition.MaxConcurrency"/>).</summary>
    public int? MaxConcurrency { get; init; }

    /// <summary>At most this many runs per concurrency key execute at once (<see cref="WorkflowDefinition.MaxConcurrencyPerKey"/>).</summary>
    public int? MaxConcurrencyPerKey { get; init; }

    /// <summary>Whether the workflow limits how many of its runs execute at once.</summary>
    public bool HasFlowControl => MaxConcurrency is not null || MaxConcurrencyPerKey is not null;
}

/// <summary>A step of a registered workflow.</summary>
internal sealed class StepDescriptor
{
    public required int Index { get; init; }
    public required string Name { get; init; }
    public required Type StepType { get; init; }
    public required Type InputType { get; init; }
    public required string InputKey { get; init; }
    public required Type OutputType { get; init; }
    public required string OutputKey { get; init; }
}

/// <summary>A workflow type added with <c>AddWorkflow&lt;T&gt;()</c>.</summary>
internal sealed record WorkflowRegistration(Type DefinitionType);

/// <summary>All registered workflows, checked once when built.</summary>
internal sealed class WorkflowRegistry
{
    private readonly Dictionary<string, WorkflowDescriptor> _byName = new(StringComparer.Ordinal);
    private readonly Dictionary<Type, WorkflowDescriptor> _byType = [];

    public WorkflowRegistry(IEnumerable<WorkflowRegistration> registrations)
    {
        var errors = new List<string>();
        foreach (var type in registrations.Select(r => r.DefinitionType).Distinct())
        {
            try
            {
                var descriptor = Describe(type);
                if (_byName.TryGetValue(descriptor.Name, out var other))
                {
                    errors.Add($"Workflow name '{descriptor.Name}' is used by both '{other.DefinitionType.FullName}' and '{type.FullName}'.");
                    continue;
                }

                _byName.Add(descriptor.Name, descriptor);
                _byType.Add(type, descriptor);
            }
            catch (WorkflowDefinitionException ex)
            {
                errors.Add(ex.Message);
            }
        }

        if (errors.Count > 0)
        {
            throw new WorkflowDefinitionException("Invalid workflow definitions: " + string.Join(" ", errors));
        }
    }

    public IReadOnlyCollection<WorkflowDescriptor> All => _byName.Values;

    public WorkflowDescriptor? Find(string name) => _byName.GetValueOrDefault(name);

    public WorkflowDescriptor Get(Type definitionType)
        => _byType.GetValueOrDefault(definitionType)
           ?? throw new InvalidOperationException($"Workflow '{definitionType.FullName}' is not registered; call AddWorkflow<{definitionType.Name}>().");

    public static string NameOf(Type type) => type.GetCustomAttribute<WorkflowNameAttribute>(inherit: false)?.Name ?? type.Name;

    internal static WorkflowDescriptor Describe(Type type)
    {
        if (!typeof(WorkflowDefinition).IsAssignableFrom(type) || type.IsAbstract)
        {
            throw new WorkflowDefinitionException($"'{type.FullName}' is not a concrete {nameof(WorkflowDefinition)}.");
        }

        WorkflowDefinition definition;
        try
        {
            definition = (WorkflowDefinition)Activator.CreateInstance(type)!;
        }
        catch (Exception ex) when (ex is MissingMethodException or TargetInvocationException)
        {
            throw new WorkflowDefinitionException($"Workflow '{type.FullName}' needs a public parameterless constructor.", ex);
        }

        var stepTypes = definition.Steps ?? throw new WorkflowDefinitionException($"Workflow '{type.FullName}' has no Steps.");
        if (stepTypes.Count == 0)
        {
            throw new WorkflowDefinitionException($"Workflow '{type.FullName}' has no steps.");
        }

        var steps = new List<StepDescriptor>();
        var inputKeys = new Dictionary<string, Type>(StringComparer.Ordinal);
        var outputKeys = new Dictionary<string, Type>(StringComparer.Ordinal);
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var stepType in stepTypes)
        {
            if (stepType is null)
            {
                throw new WorkflowDefinitionException($"Workflow '{type.FullName}' lists a null step type.");
            }

            var generic = FindStepBase(stepType)
                ?? throw new WorkflowDefinitionException($"Step type '{stepType.FullName}' of workflow '{type.FullName}' is not a concrete WorkflowStep<TInput, TOutput>.");
            var inputType = generic.GetGenericArguments()[0];
            var outputType = generic.GetGenericArguments()[1];
            var inputKey = KeyOf(inputType, stepType);
            var outputKey = KeyOf(outputType, stepType);
            if (inputKeys.TryGetValue(inputKey, out var clash))
            {
                throw new WorkflowDefinitionException($"Steps '{clash.FullName}' and '{stepType.FullName}' of workflow '{type.FullName}' share the input key '{inputKey}'.");
            }

            if (outputKeys.TryGetValue(outputKey, out clash))
            {
                throw new WorkflowDefinitionException($"Steps '{clash.FullName}' and '{stepType.FullName}' of workflow '{type.FullName}' share the output key '{outputKey}'.");
            }

            var name = NameOf(stepType);
            if (!names.Add(name))
            {
                throw new WorkflowDefinitionException($"Workflow '{type.FullName}' has two steps named '{name}' ('{stepType.FullName}').");
            }

            inputKeys[inputKey] = stepType;
            outputKeys[outputKey] = stepType;
            steps.Add(new StepDescriptor
            {
                Index = steps.Count,
                Name = name,
                StepType = stepType,
                InputType = inputType,
                InputKey = inputKey,
                OutputType = outputType,
                OutputKey = outputKey,
            });
        }

        return new WorkflowDescriptor
        {
            Name = NameOf(type),
            DefinitionType = type,
            Steps = steps,
            StepNames = steps.Select(s => s.Name).ToArray(),
            Retry = definition.Retry,
            Events = DescribeEvents(type, definition),
            CompensateOnFailure = definition.CompensateOnFailure,
            MaxConcurrency = Limit(type, nameof(WorkflowDefinition.MaxConcurrency), definition.MaxConcurrency),
            MaxConcurrencyPerKey = Limit(type, nameof(WorkflowDefinition.MaxConcurrencyPerKey), definition.MaxConcurrencyPerKey),
        };
    }

    private static int? Limit(Type type, string property, int? value)
    {
        if (value is < 1 or > FlowControl.MaxLimit)
        {
            throw new WorkflowDefinitionException($"Workflow '{type.FullName}' has {property} = {value}: it must be null (no limit) or 1 to {FlowControl.MaxLimit}.");
        }

        return value;
    }

    private static Dictionary<string, Type> DescribeEvents(Type type, WorkflowDefinition definition)
    {
        var events = new Dictionary<string, Type>(StringComparer.Ordinal);
        foreach (var (name, dataType) in definition.Events ?? new Dictionary<string, Type>())
        {
            if (string.IsNullOrWhiteSpace(name) || name.Length > WorkflowEvents.MaxNameLength || name == WaitKinds.Sleep || name == WaitKinds.Children
                || name == FlowControl.WaitingFor)
            {
                throw new WorkflowDefinitionException($"Workflow '{type.FullName}' declares an event named '{name}': an event name is 1 to {WorkflowEvents.MaxNameLength} characters and not '{WaitKinds.Sleep}', '{WaitKinds.Children}' or '{FlowControl.WaitingFor}'.");
            }

            if (dataType is null || !typeof(WorkflowData).IsAssignableFrom(dataType) || dataType.IsAbstract)
            {
                throw new WorkflowDefinitionException($"Event '{name}' of workflow '{type.FullName}' must have a concrete WorkflowData type, not '{dataType?.FullName}'.");
            }

            events[name] = dataType;
        }

        return events;
    }

    private static Type? FindStepBase(Type stepType)
    {
        if (stepType.IsAbstract || stepType.IsInterface)
        {
            return null;
        }

        for (var t = stepType; t is not null; t = t.BaseType)
        {
            if (t.IsGenericType && t.GetGenericTypeDefinition() == typeof(WorkflowStep<,>))
            {
                return t;
            }
        }

        return null;
    }

    private static string KeyOf(Type dataType, Type stepType)
    {
        try
        {
            return WorkflowData.GetKey(dataType);
        }
        catch (WorkflowDefinitionException ex)
        {
            throw new WorkflowDefinitionException($"{ex.Message} (used by step '{stepType.FullName}')", ex);
        }
    }
}
