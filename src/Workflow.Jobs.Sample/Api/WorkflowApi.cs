using System.Buffers;
using System.Globalization;
using System.Text;
using Microsoft.Extensions.Primitives;
using Microsoft.Net.Http.Headers;
using Newtonsoft.Json.Linq;
using Workflow.Jobs.Sample.Configuration;

namespace Workflow.Jobs.Sample.Api;

/// <summary>
/// The JSON HTTP API over <see cref="IWorkflowClient"/> (minimal APIs). Request bodies are read as
/// text, limited in size, checked to be strict JSON (<see cref="StrictJson"/>) and parsed with
/// <see cref="WorkflowJson.ParseObject"/>: ASP.NET model binding never touches workflow input. Every
/// error answers <c>{"errors":[{"path":..,"message":..}]}</c>.
/// </summary>
internal static partial class WorkflowApi
{
    public const string IdempotencyKeyHeader = "Idempotency-Key";
    public const int MaxIdempotencyKeyLength = 200;

    public static string RunPath(Guid id) => $"/api/workflows/{id}";

    public static IEndpointRouteBuilder MapWorkflowApi(this IEndpointRouteBuilder app, SampleHostSettings settings)
    {
        var read = app.MapGroup("/api").WithTags("Workflows");
        var write = app.MapGroup("/api").WithTags("Workflows");
        if (settings.ReadPolicy is { } readPolicy)
        {
            read.RequireAuthorization(readPolicy);
        }

        if (settings.WritePolicy is { } writePolicy)
        {
            write.RequireAuthorization(writePolicy);
        }

        read.MapGet("/workflow-definitions", (WorkflowSchema schema) => ApiResults.Json(schema.Definitions));
        read.MapGet("/workflows", ListAsync);
        read.MapGet("/workflows/{id:guid}", GetAsync);
        write.MapPost("/workflows/{name}", EnqueueAsync);
        write.MapPost("/workflows/{id:guid}/retry", RetryAsync);
        write.MapPost("/workflows/{id:guid}/cancel", CancelAsync);

        // An id that is not a GUID matches none of the routes above: answer why, not an empty 404.
        read.MapGet("/workflows/{id}", (string id) => NotARunId(id));
        write.MapPost("/workflows/{id}/retry", (string id) => NotARunId(id));
        write.MapPost("/workflows/{id}/cancel", (string id) => NotARunId(id));
        return app;
    }

    private static async Task<IResult> EnqueueAsync(string name, HttpRequest request, IWorkflowClient client, WorkflowRegistry registry,
        SampleHostSettings settings, ILoggerFactory loggers, CancellationToken cancellationToken)
    {
        if (registry.Find(name) is null)
        {
            return ApiResults.NotFound($"Unknown workflow '{Shorten(name)}'. GET /api/workflow-definitions lists the workflows.");
        }

        var key = request.Headers[IdempotencyKeyHeader].ToString();
        if (request.Headers[IdempotencyKeyHeader].Count > 1 || (request.Headers.ContainsKey(IdempotencyKeyHeader) && key.Trim().Length == 0)
            || key.Length > MaxIdempotencyKeyLength)
        {
            return ApiResults.Error(StatusCodes.Status400BadRequest, IdempotencyKeyHeader,
                $"The {IdempotencyKeyHeader} header must be one non-blank value of at most {MaxIdempotencyKeyLength} characters.");
        }

        if (!IsJson(request))
        {
            return ApiResults.Error(StatusCodes.Status415UnsupportedMediaType, "", "The request body must be JSON (Content-Type: application/json).");
        }

        var body = await ReadBodyAsync(request, settings.MaxRequestBodyBytes, cancellationToken);
        if (body.Error is not null)
        {
            return body.Error;
        }

        var blank = body.Text!.Trim().Length == 0;
        if (!blank && StrictJson.Check(body.Text) is { } malformed)
        {
            return ApiResults.Errors(StatusCodes.Status400BadRequest, [malformed]);
        }

        Guid id;
        try
        {
            var input = blank ? new JObject() : WorkflowJson.ParseObject(body.Text);
            id = await client.EnqueueAsync(name, input, new EnqueueOptions { IdempotencyKey = key.Length == 0 ? null : key }, cancellationToken);
        }
        catch (WorkflowDataValidationException ex)
        {
            return ApiResults.Errors(StatusCodes.Status400BadRequest, ex.Errors);
        }

        if (key.Length > 0)
        {
            // A key names one run: reusing it for another workflow is a client error, not a silent answer about a different run.
            var existing = await client.GetAsync(id, cancellationToken);
            if (existing is not null && existing.WorkflowName != name)
            {
                return ApiResults.Error(StatusCodes.Status409Conflict, IdempotencyKeyHeader,
                    $"The {IdempotencyKeyHeader} was already used for run {id} of workflow '{existing.WorkflowName}'.");
            }
        }

        var logger = loggers.CreateLogger(typeof(WorkflowApi));
        LogEnqueued(logger, id, name);
        return ApiResults.Json(new JObject { ["id"] = id.ToString() }, StatusCodes.Status202Accepted, RunPath(id));
    }

