using System.Net;
using Hangfire;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Newtonsoft.Json.Linq;

namespace Workflow.Jobs.Sample.Tests;

/// <summary>
/// WorkflowJobs:Role: a Web host accepts runs but never executes them; a Worker host on the same database
/// executes them and serves only /health. Two databases: one with a Web host alone, one with Web + Worker.
/// </summary>
public class SampleRoleTests
{
    private SampleHost _webAlone = null!;
    private SampleHost _web = null!;
    private SampleHost _worker = null!;

    [OneTimeSetUp]
    public async Task StartAsync()
    {
        _webAlone = await SampleHost.StartAsync("webalone", s => s["WorkflowJobs:Role"] = "Web");
        _web = await SampleHost.StartAsync("webworker", s => s["WorkflowJobs:Role"] = "Web");
        _worker = await SampleHost.StartOnAsync(_web.ConnectionString, s => s["WorkflowJobs:Role"] = "Worker");
    }

    [OneTimeTearDown]
    public async Task StopAsync()
    {
        await _worker.DisposeAsync();
        await _web.DisposeAsync();
        await _webAlone.DisposeAsync();
    }

    private static JObject Input(string domain) => JObject.Parse($$"""
        { "customer_input": { "name": "Role", "email": "ops@{{domain}}" }, "admin_users_input": { "admins": [ { "email": "a@{{domain}}" } ] } }
        """);

    [Test]
    public async Task WebRole_AcceptsRunsButExecutesNone()
    {
        using var client = _webAlone.CreateClient();

        var id = await SampleHost.EnqueueAsync(client, "customer-provisioning", Input("webonly.test"));

        var hostedServices = _webAlone.Services.GetServices<IHostedService>().Select(s => s.GetType().Name).ToList();
        Assert.That(hostedServices, Has.None.Contains("BackgroundJobServer"), "no Hangfire server in a Web host");
        var storage = _webAlone.Services.GetRequiredService<JobStorage>();
        Assert.That(storage.GetMonitoringApi().Servers(), Is.Empty, "no server announced itself on this database");
        var run = await _webAlone.WorkflowClient.GetAsync(id);
        Assert.That(run!.Status, Is.EqualTo(WorkflowStatus.Pending));
        using var connection = storage.GetConnection();
        Assert.That(connection.GetStateData(run.JobId!)?.Name, Is.EqualTo("Enqueued"), "the job waits in its queue for a worker");
    }

    [Test]
    public async Task WebRole_Returns204AndCancelsTheRun_WhenAPendingRunIsCancelled()
    {
        using var client = _webAlone.CreateClient();
        var id = await SampleHost.EnqueueAsync(client, "customer-provisioning", Input("webcancel.test"));

        using var response = await client.PostAsync($"/api/workflows/{id}/cancel", SampleHost.NoInput());

        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.NoContent));
        Assert.That((await _webAlone.WorkflowClient.GetAsync(id))!.Status, Is.EqualTo(WorkflowStatus.Cancelled));
    }

    [Test]
    public async Task WebRole_ReportsDegradedHealth_WhenNoWorkerIsAlive()
    {
        using var client = _webAlone.CreateClient();

        using var response = await client.GetAsync("/health");
        var body = await SampleHost.ReadJsonAsync(response);

        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.OK));
        Assert.That(body["status"]!.Value<string>(), Is.EqualTo("Degraded"));
        Assert.That(body["role"]!.Value<string>(), Is.EqualTo("Web"));
        Assert.That(body["checks"]!["postgresql"]!["status"]!.Value<string>(), Is.EqualTo("Healthy"));
        Assert.That(body["checks"]!["hangfire-server"]!["status"]!.Value<string>(), Is.EqualTo("Degraded"));
    }

    [Test]
    public async Task WorkerRole_ExecutesRunsEnqueuedThroughTheWebRole()
    {
        using var client = _web.CreateClient();

        var id = await SampleHost.EnqueueAsync(client, "customer-provisioning", Input("scaleout.test"));

        var run = await SampleHost.WaitForStatusAsync(client, id, WorkflowStatus.Succeeded);
        Assert.That(run["completedSteps"]!.Value<int>(), Is.EqualTo(4));
    }

    [Test]
    public async Task WebRole_ReportsHealthy_WhenAWorkerIsAliveElsewhere()
    {
        using var client = _web.CreateClient();
        JToken? body = null;

        await Eventually.UntilAsync(async () =>
        {
            using var response = await client.GetAsync("/health");
            body = SampleHost.Parse(await response.Content.ReadAsStringAsync());
            return body["status"]!.Value<string>() == "Healthy";
        }, SampleHost.Deadline, () => $"web health Healthy (is {body})");

        Assert.That(body!["checks"]!["hangfire-server"]!["data"]!["serversAlive"]!.Value<int>(), Is.EqualTo(1));
    }

    [TestCase("/api/workflows")]
    [TestCase("/api/workflow-definitions")]
    [TestCase("/hangfire")]
    public async Task WorkerRole_ServesNoApiAndNoDashboard(string path)
    {
        using var client = _worker.CreateClient();

        using var response = await client.GetAsync(path);

        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.NotFound));
    }

    [Test]
    public async Task WorkerRole_ReportsItsOwnServerAlive_OnHealth()
    {
        using var client = _worker.CreateClient();
        JToken? body = null;

        await Eventually.UntilAsync(async () =>
        {
            using var response = await client.GetAsync("/health");
            body = SampleHost.Parse(await response.Content.ReadAsStringAsync());
            return response.StatusCode == HttpStatusCode.OK && body["status"]!.Value<string>() == "Healthy";
        }, SampleHost.Deadline, () => $"worker health Healthy (is {body})");

        Assert.That(body!["role"]!.Value<string>(), Is.EqualTo("Worker"));
        Assert.That(body["checks"]!["hangfire-server"]!["data"]!["workers"]!.Value<int>(), Is.EqualTo(2));
    }
}
