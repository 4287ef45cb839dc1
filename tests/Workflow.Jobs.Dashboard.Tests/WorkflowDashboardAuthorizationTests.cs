using System.Net;
using System.Security.Claims;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Workflow.Jobs.Dashboard.Tests;

/// <summary>
/// Who may open the dashboard and run its commands: local requests (loopback address and loopback Host name) by
/// default; with an authorization policy, whoever satisfies it. "Remote" is a request forwarded for another address
/// (X-Forwarded-For).
/// </summary>
[TestFixture]
[Parallelizable(ParallelScope.Self)]
public sealed class WorkflowDashboardAuthorizationTests
{
    private const string Policy = "dashboard-ops";

    private readonly CapturingLoggerProvider _policyLogs = new();
    private DashboardTestHost _localOnly = null!;
    private DashboardTestHost _policy = null!;

    [OneTimeSetUp]
    public async Task StartAsync()
    {
        // Emptying Hangfire's filter lists in ConfigureDashboard must not open the dashboard: every test below that
        // expects a refusal from this host proves the local-only rule still holds.
        _localOnly = await DashboardTestHost.StartAsync("auth-local", o => o.ConfigureDashboard = d =>
        {
            d.Authorization = [];
            d.AsyncAuthorization = [];
        }, runServer: false);
        _policy = await DashboardTestHost.StartAsync("auth-policy", o =>
            {
                o.AuthorizationPolicy = Policy;
                o.ReadOnlyFunc = http => http.User.Identity?.Name == "reader";
            },
            runServer: false,
            configureBuilder: b =>
            {
                b.Services.AddAuthentication(HeaderAuthenticationHandler.SchemeName)
                    .AddScheme<AuthenticationSchemeOptions, HeaderAuthenticationHandler>(HeaderAuthenticationHandler.SchemeName, _ => { });
                b.Services.AddAuthorization(o => o.AddPolicy(Policy, p => p.RequireAuthenticatedUser().RequireRole("ops")));
            },
            logs: _policyLogs);
    }

    [OneTimeTearDown]
    public async Task StopAsync()
    {
        await _localOnly.DisposeAsync();
        await _policy.DisposeAsync();
    }

    [TestCase(null)]
    [TestCase("localhost")]
    [TestCase("LOCALHOST")]
    [TestCase("127.0.0.1")]
    [TestCase("[::1]")]
    public async Task Page_IsServed_WhenRequestIsLocal(string? host)
    {
        using var client = _localOnly.CreateClient();
        client.Host = host is null ? null : host + ":" + _localOnly.BaseAddress.Port;

        var (status, body, _) = await client.GetAsync("/hangfire/workflows");

        Assert.That(status, Is.EqualTo(HttpStatusCode.OK));
        Assert.That(body, Does.Contain("page-header\">Workflows"));
    }

    [TestCase("/hangfire/workflows")]
    [TestCase("/hangfire/workflows/9b0c8a55-2f4e-4d0e-9d51-1f1a4a2b6c7d")]
    [TestCase("/hangfire")]
    [TestCase("/hangfire/jobs/enqueued")]
    public async Task Page_IsRefused_WhenRemoteAndNoPolicyConfigured(string path)
    {
        using var client = _localOnly.CreateClient(remote: true);

        var (status, body, _) = await client.GetAsync(path);

        Assert.That(status, Is.EqualTo(HttpStatusCode.Forbidden));
        Assert.That(body, Does.Contain("local requests only"));
    }

    [TestCase("evil.example")]
    [TestCase("localhost.evil.example")]
    [TestCase("127.0.0.1.nip.io")]
    public async Task Page_IsRefused_WhenLocalAddressButHostIsNotLoopbackName(string host)
    {
        // DNS rebinding: a page of evil.example, whose name now resolves to 127.0.0.1, calls the dashboard from the
        // operator's own browser. The connection is local; only the Host header tells.
        using var client = _localOnly.CreateClient();
        client.Host = host + ":" + _localOnly.BaseAddress.Port;

        var (status, body, _) = await client.GetAsync("/hangfire/workflows");

        Assert.That(status, Is.EqualTo(HttpStatusCode.Forbidden));
        Assert.That(body, Does.Contain("local requests only").And.Not.Contain("page-header"));
    }

    [Test]
    public async Task Command_IsRefused_WhenLocalAddressButHostIsNotLoopbackName()
    {
        var id = await _localOnly.EnqueueHelloAsync();
        using var client = _localOnly.CreateClient();
        await client.GetAsync($"/hangfire/workflows/{id}");
        client.Host = "evil.example:" + _localOnly.BaseAddress.Port;

        var (status, _) = await client.PostAsync($"/hangfire/workflows/{id}/cancel");

        Assert.That(status, Is.EqualTo(HttpStatusCode.Forbidden));
        Assert.That((await _localOnly.GetRunAsync(id)).Status, Is.EqualTo(WorkflowStatus.Pending));
    }

