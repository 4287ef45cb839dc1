using System.Globalization;
using Newtonsoft.Json;
using Newtonsoft.Json.Converters;
using Newtonsoft.Json.Linq;
using Newtonsoft.Json.Serialization;

namespace Workflow.Jobs;

/// <summary>
/// The JSON conventions of workflow data: Guids as strings, <see cref="DateTimeOffset"/> as ISO-8601,
/// enums as strings, and never any type-name handling (a <c>$type</c> property is ordinary data).
/// </summary>
public static class WorkflowJson
{
    /// <summary>Maximum nesting depth accepted when reading workflow JSON.</summary>
    public const int MaxDepth = 64;

    /// <summary>Serializer settings used for all workflow data.</summary>
    public static JsonSerializerSettings CreateSettings() => new()
    {
        TypeNameHandling = TypeNameHandling.None,
        MetadataPropertyHandling = MetadataPropertyHandling.Ignore,
        DateParseHandling = DateParseHandling.None,
        DateFormatHandling = DateFormatHandling.IsoDateFormat,
        DateTimeZoneHandling = DateTimeZoneHandling.RoundtripKind,
        FloatParseHandling = FloatParseHandling.Decimal,
        Culture = CultureInfo.InvariantCulture,
        MaxDepth = MaxDepth,
        NullValueHandling = NullValueHandling.Include,
        ContractResolver = new DefaultContractResolver(),
        Converters = { new StringEnumConverter(), new WholeNumberConverter() },
    };

    internal static readonly JsonSerializer Serializer = JsonSerializer.Create(CreateSettings());

    /// <summary>
    /// Parses caller input as a JSON object with the workflow conventions (dates stay strings, depth limited),
    /// accepting JSON as RFC 8259 defines it and nothing else: no comments, trailing commas, single quotes,
    /// unquoted names, <c>NaN</c>, trailing content or lone surrogate escapes, and no field name twice in one
    /// object, also when the names differ only in case (fields are matched ignoring case).
    /// </summary>
    /// <exception cref="WorkflowDataValidationException">The text is not such a JSON object; the error names the path where reading stopped.</exception>
    public static JObject ParseObject(string json)
    {
        ArgumentNullException.ThrowIfNull(json);
        if (StrictJson.Check(json) is { } malformed)
        {
            throw new WorkflowDataValidationException([malformed]);
        }

        return ParseTrusted(json);
    }

    /// <summary>Parses JSON this library wrote itself (no strictness pass: it is valid by construction).</summary>
    internal static JObject ParseTrusted(string json)
    {
        try
        {
            using var reader = new JsonTextReader(new StringReader(json))
            {
                DateParseHandling = DateParseHandling.None,
                FloatParseHandling = FloatParseHandling.Decimal,
                MaxDepth = MaxDepth,
            };
            var token = JToken.ReadFrom(reader);
            // Refuse trailing content after the object.
            if (reader.Read() && reader.TokenType != JsonToken.Comment)
            {
                throw new JsonReaderException($"Unexpected content after the JSON object at position {reader.LinePosition}.");
            }

            return token as JObject
                ?? throw new WorkflowDataValidationException([new WorkflowDataError("", $"Expected a JSON object but got {Describe(token.Type)}.")]);
        }
        catch (JsonReaderException ex) when (ex.Message.StartsWith("Input string '", StringComparison.Ordinal))
        {
            // Valid JSON that Json.NET cannot hold: numbers are read as decimal (exact), which ends near ±7.9e28.
            var number = ex.Message.Split('\'')[1];
            number = number.Length > 40 ? number[..40] + "…" : number;
            throw new WorkflowDataValidationException([new WorkflowDataError(ex.Path ?? "",
                $"Number out of range: {number} is beyond what workflow data can hold (decimals of at most about ±7.9e28).")]);
        }
        catch (JsonException ex)
        {
            throw new WorkflowDataValidationException([new WorkflowDataError(ex is JsonReaderException r ? r.Path ?? "" : "", "Malformed JSON: " + ex.Message)]);
        }
    }

