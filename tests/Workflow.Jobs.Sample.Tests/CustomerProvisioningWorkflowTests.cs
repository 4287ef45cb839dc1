using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Newtonsoft.Json.Linq;
using Workflow.Jobs.Sample.FakeApi;

namespace Workflow.Jobs.Sample.Tests;

/// <summary>
/// The provisioning workflow on the real host: automatic retries, a failed run resumed through the API at
/// the failed step, and side effects on the fake external API that are never duplicated (StepId idempotency).
/// Retries: 2, immediately (the test host's WorkflowJobs:Retry).
/// </summary>
public class CustomerProvisioningWorkflowTests
{
    private SampleHost _host = null!;
    private HttpClient _client = null!;
    private FakeExternalApi _api = null!;

    [OneTimeSetUp]
    public async Task StartAsync()
    {
        _host = await SampleHost.StartAsync(nameof(CustomerProvisioningWorkflowTests));
        _client = _host.CreateClient();
        _api = _host.Services.GetRequiredService<FakeExternalApi>();
    }

    [OneTimeTearDown]
    public async Task StopAsync()
    {
        _client.Dispose();
        await _host.DisposeAsync();
    }

    private static JObject Input(string domain, string? failingKey = null, int failures = 0, int admins = 2)
    {
        var input = JObject.Parse($$"""
            {
              "customer_input": { "name": "Customer {{domain}}", "email": "billing@{{domain}}" },
              "admin_users_input": { "admins": [] }
            }
            """);
        var list = (JArray)input["admin_users_input"]!["admins"]!;
        for (var i = 0; i < admins; i++)
        {
            list.Add(new JObject { ["email"] = $"admin{i}@{domain}", ["name"] = $"Admin {i}" });
        }

        if (failingKey is not null)
        {
            input[failingKey] ??= new JObject();
            input[failingKey]!["simulate_failures"] = failures;
        }

        return input;
    }

    private static JToken Step(JObject run, string name) => run["steps"]!.Single(s => s["name"]!.Value<string>() == name);

    [Test]
    public async Task Run_SucceedsAfterOneAutomaticRetry_WhenAStepFailsOnce()
    {
        var id = await SampleHost.EnqueueAsync(_client, "customer-provisioning", Input("once.test", "admin_users_input", failures: 1));

        var run = await SampleHost.WaitForStatusAsync(_client, id, WorkflowStatus.Succeeded);

        Assert.That(run["attempts"]!.Value<int>(), Is.EqualTo(2));
        Assert.That(Step(run, "get-or-create-customer")["attempts"]!.Value<int>(), Is.EqualTo(1));
        Assert.That(Step(run, "create-admin-users")["attempts"]!.Value<int>(), Is.EqualTo(2));
        var customerId = run["output"]!["customer_output"]!["customer_id"]!.Value<string>()!;
        Assert.That(_api.GetUsers(customerId), Has.Count.EqualTo(2), "the retried step reused its idempotency keys: no duplicate users");
        var items = Step(run, "create-admin-users")["items"]!;
        Assert.That(new[] { "total", "succeeded", "failed", "pending", "calls" }.Select(k => items[k]!.Value<int>()), Is.EqualTo(new[] { 2, 2, 0, 0, 1 }),
            "the step's fan-out items, in the step JSON");
    }

    [Test]
    public async Task Run_FailsThenResumesAtTheFailedStep_WhenRetriedThroughTheApi()
    {
        // Three failures: the first attempt and both automatic retries fail, so the run ends Failed.
        var id = await SampleHost.EnqueueAsync(_client, "customer-provisioning", Input("resume.test", "subscription_input", failures: 3));

        var failed = await SampleHost.WaitForFinalFailureAsync(_client, id);

        Assert.That(failed["exceptionMessage"]!.Value<string>(), Does.Contain("simulated failure 3 of 3"));
        Assert.That(failed["steps"]!.Select(s => s["name"]!.Value<string>()), Is.EqualTo(new[] { "get-or-create-customer", "create-subscription" }),
            "later steps get no record");
        Assert.That(Step(failed, "get-or-create-customer")["status"]!.Value<string>(), Is.EqualTo("Succeeded"));
        Assert.That(Step(failed, "create-subscription")["status"]!.Value<string>(), Is.EqualTo("Failed"));
        Assert.That(Step(failed, "create-subscription")["attempts"]!.Value<int>(), Is.EqualTo(3));

        using var retry = await _client.PostAsync($"/api/workflows/{id}/retry", SampleHost.NoInput());
        Assert.That(retry.StatusCode, Is.EqualTo(HttpStatusCode.Accepted));
        var resumed = await SampleHost.WaitForStatusAsync(_client, id, WorkflowStatus.Succeeded);

        Assert.That(Step(resumed, "get-or-create-customer")["attempts"]!.Value<int>(), Is.EqualTo(1), "a checkpointed step never runs again");
        Assert.That(Step(resumed, "get-or-create-customer")["id"], Is.EqualTo(Step(failed, "get-or-create-customer")["id"]));
        Assert.That(Step(resumed, "create-subscription")["attempts"]!.Value<int>(), Is.EqualTo(4));
        Assert.That(resumed["completedSteps"]!.Value<int>(), Is.EqualTo(4));
        var customerId = resumed["output"]!["customer_output"]!["customer_id"]!.Value<string>()!;
        Assert.That(_api.GetSubscriptions(customerId), Has.Count.EqualTo(1),
            "the four calls (three answers lost) shared the step's idempotency key: one subscription");
    }

