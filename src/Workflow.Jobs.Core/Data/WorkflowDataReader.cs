using System.Collections;
using System.Collections.Concurrent;
using System.ComponentModel.DataAnnotations;
using System.Text.RegularExpressions;
using Newtonsoft.Json;
using Newtonsoft.Json.Linq;
using Newtonsoft.Json.Serialization;

namespace Workflow.Jobs;

internal enum WorkflowDataReadMode
{
    /// <summary>Input from callers: unknown fields are errors, everything is validated.</summary>
    Strict,

    /// <summary>Data this library stored itself: unknown fields are ignored (older or newer class versions).</summary>
    Lenient,
}

/// <summary>
/// Deserializes workflow data, collecting every conversion error and every validation error with
/// its JSON path, instead of stopping at the first exception.
/// </summary>
internal static partial class WorkflowDataReader
{
    private static readonly JsonSerializerSettings StrictSettings = CreateStrictSettings();
    private static readonly JsonSerializerSettings LenientSettings = CreateSettings(MissingMemberHandling.Ignore);
    private static readonly ConcurrentDictionary<Type, JsonObjectContract?> Contracts = new();

    private static JsonSerializerSettings CreateStrictSettings()
    {
        var settings = CreateSettings(MissingMemberHandling.Error);
        // Input from callers: a number or boolean is not silently turned into text.
        settings.Converters.Add(new StrictStringConverter());
        return settings;
    }

    private static JsonSerializerSettings CreateSettings(MissingMemberHandling missing)
    {
        var settings = WorkflowJson.CreateSettings();
        settings.MissingMemberHandling = missing;
        return settings;
    }

    public static WorkflowData Read(Type dataType, JToken? json, string pathPrefix, WorkflowDataReadMode mode)
    {
        var errors = new List<WorkflowDataError>();
        var value = TryRead(dataType, json, pathPrefix, mode, errors);
        if (errors.Count > 0 || value is null)
        {
            throw new WorkflowDataValidationException(errors.Count > 0 ? errors : [new WorkflowDataError(pathPrefix, "Could not read the value.")]);
        }

        return value;
    }

    /// <summary>Reads one data object, appending errors instead of throwing.</summary>
    public static WorkflowData? TryRead(Type dataType, JToken? json, string pathPrefix, WorkflowDataReadMode mode, List<WorkflowDataError> errors)
    {
        json ??= new JObject();
        if (json.Type != JTokenType.Object)
        {
            errors.Add(new WorkflowDataError(pathPrefix, $"Expected an object but got {WorkflowJson.Describe(json.Type)}."));
            return null;
        }

        if (WorkflowJson.IsDeeperThan(json, WorkflowJson.MaxDepth))
        {
            // Checked before anything recursive (cloning, reading) touches an object built in code.
            errors.Add(new WorkflowDataError(pathPrefix, $"Nested deeper than the maximum depth of {WorkflowJson.MaxDepth} levels."));
            return null;
        }

        if (json.Parent is not null)
        {
            // Error paths are reported relative to this object, prefixed by the key.
            json = json.DeepClone();
        }

        if (mode == WorkflowDataReadMode.Strict && WorkflowJson.FindUnstorableText(json) is { } unstorable)
        {
            errors.Add(new WorkflowDataError(Join(pathPrefix, unstorable.Path), unstorable.Message));
            return null;
        }

        if (mode == WorkflowDataReadMode.Strict && WorkflowJson.FindCaseInsensitiveDuplicate(json) is { } duplicate)
        {
            errors.Add(new WorkflowDataError(Join(pathPrefix, duplicate.Path), duplicate.Message));
            return null;
        }

        var before = errors.Count;
        var serializer = JsonSerializer.Create(mode == WorkflowDataReadMode.Strict ? StrictSettings : LenientSettings);
        serializer.Error += (_, args) =>
        {
            // The error bubbles up through every parent object; record it once, where it happened.
            if (ReferenceEquals(args.CurrentObject, args.ErrorContext.OriginalObject))
            {
                var (message, field) = Clean(args.ErrorContext.Error);
                var path = Join(pathPrefix, args.ErrorContext.Path);
                errors.Add(new WorkflowDataError(field is null ? path : Join(path, field), message));
            }

            args.ErrorContext.Handled = true;
        };

        object? value;
        try
        {
            using var reader = new JTokenReader(json) { MaxDepth = WorkflowJson.MaxDepth };
            value = serializer.Deserialize(reader, dataType);
        }
        catch (JsonException ex)
        {
            errors.Add(new WorkflowDataError(pathPrefix, Clean(ex).Message));
            return null;
        }

        if (value is not WorkflowData data)
        {
            if (errors.Count == before)
            {
                errors.Add(new WorkflowDataError(pathPrefix, "Could not read the value."));
            }

            return null;
        }

        if (errors.Count == before)
        {
            Validate(data, pathPrefix, errors, depth: 0);
        }

        return errors.Count == before ? data : null;
    }

