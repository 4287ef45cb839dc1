using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Workflow.Jobs;

/// <summary>
/// Checks that a request body is JSON as RFC 8259 defines it before <see cref="WorkflowJson.ParseObject"/>
/// reads it. Json.NET, which workflow data uses, also accepts single-quoted strings, unquoted field
/// names, comments, trailing commas, <c>NaN</c> and repeated field names (the last one silently wins);
/// callers should be refused those rather than have the library guess what they meant. Field names that
/// differ only in case are duplicates too: the reader matches fields ignoring case, so
/// <c>{"seats":7,"SEATS":9}</c> would be validated with one value and executed with the other. Answers the first problem
/// with its path in JSON names (<c>admin_users_input.admins[1].email</c>), or null when the text is valid.
/// </summary>
internal static class StrictJson
{
    private static readonly JsonReaderOptions Options = new()
    {
        CommentHandling = JsonCommentHandling.Disallow,
        AllowTrailingCommas = false,
        MaxDepth = WorkflowJson.MaxDepth,
    };

    public static WorkflowDataError? Check(string json)
    {
        ArgumentNullException.ThrowIfNull(json);
        var reader = new Utf8JsonReader(Encoding.UTF8.GetBytes(json), Options);
        var frames = new List<Frame>();
        try
        {
            while (reader.Read())
            {
                switch (reader.TokenType)
                {
                    case JsonTokenType.StartObject or JsonTokenType.StartArray:
                        NextValue(frames);
                        frames.Add(new Frame(reader.TokenType == JsonTokenType.StartArray));
                        break;
                    case JsonTokenType.EndObject or JsonTokenType.EndArray:
                        frames.RemoveAt(frames.Count - 1);
                        break;
                    case JsonTokenType.PropertyName:
                        var frame = frames[^1];
                        var name = reader.GetString()!;
                        frame.Property = name;
                        if (!frame.Names.Add(name))
                        {
                            frame.Names.TryGetValue(name, out var first);
                            return new WorkflowDataError(Path(frames), WorkflowJson.DuplicateFieldMessage(name, first!, "Malformed JSON: "));
                        }

                        break;
                    case JsonTokenType.String:
                        NextValue(frames);
                        // Unescapes the text: refuses escapes that are not Unicode (a lone surrogate such as \ud800),
                        // which Json.NET would silently replace with U+FFFD.
                        _ = reader.GetString();
                        break;
                    default:
                        NextValue(frames);
                        break;
                }
            }
        }
        catch (JsonException ex)
        {
            return new WorkflowDataError(Path(frames), "Malformed JSON: " + Describe(ex));
        }
        catch (InvalidOperationException ex)
        {
            return new WorkflowDataError(Path(frames), "Malformed JSON: " + ex.Message);
        }

        return null;
    }

    private static void NextValue(List<Frame> frames)
    {
        if (frames.Count > 0 && frames[^1].IsArray)
        {
            frames[^1].Index++;
        }
    }

    private static string Path(List<Frame> frames)
    {
        var path = new StringBuilder();
        foreach (var frame in frames)
        {
            if (frame.IsArray)
            {
                if (frame.Index >= 0)
                {
                    path.Append(CultureInfo.InvariantCulture, $"[{frame.Index}]");
                }
            }
            else if (frame.Property is not null)
            {
                path.Append(path.Length == 0 ? "" : ".").Append(frame.Property);
            }
        }

        return path.ToString();
    }

    /// <summary>System.Text.Json's message with its zero-based "LineNumber: 0 | BytePositionInLine: 7." replaced by one-based positions.</summary>
    private static string Describe(JsonException ex)
    {
        var message = ex.Message;
        var suffix = message.IndexOf(" LineNumber:", StringComparison.Ordinal);
        if (suffix >= 0)
        {
            message = message[..suffix];
        }

        return ex.LineNumber is { } line && ex.BytePositionInLine is { } position
            ? string.Create(CultureInfo.InvariantCulture, $"{message} (line {line + 1}, byte {position + 1})")
            : message;
    }

    private sealed class Frame(bool isArray)
    {
        public bool IsArray { get; } = isArray;

        public int Index { get; set; } = -1;

        public string? Property { get; set; }

        public HashSet<string> Names { get; } = new(StringComparer.OrdinalIgnoreCase);
    }
}