    private static async Task<IResult> GetAsync(Guid id, IWorkflowClient client, CancellationToken cancellationToken)
    {
        var run = await client.GetAsync(id, cancellationToken);
        return run is null ? ApiResults.NotFound($"Workflow run {id} does not exist.") : ApiResults.Json(ApiResults.Detail(run));
    }

    private static async Task<IResult> ListAsync(HttpRequest request, IWorkflowClient client, CancellationToken cancellationToken)
    {
        var errors = new List<WorkflowDataError>();
        var query = request.Query;
        WorkflowStatus? status = null;
        if (query["status"].ToString() is { Length: > 0 } statusText)
        {
            // One status name exactly: Enum.TryParse would also take numbers and "Running,Succeeded" (flags, which gives Failed).
            if (Enum.GetNames<WorkflowStatus>().FirstOrDefault(n => n.Equals(statusText.Trim(), StringComparison.OrdinalIgnoreCase)) is { } known)
            {
                status = Enum.Parse<WorkflowStatus>(known);
            }
            else
            {
                errors.Add(new WorkflowDataError("status", $"Unknown status '{statusText}'; expected one of: {string.Join(", ", Enum.GetNames<WorkflowStatus>())}."));
            }
        }

        var limit = ReadInt(query["limit"].ToString(), "limit", 50, 1, 1000, errors);
        var offset = ReadInt(query["offset"].ToString(), "offset", 0, 0, int.MaxValue, errors);
        var name = query["name"].ToString() is { Length: > 0 } n ? n : null;
        if (errors.Count > 0)
        {
            return ApiResults.Errors(StatusCodes.Status400BadRequest, errors);
        }

        var runs = await client.ListAsync(new WorkflowQuery { Status = status, WorkflowName = name, Limit = limit, Offset = offset }, cancellationToken);
        var body = new JObject
        {
            ["items"] = new JArray(runs.Select(ApiResults.Summary)),
            ["limit"] = limit,
            ["offset"] = offset,
            ["next"] = runs.Count == limit ? PageLink(status, name, limit, offset + limit) : JValue.CreateNull(),
        };
        return ApiResults.Json(body);
    }

    private static async Task<IResult> RetryAsync(Guid id, IWorkflowClient client, CancellationToken cancellationToken)
    {
        try
        {
            await client.RetryAsync(id, cancellationToken);
            return ApiResults.Json(new JObject { ["id"] = id.ToString() }, StatusCodes.Status202Accepted, RunPath(id));
        }
        catch (WorkflowRunNotFoundException)
        {
            return ApiResults.NotFound($"Workflow run {id} does not exist.");
        }
        catch (WorkflowStateException ex)
        {
            return Conflict(ex);
        }
    }