    /// <summary>Runs DataAnnotations validation on an object and, recursively, on nested objects and lists.</summary>
    public static void Validate(object instance, string path, List<WorkflowDataError> errors, int depth)
    {
        if (depth > WorkflowJson.MaxDepth)
        {
            return;
        }

        var results = new List<ValidationResult>();
        var context = new ValidationContext(instance);
        Validator.TryValidateObject(instance, context, results, validateAllProperties: true);
        var contract = GetContract(instance.GetType());
        foreach (var result in results)
        {
            var members = result.MemberNames.ToList();
            if (members.Count == 0)
            {
                errors.Add(new WorkflowDataError(path, result.ErrorMessage ?? "Invalid value."));
                continue;
            }

            foreach (var member in members)
            {
                var jsonName = contract?.Properties.FirstOrDefault(p => p.UnderlyingName == member)?.PropertyName ?? member;
                errors.Add(new WorkflowDataError(Join(path, jsonName), Rename(result.ErrorMessage, member, jsonName)));
            }
        }

        if (contract is null)
        {
            return;
        }

        foreach (var property in contract.Properties)
        {
            if (property.Ignored || !property.Readable || property.ValueProvider is null || IsLeaf(property.PropertyType))
            {
                continue;
            }

            var child = property.ValueProvider.GetValue(instance);
            var childPath = Join(path, property.PropertyName!);
            switch (child)
            {
                case null:
                case string:
                    break;
                case IDictionary dictionary:
                    foreach (DictionaryEntry entry in dictionary)
                    {
                        if (entry.Value is not null && !IsLeaf(entry.Value.GetType()))
                        {
                            Validate(entry.Value, $"{childPath}.{entry.Key}", errors, depth + 1);
                        }
                    }

                    break;
                case IEnumerable sequence:
                    var index = 0;
                    foreach (var item in sequence)
                    {
                        if (item is not null && !IsLeaf(item.GetType()))
                        {
                            Validate(item, $"{childPath}[{index}]", errors, depth + 1);
                        }

                        index++;
                    }

                    break;
                default:
                    Validate(child, childPath, errors, depth + 1);
                    break;
            }
        }
    }

    private static JsonObjectContract? GetContract(Type type)
        => Contracts.GetOrAdd(type, static t => WorkflowJson.Serializer.ContractResolver.ResolveContract(t) as JsonObjectContract);

    private static bool IsLeaf(Type? type)
    {
        if (type is null)
        {
            return true;
        }

        type = Nullable.GetUnderlyingType(type) ?? type;
        return type.IsPrimitive || type.IsEnum || type == typeof(string) || type == typeof(decimal) || type == typeof(Guid)
            || type == typeof(DateTime) || type == typeof(DateTimeOffset) || type == typeof(TimeSpan) || type == typeof(Uri)
            || type == typeof(DateOnly) || type == typeof(TimeOnly) || typeof(JToken).IsAssignableFrom(type);
    }

