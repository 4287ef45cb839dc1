using System.Net;
using System.Security.Claims;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Newtonsoft.Json.Linq;
using Newtonsoft.Json;

namespace Workflow.Jobs.Sample.Tests;

[WorkflowKey("ping_input")]
public sealed class PingInput : WorkflowData
{
    [JsonProperty("text"), System.ComponentModel.DataAnnotations.Required]
    public string Text { get; set; } = "";
}

[WorkflowKey("ping_output")]
public sealed class PingOutput : WorkflowData
{
    [JsonProperty("text")]
    public string Text { get; set; } = "";
}

[WorkflowName("ping")]
public sealed class PingStep : WorkflowStep<PingInput, PingOutput>
{
    protected override Task<PingOutput> ProcessInputAsync(PingInput input, StepContext context, CancellationToken cancellationToken)
        => Task.FromResult(new PingOutput { Text = input.Text });
}

[WorkflowName("ping")]
public sealed class PingWorkflow : WorkflowDefinition
{
    public override IReadOnlyList<Type> Steps { get; } = [typeof(PingStep)];
}

/// <summary>
/// The Workflow.Jobs.AspNetCore package in an application of its own (not the sample's Program): the returned
/// group composes conventions, the prefix is the application's, and invalid options stop the mapping.
/// </summary>
public class WorkflowJobsApiPackageTests
{
    private string _connectionString = null!;

    [OneTimeSetUp]
    public async Task CreateDatabaseAsync() => _connectionString = await TestDatabases.CreateAsync(nameof(WorkflowJobsApiPackageTests));

    private async Task<TestApp> StartAsync(Action<WebApplication> map, Action<IServiceCollection>? services = null)
    {
        var builder = WebApplication.CreateBuilder();
        builder.WebHost.UseTestServer();
        builder.Logging.ClearProviders();
        builder.Services.AddWorkflowJobs(o => o.UseNpgsql(_connectionString))
            .AddWorkflow<PingWorkflow>()
            .AddHangfireJobs(o => o.RunServer = false);
        services?.Invoke(builder.Services);
        var app = builder.Build();
        map(app);
        await app.StartAsync();
        return new TestApp(app);
    }

    /// <summary>The application; disposing it first detaches Hangfire's process-wide log provider from it (see <see cref="SampleHost.DisposeAsync"/>).</summary>
    private sealed class TestApp(WebApplication app) : IAsyncDisposable
    {
        public HttpClient CreateClient() => app.GetTestClient();

        public async ValueTask DisposeAsync()
        {
            global::Hangfire.Logging.LogProvider.SetCurrentLogProvider(null);
            await app.DisposeAsync();
        }
    }

