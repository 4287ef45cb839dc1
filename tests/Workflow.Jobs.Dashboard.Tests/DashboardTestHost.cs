using System.Net;
using System.Text.RegularExpressions;
using Hangfire;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.HttpOverrides;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace Workflow.Jobs.Dashboard.Tests;

/// <summary>
/// A real web host of the tests' own (not the sample's): Kestrel on 127.0.0.1 with a free port, Workflow.Jobs on
/// its own PostgreSQL database with a Hangfire server, and the dashboard mapped by <c>MapWorkflowJobsDashboard</c>.
/// Requests are local; a test makes one remote by sending <c>X-Forwarded-For</c>, which the host honours
/// (<c>UseForwardedHeaders</c>, loopback being a trusted proxy) as a reverse-proxied host does. A host whose
/// services include authorization gets <c>UseAuthentication</c> and <c>UseAuthorization</c> after the forwarded headers.
/// </summary>
public sealed class DashboardTestHost : IAsyncDisposable
{
    public const string RemoteAddress = "203.0.113.7";

    private readonly string _connectionString;

    private DashboardTestHost(WebApplication app, Uri baseAddress, string connectionString)
    {
        App = app;
        BaseAddress = baseAddress;
        _connectionString = connectionString;
    }

    public WebApplication App { get; }

    /// <summary>The host's own database.</summary>
    public string ConnectionString => _connectionString;

    /// <summary>For example <c>http://127.0.0.1:41234/</c>.</summary>
    public Uri BaseAddress { get; }

    public IWorkflowClient Client => App.Services.GetRequiredService<IWorkflowClient>();

    public FailureSwitch Failures => App.Services.GetRequiredService<FailureSwitch>();

    public JobStorage Storage => App.Services.GetRequiredService<JobStorage>();