    internal static string Join(string prefix, string? path)
    {
        if (string.IsNullOrEmpty(path))
        {
            return prefix;
        }

        if (string.IsNullOrEmpty(prefix))
        {
            return path;
        }

        return path.StartsWith('[') ? prefix + path : prefix + "." + path;
    }

    private static string Rename(string? message, string member, string jsonName)
        => string.IsNullOrEmpty(message) ? "Invalid value." : message.Replace(member, jsonName, StringComparison.Ordinal);

    /// <summary>Turns a Json.NET message into one that speaks of the data, not of the parser.</summary>
    private static (string Message, string? Field) Clean(Exception error)
    {
        var message = error.Message;
        // Json.NET appends "Path 'x', line 1, position 2." — the path is reported separately.
        message = TrailingPath().Replace(message, "").Trim();
        if (message.StartsWith("Could not find member", StringComparison.Ordinal))
        {
            var match = QuotedName().Match(message);
            return (match.Success ? $"Unknown field '{match.Groups[1].Value}'." : "Unknown field.", null);
        }

        if (message.StartsWith("Required property", StringComparison.Ordinal))
        {
            var match = QuotedName().Match(message);
            return match.Success
                ? ($"Required field '{match.Groups[1].Value}' is missing.", match.Groups[1].Value)
                : ("A required field is missing.", null);
        }

        if (message.StartsWith("Error converting value {null}", StringComparison.Ordinal))
        {
            return ("Null is not allowed here.", null);
        }

        // Json.NET names .NET types ("into type 'System.Collections.Generic.List`1[...]'"): the message speaks JSON instead.
        if (message.StartsWith("Cannot deserialize the current JSON object", StringComparison.Ordinal))
        {
            return ($"Wrong type: expected {ExpectedOf(message, "an array")} but got an object.", null);
        }

        if (message.StartsWith("Cannot deserialize the current JSON array", StringComparison.Ordinal))
        {
            return ($"Wrong type: expected {ExpectedOf(message, "an object")} but got an array.", null);
        }

        if (message.StartsWith("Cannot deserialize the current JSON primitive", StringComparison.Ordinal))
        {
            return ($"Wrong type: expected {ExpectedOf(message, "an object")} but got a single value.", null);
        }

        if (ConvertingValue().Match(message) is { Success: true } converting)
        {
            var shown = converting.Groups[1].Value;
            shown = shown.Length > 40 ? shown[..40] + "…" : shown;
            return ($"Wrong type or format: expected {Expected(converting.Groups[2].Value)} but got {shown}.", null);
        }

        if (message.StartsWith("Error converting value", StringComparison.Ordinal) || message.StartsWith("Could not convert", StringComparison.Ordinal)
            || message.StartsWith("Unexpected character", StringComparison.Ordinal) || message.StartsWith("Input string", StringComparison.Ordinal)
            || message.StartsWith("Unexpected token", StringComparison.Ordinal) || message.StartsWith("Cannot deserialize", StringComparison.Ordinal)
            || message.StartsWith("Error reading", StringComparison.Ordinal) || message.StartsWith("Value was either too large", StringComparison.Ordinal))
        {
            return ("Wrong type or format: " + WithoutTypeNames(message), null);
        }

        return (WithoutTypeNames(message), null);
    }

    /// <summary>The JSON the type named in <c>into type '...'</c> expects, or <paramref name="fallback"/>.</summary>
    private static string ExpectedOf(string message, string fallback)
        => TypeName().Match(message) is { Success: true } match ? Expected(match.Groups[1].Value, fallback) : fallback;