    [Test]
    public async Task ReturnedGroup_AppliesItsConventionsToEveryEndpoint()
    {
        await using var app = await StartAsync(
            a =>
            {
                a.UseAuthentication();
                a.UseAuthorization();
                a.MapWorkflowJobsApi("/ops").RequireAuthorization("ops");
            },
            services =>
            {
                services.AddAuthentication("header").AddScheme<AuthenticationSchemeOptions, HeaderAuthenticationHandler>("header", null);
                services.AddAuthorizationBuilder().AddPolicy("ops", p => p.RequireAuthenticatedUser());
            });
        using var client = app.CreateClient();

        foreach (var (method, path) in new[]
                 {
                     (HttpMethod.Get, "/ops/workflow-definitions"), (HttpMethod.Get, "/ops/workflow-definitions/ping"),
                     (HttpMethod.Get, "/ops/workflows"), (HttpMethod.Get, $"/ops/workflows/{Guid.NewGuid()}"),
                     (HttpMethod.Post, "/ops/workflows/ping"), (HttpMethod.Post, $"/ops/workflows/{Guid.NewGuid()}/retry"),
                     (HttpMethod.Post, $"/ops/workflows/{Guid.NewGuid()}/cancel"),
                 })
        {
            using var request = new HttpRequestMessage(method, path) { Content = method == HttpMethod.Post ? SampleHost.Json("{}") : null };
            using var response = await client.SendAsync(request);
            Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.Unauthorized), $"{method} {path}");
        }

        using var authorized = new HttpRequestMessage(HttpMethod.Get, "/ops/workflow-definitions");
        authorized.Headers.Add(HeaderAuthenticationHandler.Header, "ops-user");
        using var ok = await client.SendAsync(authorized);
        Assert.That(ok.StatusCode, Is.EqualTo(HttpStatusCode.OK));
    }

    [Test]
    public async Task Answers_LinkUnderTheApplicationsPrefix_AndOmitTheJobLink_WhenNoDashboardPathIsSet()
    {
        await using var app = await StartAsync(a => a.MapWorkflowJobsApi("/v2/flows", o => o.DashboardPath = null));
        using var client = app.CreateClient();
        var input = JObject.Parse("""{ "ping_input": { "text": "prefix" } }""");

        using var response = await client.PostAsync("/v2/flows/workflows/ping", SampleHost.Json(input));
        var body = await SampleHost.ReadJsonAsync(response);
        var id = body["id"]!.Value<string>();
        using var list = await client.GetAsync("/v2/flows/workflows?limit=1");
        var listed = await SampleHost.ReadJsonAsync(list);

        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.Accepted));
        Assert.That(response.Headers.Location?.ToString(), Is.EqualTo($"/v2/flows/workflows/{id}"));
        var item = listed["items"]!.Single();
        Assert.That(item["links"]!["self"]!.Value<string>(), Is.EqualTo($"/v2/flows/workflows/{id}"));
        Assert.That(item["links"]!["job"], Is.Null, "no dashboard path, no job link");
        Assert.That(listed["next"]!.Value<string>(), Is.EqualTo("/v2/flows/workflows?limit=1&offset=1"));
    }

    [TestCase(nameof(WorkflowJobsApiOptions.MaxRequestBodyBytes))]
    [TestCase(nameof(WorkflowJobsApiOptions.DefaultPageSize))]
    [TestCase(nameof(WorkflowJobsApiOptions.RetryAfter))]
    [TestCase(nameof(WorkflowJobsApiOptions.DashboardPath))]
    public void Mapping_Throws_NamingTheOption_WhenAnOptionIsInvalid(string option)
    {
        using var app = WebApplication.CreateBuilder().Build();

        var error = Assert.Throws<InvalidOperationException>(() => app.MapWorkflowJobsApi("/api", o =>
        {
            switch (option)
            {
                case nameof(WorkflowJobsApiOptions.MaxRequestBodyBytes): o.MaxRequestBodyBytes = 0; break;
                case nameof(WorkflowJobsApiOptions.DefaultPageSize): o.DefaultPageSize = o.MaxPageSize + 1; break;
                case nameof(WorkflowJobsApiOptions.RetryAfter): o.RetryAfter = TimeSpan.Zero; break;
                default: o.DashboardPath = "hangfire"; break;
            }
        }));

        Assert.That(error!.Message, Does.Contain(option));
    }

    /// <summary>Authenticates a request that carries <see cref="Header"/>; challenges with 401 otherwise.</summary>
    private sealed class HeaderAuthenticationHandler(IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logger, UrlEncoder encoder)
        : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
    {
        public const string Header = "X-Test-User";

        protected override Task<AuthenticateResult> HandleAuthenticateAsync()
            => Task.FromResult(Request.Headers.TryGetValue(Header, out var user)
                ? AuthenticateResult.Success(new AuthenticationTicket(
                    new ClaimsPrincipal(new ClaimsIdentity([new Claim(ClaimTypes.Name, user.ToString())], Scheme.Name)), Scheme.Name))
                : AuthenticateResult.NoResult());
    }
}
