using Hangfire.Dashboard;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Newtonsoft.Json.Linq;

namespace Workflow.Jobs.Hangfire.Dashboard;

/// <summary>
/// Retry, Cancel, Cancel and compensate, Fork and Send event of a run, as Hangfire's own commands work: POST only, behind the dashboard's authorization
/// and antiforgery check (done by Hangfire's dashboard middleware before any dispatcher runs), refused in
/// read-only mode. Answers 204, or 404 / 409 / 503 with a plain-text reason the page shows.
/// </summary>
internal sealed partial class WorkflowCommandDispatcher : IDashboardDispatcher
{
    public const string Retry = "retry";
    public const string Cancel = "cancel";
    public const string Event = "event";

    /// <summary>The largest Send event body accepted (name and payload).</summary>
    internal const int MaxEventBodyBytes = 1024 * 1024;

    public const string Fork = "fork";

    public const string CancelAndCompensate = "cancel-compensate";

    public async Task Dispatch(DashboardContext context)
    {
        if (await AcceptAsync(context).ConfigureAwait(false) is not { } request)
        {
            return;
        }

        var http = request.Http;
        var id = request.RouteId;
        var command = context.UriMatch.Groups["Command"].Value.ToLowerInvariant();
        if (command == Fork)
        {
            await WorkflowForkCommand.ExecuteAsync(request, id).ConfigureAwait(false);
            return;
        }

        var logger = http.RequestServices.GetService<ILoggerFactory>()?.CreateLogger("Workflow.Jobs.Dashboard");
        try
        {
            // Not tied to the request's abort token: once an operator's command starts, it completes.
            if (command == Retry)
            {
                await request.Client.RetryAsync(id, CancellationToken.None).ConfigureAwait(false);
            }
            else if (command == Event)
            {
                var (name, payload, error) = await ReadEventAsync(http.Request).ConfigureAwait(false);
                if (error is not null)
                {
                    await RespondAsync(http, StatusCodes.Status400BadRequest, error).ConfigureAwait(false);
                    return;
                }

                await request.Client.SignalAsync(id, name!, payload!, CancellationToken.None).ConfigureAwait(false);
            }
            else if (command == CancelAndCompensate)
            {
                await request.Client.CancelAsync(id, new CancelOptions { Compensate = true }, CancellationToken.None).ConfigureAwait(false);
            }
            else
            {
                await request.Client.CancelAsync(id, CancellationToken.None).ConfigureAwait(false);
            }
        }
        catch (WorkflowRunNotFoundException ex)
        {
            await RespondAsync(http, StatusCodes.Status404NotFound, ex.Message).ConfigureAwait(false);
            return;
        }
        catch (WorkflowStateException ex)
        {
            await RespondAsync(http, StatusCodes.Status409Conflict, ex.Message).ConfigureAwait(false);
            return;
        }
        catch (WorkflowDataValidationException ex)
        {
            await RespondAsync(http, StatusCodes.Status400BadRequest,
                "The event was not sent: " + string.Join("; ", ex.Errors.Select(e => e.Path.Length == 0 ? e.Message : $"{e.Path}: {e.Message}"))).ConfigureAwait(false);
            return;
        }
        catch (UnitOfWorkException ex) when (ex.Code == UnitOfWorkException.RunFinishedCode)
        {
            await RespondAsync(http, StatusCodes.Status409Conflict, ex.Message).ConfigureAwait(false);
            return;
        }
        catch (Exception ex) when (DatabaseUnavailable.Is(ex))
        {
            http.Response.Headers.RetryAfter = DatabaseUnavailable.RetryAfterSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
            await RespondAsync(http, StatusCodes.Status503ServiceUnavailable,
                "The workflow database is unavailable; nothing was changed. Try again in a few seconds.").ConfigureAwait(false);
            return;
        }

        if (logger is not null)
        {
            var (user, address) = (UserName(http), http.Connection.RemoteIpAddress);
            LogCommand(logger, command, id, user, address);
        }

        http.Response.StatusCode = StatusCodes.Status204NoContent;
    }

