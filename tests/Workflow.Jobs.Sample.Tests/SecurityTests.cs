using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.RegularExpressions;
using Hangfire;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc.Testing.Handlers;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Newtonsoft.Json.Linq;
using Npgsql;
using OpenTelemetry.Trace;
using Workflow.Jobs.Sample.Configuration;

namespace Workflow.Jobs.Sample.Tests;

/// <summary>
/// Security of the sample host, on real PostgreSQL with a real Hangfire server:
/// <list type="bullet">
/// <item>the dashboard, its Workflows page and the Retry/Cancel (and Hangfire's Requeue/Delete) commands refuse remote
/// requests without credentials, and those commands change nothing;</item>
/// <item>remote access configured through <c>WorkflowJobs:Dashboard</c> (basic credentials) lets in exactly the right ones;</item>
/// <item><c>WorkflowJobs:Api:ReadPolicy</c> and <c>WritePolicy</c> protect the API (ApiWritePolicyTests covers writes only);</item>
/// <item>secrets — the database password, the API key, the dashboard password — appear in no log entry (every level,
/// with exceptions, structured values and scopes), no response (headers and bodies) and no exported span, while the host
/// is exercised through /health, the API (including its errors), the dashboard and a failing run; nor when the database
/// cannot be reached at start-up.</item>
/// </list>
/// TestServer requests have no client address; <see cref="ClientAddressStartupFilter"/> makes them come from the
/// loopback address (a local request) or, with the <see cref="ClientAddressHeader"/> header, from another machine.
/// </summary>
[TestFixture]
public sealed partial class SecurityTests
{
    private const string ClientAddressHeader = "X-Test-Client-Address";
    private const string RemoteAddress = "203.0.113.9";
    private const string SecretRole = "workflow_jobs_secret_test";
    private const string DashboardUser = "ops";

    // Distinctive secrets: no other text of a test run contains them.
    private readonly string _databasePassword = $"db-pw-{Guid.NewGuid():N}";
    private readonly string _apiKey = $"api-key-{Guid.NewGuid():N}";
    private readonly string _dashboardPassword = $"dash-pw-{Guid.NewGuid():N}";

    private readonly CapturingLoggerProvider _logs = new();
    private readonly ConcurrentQueue<string> _responses = new();
    private readonly ActivityCollection _spans = new();

    /// <summary>Default settings: the API is open, the dashboard takes local requests only.</summary>
    private SampleHost _open = null!;
    private HttpClient _openClient = null!;
    private (Guid Id, string JobId)? _pageRun;

    /// <summary>A password in its connection string, API key for reads and writes, dashboard basic credentials; everything recorded.</summary>
    private SampleHost _secured = null!;
    private HttpClient _keyed = null!;
    private HttpClient _anonymous = null!;

    [OneTimeSetUp]
    public async Task StartAsync()
    {
        _open = await SampleHost.StartAsync("SecurityOpen", services: services => services.AddTransient<IStartupFilter, ClientAddressStartupFilter>());
        _openClient = _open.CreateClient();

        await CreateSecretRoleAsync();
        var database = $"wjs_{Guid.NewGuid():N}"[..16] + "_secrets";
        var connectionString = new NpgsqlConnectionStringBuilder(TestDatabases.ServerConnectionString)
        {
            Username = SecretRole,
            Password = _databasePassword,
            Database = database, // created by the host itself (WorkflowJobs:ApplyMigrationsOnStartup)
        }.ConnectionString;
        _secured = await SampleHost.StartOnAsync(connectionString, settings =>
            {
                settings["WorkflowJobs:Api:WritePolicy"] = "ApiKey";
                settings["WorkflowJobs:Api:ReadPolicy"] = "ApiKey";
                settings["WorkflowJobs:Api:ApiKey"] = _apiKey;
                settings["WorkflowJobs:Dashboard:BasicAuthUserName"] = DashboardUser;
                settings["WorkflowJobs:Dashboard:BasicAuthPassword"] = _dashboardPassword;
                // Everything is logged to the capturing provider; the console and OTLP log exporters keep their usual noise level.
                foreach (var category in new[] { "Default", "Hangfire", "Microsoft.AspNetCore", "Microsoft.EntityFrameworkCore" })
                {
                    settings[$"Logging:LogLevel:{category}"] = "Trace";
                }

                settings["Logging:Console:LogLevel:Default"] = "Warning";
                settings["Logging:OpenTelemetry:LogLevel:Default"] = "Warning";
                // Telemetry on (OTLP to a closed port), spans also kept in memory for the test.
                settings["WorkflowJobs:Telemetry:Exporter"] = "Otlp";
                settings["WorkflowJobs:Telemetry:OtlpEndpoint"] = "http://127.0.0.1:9";
                settings["WorkflowJobs:Telemetry:OtlpProtocol"] = "http";
            },
            services =>
            {
                services.AddSingleton<ILoggerProvider>(_logs);
                services.AddTransient<IStartupFilter, ClientAddressStartupFilter>();
                services.ConfigureOpenTelemetryTracerProvider(tracing => tracing.AddInMemoryExporter(_spans));
            });
        _keyed = _secured.CreateDefaultClient(new RecordingHandler(_responses), new CookieContainerHandler());
        _keyed.DefaultRequestHeaders.Add("X-Api-Key", _apiKey);
        _anonymous = _secured.CreateDefaultClient(new RecordingHandler(_responses), new CookieContainerHandler());
    }

