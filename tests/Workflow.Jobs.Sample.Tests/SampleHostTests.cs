using System.Collections;
using System.Diagnostics;
using System.Net;
using Hangfire;
using Hangfire.Storage;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Newtonsoft.Json.Linq;
using OpenTelemetry.Trace;

namespace Workflow.Jobs.Sample.Tests;

/// <summary>
/// The host around the API (All role): /health, the dashboard's local-only default, the recurring
/// workflow registered at start-up, and OpenTelemetry wiring (an OTLP exporter to a closed port plus an
/// in-memory exporter the test reads).
/// </summary>
public class SampleHostTests
{
    private const string LocalHeader = "X-Test-Local-Request";
    private readonly ActivityCollection _spans = new();
    private SampleHost _host = null!;
    private HttpClient _client = null!;

    [OneTimeSetUp]
    public async Task StartAsync()
    {
        _host = await SampleHost.StartAsync(nameof(SampleHostTests),
            settings =>
            {
                settings["WorkflowJobs:Sample:UsageReportCron"] = "*/5 * * * *";
                settings["WorkflowJobs:Telemetry:Exporter"] = "Otlp";
                settings["WorkflowJobs:Telemetry:OtlpEndpoint"] = "http://127.0.0.1:9";
                settings["WorkflowJobs:Telemetry:OtlpProtocol"] = "http";
            },
            services =>
            {
                services.ConfigureOpenTelemetryTracerProvider(tracing => tracing.AddInMemoryExporter(_spans));
                services.AddTransient<IStartupFilter, LocalRequestStartupFilter>();
            });
        _client = _host.CreateClient();
    }

    [OneTimeTearDown]
    public async Task StopAsync()
    {
        _client.Dispose();
        await _host.DisposeAsync();
    }

    [Test]
    public async Task Health_ReportsHealthyPostgreSqlAndThisHostsHangfireServer_WhenRoleIsAll()
    {
        JToken? body = null;
        HttpStatusCode status = 0;

        await Eventually.UntilAsync(async () =>
        {
            using var response = await _client.GetAsync("/health");
            status = response.StatusCode;
            body = SampleHost.Parse(await response.Content.ReadAsStringAsync());
            return body["status"]!.Value<string>() == "Healthy";
        }, SampleHost.Deadline, () => $"health Healthy (is {body})");

        Assert.That(status, Is.EqualTo(HttpStatusCode.OK));
        Assert.That(body!["role"]!.Value<string>(), Is.EqualTo("All"));
        Assert.That(body["checks"]!["postgresql"]!["status"]!.Value<string>(), Is.EqualTo("Healthy"));
        Assert.That(body["checks"]!["postgresql"]!["description"]!.Value<string>(), Does.Contain("SELECT 1"));
        Assert.That(body["checks"]!["hangfire-server"]!["status"]!.Value<string>(), Is.EqualTo("Healthy"));
        Assert.That(body["checks"]!["hangfire-server"]!["data"]!["server"]!.Value<string>(), Does.Contain($":{Environment.ProcessId}:"));
        Assert.That(body.ToString(), Does.Not.Contain(_host.ConnectionString), "never shows the connection string");
    }

