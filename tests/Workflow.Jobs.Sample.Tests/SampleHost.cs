using System.Net;
using System.Net.Http.Headers;
using System.Text;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;
using Newtonsoft.Json;
using Newtonsoft.Json.Linq;

namespace Workflow.Jobs.Sample.Tests;

/// <summary>
/// The real sample host (its Program) in-process through WebApplicationFactory, on a database of its
/// own, configured as a deployment would be: through configuration keys.
/// </summary>
public sealed class SampleHost : WebApplicationFactory<Program>
{
    public static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    private readonly Dictionary<string, string?> _settings;
    private readonly Action<IServiceCollection>? _services;
    private readonly Action<IWebHostBuilder>? _web;

    private SampleHost(Dictionary<string, string?> settings, Action<IServiceCollection>? services, Action<IWebHostBuilder>? web)
    {
        _settings = settings;
        _services = services;
        _web = web;
    }

    public string ConnectionString => _settings["ConnectionStrings:WorkflowJobs"]!;

    /// <summary>Settings every test host uses: fast polling, no telemetry exporter, no latency, immediate retries, no schedule.</summary>
    public static Dictionary<string, string?> DefaultSettings(string connectionString) => new()
    {
        ["ConnectionStrings:WorkflowJobs"] = connectionString,
        ["WorkflowJobs:Role"] = "All",
        ["WorkflowJobs:Workers:Count"] = "2",
        ["WorkflowJobs:Workers:QueuePollIntervalMs"] = "50",
        ["WorkflowJobs:Workers:ShutdownTimeoutSeconds"] = "2",
        ["WorkflowJobs:Retry:Attempts"] = "2",
        ["WorkflowJobs:Retry:DelaysInSeconds"] = "0",
        ["WorkflowJobs:Telemetry:Exporter"] = "None",
        ["WorkflowJobs:Sample:FakeApiLatencyMs"] = "0",
        ["WorkflowJobs:Sample:UsageReportCron"] = "",
        // WORKFLOW_JOBS_TEST_LOG_LEVEL=Information shows the hosts' logs in the test output when a test needs explaining.
        ["Logging:LogLevel:Default"] = Environment.GetEnvironmentVariable("WORKFLOW_JOBS_TEST_LOG_LEVEL") ?? "Warning",
        ["Logging:LogLevel:Hangfire"] = Environment.GetEnvironmentVariable("WORKFLOW_JOBS_TEST_LOG_LEVEL") ?? "Warning",
        ["Logging:LogLevel:Microsoft.AspNetCore"] = "Warning",
        ["Logging:LogLevel:Microsoft.EntityFrameworkCore"] = "Warning",
    };

    /// <summary>Starts a host on a new database; <paramref name="configure"/> changes the settings.</summary>
    public static async Task<SampleHost> StartAsync(string databasePrefix, Action<Dictionary<string, string?>>? configure = null,
        Action<IServiceCollection>? services = null, Action<IWebHostBuilder>? web = null)
        => await StartOnAsync(await TestDatabases.CreateAsync(databasePrefix), configure, services, web);

    /// <summary>Starts a host on an existing database.</summary>
    public static Task<SampleHost> StartOnAsync(string connectionString, Action<Dictionary<string, string?>>? configure = null,
        Action<IServiceCollection>? services = null, Action<IWebHostBuilder>? web = null)
    {
        var settings = DefaultSettings(connectionString);
        configure?.Invoke(settings);
        var host = new SampleHost(settings, services, web);
        _ = host.Server; // builds and starts the host (migrations run here)
        return Task.FromResult(host);
    }

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        foreach (var (key, value) in _settings)
        {
            builder.UseSetting(key, value);
        }

        if (_services is not null)
        {
            builder.ConfigureServices(_services);
        }