    [OneTimeTearDown]
    public async Task StopAsync()
    {
        _openClient.Dispose();
        _keyed.Dispose();
        _anonymous.Dispose();
        await _open.DisposeAsync();
        await _secured.DisposeAsync();
    }

    /// <summary>A superuser (it creates its database) whose password is the distinctive secret; the test cluster trusts local connections, so any password works.</summary>
    private async Task CreateSecretRoleAsync()
    {
        await using var connection = new NpgsqlConnection(TestDatabases.ServerConnectionString);
        await connection.OpenAsync();
        await using var create = new NpgsqlCommand($"""
            DO $$ BEGIN CREATE ROLE {SecretRole} LOGIN SUPERUSER; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
            ALTER ROLE {SecretRole} PASSWORD '{_databasePassword}';
            """, connection);
        await create.ExecuteNonQueryAsync();
    }

    private static JObject Input(string tag, int adminFailures = 0) => JObject.Parse($$"""
        {
          "customer_input": { "name": "Secure {{tag}}", "email": "billing@{{tag}}.test" },
          "admin_users_input": { "admins": [ { "email": "ann@{{tag}}.test", "name": "Ann" } ], "simulate_failures": {{adminFailures}} }
        }
        """);

    private static HttpRequestMessage Request(HttpMethod method, string path, bool remote = false, HttpContent? content = null)
    {
        var request = new HttpRequestMessage(method, path) { Content = content };
        if (remote)
        {
            request.Headers.Add(ClientAddressHeader, RemoteAddress);
        }

        return request;
    }

    private static async Task<(HttpStatusCode Status, string Body, HttpResponseMessage Response)> SendAsync(HttpClient client, HttpRequestMessage request)
    {
        using (request)
        {
            var response = await client.SendAsync(request);
            return (response.StatusCode, await response.Content.ReadAsStringAsync(), response);
        }
    }

    /// <summary>A run of the open host that failed for good (its create-subscription step always fails), and its Hangfire job.</summary>
    private async Task<(Guid Id, string JobId)> FailedRunAsync(string tag)
    {
        var input = Input(tag);
        input["subscription_input"] = new JObject { ["simulate_failures"] = 20 };
        var id = await SampleHost.EnqueueAsync(_openClient, "customer-provisioning", input);
        var run = await SampleHost.WaitForFinalFailureAsync(_openClient, id);
        var job = run["jobId"]!.Value<string>()!;
        // The run is marked Failed from inside the job's state change, just before Hangfire commits it.
        await Eventually.UntilAsync(() => Task.FromResult(JobState(job) == "Failed"), TimeSpan.FromSeconds(30), () => $"job {job} to be Failed");
        return (id, job);
    }

    private async Task<JObject> RunAsync(Guid id)
    {
        using var response = await _openClient.GetAsync($"/api/workflows/{id}");
        return (JObject)await SampleHost.ReadJsonAsync(response);
    }

    private string? JobState(string jobId)
    {
        using var connection = _open.Services.GetRequiredService<JobStorage>().GetConnection();
        return connection.GetStateData(jobId)?.Name;
    }

    /// <summary>Reads a dashboard page locally and returns its antiforgery header name and token (the antiforgery cookie stays in the client).</summary>
    private static async Task<(string Header, string Token)> AntiforgeryAsync(HttpClient client, string page)
    {
        var (status, body, _) = await SendAsync(client, Request(HttpMethod.Get, page));
        Assert.That(status, Is.EqualTo(HttpStatusCode.OK), page);
        var header = CsrfHeader().Match(body);
        var token = CsrfToken().Match(body);
        Assert.That(header.Success && token.Success, Is.True, "the page carries the antiforgery token");
        return (WebUtility.HtmlDecode(header.Groups[1].Value), WebUtility.HtmlDecode(token.Groups[1].Value));
    }

    private static HttpRequestMessage Command(string path, (string Header, string Token) antiforgery, bool remote)
    {
        var request = Request(HttpMethod.Post, path, remote);
        request.Headers.Add(antiforgery.Header, antiforgery.Token);
        return request;
    }

    // ----- Dashboard, default settings: local requests only -----------------------------------------------------------

    [TestCase("/hangfire")]
    [TestCase("/hangfire/workflows")]
    public async Task Dashboard_IsServed_WhenRequestIsLocal(string path)
    {
        var (status, body, _) = await SendAsync(_openClient, Request(HttpMethod.Get, path));

        Assert.That(status, Is.EqualTo(HttpStatusCode.OK));
        Assert.That(body, Does.Contain("Workflow.Jobs"));
    }