    [Test]
    public async Task HealthLive_Returns200WithoutCheckingDependencies()
    {
        using var response = await _client.GetAsync("/health/live");
        var body = await SampleHost.ReadJsonAsync(response);

        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.OK));
        Assert.That(body["status"]!.Value<string>(), Is.EqualTo("Healthy"));
        Assert.That(body["checks"]!, Is.Empty);
    }

    [Test]
    public async Task Dashboard_Returns403_WhenRequestIsRemote()
    {
        // TestServer requests have no remote address: the dashboard treats them as remote.
        using var response = await _client.GetAsync("/hangfire/workflows");

        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.Forbidden));
    }

    [Test]
    public async Task Dashboard_Returns200_WhenRequestIsLocal()
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/hangfire");
        request.Headers.Add(LocalHeader, "1");

        using var response = await _client.SendAsync(request);

        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.OK));
        Assert.That(await response.Content.ReadAsStringAsync(), Does.Contain("Workflow.Jobs").And.Contain("workflows"));
    }

    [Test]
    public async Task Startup_SchedulesTheUsageReport_AndATriggeredFiringRunsIt()
    {
        var storage = _host.Services.GetRequiredService<JobStorage>();
        using (var connection = storage.GetConnection())
        {
            var schedule = connection.GetRecurringJobs().SingleOrDefault(j => j.Id == "usage-report");
            Assert.That(schedule, Is.Not.Null, "registered through IWorkflowScheduler when the host started");
            Assert.That(schedule!.Cron, Is.EqualTo("*/5 * * * *"));
        }

        _host.Services.GetRequiredService<IRecurringJobManagerV2>().Trigger("usage-report");

        JToken? run = null;
        await Eventually.UntilAsync(async () =>
        {
            using var response = await _client.GetAsync("/api/workflows?name=usage-report&status=Succeeded");
            run = SampleHost.Parse(await response.Content.ReadAsStringAsync())["items"]!.FirstOrDefault();
            return run is not null;
        }, SampleHost.Deadline, () => "a succeeded usage-report run");
        Assert.That(run!["recurringId"]!.Value<string>(), Is.EqualTo("usage-report"));
        using var detail = await _client.GetAsync($"/api/workflows/{run["id"]}");
        var body = await SampleHost.ReadJsonAsync(detail);
        Assert.That(body["output"]!["publish_report_output"]!["report_id"]!.Value<string>(), Does.StartWith("rpt_"));
    }

    [Test]
    public async Task Telemetry_ExportsRequestRunAndStepSpans_WhenARunIsEnqueuedAndExecuted()
    {
        var input = JObject.Parse("""
            { "customer_input": { "name": "Traced", "email": "ops@traced.test" }, "admin_users_input": { "admins": [ { "email": "a@traced.test" } ] } }
            """);
        var id = await SampleHost.EnqueueAsync(_client, "customer-provisioning", input);
        await SampleHost.WaitForStatusAsync(_client, id, WorkflowStatus.Succeeded);

        List<Activity> spans = [];
        await Eventually.UntilAsync(() =>
        {
            spans = _spans.Snapshot().Where(a => Equals(a.GetTagItem("workflow.run_id"), id.ToString())).ToList();
            return Task.FromResult(spans.Any(a => a.DisplayName == "workflow.run customer-provisioning"));
        }, SampleHost.Deadline, () => $"the run's span (spans seen: {string.Join(", ", _spans.Snapshot().Select(a => a.DisplayName).Distinct())})");

        Assert.That(spans.Select(s => s.DisplayName), Is.SupersetOf(new[]
        {
            "workflow.run customer-provisioning", "workflow.step get-or-create-customer", "workflow.step create-subscription",
            "workflow.step create-admin-users", "workflow.step send-welcome",
        }));
        var runSpan = spans.Single(s => s.DisplayName == "workflow.run customer-provisioning");
        Assert.That(spans.Where(s => s.DisplayName.StartsWith("workflow.step", StringComparison.Ordinal)).Select(s => s.TraceId), Is.All.EqualTo(runSpan.TraceId));
        var all = _spans.Snapshot();
        Assert.That(all.Any(a => a.Kind == ActivityKind.Server && a.DisplayName == "POST /api/workflows/{name}"), Is.True, "ASP.NET Core request spans");
        Assert.That(all.Any(a => a.Source.Name == "Npgsql" && a.TraceId == runSpan.TraceId), Is.True, "Npgsql command spans inside the run");
        Assert.That(all.Where(a => a.Source.Name == "Npgsql").All(a => a.ParentSpanId != default), Is.True,
            "database spans without a parent (Hangfire's polling) are not sampled");
    }

    [Test]
    public async Task RunPage_ShowsFanOutItemCountsAndFailedItemErrors_TwentyPerPage_WhenItemsFailed()
    {
        // Every call creating an administrator fails, on each of the run's three executions: 25 failed items.
        _host.Services.GetRequiredService<Workflow.Jobs.Sample.FakeApi.FakeExternalApi>().ArmFailures("create_admin_user", 75);
        var input = JObject.Parse("""{"customer_input": {"name": "Fan-out page", "email": "billing@fanout.test"}, "admin_users_input": {"admins": []}}""");
        var admins = (JArray)input["admin_users_input"]!["admins"]!;
        for (var i = 0; i < 25; i++)
        {
            admins.Add(new JObject { ["email"] = $"admin{i}@fanout.test", ["name"] = $"Admin {i}" });
        }

        var id = await SampleHost.EnqueueAsync(_client, "customer-provisioning", input);
        var run = await SampleHost.WaitForFinalFailureAsync(_client, id);
        Assert.That(run["exceptionMessage"]!.Value<string>(), Does.StartWith("25 of 25 items failed (indexes 0, 1, 2"));

        var first = await LocalPageAsync($"/hangfire/workflows/{id}");
        var second = await LocalPageAsync($"/hangfire/workflows/{id}?items_step=create-admin-users&items_from=20");

        Assert.That(first, Does.Contain("0/25 items done").And.Contain("25 failed"));
        Assert.That(FailedItemRows(first), Is.EqualTo(20));
        Assert.That(first, Does.Contain("Fake API timed out on create_admin_user").And.Contain("items_step=create-admin-users&amp;items_from=20"), "errors shown, and a link to the next page");
        Assert.That(FailedItemRows(second), Is.EqualTo(5));
        Assert.That(second, Does.Contain("items_from=0"), "a link back to the first page");
    }

    private async Task<string> LocalPageAsync(string path)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Add(LocalHeader, "1");
        using var response = await _client.SendAsync(request);
        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.OK), path);
        return await response.Content.ReadAsStringAsync();
    }

    private static int FailedItemRows(string html)
    {
        var start = html.IndexOf("workflow-items-failed", StringComparison.Ordinal);
        Assert.That(start, Is.GreaterThan(0), "the failed items table");
        var table = html[start..html.IndexOf("</table>", start, StringComparison.Ordinal)];
        return table.Split("<tr><td").Length - 1;
    }

    /// <summary>Makes a request local (remote address 127.0.0.1) when it carries the test header.</summary>
    private sealed class LocalRequestStartupFilter : IStartupFilter
    {
        public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
        {
            app.Use((HttpContext context, RequestDelegate nextMiddleware) =>
            {
                if (context.Request.Headers.ContainsKey(LocalHeader))
                {
                    context.Connection.RemoteIpAddress = IPAddress.Loopback;
                    context.Connection.LocalIpAddress = IPAddress.Loopback;
                }

                return nextMiddleware(context);
            });
            next(app);
        };
    }
}

/// <summary>A thread-safe collection the in-memory exporter writes to while the test reads it.</summary>
internal sealed class ActivityCollection : ICollection<Activity>
{
    private readonly Lock _lock = new();
    private readonly List<Activity> _items = [];

    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _items.Count;
            }
        }
    }

    public bool IsReadOnly => false;

    public List<Activity> Snapshot()
    {
        lock (_lock)
        {
            return [.. _items];
        }
    }

    public void Add(Activity item)
    {
        lock (_lock)
        {
            _items.Add(item);
        }
    }

    public void Clear()
    {
        lock (_lock)
        {
            _items.Clear();
        }
    }

    public bool Contains(Activity item)
    {
        lock (_lock)
        {
            return _items.Contains(item);
        }
    }

    public void CopyTo(Activity[] array, int arrayIndex) => Snapshot().CopyTo(array, arrayIndex);

    public bool Remove(Activity item)
    {
        lock (_lock)
        {
            return _items.Remove(item);
        }
    }

    public IEnumerator<Activity> GetEnumerator() => Snapshot().GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}
