using Hangfire.Dashboard;
using Microsoft.AspNetCore.Http;

namespace Workflow.Jobs.Hangfire.Dashboard;

/// <summary>
/// The default authorization of the dashboard: Hangfire's <see cref="LocalRequestsOnlyAuthorizationFilter"/> (the
/// remote address is loopback or the server's own), plus a loopback <c>Host</c> name. A refused request gets 403
/// with a plain-text reason that says how to allow remote access (Hangfire alone would answer a bare 401).
/// </summary>
internal sealed class LocalRequestsOnlyDashboardFilter : IDashboardAsyncAuthorizationFilter
{
    public const string RefusalMessage =
        "The dashboard accepts local requests only (from this machine, addressed as localhost). "
        + "Set WorkflowDashboardOptions.AuthorizationPolicy for remote access.";

    private readonly LocalRequestsOnlyAuthorizationFilter _localAddress = new();

    public async Task<bool> AuthorizeAsync(DashboardContext context)
    {
        if (context is not AspNetCoreDashboardContext aspNetCore)
        {
            return false;
        }

        if (_localAddress.Authorize(context) && WorkflowDashboardAuthorization.IsLoopbackHost(aspNetCore.HttpContext.Request.Host))
        {
            return true;
        }

        // Written here so the reason reaches the client; Hangfire leaves a started response alone.
        var response = aspNetCore.HttpContext.Response;
        response.StatusCode = StatusCodes.Status403Forbidden;
        response.ContentType = "text/plain; charset=utf-8";
        await response.WriteAsync(RefusalMessage, aspNetCore.HttpContext.RequestAborted).ConfigureAwait(false);
        return false;
    }
}