    public static async Task<DashboardTestHost> StartAsync(string name, Action<WorkflowDashboardOptions>? dashboard = null,
        Action<WebApplicationBuilder>? configureBuilder = null, bool runServer = true, ILoggerProvider? logs = null,
        string? workflowConnectionString = null, Action<WorkflowJobsOptions>? configureWorkflows = null)
    {
        var connectionString = workflowConnectionString ?? await DashboardDatabase.CreateAsync(name);
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = "Production" });
        builder.Logging.ClearProviders();
        if (logs is not null)
        {
            builder.Logging.AddProvider(logs);
        }

        builder.WebHost.UseKestrel().UseUrls("http://127.0.0.1:0");
        builder.Services.AddSingleton<FailureSwitch>();
        builder.Services.AddAntiforgery();
        builder.Services.AddWorkflowJobs(o =>
            {
                o.UseNpgsql(connectionString);
                configureWorkflows?.Invoke(o);
            })
            .AddWorkflow<HelloWorkflow>()
            .AddWorkflow<FlakyWorkflow>()
            .AddWorkflow<ApprovalWorkflow>()
            .AddWorkflow<GreetAllWorkflow>()
            .AddHangfireJobs(o =>
            {
                o.RunServer = runServer;
                o.WorkerCount = 2;
                o.QueuePollInterval = TimeSpan.FromMilliseconds(50);
                o.ShutdownTimeout = TimeSpan.FromSeconds(2);
            });
        configureBuilder?.Invoke(builder);

        var app = builder.Build();
        app.UseForwardedHeaders(new ForwardedHeadersOptions { ForwardedHeaders = ForwardedHeaders.XForwardedFor });
        if (app.Services.GetService<IAuthenticationSchemeProvider>() is not null)
        {
            app.UseAuthentication();
        }

        if (app.Services.GetService<IAuthorizationHandlerProvider>() is not null)
        {
            app.UseAuthorization();
        }

        app.MapWorkflowJobsDashboard(configure: dashboard);
        await app.StartAsync();
        var address = app.Urls.Single();
        return new DashboardTestHost(app, new Uri(address.TrimEnd('/') + "/"), connectionString);
    }

    public Task<Guid> EnqueueHelloAsync(string name = "world", TimeSpan? delay = null)
        => Client.EnqueueAsync<HelloWorkflow>(new WorkflowInput(new GreetInput { Name = name }), new EnqueueOptions { Delay = delay });

    /// <summary>Enqueues a flaky run and waits until it has failed (its second step fails until <paramref name="releaseKey"/> is released).</summary>
    public async Task<Guid> StartFailedRunAsync(string releaseKey, string name = "world")
    {
        var id = await Client.EnqueueAsync<FlakyWorkflow>(new WorkflowInput(new GreetInput { Name = name }, new FlakyInput { ReleaseKey = releaseKey }));
        await WaitForStatusAsync(id, WorkflowStatus.Failed);
        return id;
    }

    public async Task<WorkflowRun> WaitForStatusAsync(Guid id, WorkflowStatus status)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            var run = await Client.GetAsync(id);
            if (run?.Status == status)
            {
                return run;
            }

            if (DateTime.UtcNow > deadline)
            {
                var job = run?.JobId is { } jobId ? JobState(jobId) : null;
                var monitoring = Storage.GetMonitoringApi();
                Assert.Fail($"Timed out after 30 s waiting for run {id} to be {status}: it is {run?.Status.ToString() ?? "missing"}, "
                    + $"its job {run?.JobId} is {job}; queue 'default': {monitoring.EnqueuedCount("default")} enqueued, {monitoring.FetchedCount("default")} fetched.");
            }

            await Task.Delay(25);
        }
    }

    public async Task<WorkflowRun> GetRunAsync(Guid id) => await Client.GetAsync(id) ?? throw new InvalidOperationException($"No run {id}.");

    /// <summary>The Hangfire state of a job ("Deleted", "Succeeded"...).</summary>
    public string? JobState(string jobId)
    {
        using var connection = Storage.GetConnection();
        return connection.GetStateData(jobId)?.Name;
    }

    /// <summary>A client of this host's dashboard, with its own cookies (the antiforgery cookie).</summary>
    public DashboardHttpClient CreateClient(bool remote = false, AuthenticationHeaderValueFactory? authorization = null)
        => new(BaseAddress, remote, authorization);

    public static async Task WaitUntilAsync(Func<Task<bool>> condition, TimeSpan timeout, string what)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                Assert.Fail($"Timed out after {timeout.TotalSeconds:0.#} s waiting for: {what}");
            }

            await Task.Delay(25);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await App.StopAsync();
        await App.DisposeAsync();
    }
}

/// <summary>Makes the Authorization header of each request (null: none).</summary>
public delegate System.Net.Http.Headers.AuthenticationHeaderValue? AuthenticationHeaderValueFactory();

/// <summary>
/// An HTTP client of the dashboard that behaves like the dashboard's own pages: it keeps cookies, reads the
/// antiforgery header name and token from a page's <c>csrf-header</c>/<c>csrf-token</c> meta tags, and sends them
/// with commands.
/// </summary>
public sealed partial class DashboardHttpClient : IDisposable
{
    private readonly HttpClient _http;
    private readonly bool _remote;
    private readonly AuthenticationHeaderValueFactory? _authorization;

    public DashboardHttpClient(Uri baseAddress, bool remote, AuthenticationHeaderValueFactory? authorization)
    {
        _http = new HttpClient(new HttpClientHandler { CookieContainer = new CookieContainer(), AllowAutoRedirect = false }) { BaseAddress = baseAddress };
        _remote = remote;
        _authorization = authorization;
    }

    public (string Header, string Token)? Antiforgery { get; private set; }

    public Dictionary<string, string> ExtraHeaders { get; } = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>The Host header to send instead of the address's own (for example a name that resolves to 127.0.0.1).</summary>
    public string? Host { get; set; }