    [TestCase("/hangfire")]
    [TestCase("/hangfire/workflows")]
    [TestCase("/hangfire/workflows?status=Failed")]
    [TestCase("/hangfire/workflows/{run}")]
    [TestCase("/hangfire/jobs/details/{job}")]
    [TestCase("/hangfire/jobs/failed")]
    [TestCase("/hangfire/servers")]
    [TestCase("/hangfire/recurring")]
    public async Task Dashboard_RefusesRemoteRequest_WhenNoRemoteAccessIsConfigured(string path)
    {
        _pageRun ??= await FailedRunAsync("remote-page");
        var (run, job) = _pageRun.Value;
        path = path.Replace("{run}", run.ToString(), StringComparison.Ordinal).Replace("{job}", job, StringComparison.Ordinal);

        var (status, body, _) = await SendAsync(_openClient, Request(HttpMethod.Get, path, remote: true));
        var (localStatus, localBody, _) = await SendAsync(_openClient, Request(HttpMethod.Get, path));

        Assert.That(status, Is.EqualTo(HttpStatusCode.Forbidden));
        Assert.That(body, Does.Contain("local requests only").And.Not.Contain(run.ToString()).And.Not.Contain("simulated failure"));
        Assert.That(localStatus, Is.EqualTo(HttpStatusCode.OK), "the same page is served locally");
        Assert.That(localBody, Does.Contain("Workflow.Jobs"));
    }

    [Test]
    public async Task DashboardStats_RefusesRemoteRequest_WhenNoRemoteAccessIsConfigured()
    {
        var (status, body, _) = await SendAsync(_openClient, Request(HttpMethod.Post, "/hangfire/stats", remote: true,
            new FormUrlEncodedContent([new("metrics[]", "enqueued:count"), new("metrics[]", "failed:count")])));

        Assert.That(status, Is.EqualTo(HttpStatusCode.Forbidden));
        Assert.That(body, Does.Not.Contain("enqueued:count"));
    }

    [TestCase("X-Forwarded-For")]
    [TestCase("X-Real-IP")]
    [TestCase("Forwarded")]
    public async Task Dashboard_RefusesRemoteRequest_WhenItClaimsToBeForwardedForLoopback(string header)
    {
        var request = Request(HttpMethod.Get, "/hangfire/workflows", remote: true);
        request.Headers.TryAddWithoutValidation(header, header == "Forwarded" ? "for=127.0.0.1" : "127.0.0.1");

        var (status, _, _) = await SendAsync(_openClient, request);

        Assert.That(status, Is.EqualTo(HttpStatusCode.Forbidden), "the sample trusts no forwarding proxy by default");
    }

    [TestCase("retry")]
    [TestCase("cancel")]
    public async Task WorkflowCommand_IsRefusedAndChangesNothing_WhenRequestIsRemote(string command)
    {
        var (id, job) = await FailedRunAsync("remote-" + command);
        var before = await RunAsync(id);
        // A valid antiforgery token and cookie, as a page would give: only the client's address differs.
        var antiforgery = await AntiforgeryAsync(_openClient, $"/hangfire/workflows/{id}");

        var (status, _, _) = await SendAsync(_openClient, Command($"/hangfire/workflows/{id}/{command}", antiforgery, remote: true));

        Assert.That(status, Is.EqualTo(HttpStatusCode.Forbidden));
        var after = await RunAsync(id);
        Assert.That(after["status"]!.Value<string>(), Is.EqualTo("Failed"));
        Assert.That(after["attempts"]!.Value<int>(), Is.EqualTo(before["attempts"]!.Value<int>()));
        Assert.That(after["modified"]!.Value<string>(), Is.EqualTo(before["modified"]!.Value<string>()));
        Assert.That(JobState(job), Is.EqualTo("Failed"));

        // The same command from the local machine works: it was refused for being remote, not for being malformed.
        var (localStatus, localBody, _) = await SendAsync(_openClient, Command($"/hangfire/workflows/{id}/{command}", antiforgery, remote: false));
        Assert.That(localStatus, Is.EqualTo(HttpStatusCode.NoContent), localBody);
    }

    [TestCase("requeue")]
    [TestCase("delete")]
    public async Task HangfireJobCommand_IsRefusedAndChangesNothing_WhenRequestIsRemote(string action)
    {
        var (id, job) = await FailedRunAsync("remote-" + action);
        var antiforgery = await AntiforgeryAsync(_openClient, $"/hangfire/jobs/details/{job}");

        var (status, _, _) = await SendAsync(_openClient, Command($"/hangfire/jobs/actions/{action}/{job}", antiforgery, remote: true));

        Assert.That(status, Is.EqualTo(HttpStatusCode.Forbidden));
        Assert.That(JobState(job), Is.EqualTo("Failed"));
        Assert.That((await RunAsync(id))["status"]!.Value<string>(), Is.EqualTo("Failed"));
    }