        _web?.Invoke(builder);
    }

    public IWorkflowClient WorkflowClient => Services.GetRequiredService<IWorkflowClient>();

    /// <summary>
    /// Hangfire's AddHangfire points the process-wide Hangfire LogProvider at the ILoggerFactory of the last
    /// host that resolved it. Once that host is disposed, Hangfire code in every other host of the process
    /// throws ObjectDisposedException when it creates a logger, and their workers stall in Hangfire's
    /// back-off. Before this host goes, the provider is reset (Hangfire then logs nowhere) so hosts of other
    /// fixtures keep working. (A problem of test processes with many hosts.)
    /// </summary>
    public override async ValueTask DisposeAsync()
    {
        global::Hangfire.Logging.LogProvider.SetCurrentLogProvider(null);
        await base.DisposeAsync();
    }

    public static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");

    public static StringContent Json(JObject json) => Json(json.ToString());

    /// <summary>An empty body declared as JSON: what a command without input (retry, cancel) sends.</summary>
    public static StringContent NoInput() => Json("");

    /// <summary>
    /// The body of an API answer: JSON for a success; for an error, RFC 9457 problem details
    /// (<c>application/problem+json</c>, <c>status</c> the HTTP status, a <c>title</c>, a <c>detail</c>, and <c>errors</c>).
    /// </summary>
    public static async Task<JToken> ReadJsonAsync(HttpResponseMessage response)
    {
        var text = await response.Content.ReadAsStringAsync();
        var problem = (int)response.StatusCode >= 400;
        Assert.That(response.Content.Headers.ContentType?.MediaType, Is.EqualTo(problem ? "application/problem+json" : "application/json"), $"body: {text}");
        var body = Parse(text);
        if (problem)
        {
            AssertProblem(body, response.StatusCode, text);
        }

        return body;
    }

    /// <summary>Asserts the members RFC 9457 defines, and the API's <c>errors</c> list, on an error body.</summary>
    public static void AssertProblem(JToken body, HttpStatusCode status, string text)
    {
        Assert.That(body["status"]?.Type, Is.EqualTo(JTokenType.Integer), $"problem status; body: {text}");
        Assert.That(body["status"]!.Value<int>(), Is.EqualTo((int)status), $"body: {text}");
        Assert.That(body["title"]?.Value<string>(), Is.Not.Null.And.Not.Empty, $"body: {text}");
        Assert.That(body["type"]?.Value<string>(), Is.Not.Null.And.Not.Empty, $"body: {text}");
        Assert.That(body["detail"]?.Value<string>(), Is.Not.Null.And.Not.Empty, $"body: {text}");
        Assert.That(body["errors"], Is.InstanceOf<JArray>().And.Not.Empty, $"body: {text}");
    }

    /// <summary>Parses JSON keeping dates as the strings the API sent.</summary>
    public static JToken Parse(string json)
    {
        using var reader = new JsonTextReader(new StringReader(json)) { DateParseHandling = DateParseHandling.None };
        return JToken.ReadFrom(reader);
    }

    /// <summary>POSTs a run and returns its id (asserting 202).</summary>
    public static async Task<Guid> EnqueueAsync(HttpClient client, string workflow, JObject input, string? idempotencyKey = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, $"/api/workflows/{workflow}") { Content = Json(input) };
        if (idempotencyKey is not null)
        {
            request.Headers.Add("Idempotency-Key", idempotencyKey);
        }

        using var response = await client.SendAsync(request);
        var body = await ReadJsonAsync(response);
        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.Accepted), body.ToString());
        return Guid.Parse(body["id"]!.Value<string>()!);
    }

    /// <summary>Polls GET /api/workflows/{id} until the run has the status; returns the run's JSON.</summary>
    public static async Task<JObject> WaitForStatusAsync(HttpClient client, Guid id, WorkflowStatus status)
    {
        JObject? run = null;
        await Eventually.UntilAsync(async () =>
        {
            using var response = await client.GetAsync($"/api/workflows/{id}");
            run = (JObject)Parse(await response.Content.ReadAsStringAsync());
            return run["status"]?.Value<string>() == status.ToString();
        }, Deadline, () => $"run {id} to be {status} (is {run?["status"]}; {run?["exceptionMessage"]})");
        return run!;
    }

    /// <summary>
    /// Polls until the run has failed for good: Failed after <paramref name="executions"/> executions (the first
    /// one plus the automatic retries). A run also reads Failed for a moment between a failed attempt and its
    /// automatic retry, so Failed alone does not mean the retries are over.
    /// </summary>
    public static async Task<JObject> WaitForFinalFailureAsync(HttpClient client, Guid id, int executions = 3)
    {
        JObject? run = null;
        await Eventually.UntilAsync(async () =>
        {
            using var response = await client.GetAsync($"/api/workflows/{id}");
            run = (JObject)Parse(await response.Content.ReadAsStringAsync());
            return run["status"]?.Value<string>() == nameof(WorkflowStatus.Failed) && run["attempts"]?.Value<int>() >= executions;
        }, Deadline, () => $"run {id} to fail after {executions} executions (is {run?["status"]} after {run?["attempts"]})");
        return run!;
    }

    public static AuthenticationHeaderValue? NoAuth => null;
}