    /// <summary>The Send event form's body: <c>{"name": "...", "payload": {...}}</c>; or why it cannot be read.</summary>
    private static async Task<(string? Name, JObject? Payload, string? Error)> ReadEventAsync(HttpRequest request)
    {
        if (request.ContentLength > MaxEventBodyBytes)
        {
            return (null, null, $"The event is larger than {MaxEventBodyBytes / 1024} KB.");
        }

        using var reader = new StreamReader(request.Body);
        var buffer = new char[MaxEventBodyBytes + 1];
        var length = await reader.ReadBlockAsync(buffer.AsMemory(), request.HttpContext.RequestAborted).ConfigureAwait(false);
        if (length > MaxEventBodyBytes)
        {
            return (null, null, $"The event is larger than {MaxEventBodyBytes / 1024} KB.");
        }

        JObject body;
        try
        {
            body = WorkflowJson.ParseObject(new string(buffer, 0, length));
        }
        catch (WorkflowDataValidationException ex)
        {
            return (null, null, "The event is not a JSON object: " + ex.Message);
        }

        if (body["name"] is not { Type: JTokenType.String } name || string.IsNullOrWhiteSpace(name.Value<string>()))
        {
            return (null, null, "name: the event's name is required.");
        }

        if (body["payload"] is not JObject payload)
        {
            return (null, null, "payload: expected a JSON object.");
        }

        return (name.Value<string>(), payload, null);
    }

    /// <summary>
    /// The checks every command passes (the same for run commands, fork and bulk actions): a host with workflows, not
    /// read-only, POST, not cross-site. Answers the refusal itself and returns null; else the request.
    /// </summary>
    internal static async Task<WorkflowPageRequest?> AcceptAsync(DashboardContext context)
    {
        if (WorkflowPageRequest.From(context) is not { } request)
        {
            context.Response.StatusCode = StatusCodes.Status404NotFound;
            return null;
        }

        var http = request.Http;
        if (context.IsReadOnly)
        {
            await RespondAsync(http, StatusCodes.Status403Forbidden, "The dashboard is read-only.").ConfigureAwait(false);
            return null;
        }

        if (!HttpMethods.IsPost(http.Request.Method))
        {
            http.Response.Headers.Allow = "POST";
            await RespondAsync(http, StatusCodes.Status405MethodNotAllowed, "Use POST.").ConfigureAwait(false);
            return null;
        }

        if (IsCrossSite(http.Request))
        {
            await RespondAsync(http, StatusCodes.Status403Forbidden, "Cross-site requests are refused.").ConfigureAwait(false);
            return null;
        }

        return request;
    }

    /// <summary>The user the host's authentication put on the request (a policy's schemes, or UseAuthentication), for the log.</summary>
    internal static string UserName(HttpContext http)
        => http.User.Identity is { IsAuthenticated: true } identity ? identity.Name ?? "(unnamed user)" : "(anonymous)";

    /// <summary>
    /// Defence in depth besides the antiforgery token: browsers mark requests started by another site
    /// (<c>Sec-Fetch-Site</c>); such a request never comes from the dashboard's own buttons.
    /// </summary>
    private static bool IsCrossSite(HttpRequest request)
    {
        var site = request.Headers["Sec-Fetch-Site"].ToString();
        return site.Length > 0 && !site.Equals("same-origin", StringComparison.OrdinalIgnoreCase) && !site.Equals("none", StringComparison.OrdinalIgnoreCase);
    }

    internal static async Task RespondAsync(HttpContext http, int status, string message)
    {
        http.Response.StatusCode = status;
        http.Response.ContentType = "text/plain; charset=utf-8";
        await http.Response.WriteAsync(message, http.RequestAborted).ConfigureAwait(false);
    }

    [LoggerMessage(EventId = 300, Level = LogLevel.Information,
        Message = "Dashboard command {Command} on workflow run {WorkflowId} by {User} from {RemoteAddress}")]
    private static partial void LogCommand(ILogger logger, string command, Guid workflowId, string user, System.Net.IPAddress? remoteAddress);
}