    private static async Task<IResult> CancelAsync(Guid id, IWorkflowClient client, CancellationToken cancellationToken)
    {
        try
        {
            await client.CancelAsync(id, cancellationToken);
            return Results.NoContent();
        }
        catch (WorkflowRunNotFoundException)
        {
            return ApiResults.NotFound($"Workflow run {id} does not exist.");
        }
        catch (WorkflowStateException ex)
        {
            return Conflict(ex);
        }
    }

    private static IResult NotARunId(string id)
        => ApiResults.Error(StatusCodes.Status404NotFound, "id",
            $"'{Shorten(id)}' is not a workflow run id: run ids are GUIDs such as {Guid.Empty}.");

    /// <summary>A route value as echoed in an error: at most 100 characters.</summary>
    private static string Shorten(string value) => value.Length > 100 ? value[..100] + "…" : value;

    private static IResult Conflict(WorkflowStateException ex)
        => ApiResults.Error(StatusCodes.Status409Conflict, "", ex.Message, body => body["status"] = ex.Status.ToString());

    private static string PageLink(WorkflowStatus? status, string? name, int limit, int offset)
    {
        var link = new StringBuilder("/api/workflows?");
        if (status is { } s)
        {
            link.Append("status=").Append(s).Append('&');
        }

        if (name is not null)
        {
            link.Append("name=").Append(Uri.EscapeDataString(name)).Append('&');
        }

        link.Append(CultureInfo.InvariantCulture, $"limit={limit}&offset={offset}");
        return link.ToString();
    }

    private static int ReadInt(string text, string name, int fallback, int min, int max, List<WorkflowDataError> errors)
    {
        if (text.Length == 0)
        {
            return fallback;
        }

        if (int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value) && value >= min && value <= max)
        {
            return value;
        }

        errors.Add(new WorkflowDataError(name, max == int.MaxValue
            ? $"Must be a whole number of at least {min}."
            : $"Must be a whole number from {min} to {max}."));
        return fallback;
    }

    internal static bool IsJson(HttpRequest request)
    {
        if (string.IsNullOrEmpty(request.ContentType))
        {
            return true;
        }

        return MediaTypeHeaderValue.TryParse(request.ContentType, out var media)
               && (media.MediaType.Equals("application/json", StringComparison.OrdinalIgnoreCase)
                   || media.Suffix.Equals("json", StringComparison.OrdinalIgnoreCase))
               && (StringSegment.IsNullOrEmpty(media.Charset) || media.Charset.Equals("utf-8", StringComparison.OrdinalIgnoreCase));
    }

    /// <summary>Reads at most <paramref name="limit"/> bytes of UTF-8; more answers 413 without reading the rest.</summary>
    private static async Task<(string? Text, IResult? Error)> ReadBodyAsync(HttpRequest request, int limit, CancellationToken cancellationToken)
    {
        var tooLarge = ApiResults.Error(StatusCodes.Status413PayloadTooLarge, "",
            $"The request body is larger than {limit.ToString(CultureInfo.InvariantCulture)} bytes (WorkflowJobs:Api:MaxRequestBodyBytes).");
        if (request.ContentLength > limit)
        {
            return (null, tooLarge);
        }

        var buffer = ArrayPool<byte>.Shared.Rent(Math.Min(limit + 1, 64 * 1024));
        var total = new ArrayBufferWriter<byte>();
        try
        {
            int read;
            while ((read = await request.Body.ReadAsync(buffer, cancellationToken)) > 0)
            {
                if (total.WrittenCount + read > limit)
                {
                    return (null, tooLarge);
                }

                total.Write(buffer.AsSpan(0, read));
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }

        try
        {
            var text = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true).GetString(total.WrittenSpan);
            return (text.TrimStart('\uFEFF'), null);
        }
        catch (DecoderFallbackException)
        {
            return (null, ApiResults.Error(StatusCodes.Status400BadRequest, "", "The request body is not valid UTF-8."));
        }
    }

    [LoggerMessage(EventId = 500, Level = LogLevel.Information, Message = "Workflow run {WorkflowId} of {WorkflowName} accepted through the HTTP API")]
    private static partial void LogEnqueued(ILogger logger, Guid workflowId, string workflowName);
}