    /// <summary>The message for a field name seen twice in one object (<paramref name="first"/> is the earlier spelling).</summary>
    internal static string DuplicateFieldMessage(string name, string first, string prefix = "")
        => string.Equals(name, first, StringComparison.Ordinal)
            ? $"{prefix}the field '{name}' appears more than once in the same object."
            : $"{prefix}the field '{name}' appears more than once in the same object (as '{first}': field names are matched ignoring case).";

    /// <summary>
    /// The first pair of field names in one object that differ only in case (a <see cref="JObject"/> built in
    /// code can hold both, and the reader would take one of them), as the later field's path and a message.
    /// </summary>
    internal static (string Path, string Message)? FindCaseInsensitiveDuplicate(JToken token)
    {
        var pending = new Stack<JToken>();
        pending.Push(token);
        while (pending.Count > 0)
        {
            var current = pending.Pop();
            if (current is JObject obj)
            {
                var names = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
                foreach (var property in obj.Properties())
                {
                    if (!names.TryAdd(property.Name, property.Name))
                    {
                        var message = DuplicateFieldMessage(property.Name, names[property.Name]);
                        return (property.Path, char.ToUpperInvariant(message[0]) + message[1..]);
                    }
                }
            }

            if (current is JContainer container)
            {
                foreach (var child in container.Children())
                {
                    pending.Push(child);
                }
            }
        }

        return null;
    }

    /// <summary>
    /// Whether a token nests deeper than <paramref name="maxDepth"/> levels. Iterative, so that an object
    /// built in code (not parsed, hence not depth-limited) cannot exhaust the stack of a recursive walk.
    /// </summary>
    internal static bool IsDeeperThan(JToken token, int maxDepth)
    {
        var pending = new Stack<(JToken Token, int Depth)>();
        pending.Push((token, 0));
        while (pending.Count > 0)
        {
            var (current, depth) = pending.Pop();
            if (current is not JContainer container)
            {
                continue;
            }

            // A property is not a level of nesting; its value is.
            var childDepth = current is JProperty ? depth : depth + 1;
            if (childDepth > maxDepth)
            {
                return true;
            }

            foreach (var child in container.Children())
            {
                pending.Push((child, childDepth));
            }
        }

        return false;
    }

    /// <summary>
    /// The first text (string value or field name) that PostgreSQL cannot store in <c>jsonb</c>: the NUL
    /// character, or an unpaired UTF-16 surrogate (not Unicode, so not encodable as UTF-8). Null when none.
    /// </summary>
    internal static (string Path, string Message)? FindUnstorableText(JToken token)
    {
        var pending = new Stack<JToken>();
        pending.Push(token);
        while (pending.Count > 0)
        {
            var current = pending.Pop();
            var problem = current switch
            {
                JProperty property => UnstorableText(property.Name) is { } p ? p + " in a field name" : null,
                JValue { Type: JTokenType.String, Value: string text } => UnstorableText(text),
                _ => null,
            };
            if (problem is not null)
            {
                return (current.Path, problem + ".");
            }

            if (current is JContainer container)
            {
                foreach (var child in container.Children())
                {
                    pending.Push(child);
                }
            }
        }

        return null;
    }

    private static string? UnstorableText(string text)
    {
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (c == '\0')
            {
                return "Text with the NUL character (\\u0000) cannot be stored";
            }

            if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                i++;
            }
            else if (char.IsSurrogate(c))
            {
                return "Text with an unpaired surrogate (invalid UTF-16) cannot be stored";
            }
        }

        return null;
    }

    internal static string Describe(JTokenType type) => type switch
    {
        JTokenType.Object => "an object",
        JTokenType.Array => "an array",
        JTokenType.Integer => "an integer",
        JTokenType.Float => "a number",
        JTokenType.String => "a string",
        JTokenType.Boolean => "a boolean",
        JTokenType.Null => "null",
        _ => type.ToString().ToLowerInvariant(),
    };
}