    public async Task<(HttpStatusCode Status, string Body, HttpResponseMessage Response)> GetAsync(string path)
    {
        using var request = Prepare(HttpMethod.Get, path);
        var response = await _http.SendAsync(request);
        var body = await response.Content.ReadAsStringAsync();
        var header = CsrfHeader().Match(body);
        var token = CsrfToken().Match(body);
        if (header.Success && token.Success)
        {
            Antiforgery = (WebUtility.HtmlDecode(header.Groups[1].Value), WebUtility.HtmlDecode(token.Groups[1].Value));
        }

        return (response.StatusCode, body, response);
    }

    /// <summary>POSTs a command, with the antiforgery token of the last page read unless told otherwise.</summary>
    public async Task<(HttpStatusCode Status, string Body)> PostAsync(string path, bool withAntiforgery = true)
    {
        using var request = Prepare(HttpMethod.Post, path);
        if (withAntiforgery && Antiforgery is { } token)
        {
            request.Headers.Add(token.Header, token.Token);
        }

        using var response = await _http.SendAsync(request);
        return (response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    /// <summary>POSTs a form (as the dashboard's script does), with the antiforgery token of the last page read.</summary>
    public async Task<(HttpStatusCode Status, string Body)> PostFormAsync(string path, IEnumerable<KeyValuePair<string, string>> form)
    {
        using var request = Prepare(HttpMethod.Post, path);
        request.Content = new FormUrlEncodedContent(form);
        if (Antiforgery is { } token)
        {
            request.Headers.Add(token.Header, token.Token);
        }

        using var response = await _http.SendAsync(request);
        return (response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    private HttpRequestMessage Prepare(HttpMethod method, string path)
    {
        var request = new HttpRequestMessage(method, path.TrimStart('/'));
        if (_remote)
        {
            request.Headers.Add("X-Forwarded-For", DashboardTestHost.RemoteAddress);
        }

        if (_authorization?.Invoke() is { } authorization)
        {
            request.Headers.Authorization = authorization;
        }

        if (Host is not null)
        {
            request.Headers.Host = Host;
        }

        foreach (var (name, value) in ExtraHeaders)
        {
            request.Headers.TryAddWithoutValidation(name, value);
        }

        return request;
    }

    public void Dispose() => _http.Dispose();

    [GeneratedRegex("<meta name=\"csrf-header\" content=\"([^\"]*)\"")]
    private static partial Regex CsrfHeader();

    [GeneratedRegex("<meta name=\"csrf-token\" content=\"([^\"]*)\"")]
    private static partial Regex CsrfToken();
}

/// <summary>
/// A database per test host on the server of WORKFLOW_JOBS_TEST_CONNECTION (set by deploy/test.sh). Databases are not
/// dropped: a DROP DATABASE while other hosts' Hangfire servers poll the same PostgreSQL server was seen to leave
/// their workers waiting forever for a COMMIT reply (observed with PostgreSQL 15.18 and Npgsql 10.0.3).
/// </summary>
public static class DashboardDatabase
{
    public const string ConnectionVariable = "WORKFLOW_JOBS_TEST_CONNECTION";

    public static string ServerConnectionString =>
        Environment.GetEnvironmentVariable(ConnectionVariable)
        ?? throw new InvalidOperationException($"{ConnectionVariable} is not set: run the tests with deploy/test.sh, which starts PostgreSQL and sets it.");

    public static async Task<string> CreateAsync(string prefix)
    {
        var name = $"wj_{Guid.NewGuid():N}"[..15] + "_dash_" + new string(prefix.ToLowerInvariant().Where(char.IsAsciiLetterOrDigit).Take(30).ToArray());
        await using (var connection = new NpgsqlConnection(ServerConnectionString))
        {
            await connection.OpenAsync();
            await using var create = new NpgsqlCommand($"CREATE DATABASE \"{name}\"", connection);
            await create.ExecuteNonQueryAsync();
        }

        return new NpgsqlConnectionStringBuilder(ServerConnectionString) { Database = name }.ConnectionString;
    }
}
