using System.Globalization;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Newtonsoft.Json.Linq;

namespace Workflow.Jobs.AspNetCore;

/// <summary>
/// The endpoints of the HTTP API over <see cref="IWorkflowClient"/> and <see cref="IWorkflowCatalog"/>. Request
/// bodies are read as text, limited in size and parsed with <see cref="WorkflowJson.ParseObject"/> (strict JSON):
/// ASP.NET model binding never touches workflow input.
/// </summary>
internal sealed partial class WorkflowApiEndpoints
{
    public const string IdempotencyKeyHeader = "Idempotency-Key";
    public const int MaxIdempotencyKeyLength = 200;
    public const string ConcurrencyKeyHeader = "Concurrency-Key";

    private readonly WorkflowJobsApiOptions _options;
    private readonly string _runsPath;
    private readonly RunJson _json;

    /// <param name="options">The checked options.</param>
    /// <param name="prefix">The API's route prefix, for the links in answers (<c>/api</c> gives <c>/api/workflows/{id}</c>).</param>
    public WorkflowApiEndpoints(WorkflowJobsApiOptions options, string prefix)
    {
        _options = options;
        _runsPath = prefix.TrimEnd('/') + "/workflows";
        _json = new RunJson(_runsPath, options.DashboardPath);
    }

    public void Map(RouteGroupBuilder read, RouteGroupBuilder write)
    {
        read.MapGet("/workflow-definitions", ListDefinitions)
            .WithName("WorkflowJobs_ListDefinitions").WithSummary("The registered workflows with their steps and retry policies.")
            .Produces(StatusCodes.Status200OK, contentType: "application/json");
        read.MapGet("/workflow-definitions/{name}", GetDefinition)
            .WithName("WorkflowJobs_GetDefinition").WithSummary("One workflow with the JSON Schema of its composite input.")
            .Produces(StatusCodes.Status200OK, contentType: "application/json").ProducesProblem(StatusCodes.Status404NotFound);
        read.MapGet("/workflows", ListAsync)
            .WithName("WorkflowJobs_ListRuns").WithSummary("Runs, newest first, filtered by status and workflow name.")
            .Produces(StatusCodes.Status200OK, contentType: "application/json").ProducesProblem(StatusCodes.Status400BadRequest);
        read.MapGet("/workflows/{id:guid}", GetAsync)
            .WithName("WorkflowJobs_GetRun").WithSummary("A run with its steps, input and output.")
            .Produces(StatusCodes.Status200OK, contentType: "application/json").ProducesProblem(StatusCodes.Status404NotFound);
        write.MapPost("/workflows/{name}", EnqueueAsync)
            .WithName("WorkflowJobs_Enqueue").WithSummary("Validates the composite input and starts a run of the named workflow.")
            // No Accepts metadata: routing would answer a wrong Content-Type with a bare 415, without problem details.
            .WithDescription("The body is the composite input (application/json), described by GET workflow-definitions/{name}. "
                + "An Idempotency-Key header makes a repeated request return the first run; a Concurrency-Key header sets the run's flow-control key "
                + "(at most MaxConcurrencyPerKey runs with one key execute at once; the others wait in creation order).")
            .Produces(StatusCodes.Status202Accepted, contentType: "application/json")
            .ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status409Conflict).ProducesProblem(StatusCodes.Status413PayloadTooLarge)
            .ProducesProblem(StatusCodes.Status415UnsupportedMediaType).ProducesProblem(StatusCodes.Status503ServiceUnavailable);
        write.MapPost("/workflows/{id:guid}/retry", RetryAsync)
            .WithName("WorkflowJobs_Retry").WithSummary("Enqueues a failed or cancelled run again; it resumes at the failed step.")
            .Produces(StatusCodes.Status202Accepted, contentType: "application/json")
            .ProducesProblem(StatusCodes.Status404NotFound).ProducesProblem(StatusCodes.Status409Conflict)
            .ProducesProblem(StatusCodes.Status415UnsupportedMediaType);
        write.MapPost("/workflows/{id:guid}/cancel", CancelAsync)
            .WithName("WorkflowJobs_Cancel").WithSummary("Cancels a run that has not finished (or has failed); with {\"compensate\": true} its succeeded steps are compensated in reverse order and it ends Compensated.")
            .Produces(StatusCodes.Status204NoContent)
            .ProducesProblem(StatusCodes.Status404NotFound).ProducesProblem(StatusCodes.Status409Conflict)
            .ProducesProblem(StatusCodes.Status415UnsupportedMediaType);