    [Test]
    public async Task Run_ReusesTheCustomer_WhenItsEmailIsAlreadyKnown()
    {
        var first = await SampleHost.EnqueueAsync(_client, "customer-provisioning", Input("known.test", admins: 1));
        var firstRun = await SampleHost.WaitForStatusAsync(_client, first, WorkflowStatus.Succeeded);
        var second = await SampleHost.EnqueueAsync(_client, "customer-provisioning", Input("known.test", admins: 1));
        var secondRun = await SampleHost.WaitForStatusAsync(_client, second, WorkflowStatus.Succeeded);

        Assert.That(firstRun["output"]!["customer_output"]!["created"]!.Value<bool>(), Is.True);
        Assert.That(secondRun["output"]!["customer_output"]!["created"]!.Value<bool>(), Is.False);
        Assert.That(secondRun["output"]!["customer_output"]!["customer_id"], Is.EqualTo(firstRun["output"]!["customer_output"]!["customer_id"]));
    }

    [Test]
    public async Task ArmedFailure_FailsTheNextCallAndTheRunRetries_WhenPostedToTheFakeApi()
    {
        using var arm = await _client.PostAsync("/api/fake-api/failures", SampleHost.Json("""{"operation":"send_welcome_email","times":1}"""));
        var armed = await SampleHost.ReadJsonAsync(arm);
        Assert.That(arm.StatusCode, Is.EqualTo(HttpStatusCode.OK));
        Assert.That(armed["armedFailures"]!["send_welcome_email"]!.Value<int>(), Is.EqualTo(1));

        var id = await SampleHost.EnqueueAsync(_client, "customer-provisioning", Input("armed.test", admins: 1));
        var run = await SampleHost.WaitForStatusAsync(_client, id, WorkflowStatus.Succeeded);

        Assert.That(Step(run, "send-welcome")["attempts"]!.Value<int>(), Is.EqualTo(2));
        Assert.That(_api.GetStats().ArmedFailures, Is.Empty);
    }

    [Test]
    public async Task CompensatedProvisioning_UndoesSubscriptionAndAdminUsers_WhenTheWelcomeIsRejectedForGood()
    {
        var input = Input("undo.test", admins: 2);
        input["welcome_input"] = new JObject { ["simulate_rejection"] = true };
        var id = await SampleHost.EnqueueAsync(_client, "customer-provisioning-compensated", input);

        var run = await SampleHost.WaitForStatusAsync(_client, id, WorkflowStatus.Compensated);

        var customerId = Step(run, "get-or-create-customer")["output"]!["customer_id"]!.Value<string>()!;
        Assert.That(_api.GetSubscriptions(customerId), Is.Empty, "the subscription was cancelled");
        Assert.That(_api.GetUsers(customerId), Is.Empty, "the admin users were deleted");
        Assert.That(Step(run, "create-admin-users")["compensatedAt"]!.Type, Is.Not.EqualTo(JTokenType.Null));
        Assert.That(Step(run, "create-subscription")["compensatedAt"]!.Value<DateTime>(),
            Is.GreaterThanOrEqualTo(Step(run, "create-admin-users")["compensatedAt"]!.Value<DateTime>()), "undone in reverse order");
        Assert.That(Step(run, "send-welcome")["compensatedAt"]!.Type, Is.EqualTo(JTokenType.Null), "the failed step had nothing to undo");
        Assert.That(run["exceptionMessage"]!.Value<string>(), Does.Contain("rejected"));
    }

    [Test]
    public async Task CancelWithCompensate_ThroughTheApi_EndsCompensated()
    {
        var id = await SampleHost.EnqueueAsync(_client, "customer-provisioning-compensated", Input("cancel-undo.test", admins: 1));
        await SampleHost.WaitForStatusAsync(_client, id, WorkflowStatus.Succeeded);
        var pending = await SampleHost.EnqueueAsync(_client, "customer-provisioning", Input("cancel-undo-2.test", "customer_input", failures: 20));

        using var refused = await _client.PostAsync($"/api/workflows/{pending}/cancel", SampleHost.Json("{\"compensate\": \"yes\"}"));
        using var cancelled = await _client.PostAsync($"/api/workflows/{pending}/cancel", SampleHost.Json("{\"compensate\": true}"));
        using var finished = await _client.PostAsync($"/api/workflows/{id}/cancel", SampleHost.Json("{\"compensate\": true}"));

        Assert.That(refused.StatusCode, Is.EqualTo(HttpStatusCode.BadRequest));
        Assert.That((await SampleHost.ReadJsonAsync(refused))["errors"]!.Select(e => e["path"]!.Value<string>()), Is.EqualTo(new[] { "compensate" }));
        Assert.That(cancelled.StatusCode, Is.EqualTo(HttpStatusCode.NoContent));
        await SampleHost.WaitForStatusAsync(_client, pending, WorkflowStatus.Compensated);
        Assert.That(finished.StatusCode, Is.EqualTo(HttpStatusCode.Conflict), "a succeeded run cannot be compensated");
    }

    [TestCase("""{"operation":"launch_rockets","times":1}""", "operation")]
    [TestCase("""{"operation":"create_subscription","times":-1}""", "times")]
    [TestCase("""{"operation":"create_subscription","times":1,"extra":true}""", "extra")]
    public async Task ArmFailures_Returns400NamingTheField_WhenBodyIsInvalid(string json, string field)
    {
        using var response = await _client.PostAsync("/api/fake-api/failures", SampleHost.Json(json));
        var body = await SampleHost.ReadJsonAsync(response);

        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.BadRequest));
        Assert.That(body["errors"]!.Select(e => e["path"]!.Value<string>()), Is.EqualTo(new[] { field }));
    }
}