    [TestCase("cancel")]
    [TestCase("retry")]
    public async Task Command_IsRefused_WhenRemoteAndNoPolicyConfigured(string command)
    {
        var id = await _localOnly.EnqueueHelloAsync();
        using var local = _localOnly.CreateClient();
        await local.GetAsync($"/hangfire/workflows/{id}");
        using var remote = _localOnly.CreateClient(remote: true);

        var (status, _) = await remote.PostAsync($"/hangfire/workflows/{id}/{command}");

        Assert.That(status, Is.EqualTo(HttpStatusCode.Forbidden));
        Assert.That((await _localOnly.GetRunAsync(id)).Status, Is.EqualTo(WorkflowStatus.Pending));
    }

    [Test]
    public async Task Page_IsChallenged_WhenRemoteAndNotAuthenticated()
    {
        using var client = _policy.CreateClient(remote: true);

        var (status, _, response) = await client.GetAsync("/hangfire/workflows");

        Assert.That(status, Is.EqualTo(HttpStatusCode.Unauthorized));
        Assert.That(response.Headers.WwwAuthenticate.ToString(), Does.StartWith(HeaderAuthenticationHandler.SchemeName), "the policy's authentication challenges");
    }

    [Test]
    public async Task Page_IsChallenged_WhenLocalAndNotAuthenticated()
    {
        using var client = _policy.CreateClient();

        var (status, _, _) = await client.GetAsync("/hangfire/workflows");

        Assert.That(status, Is.EqualTo(HttpStatusCode.Unauthorized), "with a policy, the policy decides for local requests too");
    }

    [Test]
    public async Task Page_IsForbidden_WhenUserDoesNotSatisfyPolicy()
    {
        using var client = _policy.CreateClient(remote: true);
        client.ExtraHeaders[HeaderAuthenticationHandler.UserHeader] = "bob";

        var (status, _, _) = await client.GetAsync("/hangfire/workflows");

        Assert.That(status, Is.EqualTo(HttpStatusCode.Forbidden));
    }

    [Test]
    public async Task Page_IsServed_WhenUserSatisfiesPolicy()
    {
        using var client = _policy.CreateClient(remote: true);
        client.ExtraHeaders[HeaderAuthenticationHandler.UserHeader] = "alice";
        client.ExtraHeaders[HeaderAuthenticationHandler.RoleHeader] = "ops";

        var (status, body, _) = await client.GetAsync("/hangfire/workflows");

        Assert.That(status, Is.EqualTo(HttpStatusCode.OK));
        Assert.That(body, Does.Contain("page-header\">Workflows"));
    }

    [Test]
    public async Task Cancel_CancelsRunAndLogsTheUser_WhenUserSatisfiesPolicy()
    {
        var id = await _policy.EnqueueHelloAsync();
        using var client = _policy.CreateClient(remote: true);
        client.ExtraHeaders[HeaderAuthenticationHandler.UserHeader] = "alice";
        client.ExtraHeaders[HeaderAuthenticationHandler.RoleHeader] = "ops";
        await client.GetAsync($"/hangfire/workflows/{id}");

        var (status, _) = await client.PostAsync($"/hangfire/workflows/{id}/cancel");

        Assert.That(status, Is.EqualTo(HttpStatusCode.NoContent));
        Assert.That((await _policy.GetRunAsync(id)).Status, Is.EqualTo(WorkflowStatus.Cancelled));
        var audit = _policyLogs.Entries.Where(e => e.Category == "Workflow.Jobs.Dashboard" && e.EventId.Id == 300 && e.Message.Contains(id.ToString(), StringComparison.Ordinal)).ToList();
        Assert.That(audit, Has.Count.EqualTo(1), "one audit entry for the command");
        Assert.That(audit[0].Message, Does.Contain("by alice from " + DashboardTestHost.RemoteAddress));
    }

    [Test]
    public async Task ReadOnlyFunc_SeesThePolicysUser_WhenDecidingPerRequest()
    {
        var id = await _policy.EnqueueHelloAsync();
        using var reader = _policy.CreateClient(remote: true);
        reader.ExtraHeaders[HeaderAuthenticationHandler.UserHeader] = "reader";
        reader.ExtraHeaders[HeaderAuthenticationHandler.RoleHeader] = "ops";
        using var alice = _policy.CreateClient(remote: true);
        alice.ExtraHeaders[HeaderAuthenticationHandler.UserHeader] = "alice";
        alice.ExtraHeaders[HeaderAuthenticationHandler.RoleHeader] = "ops";

        var (_, readerPage, _) = await reader.GetAsync($"/hangfire/workflows/{id}");
        var (_, alicePage, _) = await alice.GetAsync($"/hangfire/workflows/{id}");
        var (status, body) = await reader.PostAsync($"/hangfire/workflows/{id}/cancel");

        Assert.Multiple(() =>
        {
            Assert.That(readerPage, Does.Contain("Read-only dashboard").And.Not.Contain("id=\"workflow-cancel\""));
            Assert.That(alicePage, Does.Contain("id=\"workflow-cancel\""));
            Assert.That(status, Is.EqualTo(HttpStatusCode.Forbidden));
            Assert.That(body, Does.Contain("read-only"));
        });
        Assert.That((await _policy.GetRunAsync(id)).Status, Is.EqualTo(WorkflowStatus.Pending));
    }

