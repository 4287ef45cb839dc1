using System.Globalization;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.WebUtilities;
using Newtonsoft.Json;
using Newtonsoft.Json.Linq;

namespace Workflow.Jobs.AspNetCore;

/// <summary>
/// Writes a Newtonsoft <see cref="JToken"/> as the response: workflow data is Newtonsoft JSON, so the API
/// answers with the same serializer rather than converting to System.Text.Json (and the application's
/// <c>JsonOptions</c> cannot rename the API's fields).
/// </summary>
internal sealed class JsonTokenResult(JToken body, int statusCode, string contentType, string? location = null, TimeSpan? retryAfter = null) : IResult
{
    public JToken Body { get; } = body;

    public int StatusCode { get; } = statusCode;

    public async Task ExecuteAsync(HttpContext httpContext)
    {
        httpContext.Response.StatusCode = StatusCode;
        httpContext.Response.ContentType = contentType;
        if (location is not null)
        {
            httpContext.Response.Headers.Location = location;
        }

        if (retryAfter is { } delay)
        {
            httpContext.Response.Headers.RetryAfter = ((long)Math.Ceiling(delay.TotalSeconds)).ToString(CultureInfo.InvariantCulture);
        }

        await httpContext.Response.WriteAsync(Body.ToString(Formatting.None), httpContext.RequestAborted).ConfigureAwait(false);
    }
}

/// <summary>Builds the API's answers: JSON bodies, and RFC 9457 problem details for every error.</summary>
internal static class ApiResults
{
    public const string JsonContentType = "application/json; charset=utf-8";
    public const string ProblemContentType = "application/problem+json; charset=utf-8";

    public static IResult Json(JToken body, int statusCode = StatusCodes.Status200OK, string? location = null)
        => new JsonTokenResult(body, statusCode, JsonContentType, location);

    /// <summary>
    /// A problem details body (<c>type</c>, <c>title</c>, <c>status</c>, <c>detail</c>) with the extension
    /// <c>errors: [{path, message}]</c>; <paramref name="extra"/> adds further extension members.
    /// </summary>
    public static IResult Problem(int statusCode, IReadOnlyCollection<WorkflowDataError> errors, string? detail = null,
        Action<JObject>? extra = null, TimeSpan? retryAfter = null)
    {
        var body = new JObject
        {
            ["type"] = "about:blank",
            ["title"] = ReasonPhrases.GetReasonPhrase(statusCode),
            ["status"] = statusCode,
            ["detail"] = detail ?? Summarize(errors),
            ["errors"] = new JArray(errors.Select(e => new JObject { ["path"] = e.Path, ["message"] = e.Message })),
        };
        extra?.Invoke(body);
        return new JsonTokenResult(body, statusCode, ProblemContentType, retryAfter: retryAfter);
    }

    public static IResult Problem(int statusCode, string path, string message, Action<JObject>? extra = null)
        => Problem(statusCode, [new WorkflowDataError(path, message)], message, extra);

    public static IResult NotFound(string message) => Problem(StatusCodes.Status404NotFound, "", message);

    private static string Summarize(IReadOnlyCollection<WorkflowDataError> errors) => errors.Count switch
    {
        0 => "The request is invalid.",
        1 => errors.First().Message,
        _ => $"The request has {errors.Count} problems; see errors.",
    };
}
