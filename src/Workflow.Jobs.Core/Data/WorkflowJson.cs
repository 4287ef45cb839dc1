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
    /// Parses a JSON object with the workflow conventions (dates stay strings, depth limited).
    /// </summary>
    /// <exception cref="WorkflowDataValidationException">The text is not a JSON object.</exception>
    public static JObject ParseObject(string json)
    {
        ArgumentNullException.ThrowIfNull(json);
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
        catch (JsonException ex)
        {
            throw new WorkflowDataValidationException([new WorkflowDataError(ex is JsonReaderException r ? r.Path ?? "" : "", "Malformed JSON: " + ex.Message)]);
        }
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
                    throw new JsonSerializationException($"Wrong type or format: '{shown}' is not a whole number in the range of {target.Name}.", ex);
                }

            default:
                throw new JsonSerializationException($"Wrong type or format: expected a whole number but got {reader.TokenType}.");
        }
    }

    public override void WriteJson(JsonWriter writer, object? value, JsonSerializer serializer)
        => throw new NotSupportedException();
}
