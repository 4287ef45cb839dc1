using Microsoft.Net.Http.Headers;
using Microsoft.Extensions.Primitives;
using Newtonsoft.Json;
using Newtonsoft.Json.Linq;

namespace Workflow.Jobs.Sample.FakeApi;

/// <summary>Answers of the fake API's control endpoints: JSON bodies, and problem details like the workflow API's.</summary>
internal static class FakeApiResults
{
    public static IResult Json(JToken body) => Results.Text(body.ToString(Formatting.None), "application/json; charset=utf-8");

    /// <summary>RFC 9457 problem details with <c>errors: [{path, message}]</c>, the shape the workflow API answers.</summary>
    public static IResult Problem(int statusCode, IReadOnlyList<WorkflowDataError> errors)
        => Results.Problem(
            detail: errors.Count == 1 ? errors[0].Message : $"The request has {errors.Count} problems; see errors.",
            statusCode: statusCode,
            extensions: new Dictionary<string, object?>
            {
                ["errors"] = errors.Select(e => new Dictionary<string, string> { ["path"] = e.Path, ["message"] = e.Message }).ToArray(),
            });

    public static IResult Problem(int statusCode, string path, string message) => Problem(statusCode, [new WorkflowDataError(path, message)]);

    /// <summary>Whether the request says its body is JSON (<c>application/json</c> or <c>+json</c>, UTF-8); no Content-Type is not JSON.</summary>
    public static bool IsJson(HttpRequest request)
        => !string.IsNullOrEmpty(request.ContentType)
           && MediaTypeHeaderValue.TryParse(request.ContentType, out var media)
           && (media.MediaType.Equals("application/json", StringComparison.OrdinalIgnoreCase)
               || media.Suffix.Equals("json", StringComparison.OrdinalIgnoreCase))
           && (StringSegment.IsNullOrEmpty(media.Charset) || media.Charset.Equals("utf-8", StringComparison.OrdinalIgnoreCase));
}