    [TestCase("retry")]
    [TestCase("cancel")]
    public async Task WorkflowCommand_IsRefusedAndChangesNothing_WhenLocalRequestHasNoAntiforgeryToken(string command)
    {
        var (id, job) = await FailedRunAsync("csrf-" + command);

        var (status, _, _) = await SendAsync(_openClient, Request(HttpMethod.Post, $"/hangfire/workflows/{id}/{command}"));

        Assert.That(status, Is.EqualTo(HttpStatusCode.Forbidden));
        Assert.That((await RunAsync(id))["status"]!.Value<string>(), Is.EqualTo("Failed"));
        Assert.That(JobState(job), Is.EqualTo("Failed"));
    }

    // ----- Dashboard with basic credentials from configuration (WorkflowJobs:Dashboard) --------------------------------

    [Test]
    public async Task Dashboard_ChallengesRemoteRequest_WhenBasicCredentialsAreConfiguredButNotSent()
    {
        var (status, body, response) = await SendAsync(_anonymous, Request(HttpMethod.Get, "/hangfire/workflows", remote: true));

        Assert.That(status, Is.EqualTo(HttpStatusCode.Unauthorized));
        Assert.That(response.Headers.WwwAuthenticate.ToString(), Does.StartWith("Basic"));
        Assert.That(body, Does.Not.Contain("Workflows"));
    }

    [Test]
    public async Task Dashboard_RefusesRemoteRequest_WhenBasicPasswordIsWrong()
    {
        var request = Request(HttpMethod.Get, "/hangfire/workflows", remote: true);
        request.Headers.Authorization = Basic(DashboardUser, _dashboardPassword + "x");

        var (status, _, _) = await SendAsync(_anonymous, request);

        Assert.That(status, Is.EqualTo(HttpStatusCode.Unauthorized));
    }

    [Test]
    public async Task Dashboard_ServesRemoteRequest_WhenBasicCredentialsMatch()
    {
        var request = Request(HttpMethod.Get, "/hangfire/workflows", remote: true);
        request.Headers.Authorization = Basic(DashboardUser, _dashboardPassword);

        var (status, body, _) = await SendAsync(_anonymous, request);

        Assert.That(status, Is.EqualTo(HttpStatusCode.OK));
        Assert.That(body, Does.Contain("Workflows"));
    }

    [Test]
    public async Task Dashboard_ServesLocalRequestWithoutCredentials_WhenBasicCredentialsAreConfigured()
    {
        var (status, body, _) = await SendAsync(_anonymous, Request(HttpMethod.Get, "/hangfire/workflows"));

        Assert.That(status, Is.EqualTo(HttpStatusCode.OK));
        Assert.That(body, Does.Contain("Workflows"));
    }

    [Test]
    public async Task Dashboard_RefusesLocalAddress_WhenHostIsNotALoopbackName()
    {
        // A page of evil.example, whose name resolves to 127.0.0.1 (DNS rebinding), in the operator's browser.
        var request = Request(HttpMethod.Get, "/hangfire/workflows");
        request.Headers.Host = "evil.example";

        var (status, _, response) = await SendAsync(_anonymous, request);

        Assert.That(status, Is.EqualTo(HttpStatusCode.Unauthorized), "not local: basic credentials are asked for");
        Assert.That(response.Headers.WwwAuthenticate.ToString(), Does.StartWith("Basic"));
    }

    [Test]
    public async Task DashboardCommand_IsLoggedWithTheBasicUser_WhenRemoteWithBasicCredentials()
    {
        var id = await SampleHost.EnqueueAsync(_keyed, "customer-provisioning", Input("audit", adminFailures: 20));
        await SampleHost.WaitForFinalFailureAsync(_keyed, id);
        using var client = _secured.CreateDefaultClient(new CookieContainerHandler());
        var page = Request(HttpMethod.Get, $"/hangfire/workflows/{id}", remote: true);
        page.Headers.Authorization = Basic(DashboardUser, _dashboardPassword);
        var (pageStatus, body, _) = await SendAsync(client, page);
        Assert.That(pageStatus, Is.EqualTo(HttpStatusCode.OK));
        var antiforgery = (WebUtility.HtmlDecode(CsrfHeader().Match(body).Groups[1].Value), WebUtility.HtmlDecode(CsrfToken().Match(body).Groups[1].Value));
        var cancel = Command($"/hangfire/workflows/{id}/cancel", antiforgery, remote: true);
        cancel.Headers.Authorization = Basic(DashboardUser, _dashboardPassword);

        var (status, _, _) = await SendAsync(client, cancel);

        Assert.That(status, Is.EqualTo(HttpStatusCode.NoContent));
        var audit = _logs.Snapshot().Where(e => e.Contains("Workflow.Jobs.Dashboard[300]", StringComparison.Ordinal) && e.Contains(id.ToString(), StringComparison.Ordinal)).ToList();
        Assert.That(audit, Has.Count.EqualTo(1));
        Assert.That(audit[0], Does.Contain($"by {DashboardUser} from {RemoteAddress}"));
    }

