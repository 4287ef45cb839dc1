using System.Net;
using Newtonsoft.Json.Linq;

namespace Workflow.Jobs.Sample.Tests;

/// <summary>The sample's approval wait through the HTTP API: waitingFor/wakeAt and POST /api/workflows/{id}/events/{name}.</summary>
public class EventApiTests
{
    private const string Provisioning = "customer-provisioning";
    private const string Approval = "subscription-approval";
    private SampleHost _host = null!;
    private HttpClient _client = null!;

    [OneTimeSetUp]
    public async Task StartAsync()
    {
        _host = await SampleHost.StartAsync(nameof(EventApiTests));
        _client = _host.CreateClient();
    }

    [OneTimeTearDown]
    public async Task StopAsync()
    {
        _client.Dispose();
        await _host.DisposeAsync();
    }

    private static JObject Input(string domain, int seats) => JObject.Parse($$"""
        {
          "customer_input": { "name": "Big", "email": "billing@{{domain}}" },
          "subscription_input": { "plan": "enterprise", "seats": {{seats}} },
          "admin_users_input": { "admins": [ { "email": "ann@{{domain}}", "name": "Ann" } ] }
        }
        """);

    private async Task<(HttpStatusCode Status, JToken Body)> SignalAsync(Guid id, string name, string json)
    {
        using var response = await _client.PostAsync($"/api/workflows/{id}/events/{name}", SampleHost.Json(json));
        return (response.StatusCode, await SampleHost.ReadJsonAsync(response));
    }

    [Test]
    public async Task PostEvent_WakesTheWaitingRun_WhenALargeSubscriptionIsApproved()
    {
        var id = await SampleHost.EnqueueAsync(_client, Provisioning, Input("approve.test", 250));

        var waiting = await SampleHost.WaitForStatusAsync(_client, id, WorkflowStatus.Waiting);
        Assert.That(waiting["waitingFor"]!.Value<string>(), Is.EqualTo(Approval));
        Assert.That(waiting["wakeAt"]!.Type, Is.EqualTo(JTokenType.String), "the approval's deadline");

        var (status, body) = await SignalAsync(id, Approval, """{"approved": true, "approver": "Olivia"}""");
        Assert.That(status, Is.EqualTo(HttpStatusCode.Accepted), body.ToString());

        var run = await SampleHost.WaitForStatusAsync(_client, id, WorkflowStatus.Succeeded);
        Assert.That(run["output"]!["subscription_output"]!["seats"]!.Value<int>(), Is.EqualTo(250));
        Assert.That(run["waitingFor"]!.Type, Is.EqualTo(JTokenType.Null));
    }

    [Test]
    public async Task PostEvent_Returns400WithPathsAndStoresNothing_WhenThePayloadDoesNotFitTheEventType()
    {
        var id = await SampleHost.EnqueueAsync(_client, Provisioning, Input("invalid.test", 300));
        await SampleHost.WaitForStatusAsync(_client, id, WorkflowStatus.Waiting);

        var (status, body) = await SignalAsync(id, Approval, """{"approved": true, "approver": ""}""");

        Assert.That(status, Is.EqualTo(HttpStatusCode.BadRequest));
        Assert.That(body["errors"]!.Select(e => e["path"]!.Value<string>()), Does.Contain("approver"));
        using var response = await _client.GetAsync($"/api/workflows/{id}");
        Assert.That((await SampleHost.ReadJsonAsync(response))["status"]!.Value<string>(), Is.EqualTo("Waiting"));
        using var cancel = await _client.PostAsync($"/api/workflows/{id}/cancel", SampleHost.NoInput());
        Assert.That(cancel.StatusCode, Is.EqualTo(HttpStatusCode.NoContent));
    }

    [Test]
    public async Task PostEvent_Returns409ForAFinishedRunAnd404ForAnUnknownOne()
    {
        var id = await SampleHost.EnqueueAsync(_client, Provisioning, Input("finished.test", 10));
        await SampleHost.WaitForStatusAsync(_client, id, WorkflowStatus.Succeeded);

        var (finished, finishedBody) = await SignalAsync(id, Approval, """{"approved": true, "approver": "late"}""");
        Assert.That(finished, Is.EqualTo(HttpStatusCode.Conflict), finishedBody.ToString());
        Assert.That(finishedBody["code"]!.Value<string>(), Is.EqualTo("run_finished"));

        var (unknown, _) = await SignalAsync(Guid.NewGuid(), Approval, """{"approved": true, "approver": "x"}""");
        Assert.That(unknown, Is.EqualTo(HttpStatusCode.NotFound));
    }
}