/// <summary>
/// Reads integer properties without Json.NET's silent rounding: a number with a fraction (<c>1.5</c>)
/// is a wrong type for an integer, not <c>2</c>. Whole numbers written as decimals (<c>2.0</c>) and numeric
/// strings are still accepted, as before; out-of-range values are refused.
/// </summary>
internal sealed class WholeNumberConverter : JsonConverter
{
    private static readonly HashSet<Type> Integers =
    [
        typeof(int), typeof(long), typeof(short), typeof(byte), typeof(sbyte), typeof(uint), typeof(ulong), typeof(ushort),
    ];

    public override bool CanWrite => false;

    public override bool CanConvert(Type objectType) => Integers.Contains(Nullable.GetUnderlyingType(objectType) ?? objectType);

    public override object? ReadJson(JsonReader reader, Type objectType, object? existingValue, JsonSerializer serializer)
    {
        var target = Nullable.GetUnderlyingType(objectType) ?? objectType;
        switch (reader.TokenType)
        {
            case JsonToken.Null when target != objectType:
                return null;
            case JsonToken.Null:
                throw new JsonSerializationException("Null is not allowed here.");
            case JsonToken.Float when reader.Value is decimal d && d != decimal.Truncate(d):
            case JsonToken.Float when reader.Value is double f && f != Math.Truncate(f):
                throw new JsonSerializationException(string.Create(CultureInfo.InvariantCulture, $"Wrong type or format: expected a whole number but got {reader.Value}."));
            case JsonToken.Integer or JsonToken.Float or JsonToken.String:
                try
                {
                    return reader.Value is string text
                        ? Convert.ChangeType(decimal.Parse(text, NumberStyles.Integer, CultureInfo.InvariantCulture), target, CultureInfo.InvariantCulture)
                        : Convert.ChangeType(reader.Value, target, CultureInfo.InvariantCulture);
                }
                catch (Exception ex) when (ex is FormatException or OverflowException or InvalidCastException)
                {
                    var shown = reader.Value?.ToString() ?? "";
                    shown = shown.Length > 40 ? shown[..40] + "…" : shown;
                    throw new JsonSerializationException($"Wrong type or format: '{shown}' is not a whole number from {Range(target)}.", ex);
                }

            default:
                throw new JsonSerializationException($"Wrong type or format: expected a whole number but got {reader.TokenType}.");
        }
    }

    public override void WriteJson(JsonWriter writer, object? value, JsonSerializer serializer)
        => throw new NotSupportedException();

    /// <summary>The range of an integer type in JSON terms (messages name no .NET types).</summary>
    private static string Range(Type type) => Type.GetTypeCode(type) switch
    {
        TypeCode.Byte => string.Create(CultureInfo.InvariantCulture, $"{byte.MinValue} to {byte.MaxValue}"),
        TypeCode.SByte => string.Create(CultureInfo.InvariantCulture, $"{sbyte.MinValue} to {sbyte.MaxValue}"),
        TypeCode.Int16 => string.Create(CultureInfo.InvariantCulture, $"{short.MinValue} to {short.MaxValue}"),
        TypeCode.UInt16 => string.Create(CultureInfo.InvariantCulture, $"{ushort.MinValue} to {ushort.MaxValue}"),
        TypeCode.Int32 => string.Create(CultureInfo.InvariantCulture, $"{int.MinValue} to {int.MaxValue}"),
        TypeCode.UInt32 => string.Create(CultureInfo.InvariantCulture, $"{uint.MinValue} to {uint.MaxValue}"),
        TypeCode.UInt64 => string.Create(CultureInfo.InvariantCulture, $"{ulong.MinValue} to {ulong.MaxValue}"),
        _ => string.Create(CultureInfo.InvariantCulture, $"{long.MinValue} to {long.MaxValue}"),
    };
}