    [Test]
    public async Task ApiCommands_AreLoggedWithTheAuthenticatedUser_WhenCalledWithTheApiKey()
    {
        var id = await SampleHost.EnqueueAsync(_keyed, "customer-provisioning", Input("api-audit", adminFailures: 20));
        await SampleHost.WaitForFinalFailureAsync(_keyed, id);

        var (retryStatus, _, _) = await SendAsync(_keyed, Request(HttpMethod.Post, $"/api/workflows/{id}/retry", content: SampleHost.Json("{}")));
        var (cancelStatus, _, _) = await SendAsync(_keyed, Request(HttpMethod.Post, $"/api/workflows/{id}/cancel", content: SampleHost.Json("{}")));

        Assert.That(retryStatus, Is.EqualTo(HttpStatusCode.Accepted));
        Assert.That(cancelStatus, Is.EqualTo(HttpStatusCode.NoContent));
        var audit = _logs.Snapshot().Where(e => e.Contains(id.ToString(), StringComparison.Ordinal) && e.Contains("through the HTTP API", StringComparison.Ordinal)).ToList();
        Assert.That(audit.Where(e => e.Contains("accepted", StringComparison.Ordinal)), Has.Some.Contains("(by api-key)"), "the enqueue");
        Assert.That(audit.Where(e => e.Contains("Command retry", StringComparison.Ordinal)), Has.Some.Contains("(by api-key)"));
        Assert.That(audit.Where(e => e.Contains("Command cancel", StringComparison.Ordinal)), Has.Some.Contains("(by api-key)"));
    }

    private static AuthenticationHeaderValue Basic(string user, string password)
        => new("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(user + ":" + password)));

    // ----- API policies ---------------------------------------------------------------------------------------------

    [TestCase("/api/workflows")]
    [TestCase("/api/workflows/00000000-0000-0000-0000-000000000001")]
    [TestCase("/api/workflows/not-a-guid")]
    [TestCase("/api/workflow-definitions")]
    [TestCase("/api/fake-api")]
    public async Task Read_Returns401WithoutKeyAndIsServedWithIt_WhenReadPolicyIsSet(string path)
    {
        var (status, body, _) = await SendAsync(_anonymous, Request(HttpMethod.Get, path));
        var (keyedStatus, _, _) = await SendAsync(_keyed, Request(HttpMethod.Get, path));

        Assert.That(status, Is.EqualTo(HttpStatusCode.Unauthorized));
        Assert.That(body, Is.Empty, "nothing of the API's data");
        Assert.That(keyedStatus, Is.Not.EqualTo(HttpStatusCode.Unauthorized).And.Not.EqualTo(HttpStatusCode.Forbidden));
    }

    [TestCase("/api/workflows/customer-provisioning")]
    [TestCase("/api/workflows/no-such-workflow")]
    [TestCase("/api/workflows/00000000-0000-0000-0000-000000000001/retry")]
    [TestCase("/api/workflows/not-a-guid/cancel")]
    [TestCase("/api/workflows/bulk/purge?all=true")]
    [TestCase("/api/workflows/customer-provisioning/batch")]
    [TestCase("/api/fake-api/failures")]
    public async Task Write_Returns401AndStoresNothing_WhenApiKeyIsMissing(string path)
    {
        var before = await CountRunsAsync();
        // A body that would be accepted with the key (and, for the fake API, arm failures).
        var content = SampleHost.Json(path.Contains("fake-api", StringComparison.Ordinal)
            ? """{"operation": "create_subscription", "times": 20}"""
            : Input("unauthorized").ToString());

        var (status, body, _) = await SendAsync(_anonymous, Request(HttpMethod.Post, path, content: content));

        Assert.That(status, Is.EqualTo(HttpStatusCode.Unauthorized));
        Assert.That(body, Is.Empty);
        Assert.That(await CountRunsAsync(), Is.EqualTo(before));
        using var fake = await _keyed.GetAsync("/api/fake-api");
        Assert.That((await SampleHost.ReadJsonAsync(fake))["armedFailures"]!, Is.Empty, "no failure armed");
    }

    // ----- Database outage --------------------------------------------------------------------------------------------

    [Test]
    public async Task Api_Answers503WithRetryAfterAndProblemDetails_WhenTheDatabaseIsUnreachable()
    {
        // A Web host whose database is a port nobody listens on: every call that needs PostgreSQL fails to connect.
        // (The shared PostgreSQL keeps running; the outage is this host's alone.)
        var port = UnusedPort();
        await using var host = await SampleHost.StartOnAsync(
            $"Host=127.0.0.1;Port={port};Username=postgres;Password=unused;Database=outage;Timeout=3;Pooling=false", s =>
            {
                s["WorkflowJobs:Role"] = "Web";
                s["WorkflowJobs:ApplyMigrationsOnStartup"] = "false";
            },
            // The outage begins after start-up: the sample's schedule registration, which needs the database to start, is left out.
            services =>
            {
                foreach (var registration in services.Where(d => d.ImplementationType?.Name == "RecurringWorkflowRegistration").ToList())
                {
                    services.Remove(registration);
                }
            });
        using var client = host.CreateClient();

        var requests = new (HttpMethod Method, string Path, HttpContent? Content)[]
        {
            (HttpMethod.Post, "/api/workflows/customer-provisioning", SampleHost.Json(Input("outage"))),
            (HttpMethod.Get, $"/api/workflows/{Guid.NewGuid()}", null),
            (HttpMethod.Get, "/api/workflows?status=Failed", null),
            (HttpMethod.Post, $"/api/workflows/{Guid.NewGuid()}/retry", SampleHost.NoInput()),
            (HttpMethod.Post, $"/api/workflows/{Guid.NewGuid()}/cancel", SampleHost.NoInput()),
        };
        foreach (var (method, path, content) in requests)
        {
            using var request = new HttpRequestMessage(method, path) { Content = content };
            using var response = await client.SendAsync(request);
            var text = await response.Content.ReadAsStringAsync();

            Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.ServiceUnavailable), $"{method} {path}: {text}");
            Assert.That(response.Headers.RetryAfter?.Delta, Is.EqualTo(TimeSpan.FromSeconds(5)), $"{method} {path}");
            Assert.That(response.Content.Headers.ContentType?.MediaType, Is.EqualTo("application/problem+json"), text);
            var body = SampleHost.Parse(text);
            SampleHost.AssertProblem(body, HttpStatusCode.ServiceUnavailable, text);
            Assert.That(body["cause"]!.Value<string>(), Is.EqualTo("database_unavailable"), text);
            Assert.That(body["detail"]!.Value<string>(), Does.Contain("database is unavailable"), text);
            Assert.That(body["errors"]![0]!["message"]!.Value<string>(), Does.Contain("database is unavailable").And.Contain(port.ToString(CultureInfo.InvariantCulture)),
                "the cause, as the driver names it");
            Assert.That(text, Does.Not.Contain("   at ").And.Not.Contain("Password").And.Not.Contain("unused"), "no stack trace, no secret");
        }

