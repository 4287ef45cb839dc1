using System.Collections;
using System.ComponentModel;
using System.ComponentModel.DataAnnotations;
using System.Reflection;
using Newtonsoft.Json;
using Newtonsoft.Json.Linq;
using Newtonsoft.Json.Serialization;

namespace Workflow.Jobs.Sample.Api;

/// <summary>
/// Describes the registered workflows for <c>GET /api/workflow-definitions</c>: each workflow's steps
/// and the shape of its composite input, per key. Field names and types come from Newtonsoft's
/// contract resolver (so they are the JSON names the input is read with); constraints come from the
/// DataAnnotations attributes; <c>required</c> means "an input without this field is refused".
/// </summary>
internal sealed class WorkflowSchema
{
    private const int MaxDepth = 8;
    private readonly IContractResolver _resolver = WorkflowJson.CreateSettings().ContractResolver!;
    private readonly JArray _definitions;
    private readonly WorkflowRetryPolicy _defaultRetry;

    public WorkflowSchema(WorkflowRegistry registry, WorkflowJobsOptions options)
    {
        _defaultRetry = options.DefaultRetry;
        // Built once: the registry does not change while the host runs.
        _definitions = new JArray(registry.All.OrderBy(w => w.Name, StringComparer.Ordinal).Select(Describe));
    }

    public JArray Definitions => (JArray)_definitions.DeepClone();

    private JObject Describe(WorkflowDescriptor workflow)
    {
        var input = new JObject();
        foreach (var step in workflow.Steps)
        {
            input[step.InputKey] = DescribeType(step.InputType, 0, []);
        }

        return new JObject
        {
            ["name"] = workflow.Name,
            ["steps"] = new JArray(workflow.Steps.Select(s => new JObject
            {
                ["name"] = s.Name,
                ["inputKey"] = s.InputKey,
                ["outputKey"] = s.OutputKey,
            })),
            ["input"] = input,
            ["retry"] = new JObject
            {
                ["attempts"] = (workflow.Retry ?? _defaultRetry).Attempts,
                ["delaysInSeconds"] = new JArray((workflow.Retry ?? _defaultRetry).DelaysInSeconds),
                ["source"] = workflow.Retry is null ? "host default (WorkflowJobs:Retry)" : "workflow definition",
            },
        };
    }

    private JObject DescribeType(Type type, int depth, HashSet<Type> path)
    {
        type = Nullable.GetUnderlyingType(type) ?? type;
        var contract = _resolver.ResolveContract(type);
        switch (contract)
        {
            case JsonPrimitiveContract:
                return Primitive(type);
            case JsonLinqContract:
                return new JObject { ["type"] = "any" };
            case JsonDictionaryContract dictionary:
                return new JObject
                {
                    ["type"] = "object",
                    ["additionalProperties"] = depth >= MaxDepth ? new JObject { ["type"] = "any" } : DescribeType(dictionary.DictionaryValueType ?? typeof(object), depth + 1, path),
                };
            case JsonArrayContract array:
                return new JObject
                {
                    ["type"] = "array",
                    ["items"] = depth >= MaxDepth ? new JObject { ["type"] = "any" } : DescribeType(array.CollectionItemType ?? typeof(object), depth + 1, path),
                };
            case JsonObjectContract obj when depth < MaxDepth && path.Add(type):
                try
                {
                    return new JObject { ["type"] = "object", ["fields"] = Fields(type, obj, depth, path) };
                }
                finally
                {
                    path.Remove(type);
                }

            default:
                return new JObject { ["type"] = type == typeof(object) ? "any" : "object" };
        }
    }

    private JArray Fields(Type type, JsonObjectContract contract, int depth, HashSet<Type> path)
    {
        var defaults = CreateDefault(type);
        var failingByDefault = FailingMembers(defaults);
        var fields = new JArray();
        foreach (var property in contract.Properties.Where(p => !p.Ignored && p.Writable && p.PropertyType is not null))
        {
            var field = DescribeType(property.PropertyType!, depth + 1, path);
            var described = new JObject { ["name"] = property.PropertyName };
            foreach (var (key, token) in field)
            {
                described[key] = token;
            }

            var required = property.Required is Required.Always or Required.AllowNull
                           || (property.UnderlyingName is { } member && failingByDefault.Contains(member));
            described["required"] = required;
            AddConstraints(described, property);
            if (!required && defaults is not null && property.ValueProvider?.GetValue(defaults) is { } value)
            {
                var token = JToken.FromObject(value, JsonSerializer.Create(WorkflowJson.CreateSettings()));
                if (token is not (JContainer { Count: 0 } or JValue { Type: JTokenType.String, Value: "" }))
                {
                    described["default"] = token;
                }
            }

            fields.Add(described);
        }

        return fields;
    }

