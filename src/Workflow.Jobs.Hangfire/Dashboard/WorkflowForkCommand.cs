using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Newtonsoft.Json;
using Newtonsoft.Json.Linq;

namespace Workflow.Jobs.Hangfire.Dashboard;

/// <summary>
/// The Fork command of a run page: a form with <c>fromStep</c> (empty: the first step that did not succeed) and
/// <c>input</c> (the composite input as JSON text, edited on the page). Answers 201 with <c>{"id", "url"}</c> of the new
/// run, or 400 with <c>{"errors": [{"path", "message"}]}</c> (nothing created), 404 or 503 with a plain-text reason.
/// </summary>
internal static partial class WorkflowForkCommand
{
    /// <summary>The largest input text the page may send.</summary>
    public const int MaxInputChars = 1_000_000;

    public static async Task ExecuteAsync(WorkflowPageRequest request, Guid id)
    {
        var http = request.Http;
        if (!http.Request.HasFormContentType)
        {
            await WriteErrorsAsync(http, [new WorkflowDataError("", "Send the fork as a form (fromStep, input).")]).ConfigureAwait(false);
            return;
        }

        var form = await http.Request.ReadFormAsync(http.RequestAborted).ConfigureAwait(false);
        var fromStep = form["fromStep"].ToString().Trim();
        var inputText = form["input"].ToString();
        JObject? input = null;
        if (inputText.Length > MaxInputChars)
        {
            await WriteErrorsAsync(http, [new WorkflowDataError("input", $"The input has more than {MaxInputChars} characters.")]).ConfigureAwait(false);
            return;
        }

        if (inputText.Trim().Length > 0)
        {
            try
            {
                input = WorkflowJson.ParseObject(inputText);
            }
            catch (WorkflowDataValidationException ex)
            {
                await WriteErrorsAsync(http, ex.Errors.Select(e => new WorkflowDataError(e.Path.Length == 0 ? "input" : "input." + e.Path, e.Message)).ToList())
                    .ConfigureAwait(false);
                return;
            }
        }

        if (!WorkflowStatusText.IsStorable(fromStep))
        {
            await WriteErrorsAsync(http, [new WorkflowDataError("from_step", "The step name cannot contain the NUL character.")]).ConfigureAwait(false);
            return;
        }

        Guid forkId;
        try
        {
            // Not tied to the request's abort token: once an operator's command starts, it completes.
            forkId = await request.Client.ForkAsync(id, new ForkOptions { FromStep = fromStep.Length == 0 ? null : fromStep, Input = input }, CancellationToken.None)
                .ConfigureAwait(false);
        }
        catch (WorkflowRunNotFoundException ex)
        {
            await WorkflowCommandDispatcher.RespondAsync(http, StatusCodes.Status404NotFound, ex.Message).ConfigureAwait(false);
            return;
        }
        catch (WorkflowDataValidationException ex)
        {
            await WriteErrorsAsync(http, ex.Errors).ConfigureAwait(false);
            return;
        }
        catch (UnitOfWorkException ex) when (ex.Code == UnitOfWorkException.UnknownWorkflowCode)
        {
            await WorkflowCommandDispatcher.RespondAsync(http, StatusCodes.Status409Conflict, ex.Message).ConfigureAwait(false);
            return;
        }
        catch (Exception ex) when (DatabaseUnavailable.Is(ex))
        {
            http.Response.Headers.RetryAfter = DatabaseUnavailable.RetryAfterSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
            await WorkflowCommandDispatcher.RespondAsync(http, StatusCodes.Status503ServiceUnavailable,
                "The workflow database is unavailable; nothing was created. Try again in a few seconds.").ConfigureAwait(false);
            return;
        }

        if (http.RequestServices.GetService<ILoggerFactory>()?.CreateLogger("Workflow.Jobs.Dashboard") is { } logger)
        {
            var (user, address) = (WorkflowCommandDispatcher.UserName(http), http.Connection.RemoteIpAddress);
            LogFork(logger, id, forkId, user, address);
        }

        var url = new global::Hangfire.Dashboard.UrlHelper(request.Dashboard).To(WorkflowDashboardRoutes.RunPath(forkId));
        await WriteJsonAsync(http, StatusCodes.Status201Created, new JObject { ["id"] = forkId.ToString(), ["url"] = url }).ConfigureAwait(false);
    }

    private static Task WriteErrorsAsync(HttpContext http, IEnumerable<WorkflowDataError> errors)
        => WriteJsonAsync(http, StatusCodes.Status400BadRequest, new JObject
        {
            ["errors"] = new JArray(errors.Select(e => new JObject { ["path"] = e.Path, ["message"] = e.Message })),
        });

    private static async Task WriteJsonAsync(HttpContext http, int status, JObject body)
    {
        http.Response.StatusCode = status;
        http.Response.ContentType = "application/json; charset=utf-8";
        await http.Response.WriteAsync(body.ToString(Formatting.None), http.RequestAborted).ConfigureAwait(false);
    }

    [LoggerMessage(EventId = 301, Level = LogLevel.Information,
        Message = "Dashboard command fork on workflow run {WorkflowId} created run {ForkId} by {User} from {RemoteAddress}")]
    private static partial void LogFork(ILogger logger, Guid workflowId, Guid forkId, string user, System.Net.IPAddress? remoteAddress);
}