        // What needs no database keeps answering.
        using var definitions = await client.GetAsync("/api/workflow-definitions");
        Assert.That(definitions.StatusCode, Is.EqualTo(HttpStatusCode.OK));
    }

    private static int UnusedPort()
    {
        using var listener = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    private async Task<long> CountRunsAsync()
    {
        await using var connection = new NpgsqlConnection(_secured.ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT count(*) FROM workflow.workflow_runs", connection);
        return (long)(await command.ExecuteScalarAsync())!;
    }

    // ----- Secrets ----------------------------------------------------------------------------------------------------

    [Test]
    public async Task Secrets_AppearInNoLogResponseOrSpan_WhenTheHostIsExercised()
    {
        Assert.That(_secured.Services.GetRequiredService<SampleHostSettings>().ConnectionString, Does.Contain(_databasePassword),
            "the host really runs with the password");

        // Health.
        await SendAsync(_anonymous, Request(HttpMethod.Get, "/health"));
        await SendAsync(_anonymous, Request(HttpMethod.Get, "/health/live"));

        // The API, successes and errors.
        await SendAsync(_keyed, Request(HttpMethod.Get, "/api/workflow-definitions"));
        var ok = await SampleHost.EnqueueAsync(_keyed, "customer-provisioning", Input("secret-ok"));
        var failing = await SampleHost.EnqueueAsync(_keyed, "customer-provisioning", Input("secret-fail", adminFailures: 20));
        await SampleHost.WaitForStatusAsync(_keyed, ok, WorkflowStatus.Succeeded);
        var failed = await SampleHost.WaitForFinalFailureAsync(_keyed, failing);
        var job = failed["jobId"]!.Value<string>()!;
        await SendAsync(_keyed, Request(HttpMethod.Post, $"/api/workflows/{failing}/retry", content: SampleHost.NoInput()));
        await SampleHost.WaitForFinalFailureAsync(_keyed, failing, executions: 6);
        await SendAsync(_keyed, Request(HttpMethod.Get, "/api/workflows?status=Failed"));
        await SendAsync(_keyed, Request(HttpMethod.Get, "/api/workflows?status=nope&limit=0"));
        await SendAsync(_keyed, Request(HttpMethod.Post, $"/api/workflows/{ok}/cancel", content: SampleHost.NoInput()));
        await SendAsync(_keyed, Request(HttpMethod.Post, $"/api/workflows/{Guid.NewGuid()}/retry", content: SampleHost.NoInput()));
        await SendAsync(_keyed, Request(HttpMethod.Get, "/api/workflows/not-a-guid"));
        await SendAsync(_keyed, Request(HttpMethod.Post, "/api/workflows/customer-provisioning", content: SampleHost.Json("""{"customer_input": {"name": ""}}""")));
        await SendAsync(_keyed, Request(HttpMethod.Post, "/api/workflows/customer-provisioning", content: SampleHost.Json("{'broken")));
        await SendAsync(_keyed, Request(HttpMethod.Post, "/api/workflows/customer-provisioning", content: SampleHost.Json(new string(' ', 300 * 1024))));
        await SendAsync(_keyed, Request(HttpMethod.Post, "/api/workflows/customer-provisioning", content: new StringContent("x", Encoding.UTF8, "text/plain")));
        await SendAsync(_keyed, Request(HttpMethod.Post, "/api/workflows/no-such-workflow", content: SampleHost.Json("{}")));
        await SendAsync(_anonymous, Request(HttpMethod.Post, "/api/workflows/customer-provisioning", content: SampleHost.Json("{}")));
        var wrongKey = Request(HttpMethod.Get, "/api/workflows");
        wrongKey.Headers.Add("X-Api-Key", "not-" + _apiKey[..8]);
        await SendAsync(_anonymous, wrongKey);
        await SendAsync(_keyed, Request(HttpMethod.Get, "/api/fake-api"));
        await SendAsync(_keyed, Request(HttpMethod.Post, "/api/fake-api/failures", content: SampleHost.Json("""{"operation": "x", "times": -1}""")));

        // The dashboard: every page locally, a command, and remote requests with and without credentials.
        foreach (var page in new[]
                 {
                     "/hangfire", "/hangfire/workflows", "/hangfire/workflows?status=Failed", $"/hangfire/workflows/{failing}", $"/hangfire/workflows/{ok}",
                     $"/hangfire/jobs/details/{job}", "/hangfire/jobs/failed", "/hangfire/jobs/succeeded", "/hangfire/jobs/enqueued", "/hangfire/jobs/deleted",
                     "/hangfire/retries", "/hangfire/recurring", "/hangfire/servers", "/hangfire/workflows/not-a-run",
                 })
        {
            var (status, _, _) = await SendAsync(_keyed, Request(HttpMethod.Get, page));
            Assert.That((int)status, Is.LessThan(500), page);
        }

        await SendAsync(_keyed, Request(HttpMethod.Post, "/hangfire/stats", content: new FormUrlEncodedContent([new("metrics[]", "failed:count")])));
        var antiforgery = await AntiforgeryAsync(_keyed, $"/hangfire/workflows/{failing}");
        var (cancelled, _, _) = await SendAsync(_keyed, Command($"/hangfire/workflows/{failing}/cancel", antiforgery, remote: false));
        Assert.That(cancelled, Is.EqualTo(HttpStatusCode.NoContent));
        await SendAsync(_anonymous, Request(HttpMethod.Get, "/hangfire/workflows", remote: true));
        var remote = Request(HttpMethod.Get, $"/hangfire/workflows/{failing}", remote: true);
        remote.Headers.Authorization = Basic(DashboardUser, _dashboardPassword);
        await SendAsync(_anonymous, remote);
        var wrongPassword = Request(HttpMethod.Get, "/hangfire/workflows", remote: true);
        wrongPassword.Headers.Authorization = Basic(DashboardUser, "wrong");
        await SendAsync(_anonymous, wrongPassword);

        // What was recorded is the real output: the failing run's error and the dashboard's pages are in it.
        var logs = _logs.Snapshot();
        var responses = _responses.ToList();
        var spans = _spans.Snapshot().Select(Describe).ToList();
        Assert.That(logs, Has.Some.Contains("Fake API timed out on create_admin_user"), "the failing step's error is logged");
        Assert.That(logs, Has.Some.Contains("Workflow.Jobs sample host: role All"), "the start-up line is captured");
        Assert.That(logs.Count, Is.GreaterThan(100));
        Assert.That(responses, Has.Some.Contains("Fake API timed out on create_admin_user"), "a page or the API shows the error");
        Assert.That(responses, Has.Some.Contains("<html"), "dashboard pages are recorded");
        Assert.That(responses, Has.Some.Contains("\"status\":\"Healthy\""), "the health report is recorded");
        Assert.That(spans, Has.Some.Contains("workflow.run"), "spans are recorded");

        foreach (var (name, secret) in new[] { ("database password", _databasePassword), ("API key", _apiKey), ("dashboard password", _dashboardPassword) })
        {
            Assert.Multiple(() =>
            {
                Assert.That(logs.Where(l => l.Contains(secret, StringComparison.Ordinal)).Select(Shorten), Is.Empty, $"log entries with the {name}");
                Assert.That(responses.Where(r => r.Contains(secret, StringComparison.Ordinal)).Select(Shorten), Is.Empty, $"responses with the {name}");
                Assert.That(spans.Where(s => s.Contains(secret, StringComparison.Ordinal)).Select(Shorten), Is.Empty, $"spans with the {name}");
            });
        }
    }

    [Test]
    public async Task Startup_FailsWithoutRevealingThePassword_WhenDatabaseIsUnreachable()
    {
        var password = $"db-pw-{Guid.NewGuid():N}";
        var logs = new CapturingLoggerProvider();
        var unreachable = new NpgsqlConnectionStringBuilder(TestDatabases.ServerConnectionString)
        {
            Port = 1, Username = SecretRole, Password = password, Database = "wjs_unreachable", Timeout = 5,
        }.ConnectionString;

        Exception? failure = null;
        try
        {
            await using var host = await SampleHost.StartOnAsync(unreachable, settings => settings["Logging:LogLevel:Default"] = "Trace",
                services => services.AddSingleton<ILoggerProvider>(logs));
        }
        catch (Exception ex)
        {
            failure = ex;
        }
        finally
        {
            // The failed host is never disposed: keep Hangfire's process-wide logging off its logger factory (see SampleHost.DisposeAsync).
            global::Hangfire.Logging.LogProvider.SetCurrentLogProvider(null);
        }

        Assert.That(failure, Is.Not.Null, "the host cannot start without its database");
        Assert.That(failure!.ToString(), Does.Contain("127.0.0.1").And.Not.Contain(password));
        Assert.That(logs.Snapshot().Where(l => l.Contains(password, StringComparison.Ordinal)).Select(Shorten), Is.Empty);
    }

    private static string Describe(Activity activity)
    {
        var text = new StringBuilder(activity.DisplayName).Append(' ').Append(activity.StatusDescription);
        foreach (var (key, value) in activity.TagObjects)
        {
            text.Append(' ').Append(key).Append('=').Append(value);
        }

        foreach (var activityEvent in activity.Events)
        {
            text.Append(' ').Append(activityEvent.Name);
            foreach (var (key, value) in activityEvent.Tags)
            {
                text.Append(' ').Append(key).Append('=').Append(value);
            }
        }

        return text.ToString();
    }

    private static string Shorten(string text) => text.Length > 400 ? text[..400] + "…" : text;

    [GeneratedRegex("<meta name=\"csrf-header\" content=\"([^\"]*)\"")]
    private static partial Regex CsrfHeader();

    [GeneratedRegex("<meta name=\"csrf-token\" content=\"([^\"]*)\"")]
    private static partial Regex CsrfToken();

    /// <summary>
    /// Gives TestServer requests a client address: the loopback address (local), or the one in the
    /// <see cref="ClientAddressHeader"/> header (remote). The server's own address is the loopback address.
    /// </summary>
    private sealed class ClientAddressStartupFilter : IStartupFilter
    {
        public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
        {
            app.Use((HttpContext context, RequestDelegate nextMiddleware) =>
            {
                context.Connection.LocalIpAddress = IPAddress.Loopback;
                context.Connection.RemoteIpAddress = context.Request.Headers.TryGetValue(ClientAddressHeader, out var address)
                    ? IPAddress.Parse(address.ToString())
                    : IPAddress.Loopback;
                return nextMiddleware(context);
            });
            next(app);
        };
    }

    /// <summary>Records every response: status, headers and body.</summary>
    private sealed class RecordingHandler(ConcurrentQueue<string> responses) : DelegatingHandler
    {
        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var response = await base.SendAsync(request, cancellationToken);
            await response.Content.LoadIntoBufferAsync(cancellationToken);
            var body = await response.Content.ReadAsStringAsync(cancellationToken);
            responses.Enqueue($"{request.Method} {request.RequestUri} -> {(int)response.StatusCode}\n{response.Headers}{response.Content.Headers}\n{body}");
            return response;
        }
    }
}

