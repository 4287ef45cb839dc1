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
        Converters = { new StringEnumConverter() },
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