        write.MapPost("/workflows/{name}/batch", EnqueueBatchAsync)
            .WithName("WorkflowJobs_EnqueueBatch").WithSummary("Validates every input, then starts the runs in batches of one transaction each.")
            .WithDescription("The body is {\"items\": [{\"input\": {...}, \"idempotencyKey\": \"...\", \"concurrencyKey\": \"...\"}]}; nothing is written when any input is invalid "
                + "(errors name the item: items[3].customer_input.name). The answer lists the run ids in the order of the items.")
            .Produces(StatusCodes.Status202Accepted, contentType: "application/json")
            .ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status413PayloadTooLarge).ProducesProblem(StatusCodes.Status415UnsupportedMediaType)
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable);
        write.MapPost("/workflows/{id:guid}/fork", ForkAsync)
            .WithName("WorkflowJobs_Fork").WithSummary("Starts a new run from this one: earlier steps copied with their outputs, the rest run again.")
            .WithDescription("The body is {\"fromStep\": \"step name\", \"input\": {parts of the composite input}}, both optional "
                + "(default: from the first step that did not succeed, with the original input).")
            .Produces(StatusCodes.Status202Accepted, contentType: "application/json")
            .ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status415UnsupportedMediaType).ProducesProblem(StatusCodes.Status503ServiceUnavailable);

        write.MapPost("/workflows/{id:guid}/events/{eventName}", SignalAsync)
            .WithName("WorkflowJobs_Signal").WithSummary("Sends an event to a run: consumed by exactly one wait for that name (the one waiting now, or the first to come).")
            .WithDescription("The body is the event's payload (a JSON object), validated against the type the run's wait expects "
                + "(or the type the workflow declares for the event). A run waiting for the event is woken at once.")
            .Produces(StatusCodes.Status202Accepted, contentType: "application/json")
            .ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status409Conflict).ProducesProblem(StatusCodes.Status413PayloadTooLarge)
            .ProducesProblem(StatusCodes.Status415UnsupportedMediaType).ProducesProblem(StatusCodes.Status503ServiceUnavailable);

        read.MapGet("/workflows/count", CountAsync)
            .WithName("WorkflowJobs_CountRuns").WithSummary("How many runs the filters of GET workflows select.")
            .Produces(StatusCodes.Status200OK, contentType: "application/json").ProducesProblem(StatusCodes.Status400BadRequest);
        foreach (var action in new[] { "retry", "cancel", "purge" })
        {
            write.MapPost("/workflows/bulk/" + action, (HttpRequest request, IWorkflowClient client, CancellationToken cancellationToken)
                    => BulkAsync(action, request, client, cancellationToken))
                .WithName("WorkflowJobs_Bulk_" + action)
                .WithSummary(action switch
                {
                    "retry" => "Retries every Failed or Cancelled run the filters select (query string as GET workflows).",
                    "cancel" => "Cancels every unfinished or Failed run the filters select.",
                    _ => "Hard-deletes every finished run the filters select, with its steps; jobs move to Deleted.",
                })
                .WithDescription("Filters as GET workflows (status, name, recurringId, errorContains, idempotencyKey, concurrencyKey, parentId, createdAfter, createdBefore, tag); "
                    + "without any filter, all=true must confirm that every run is meant.")
                .Produces(StatusCodes.Status200OK, contentType: "application/json")
                .ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status415UnsupportedMediaType)
                .ProducesProblem(StatusCodes.Status503ServiceUnavailable);
        }

        // An id that is not a GUID matches none of the routes above: answer why, not an empty 404.
        read.MapGet("/workflows/{id}", (string id) => NotARunId(id)).ExcludeFromDescription();
        write.MapPost("/workflows/{id}/retry", (string id) => NotARunId(id)).ExcludeFromDescription();
        write.MapPost("/workflows/{id}/cancel", (string id) => NotARunId(id)).ExcludeFromDescription();
        write.MapPost("/workflows/{id}/fork", (string id) => NotARunId(id)).ExcludeFromDescription();
        write.MapPost("/workflows/{id}/events/{eventName}", (string id) => NotARunId(id)).ExcludeFromDescription();
    }

    /// <summary>Answers 503 with Retry-After when the workflow database cannot be reached, instead of 500.</summary>
    public async ValueTask<object?> AnswerOutagesAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        try
        {
            return await next(context).ConfigureAwait(false);
        }
        catch (Exception ex) when (StorageOutage.Is(ex, out var cause) && !context.HttpContext.RequestAborted.IsCancellationRequested)
        {
            LogOutage(Logger(context.HttpContext), ex, context.HttpContext.Request.Method, context.HttpContext.Request.Path);
            return StorageOutage.Answer(cause, _options.RetryAfter);
        }
    }

    private IResult ListDefinitions(IWorkflowCatalog catalog, WorkflowJobsOptions jobsOptions)
        => ApiResults.Json(new JArray(catalog.Workflows.Select(w => RunJson.Definition(w, jobsOptions.DefaultRetry, withSchema: false))));

    private IResult GetDefinition(string name, IWorkflowCatalog catalog, WorkflowJobsOptions jobsOptions)
        => catalog.Find(name) is { } workflow
            ? ApiResults.Json(RunJson.Definition(workflow, jobsOptions.DefaultRetry, withSchema: true))
            : UnknownWorkflow(name);

    private async Task<IResult> EnqueueAsync(string name, HttpRequest request, IWorkflowClient client, IWorkflowCatalog catalog,
        CancellationToken cancellationToken)
    {
        if (catalog.Find(name) is null)
        {
            return UnknownWorkflow(name);
        }

        var key = request.Headers[IdempotencyKeyHeader].ToString();
        if (request.Headers[IdempotencyKeyHeader].Count > 1 || (request.Headers.ContainsKey(IdempotencyKeyHeader) && key.Trim().Length == 0)
            || key.Length > MaxIdempotencyKeyLength)
        {
            return ApiResults.Problem(StatusCodes.Status400BadRequest, IdempotencyKeyHeader,
                $"The {IdempotencyKeyHeader} header must be one non-blank value of at most {MaxIdempotencyKeyLength} characters.");
        }

        if (!WorkflowStatusText.IsStorable(key))
        {
            return ApiResults.Problem(StatusCodes.Status400BadRequest, IdempotencyKeyHeader,
                $"The {IdempotencyKeyHeader} header cannot contain the NUL character (\\u0000).");
        }

        var concurrencyKey = request.Headers[ConcurrencyKeyHeader];
        if (concurrencyKey.Count > 1)
        {
            return ApiResults.Problem(StatusCodes.Status400BadRequest, ConcurrencyKeyHeader, $"The {ConcurrencyKeyHeader} header must be one value.");
        }

        if (!RequestBody.IsJson(request))
        {
            return RequestBody.UnsupportedMediaType();
        }

        var body = await RequestBody.ReadAsync(request, _options.MaxRequestBodyBytes, cancellationToken).ConfigureAwait(false);
        if (body.Error is not null)
        {
            return body.Error;
        }

        // Tags ride in the query string (the body is the composite input): tag=key:value, repeatable.
        var tagErrors = new List<WorkflowDataError>();
        var tags = ReadTags(request.Query, "tag", tagErrors);
        if (tagErrors.Count > 0)
        {
            return ApiResults.Problem(StatusCodes.Status400BadRequest, tagErrors);
        }

        Guid id;
        try
        {
            // No body (or only whitespace) is the empty input: every step takes its defaults.
            var input = body.Text!.Trim().Length == 0 ? new JObject() : WorkflowJson.ParseObject(body.Text);
            var options = new EnqueueOptions
            {
                IdempotencyKey = key.Length == 0 ? null : key,
                ConcurrencyKey = concurrencyKey.Count == 0 ? null : concurrencyKey.ToString(),
                Tags = tags,
            };
            id = await client.EnqueueAsync(name, input, options, cancellationToken).ConfigureAwait(false);
        }
        catch (WorkflowDataValidationException ex)
        {
            return ApiResults.Problem(StatusCodes.Status400BadRequest, ex.Errors);
        }
        catch (UnitOfWorkException ex) when (ex.Code == "unknown_workflow")
        {
            return UnknownWorkflow(name);
        }

        IReadOnlyDictionary<string, string> storedTags = tags ?? new Dictionary<string, string>();
        if (key.Length > 0)
        {
            // A key names one run: reusing it for another workflow is a client error, not a silent answer about a different run.
            var existing = await client.GetAsync(id, cancellationToken).ConfigureAwait(false);
            if (existing is not null && existing.WorkflowName != name)
            {
                return ApiResults.Problem(StatusCodes.Status409Conflict, IdempotencyKeyHeader,
                    $"The {IdempotencyKeyHeader} was already used for run {id} of workflow '{existing.WorkflowName}'.");
            }

            // A repeated request answers the first run, with the tags it was stored with.
            storedTags = existing?.Tags ?? storedTags;
        }

        var (logger, user) = (Logger(request.HttpContext), UserName(request.HttpContext));
        LogEnqueued(logger, id, name, user);
        return Accepted(id, storedTags);
    }

    /// <summary>The <c>key:value</c> tags of a repeatable query parameter; null when there are none.</summary>
    private static Dictionary<string, string>? ReadTags(IQueryCollection query, string parameter, List<WorkflowDataError> errors)
    {
        var tags = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var tag in query[parameter])
        {
            var colon = tag?.IndexOf(':', StringComparison.Ordinal) ?? -1;
            if (tag is null || colon <= 0)
            {
                errors.Add(new WorkflowDataError(parameter, $"'{Shorten(Printable(tag ?? ""))}' is not key:value."));
                continue;
            }

            var key = tag[..colon].Trim();
            if (!tags.TryAdd(key, tag[(colon + 1)..].Trim()))
            {
                errors.Add(new WorkflowDataError(parameter, $"The key '{Shorten(Printable(key))}' is repeated (a run has one value per key)."));
            }
        }

        return tags.Count == 0 ? null : tags;
    }

    /// <summary>Who made the request, for the log: the authenticated user's name, or "(anonymous)".</summary>
    internal static string UserName(HttpContext context)
        => context.User.Identity is { IsAuthenticated: true } identity ? identity.Name ?? "(unnamed user)" : "(anonymous)";

    private async Task<IResult> GetAsync(Guid id, IWorkflowClient client, CancellationToken cancellationToken)
    {
        var run = await client.GetAsync(id, cancellationToken).ConfigureAwait(false);
        return run is null ? RunNotFound(id) : ApiResults.Json(_json.Detail(run));
    }

    /// <summary>The run filters (and paging) of a query string; problems go to <paramref name="errors"/>, named by parameter.</summary>
    private WorkflowQuery ParseQuery(HttpRequest request, List<WorkflowDataError> errors)
    {
        var query = request.Query;
        var statusText = query["status"].ToString();
        if (!WorkflowStatusText.TryParse(statusText, out var status))
        {
            errors.Add(new WorkflowDataError("status", $"Unknown status '{Shorten(Printable(statusText))}'; expected one of: {WorkflowStatusText.Expected}."));
        }

        var limit = ReadInt(query["limit"].ToString(), "limit", _options.DefaultPageSize, 1, _options.MaxPageSize, errors);
        var offset = ReadInt(query["offset"].ToString(), "offset", 0, 0, int.MaxValue, errors);
        var name = ReadText(query, "name", errors);
        var recurringId = ReadText(query, "recurringId", errors);
        var errorContains = ReadText(query, "errorContains", errors);
        var idempotencyKey = ReadText(query, "idempotencyKey", errors);
        var concurrencyKey = ReadText(query, "concurrencyKey", errors);
        var parentId = ReadGuid(query, "parentId", errors);
        var createdAfter = ReadTime(query, "createdAfter", errors);
        var createdBefore = ReadTime(query, "createdBefore", errors);
        var tags = ReadTags(query, "tag", errors) ?? new Dictionary<string, string>(StringComparer.Ordinal);
        if (tags.Count > 0 && WorkflowTags.FilterError(tags) is { } tagError)
        {
            errors.Add(new WorkflowDataError("tag", tagError.Replace("WorkflowQuery.Tags: ", string.Empty, StringComparison.Ordinal)));
        }

        return new WorkflowQuery
        {
            Status = status,
            WorkflowName = name,
            RecurringId = recurringId,
            ErrorContains = errorContains,
            IdempotencyKey = idempotencyKey,
            ConcurrencyKey = concurrencyKey,
            ParentId = parentId,
            CreatedAfter = createdAfter,
            CreatedBefore = createdBefore,
            Tags = tags.Count == 0 ? null : tags,
            Limit = limit,
            Offset = offset,
        };
    }

    private async Task<IResult> CountAsync(HttpRequest request, IWorkflowClient client, CancellationToken cancellationToken)
    {
        var errors = new List<WorkflowDataError>();
        var filter = ParseQuery(request, errors);
        if (errors.Count > 0)
        {
            return ApiResults.Problem(StatusCodes.Status400BadRequest, errors);
        }

        try
        {
            return ApiResults.Json(new JObject { ["count"] = await client.CountAsync(filter, cancellationToken).ConfigureAwait(false) });
        }
        catch (ArgumentException ex)
        {
            return ApiResults.Problem(StatusCodes.Status400BadRequest, "", ex.Message);
        }
    }

    private async Task<IResult> BulkAsync(string action, HttpRequest request, IWorkflowClient client, CancellationToken cancellationToken)
    {
        if (!RequestBody.IsJson(request))
        {
            return RequestBody.UnsupportedMediaType();
        }

        var errors = new List<WorkflowDataError>();
        var filter = ParseQuery(request, errors);
        var everything = filter.WorkflowName is null && filter.Status is null && filter.RecurringId is null && filter.ErrorContains is null
                         && filter.IdempotencyKey is null && filter.ConcurrencyKey is null && filter.ParentId is null && filter.CreatedAfter is null && filter.CreatedBefore is null && filter.Tags is null;
        if (everything && request.Query["all"].ToString() != "true")
        {
            errors.Add(new WorkflowDataError("all", "No filter selects every run: add all=true to confirm, or a filter."));
        }

        if (errors.Count > 0)
        {
            return ApiResults.Problem(StatusCodes.Status400BadRequest, errors);
        }

        try
        {
            var count = action switch
            {
                "retry" => await client.RetryManyAsync(filter, cancellationToken).ConfigureAwait(false),
                "cancel" => await client.CancelManyAsync(filter, cancellationToken).ConfigureAwait(false),
                _ => await client.PurgeAsync(filter, cancellationToken).ConfigureAwait(false),
            };
            var (logger, user) = (Logger(request.HttpContext), UserName(request.HttpContext));
            LogBulk(logger, action, count, user);

            return ApiResults.Json(new JObject { ["count"] = count });
        }
        catch (ArgumentException ex)
        {
            return ApiResults.Problem(StatusCodes.Status400BadRequest, "", ex.Message);
        }
    }

    private async Task<IResult> ListAsync(HttpRequest request, IWorkflowClient client, CancellationToken cancellationToken)
    {
        var errors = new List<WorkflowDataError>();
        var filter = ParseQuery(request, errors);
        if (errors.Count > 0)
        {
            return ApiResults.Problem(StatusCodes.Status400BadRequest, errors);
        }

        var (limit, offset) = (filter.Limit, filter.Offset);
        IReadOnlyList<WorkflowRun> runs;
        try
        {
            runs = await client.ListAsync(filter, cancellationToken).ConfigureAwait(false);
        }
        catch (ArgumentException ex)
        {
            // The client's own checks of the query (lengths, ranges): the message names the property.
            return ApiResults.Problem(StatusCodes.Status400BadRequest, "", ex.Message);
        }

        var body = new JObject
        {
            ["items"] = new JArray(runs.Select(_json.Summary)),
            ["limit"] = limit,
            ["offset"] = offset,
            ["next"] = runs.Count == limit ? PageLink(request, limit, offset + limit) : JValue.CreateNull(),
        };
        return ApiResults.Json(body);
    }

    private async Task<IResult> RetryAsync(Guid id, HttpRequest request, IWorkflowClient client, CancellationToken cancellationToken)
    {
        if (!RequestBody.IsJson(request))
        {
            return RequestBody.UnsupportedMediaType();
        }

        try
        {
            await client.RetryAsync(id, cancellationToken).ConfigureAwait(false);
            var (logger, user) = (Logger(request.HttpContext), UserName(request.HttpContext));
            LogRunCommand(logger, "retry", id, user);

            return Accepted(id);
        }
        catch (WorkflowRunNotFoundException)
        {
            return RunNotFound(id);
        }
        catch (WorkflowStateException ex)
        {
            return Conflict(ex);
        }
    }

    private async Task<IResult> CancelAsync(Guid id, HttpRequest request, IWorkflowClient client, CancellationToken cancellationToken)
    {
        // No body (or {}) cancels; {"compensate": true} cancels and compensates (the run's job undoes its succeeded steps).
        var (body, error) = await ReadJsonObjectAsync(request, cancellationToken).ConfigureAwait(false);
        if (error is not null)
        {
            return error;
        }

        var errors = new List<WorkflowDataError>();
        var compensate = false;
        foreach (var property in body!.Properties())
        {
            if (property.Name != "compensate")
            {
                errors.Add(new WorkflowDataError(property.Name, "Unknown field: the body of a cancel is {\"compensate\": true|false}."));
            }
            else if (property.Value.Type == JTokenType.Boolean)
            {
                compensate = property.Value.Value<bool>();
            }
            else if (property.Value.Type != JTokenType.Null)
            {
                errors.Add(new WorkflowDataError("compensate", "Expected true or false."));
            }
        }

        if (errors.Count > 0)
        {
            return ApiResults.Problem(StatusCodes.Status400BadRequest, errors);
        }

        try
        {
            await client.CancelAsync(id, new CancelOptions { Compensate = compensate }, cancellationToken).ConfigureAwait(false);
            var (logger, user) = (Logger(request.HttpContext), UserName(request.HttpContext));
            LogRunCommand(logger, "cancel", id, user);

            return Results.NoContent();
        }
        catch (WorkflowRunNotFoundException)
        {
            return RunNotFound(id);
        }
        catch (WorkflowStateException ex)
        {
            return Conflict(ex);
        }
    }

    private async Task<IResult> EnqueueBatchAsync(string name, HttpRequest request, IWorkflowClient client, IWorkflowCatalog catalog,
        CancellationToken cancellationToken)
    {
        if (catalog.Find(name) is null)
        {
            return UnknownWorkflow(name);
        }

        var (body, error) = await ReadJsonObjectAsync(request, cancellationToken).ConfigureAwait(false);
        if (error is not null)
        {
            return error;
        }

        // {"items": [{"input": {...}, "idempotencyKey": "..."}, ...]}: each item as one enqueue.
        var errors = new List<WorkflowDataError>();
        if (body!["items"] is not JArray array)
        {
            return ApiResults.Problem(StatusCodes.Status400BadRequest, "items", "Expected an array of items, each {\"input\": {...}, \"idempotencyKey\": \"...\"}.");
        }

        var items = new List<WorkflowEnqueueItem>(array.Count);
        for (var index = 0; index < array.Count; index++)
        {
            if (array[index] is not JObject item)
            {
                errors.Add(new WorkflowDataError($"items[{index}]", "Expected an object."));
                continue;
            }

            var input = item["input"] switch
            {
                null or { Type: JTokenType.Null } => new JObject(),
                JObject o => o,
                _ => null,
            };
            if (input is null)
            {
                errors.Add(new WorkflowDataError($"items[{index}].input", "Expected an object."));
            }

            string? key = null;
            if (item["idempotencyKey"] is { Type: not JTokenType.Null } keyToken)
            {
                key = keyToken.Type == JTokenType.String ? keyToken.Value<string>() : null;
                if (key is null || key.Trim().Length == 0 || key.Length > MaxIdempotencyKeyLength || !WorkflowStatusText.IsStorable(key))
                {
                    errors.Add(new WorkflowDataError($"items[{index}].idempotencyKey", $"Expected a non-blank string of at most {MaxIdempotencyKeyLength} characters without NUL."));
                }
            }

            // "tags": {"key": "value"}, optional; the client checks the keys and values.
            Dictionary<string, string>? tags = null;
            if (item["tags"] is { Type: not JTokenType.Null } tagsToken)
            {
                if (tagsToken is not JObject tagsObject)
                {
                    errors.Add(new WorkflowDataError($"items[{index}].tags", "Expected an object of strings, such as {\"customer\": \"c-42\"}."));
                }
                else
                {
                    tags = new Dictionary<string, string>(StringComparer.Ordinal);
                    foreach (var property in tagsObject.Properties())
                    {
                        if (property.Value.Type != JTokenType.String)
                        {
                            errors.Add(new WorkflowDataError($"items[{index}].tags.{property.Name}", "Expected a string."));
                            continue;
                        }

                        tags[property.Name] = property.Value.Value<string>()!;
                    }
                }
            }


            string? concurrencyKey = null;
            if (item["concurrencyKey"] is { Type: not JTokenType.Null } concurrencyToken)
            {
                concurrencyKey = concurrencyToken.Type == JTokenType.String ? concurrencyToken.Value<string>() : null;
                if (concurrencyKey is null)
                {
                    errors.Add(new WorkflowDataError($"items[{index}].concurrencyKey", "Expected a string."));
                }
            }


            items.Add(new WorkflowEnqueueItem(input ?? [], key is null && tags is null && concurrencyKey is null
                ? null
                : new EnqueueOptions { IdempotencyKey = key, Tags = tags, ConcurrencyKey = concurrencyKey }));
        }

        if (errors.Count > 0)
        {
            return ApiResults.Problem(StatusCodes.Status400BadRequest, errors);
        }

        try
        {
            var ids = await client.EnqueueManyAsync(name, items, cancellationToken).ConfigureAwait(false);
            var (logger, user) = (Logger(request.HttpContext), UserName(request.HttpContext));
            LogBatchEnqueued(logger, ids.Count, name, user);

            return ApiResults.Json(new JObject
            {
                ["ids"] = new JArray(ids.Select(id => id.ToString())),
                // Each item's id with the tags it was given, in the order of the items.
                ["items"] = new JArray(ids.Select((id, i) => new JObject
                {
                    ["id"] = id.ToString(),
                    ["tags"] = TagsJson(items[i].Options?.Tags),
                })),
            }, StatusCodes.Status202Accepted);
        }
        catch (WorkflowDataValidationException ex)
        {
            // The client's paths start with the item index ("[3].customer_input.name"): under "items" here.
            return ApiResults.Problem(StatusCodes.Status400BadRequest, ex.Errors.Select(e => new WorkflowDataError("items" + e.Path, e.Message)).ToList());
        }
    }

    private async Task<IResult> ForkAsync(Guid id, HttpRequest request, IWorkflowClient client, CancellationToken cancellationToken)
    {
        var (body, error) = await ReadJsonObjectAsync(request, cancellationToken).ConfigureAwait(false);
        if (error is not null)
        {
            return error;
        }

        // {"fromStep": "...", "input": {...}}: both optional.
        var errors = new List<WorkflowDataError>();
        string? fromStep = null;
        if (body!["fromStep"] is { Type: not JTokenType.Null } step)
        {
            fromStep = step.Type == JTokenType.String ? step.Value<string>() : null;
            if (fromStep is null || !WorkflowStatusText.IsStorable(fromStep))
            {
                errors.Add(new WorkflowDataError("fromStep", "Expected the name of a step, as a string."));
            }
        }

        JObject? input = null;
        if (body["input"] is { Type: not JTokenType.Null } inputToken)
        {
            input = inputToken as JObject;
            if (input is null)
            {
                errors.Add(new WorkflowDataError("input", "Expected an object with parts of the composite input."));
            }
        }

        if (errors.Count > 0)
        {
            return ApiResults.Problem(StatusCodes.Status400BadRequest, errors);
        }

        try
        {
            var forkId = await client.ForkAsync(id, new ForkOptions { FromStep = fromStep, Input = input }, cancellationToken).ConfigureAwait(false);
            var (logger, user) = (Logger(request.HttpContext), UserName(request.HttpContext));
            LogForked(logger, id, forkId, user);

            return Accepted(forkId);
        }
        catch (WorkflowRunNotFoundException)
        {
            return RunNotFound(id);
        }
        catch (WorkflowDataValidationException ex)
        {
            // The client names the step "from_step"; this API's field is "fromStep".
            return ApiResults.Problem(StatusCodes.Status400BadRequest,
                ex.Errors.Select(e => e.Path == "from_step" ? new WorkflowDataError("fromStep", e.Message) : e).ToList());
        }
    }

    private async Task<IResult> SignalAsync(Guid id, string eventName, HttpRequest request, IWorkflowClient client, CancellationToken cancellationToken)
    {
        var (payload, error) = await ReadJsonObjectAsync(request, cancellationToken).ConfigureAwait(false);
        if (error is not null)
        {
            return error;
        }

        try
        {
            await client.SignalAsync(id, eventName, payload!, cancellationToken).ConfigureAwait(false);
            return ApiResults.Json(new JObject { ["id"] = id.ToString(), ["event"] = eventName }, StatusCodes.Status202Accepted, _json.RunPath(id));
        }
        catch (WorkflowRunNotFoundException)
        {
            return RunNotFound(id);
        }
        catch (WorkflowDataValidationException ex)
        {
            return ApiResults.Problem(StatusCodes.Status400BadRequest, ex.Errors.Select(e => e.Path == "event_name" ? new WorkflowDataError("eventName", e.Message) : e).ToList());
        }
        catch (UnitOfWorkException ex) when (ex.Code == UnitOfWorkException.RunFinishedCode)
        {
            return ApiResults.Problem(StatusCodes.Status409Conflict, "", ex.Message, body => body["code"] = ex.Code);
        }
    }

    /// <summary>A JSON object body (an empty body is <c>{}</c>), or the answer explaining why there is none.</summary>
    private async Task<(JObject? Body, IResult? Error)> ReadJsonObjectAsync(HttpRequest request, CancellationToken cancellationToken)
    {
        if (!RequestBody.IsJson(request))
        {
            return (null, RequestBody.UnsupportedMediaType());
        }

        var body = await RequestBody.ReadAsync(request, _options.MaxRequestBodyBytes, cancellationToken).ConfigureAwait(false);
        if (body.Error is not null)
        {
            return (null, body.Error);
        }

        try
        {
            return (body.Text!.Trim().Length == 0 ? new JObject() : WorkflowJson.ParseObject(body.Text), null);
        }
        catch (WorkflowDataValidationException ex)
        {
            return (null, ApiResults.Problem(StatusCodes.Status400BadRequest, ex.Errors));
        }
    }

    private IResult Accepted(Guid id)
        => ApiResults.Json(new JObject { ["id"] = id.ToString() }, StatusCodes.Status202Accepted, _json.RunPath(id));

    private IResult Accepted(Guid id, IReadOnlyDictionary<string, string> tags)
        => ApiResults.Json(new JObject { ["id"] = id.ToString(), ["tags"] = TagsJson(tags) }, StatusCodes.Status202Accepted, _json.RunPath(id));

    private static JObject TagsJson(IReadOnlyDictionary<string, string>? tags)
        => new((tags ?? new Dictionary<string, string>()).OrderBy(t => t.Key, StringComparer.Ordinal).Select(t => new JProperty(t.Key, t.Value)));

    private static IResult NotARunId(string id)
        => ApiResults.Problem(StatusCodes.Status404NotFound, "id", $"'{Shorten(Printable(id))}' is not a workflow run id: run ids are GUIDs such as {Guid.Empty}.");

    private static IResult RunNotFound(Guid id) => ApiResults.NotFound($"Workflow run {id} does not exist.");

    private static IResult UnknownWorkflow(string name)
        => ApiResults.NotFound($"Unknown workflow '{Shorten(Printable(name))}'. GET workflow-definitions lists the workflows.");

    private static IResult Conflict(WorkflowStateException ex)
        => ApiResults.Problem(StatusCodes.Status409Conflict, "", ex.Message, body => body["runStatus"] = ex.Status.ToString());

    /// <summary>A value as echoed in an error: at most 100 characters.</summary>
    private static string Shorten(string value) => value.Length > 100 ? value[..100] + "…" : value;

    /// <summary>Control characters (NUL included) shown as escapes, so an echoed value is readable text.</summary>
    private static string Printable(string value)
    {
        if (!value.Any(char.IsControl))
        {
            return value;
        }

        var text = new StringBuilder(value.Length + 8);
        foreach (var c in value)
        {
            text.Append(char.IsControl(c) ? string.Create(CultureInfo.InvariantCulture, $"\\u{(int)c:x4}") : c.ToString());
        }

        return text.ToString();
    }

    /// <summary>The same query with the next page's offset: every filter is carried along.</summary>
    private string PageLink(HttpRequest request, int limit, int offset)
    {
        var parts = new List<string>();
        foreach (var (key, values) in request.Query.Where(q => q.Key is not ("limit" or "offset")).OrderBy(q => q.Key, StringComparer.Ordinal))
        {
            parts.AddRange(values.Select(v => Uri.EscapeDataString(key) + "=" + Uri.EscapeDataString(v ?? "")));
        }

        parts.Add(string.Create(CultureInfo.InvariantCulture, $"limit={limit}&offset={offset}"));
        return _runsPath + "?" + string.Join("&", parts);
    }

    private static string? ReadText(IQueryCollection query, string name, List<WorkflowDataError> errors)
    {
        var text = query[name].ToString();
        if (text.Length == 0)
        {
            return null;
        }

        if (query[name].Count > 1)
        {
            errors.Add(new WorkflowDataError(name, "Give this filter once."));
            return null;
        }

        if (!WorkflowStatusText.IsStorable(text))
        {
            errors.Add(new WorkflowDataError(name, "The filter cannot contain the NUL character (\\u0000)."));
            return null;
        }

        return text;
    }

    private static Guid? ReadGuid(IQueryCollection query, string name, List<WorkflowDataError> errors)
    {
        var text = query[name].ToString();
        if (text.Length == 0)
        {
            return null;
        }

        if (Guid.TryParse(text, out var id))
        {
            return id;
        }

        errors.Add(new WorkflowDataError(name, "Expected a run id (a UUID, such as 0192f1a8-5c2e-7d4b-9a11-3f2e8c7d6b5a)."));
        return null;
    }

    private static DateTimeOffset? ReadTime(IQueryCollection query, string name, List<WorkflowDataError> errors)
    {
        var text = query[name].ToString();
        if (text.Length == 0)
        {
            return null;
        }

        if (DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var time))
        {
            return time;
        }

        errors.Add(new WorkflowDataError(name, "Expected an ISO 8601 date and time, such as 2026-11-29T14:00:00Z (UTC unless an offset is given)."));
        return null;
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

    private static ILogger Logger(HttpContext context)
        => context.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger("Workflow.Jobs.AspNetCore.WorkflowJobsApi");

    [LoggerMessage(EventId = 500, Level = LogLevel.Information, Message = "Workflow run {WorkflowId} of {WorkflowName} accepted through the HTTP API (by {User})")]
    private static partial void LogEnqueued(ILogger logger, Guid workflowId, string workflowName, string user);

    [LoggerMessage(EventId = 503, Level = LogLevel.Information, Message = "Batch of {Count} runs of {WorkflowName} accepted through the HTTP API (by {User})")]
    private static partial void LogBatchEnqueued(ILogger logger, int count, string workflowName, string user);

    [LoggerMessage(EventId = 504, Level = LogLevel.Information, Message = "Command {Command} on workflow run {WorkflowId} through the HTTP API (by {User})")]
    private static partial void LogRunCommand(ILogger logger, string command, Guid workflowId, string user);

    [LoggerMessage(EventId = 505, Level = LogLevel.Information, Message = "Workflow run {WorkflowId} forked as {ForkId} through the HTTP API (by {User})")]
    private static partial void LogForked(ILogger logger, Guid workflowId, Guid forkId, string user);

    [LoggerMessage(EventId = 502, Level = LogLevel.Warning, Message = "Bulk {Action} through the HTTP API changed {Count} workflow runs (by {User})")]
    private static partial void LogBulk(ILogger logger, string action, int count, string user);

    [LoggerMessage(EventId = 501, Level = LogLevel.Warning, Message = "{Method} {Path} answered 503: the workflow database is unavailable")]
    private static partial void LogOutage(ILogger logger, Exception exception, string method, string path);
}
