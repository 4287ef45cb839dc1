using System.Net;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Http;

namespace Workflow.Jobs;

/// <summary>
/// The dashboard's local-request rule, for authorization policies that let local requests in besides signed-in
/// users, for example
/// <c>policy.RequireAssertion(c =&gt; WorkflowDashboardAuthorization.IsLocalRequest(c) || c.User.IsInRole("ops"))</c>.
/// </summary>
public static class WorkflowDashboardAuthorization
{
    /// <summary>
    /// Whether the request comes from this machine: its remote address is a loopback address or the server's own
    /// address (the rule of Hangfire's <c>LocalRequestsOnlyAuthorizationFilter</c>), and its <c>Host</c> names the
    /// machine by a loopback name (<c>localhost</c>, <c>127.0.0.1</c>, <c>[::1]</c>), so that a page of another site
    /// whose name resolves to 127.0.0.1 (DNS rebinding) is not taken for a local one.
    /// </summary>
    /// <param name="context">The request.</param>
    /// <returns>True for a local request.</returns>
    public static bool IsLocalRequest(HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var remote = context.Connection.RemoteIpAddress;
        if (remote is null)
        {
            return false;
        }

        var localAddress = IPAddress.IsLoopback(remote) || (context.Connection.LocalIpAddress is { } local && remote.Equals(local));
        return localAddress && IsLoopbackHost(context.Request.Host);
    }

    /// <summary>
    /// Overload for <c>RequireAssertion</c>: the resource of an endpoint's authorization is its <see cref="HttpContext"/>.
    /// </summary>
    /// <param name="context">The authorization context of the request.</param>
    /// <returns>True for a local request.</returns>
    public static bool IsLocalRequest(AuthorizationHandlerContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        return context.Resource is HttpContext http && IsLocalRequest(http);
    }

    /// <summary>Whether a <c>Host</c> header names this machine by a loopback name: <c>localhost</c> or a loopback IP address.</summary>
    internal static bool IsLoopbackHost(HostString host)
    {
        var name = host.Host;
        if (string.IsNullOrEmpty(name))
        {
            return false;
        }

        if (name.Equals("localhost", StringComparison.OrdinalIgnoreCase))
        {
            return true;
        }

        if (name.StartsWith('[') && name.EndsWith(']'))
        {
            name = name[1..^1];
        }

        return IPAddress.TryParse(name, out var address) && IPAddress.IsLoopback(address);
    }
}