    [Test]
    public async Task Cancel_IsRefused_WhenUserDoesNotSatisfyPolicy()
    {
        var id = await _policy.EnqueueHelloAsync();
        using var client = _policy.CreateClient(remote: true);
        client.ExtraHeaders[HeaderAuthenticationHandler.UserHeader] = "bob";

        var (status, _) = await client.PostAsync($"/hangfire/workflows/{id}/cancel");

        Assert.That(status, Is.EqualTo(HttpStatusCode.Forbidden));
        Assert.That((await _policy.GetRunAsync(id)).Status, Is.EqualTo(WorkflowStatus.Pending));
    }

    [Test]
    public async Task ListPage_ShowsOnlyItsOwnHostsRuns_WhenHostsShareTheProcess()
    {
        var mine = await _localOnly.EnqueueHelloAsync("mine");
        var theirs = await _policy.EnqueueHelloAsync("theirs");
        using var client = _localOnly.CreateClient();
        using var other = _policy.CreateClient();
        other.ExtraHeaders[HeaderAuthenticationHandler.UserHeader] = "alice";
        other.ExtraHeaders[HeaderAuthenticationHandler.RoleHeader] = "ops";

        var (_, body, _) = await client.GetAsync("/hangfire/workflows");
        var (_, otherBody, _) = await other.GetAsync("/hangfire/workflows");

        Assert.Multiple(() =>
        {
            Assert.That(body, Does.Contain(mine.ToString()).And.Not.Contain(theirs.ToString()));
            Assert.That(otherBody, Does.Contain(theirs.ToString()).And.Not.Contain(mine.ToString()));
        });
    }

    [Test]
    public void MapWorkflowJobsDashboard_Throws_WhenPolicyIsNotDefined()
    {
        using var app = BuildUnstartedApp(_localOnly.ConnectionString, b => b.Services.AddAuthorization());

        var error = Assert.Throws<InvalidOperationException>(() => app.MapWorkflowJobsDashboard(configure: o => o.AuthorizationPolicy = "missing"));

        Assert.That(error!.Message, Does.Contain("'missing' is not defined"));
    }

    [Test]
    public void MapWorkflowJobsDashboard_Throws_WhenPolicyIsNamedButAuthorizationIsNotConfigured()
    {
        using var app = BuildUnstartedApp(_localOnly.ConnectionString, null);

        var error = Assert.Throws<InvalidOperationException>(() => app.MapWorkflowJobsDashboard(configure: o => o.AuthorizationPolicy = "ops"));

        Assert.That(error!.Message, Does.Contain("AddAuthorization"));
    }

    private static WebApplication BuildUnstartedApp(string connectionString, Action<WebApplicationBuilder>? configure)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = "Production" });
        builder.Logging.ClearProviders();
        builder.Services.AddWorkflowJobs(o => o.UseNpgsql(connectionString)).AddWorkflow<HelloWorkflow>().AddHangfireJobs(o => o.RunServer = false);
        configure?.Invoke(builder);
        return builder.Build();
    }
}

/// <summary>A stand-in for a real sign-in: the user and role come from request headers.</summary>
public sealed class HeaderAuthenticationHandler(IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logger, UrlEncoder encoder)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string SchemeName = "TestHeader";
    public const string UserHeader = "X-Test-User";
    public const string RoleHeader = "X-Test-Role";

    protected override Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var user = Request.Headers[UserHeader].ToString();
        if (user.Length == 0)
        {
            return Task.FromResult(AuthenticateResult.NoResult());
        }

        var claims = new List<Claim> { new(ClaimTypes.Name, user) };
        var role = Request.Headers[RoleHeader].ToString();
        if (role.Length > 0)
        {
            claims.Add(new Claim(ClaimTypes.Role, role));
        }

        var principal = new ClaimsPrincipal(new ClaimsIdentity(claims, SchemeName));
        return Task.FromResult(AuthenticateResult.Success(new AuthenticationTicket(principal, SchemeName)));
    }

    protected override Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        Response.StatusCode = StatusCodes.Status401Unauthorized;
        Response.Headers.WWWAuthenticate = SchemeName;
        return Task.CompletedTask;
    }
}
