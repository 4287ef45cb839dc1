using System.Net;
using System.Security.Claims;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Http;

namespace Workflow.Jobs.Dashboard.Tests;

/// <summary>The local-request rule on its own: the client's address and the Host header (no host, no database).</summary>
[TestFixture]
public sealed class WorkflowDashboardAuthorizationRuleTests
{
    [TestCase("127.0.0.1", "localhost")]
    [TestCase("127.0.0.1", "localhost:5000")]
    [TestCase("127.0.0.1", "LocalHost")]
    [TestCase("127.0.0.1", "127.0.0.1:5000")]
    [TestCase("127.0.0.1", "127.1.2.3")]
    [TestCase("::1", "[::1]:5000")]
    [TestCase("::ffff:127.0.0.1", "localhost")]
    [TestCase("10.0.0.5", "localhost", "10.0.0.5")]
    public void IsLocalRequest_IsTrue_WhenAddressAndHostAreLocal(string remote, string host, string? local = null)
    {
        var context = Request(remote, host, local);

        Assert.That(WorkflowDashboardAuthorization.IsLocalRequest(context), Is.True);
    }

    [TestCase("127.0.0.1", "evil.example")]
    [TestCase("127.0.0.1", "localhost.evil.example")]
    [TestCase("127.0.0.1", "127.0.0.1.nip.io")]
    [TestCase("127.0.0.1", "10.0.0.5")]
    [TestCase("127.0.0.1", "")]
    [TestCase("203.0.113.7", "localhost")]
    [TestCase("10.0.0.6", "localhost", "10.0.0.5")]
    [TestCase(null, "localhost")]
    public void IsLocalRequest_IsFalse_WhenAddressOrHostIsNotLocal(string? remote, string host, string? local = null)
    {
        var context = Request(remote, host, local);

        Assert.That(WorkflowDashboardAuthorization.IsLocalRequest(context), Is.False);
    }

    [Test]
    public void IsLocalRequest_ReadsTheHttpContext_WhenGivenAnAuthorizationContext()
    {
        var user = new ClaimsPrincipal(new ClaimsIdentity());
        var local = new AuthorizationHandlerContext([], user, Request("127.0.0.1", "localhost", null));
        var remote = new AuthorizationHandlerContext([], user, Request("203.0.113.7", "localhost", null));
        var noResource = new AuthorizationHandlerContext([], user, resource: null);

        Assert.That((WorkflowDashboardAuthorization.IsLocalRequest(local), WorkflowDashboardAuthorization.IsLocalRequest(remote),
            WorkflowDashboardAuthorization.IsLocalRequest(noResource)), Is.EqualTo((true, false, false)));
    }

    private static DefaultHttpContext Request(string? remote, string host, string? local)
    {
        var context = new DefaultHttpContext();
        context.Connection.RemoteIpAddress = remote is null ? null : IPAddress.Parse(remote);
        context.Connection.LocalIpAddress = IPAddress.Parse(local ?? "127.0.0.1");
        context.Request.Host = new HostString(host);
        return context;
    }
}