    private static object? CreateDefault(Type type)
    {
        try
        {
            return type.GetConstructor(Type.EmptyTypes) is null ? null : Activator.CreateInstance(type);
        }
        catch (TargetInvocationException)
        {
            return null;
        }
    }

    /// <summary>Members whose default value fails validation: an input that leaves them out is refused.</summary>
    private static HashSet<string> FailingMembers(object? instance)
    {
        var members = new HashSet<string>(StringComparer.Ordinal);
        if (instance is null)
        {
            return members;
        }

        var results = new List<ValidationResult>();
        Validator.TryValidateObject(instance, new ValidationContext(instance), results, validateAllProperties: true);
        foreach (var result in results)
        {
            members.UnionWith(result.MemberNames);
        }

        return members;
    }

    private static void AddConstraints(JObject field, JsonProperty property)
    {
        var attributes = property.AttributeProvider?.GetAttributes(true) ?? [];
        var isArray = field["type"]?.Value<string>() == "array";
        foreach (var attribute in attributes)
        {
            switch (attribute)
            {
                case DescriptionAttribute description:
                    field["description"] = description.Description;
                    break;
                case RangeAttribute range:
                    field["minimum"] = JToken.FromObject(range.Minimum);
                    field["maximum"] = JToken.FromObject(range.Maximum);
                    break;
                case StringLengthAttribute length:
                    if (length.MinimumLength > 0)
                    {
                        field["minLength"] = length.MinimumLength;
                    }

                    field["maxLength"] = length.MaximumLength;
                    break;
                case MinLengthAttribute min:
                    field[isArray ? "minItems" : "minLength"] = min.Length;
                    break;
                case MaxLengthAttribute max:
                    field[isArray ? "maxItems" : "maxLength"] = max.Length;
                    break;
                case EmailAddressAttribute:
                    field["format"] = "email";
                    break;
                case UrlAttribute:
                    field["format"] = "uri";
                    break;
                case RegularExpressionAttribute regex:
                    field["pattern"] = regex.Pattern;
                    break;
                case AllowedValuesAttribute allowed:
                    field["enum"] = new JArray(allowed.Values.Select(v => v is null ? JValue.CreateNull() : JToken.FromObject(v)));
                    break;
            }
        }
    }

    private static JObject Primitive(Type type)
    {
        if (type.IsEnum)
        {
            // Enums are written as strings (StringEnumConverter in the workflow settings).
            return new JObject { ["type"] = "string", ["enum"] = new JArray(Enum.GetNames(type)) };
        }

        return Type.GetTypeCode(type) switch
        {
            TypeCode.Boolean => new JObject { ["type"] = "boolean" },
            TypeCode.Byte or TypeCode.SByte or TypeCode.Int16 or TypeCode.UInt16 or TypeCode.Int32 or TypeCode.UInt32 or TypeCode.Int64 or TypeCode.UInt64
                => new JObject { ["type"] = "integer" },
            TypeCode.Single or TypeCode.Double or TypeCode.Decimal => new JObject { ["type"] = "number" },
            TypeCode.DateTime => new JObject { ["type"] = "string", ["format"] = "date-time" },
            TypeCode.String or TypeCode.Char => new JObject { ["type"] = "string" },
            _ when type == typeof(Guid) => new JObject { ["type"] = "string", ["format"] = "uuid" },
            _ when type == typeof(DateTimeOffset) => new JObject { ["type"] = "string", ["format"] = "date-time" },
            _ when type == typeof(DateOnly) => new JObject { ["type"] = "string", ["format"] = "date" },
            _ when type == typeof(TimeOnly) => new JObject { ["type"] = "string", ["format"] = "time" },
            _ when type == typeof(TimeSpan) => new JObject { ["type"] = "string", ["format"] = "duration" },
            _ when type == typeof(Uri) => new JObject { ["type"] = "string", ["format"] = "uri" },
            _ when typeof(IEnumerable).IsAssignableFrom(type) => new JObject { ["type"] = "array" },
            _ => new JObject { ["type"] = "string" },
        };
    }
}