/// <summary>
/// A logger provider that records every entry of every category and level: the formatted message, the exception
/// (with its inner exceptions and stack), every structured value, and the scopes (what a JSON console formatter writes).
/// </summary>
internal sealed class CapturingLoggerProvider : ILoggerProvider, ISupportExternalScope
{
    private readonly ConcurrentQueue<string> _entries = new();
    private IExternalScopeProvider _scopes = new LoggerExternalScopeProvider();

    public List<string> Snapshot() => [.. _entries];

    public ILogger CreateLogger(string categoryName) => new CapturingLogger(this, categoryName);

    public void SetScopeProvider(IExternalScopeProvider scopeProvider) => _scopes = scopeProvider;

    public void Dispose()
    {
    }

    private sealed class CapturingLogger(CapturingLoggerProvider provider, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => provider._scopes.Push(state);

        public bool IsEnabled(LogLevel logLevel) => logLevel != LogLevel.None;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            var entry = new StringBuilder()
                .Append(logLevel).Append(' ').Append(category).Append('[').Append(eventId.Id).Append("] ")
                .Append(formatter(state, exception));
            if (exception is not null)
            {
                entry.Append('\n').Append(exception);
            }

            Append(entry, state);
            provider._scopes.ForEachScope((scope, text) => Append(text.Append(" scope: ").Append(scope), scope), entry);
            provider._entries.Enqueue(entry.ToString());
        }

        private static StringBuilder Append(StringBuilder entry, object? values)
        {
            if (values is IEnumerable<KeyValuePair<string, object?>> pairs)
            {
                foreach (var (key, value) in pairs)
                {
                    entry.Append(' ').Append(key).Append('=').Append(value);
                }
            }

            return entry;
        }
    }
}
