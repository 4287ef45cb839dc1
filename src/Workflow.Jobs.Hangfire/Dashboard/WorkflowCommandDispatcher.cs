using Hangfire.Dashboard;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Workflow.Jobs.Hangfire.Dashboard;

/// <summary>
/// Retry, Cancel and Cancel and compensate of a run, as Hangfire's own commands work: POST only, behind the dashboard's authorization
/// and antiforgery check (done by Hangfire's dashboard middleware before any dispatcher runs), refused in
/// read-only mode. Answers 204, or 404 / 409 / 503 with a plain-text reason the page shows.
/// </summary>
internal sealed partial class WorkflowCommandDispatcher : IDashboardDispatcher
{
    public const string Retry = "retry";
    public const string Cancel = "cancel";
    public const string CancelAndCompensate = "cancel-compensate";

    public async Task Dispatch(DashboardContext context)
    {
        if (WorkflowPageRequest.From(context) is not { } request)
        {
            context.Response.StatusCode = StatusCodes.Status404NotFound;
            return;
        }

        var http = request.Http;
        if (context.IsReadOnly)
        {
            await RespondAsync(http, StatusCodes.Status403Forbidden, "The dashboard is read-only.").ConfigureAwait(false);
            return;
        }

        if (!HttpMethods.IsPost(http.Request.Method))
        {
            http.Response.Headers.Allow = "POST";
            await RespondAsync(http, StatusCodes.Status405MethodNotAllowed, "Use POST.").ConfigureAwait(false);
            return;
        }

        if (IsCrossSite(http.Request))
        {
            await RespondAsync(http, StatusCodes.Status403Forbidden, "Cross-site requests are refused.").ConfigureAwait(false);
            return;
        }

        var id = request.RouteId;
        var command = context.UriMatch.Groups["Command"].Value.ToLowerInvariant();
        var logger = http.RequestServices.GetService<ILoggerFactory>()?.CreateLogger("Workflow.Jobs.Dashboard");
        try
        {
            // Not tied to the request's abort token: once an operator's command starts, it completes.
            if (command == Retry)
            {
                await request.Client.RetryAsync(id, CancellationToken.None).ConfigureAwait(false);
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
        catch (Exception ex) when (DatabaseUnavailable.Is(ex))
        {
            http.Response.Headers.RetryAfter = DatabaseUnavailable.RetryAfterSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
            await RespondAsync(http, StatusCodes.Status503ServiceUnavailable,
                "The workflow database is unavailable; nothing was changed. Try again in a few seconds.").ConfigureAwait(false);
            return;
        }

        if (logger is not null)
        {
            // The user the host's authentication put on the request (a policy's schemes, or UseAuthentication).
            var user = http.User.Identity is { IsAuthenticated: true } identity ? identity.Name ?? "(unnamed user)" : "(anonymous)";
            LogCommand(logger, command, id, user, http.Connection.RemoteIpAddress);
        }

        http.Response.StatusCode = StatusCodes.Status204NoContent;
    }

    /// <summary>
    /// Defence in depth besides the antiforgery token: browsers mark requests started by another site
    /// (<c>Sec-Fetch-Site</c>); such a request never comes from the dashboard's own buttons.
    /// </summary>
    private static bool IsCrossSite(HttpRequest request)
    {
        var site = request.Headers["Sec-Fetch-Site"].ToString();
        return site.Length > 0 && !site.Equals("same-origin", StringComparison.OrdinalIgnoreCase) && !site.Equals("none", StringComparison.OrdinalIgnoreCase);
    }

    private static async Task RespondAsync(HttpContext http, int status, string message)
    {
        http.Response.StatusCode = status;
        http.Response.ContentType = "text/plain; charset=utf-8";
        await http.Response.WriteAsync(message, http.RequestAborted).ConfigureAwait(false);
    }

    [LoggerMessage(EventId = 300, Level = LogLevel.Information,
        Message = "Dashboard command {Command} on workflow run {WorkflowId} by {User} from {RemoteAddress}")]
    private static partial void LogCommand(ILogger logger, string command, Guid workflowId, string user, System.Net.IPAddress? remoteAddress);
}
