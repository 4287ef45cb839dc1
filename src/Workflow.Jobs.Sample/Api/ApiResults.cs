using System.Globalization;
using Newtonsoft.Json;
using Newtonsoft.Json.Linq;

namespace Workflow.Jobs.Sample.Api;

/// <summary>
/// Writes a Newtonsoft <see cref="JToken"/> as the response (workflow data is Newtonsoft JSON, so the
/// API answers with the same serializer rather than converting to System.Text.Json).
/// </summary>
internal sealed class JsonTokenResult(JToken body, int statusCode, string? location = null) : IResult
{
    public JToken Body { get; } = body;

    public int StatusCode { get; } = statusCode;

    public async Task ExecuteAsync(HttpContext httpContext)
    {
        httpContext.Response.StatusCode = StatusCode;
        httpContext.Response.ContentType = "application/json; charset=utf-8";
        if (location is not null)
        {
            httpContext.Response.Headers.Location = location;
        }

        await httpContext.Response.WriteAsync(Body.ToString(Formatting.None), httpContext.RequestAborted);
    }
}

/// <summary>Builds the API's JSON answers.</summary>
internal static class ApiResults
{
    public static IResult Json(JToken body, int statusCode = StatusCodes.Status200OK, string? location = null) => new JsonTokenResult(body, statusCode, location);

    /// <summary><c>{"errors":[{"path":..,"message":..}]}</c> with the given status.</summary>
    public static IResult Errors(int statusCode, IEnumerable<WorkflowDataError> errors, Action<JObject>? extra = null)
    {
        var body = new JObject
        {
            ["errors"] = new JArray(errors.Select(e => new JObject { ["path"] = e.Path, ["message"] = e.Message })),
        };
        extra?.Invoke(body);
        return new JsonTokenResult(body, statusCode);
    }

    public static IResult Error(int statusCode, string path, string message, Action<JObject>? extra = null)
        => Errors(statusCode, [new WorkflowDataError(path, message)], extra);

    public static IResult NotFound(string message) => Error(StatusCodes.Status404NotFound, "", message);

    public static JObject Summary(WorkflowRun run)
    {
        var json = new JObject
        {
            ["id"] = run.Id.ToString(),
            ["workflowName"] = run.WorkflowName,
            ["status"] = run.Status.ToString(),
            ["completedSteps"] = run.CompletedSteps,
            ["stepCount"] = run.StepNames.Count,
            ["attempts"] = run.Attempts,
            ["created"] = Time(run.Created),
            ["modified"] = Time(run.Modified),
            ["succeededAt"] = Time(run.SucceededAt),
            ["failedAt"] = Time(run.FailedAt),
            ["exceptionMessage"] = run.ExceptionMessage,
            ["jobId"] = run.JobId,
            ["recurringId"] = run.RecurringId,
            ["idempotencyKey"] = run.IdempotencyKey,
        };
        json["links"] = Links(run);
        return json;
    }

    public static JObject Detail(WorkflowRun run)
    {
        var json = Summary(run);
        json["input"] = run.Input.DeepClone();
        json["output"] = run.Output?.DeepClone() ?? JValue.CreateNull();
        json["steps"] = new JArray(run.Steps.Select(Step));
        return json;
    }

    private static JObject Step(WorkflowStepRun step) => new()
    {
        ["id"] = step.Id.ToString(),
        ["name"] = step.StepName,
        ["status"] = step.Status.ToString(),
        ["attempts"] = step.Attempts,
        ["precedingStepId"] = step.PrecedingStepId?.ToString(),
        ["created"] = Time(step.Created),
        ["modified"] = Time(step.Modified),
        ["startedAt"] = Time(step.StartedAt),
        ["succeededAt"] = Time(step.SucceededAt),
        ["failedAt"] = Time(step.FailedAt),
        ["durationMs"] = step.StartedAt is { } started && (step.SucceededAt ?? step.FailedAt) is { } ended
            ? new JValue(Math.Round((ended - started).TotalMilliseconds, 1))
            : JValue.CreateNull(),
        ["exceptionMessage"] = step.ExceptionMessage,
        ["input"] = step.Input.DeepClone(),
        ["output"] = step.Output?.DeepClone() ?? JValue.CreateNull(),
    };

    private static JObject Links(WorkflowRun run)
    {
        var self = WorkflowApi.RunPath(run.Id);
        var links = new JObject { ["self"] = self };
        if (run.Status is WorkflowStatus.Failed or WorkflowStatus.Cancelled)
        {
            links["retry"] = self + "/retry";
        }

        if (run.Status is WorkflowStatus.Pending or WorkflowStatus.Running or WorkflowStatus.Failed)
        {
            links["cancel"] = self + "/cancel";
        }

        if (run.JobId is not null)
        {
            links["job"] = $"{Configuration.SampleHostSettings.DashboardPath}/jobs/details/{Uri.EscapeDataString(run.JobId)}";
        }

        return links;
    }

    /// <summary>UTC ISO 8601 with milliseconds, or null.</summary>
    private static JValue Time(DateTimeOffset? value)
        => value is { } v ? new JValue(v.ToUniversalTime().ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture)) : JValue.CreateNull();
}