    /// <summary>Describes, in JSON terms, what a .NET type named in a Json.NET message is read from.</summary>
    internal static string Expected(string typeName, string fallback = "a value of another type")
    {
        var type = Type.GetType(typeName, throwOnError: false) ?? AppDomain.CurrentDomain.GetAssemblies()
            .Select(a => a.GetType(typeName, throwOnError: false)).FirstOrDefault(t => t is not null);
        if (type is null)
        {
            return typeName.Contains("List`", StringComparison.Ordinal) || typeName.EndsWith("[]", StringComparison.Ordinal)
                   || typeName.Contains("Collection", StringComparison.Ordinal) || typeName.Contains("Enumerable", StringComparison.Ordinal)
                ? "an array"
                : typeName.Contains("Dictionary", StringComparison.Ordinal) ? "an object" : fallback;
        }

        type = Nullable.GetUnderlyingType(type) ?? type;
        if (type.IsEnum)
        {
            return "one of: " + string.Join(", ", Enum.GetNames(type));
        }

        return Type.GetTypeCode(type) switch
        {
            TypeCode.Boolean => "true or false",
            TypeCode.Byte or TypeCode.SByte or TypeCode.Int16 or TypeCode.UInt16 or TypeCode.Int32 or TypeCode.UInt32 or TypeCode.Int64 or TypeCode.UInt64
                => "a whole number",
            TypeCode.Single or TypeCode.Double or TypeCode.Decimal => "a number",
            TypeCode.String or TypeCode.Char => "a string",
            TypeCode.DateTime => "a date-time string",
            _ when type == typeof(Guid) => "a UUID string",
            _ when type == typeof(DateTimeOffset) => "a date-time string",
            _ when type == typeof(DateOnly) => "a date string",
            _ when type == typeof(TimeOnly) || type == typeof(TimeSpan) => "a time string",
            _ when type == typeof(Uri) => "a URI string",
            _ when typeof(IDictionary).IsAssignableFrom(type) => "an object",
            _ when typeof(IEnumerable).IsAssignableFrom(type) => "an array",
            _ => "an object",
        };
    }

    /// <summary>Replaces every quoted .NET type name left in a message by what it expects in JSON.</summary>
    private static string WithoutTypeNames(string message)
        => QuotedTypeName().Replace(message, m => Expected(m.Groups[1].Value));

    [GeneratedRegex(@"\s*Path '[^']*'(, line \d+, position \d+)?\.?$")]
    private static partial Regex TrailingPath();

    [GeneratedRegex("'([^']*)'")]
    private static partial Regex QuotedName();

    [GeneratedRegex(@"into type '([^']*)'")]
    private static partial Regex TypeName();

    [GeneratedRegex(@"^Error converting value (.*) to type '([^']*)'", RegexOptions.Singleline)]
    private static partial Regex ConvertingValue();

    [GeneratedRegex(@"(?:type )?'((?:System|Microsoft|Workflow)\.[^']*)'")]
    private static partial Regex QuotedTypeName();
}

/// <summary>Reads text fields only from JSON strings (or null), refusing numbers, booleans, objects and arrays.</summary>
internal sealed class StrictStringConverter : JsonConverter
{
    public override bool CanWrite => false;

    public override bool CanConvert(Type objectType) => objectType == typeof(string);

    public override object? ReadJson(JsonReader reader, Type objectType, object? existingValue, JsonSerializer serializer)
    {
        switch (reader.TokenType)
        {
            case JsonToken.String:
                return reader.Value?.ToString();
            case JsonToken.Null:
                return null;
            default:
                var got = reader.TokenType switch
                {
                    JsonToken.Integer => "an integer",
                    JsonToken.Float => "a number",
                    JsonToken.Boolean => "a boolean",
                    JsonToken.StartObject => "an object",
                    JsonToken.StartArray => "an array",
                    _ => reader.TokenType.ToString().ToLowerInvariant(),
                };
                if (reader.TokenType is JsonToken.StartObject or JsonToken.StartArray)
                {
                    reader.Skip();
                }

                throw new JsonSerializationException($"Wrong type or format: expected a string but got {got}.");
        }
    }

    public override void WriteJson(JsonWriter writer, object? value, JsonSerializer serializer) => throw new NotSupportedException();
}

