using System.Net;
using Newtonsoft.Json.Linq;

namespace Workflow.Jobs.Dashboard.Tests;

/// <summary>Fork on the run page and bulk actions on the list page, through the dashboard's commands, on a real host and Hangfire server.</summary>
[TestFixture]
[Parallelizable(ParallelScope.Self)]
public sealed class WorkflowDashboardOperatorTests
{
    private readonly CapturingLoggerProvider _logs = new();
    private DashboardTestHost _host = null!;

    [OneTimeSetUp]
    public async Task StartAsync() => _host = await DashboardTestHost.StartAsync("operator", logs: _logs);

    [OneTimeTearDown]
    public async Task StopAsync() => await _host.DisposeAsync();

    [Test]
    public async Task RunPage_OffersForkFromTheFailedStepWithTheInput_WhenRunFailed()
    {
        var id = await _host.StartFailedRunAsync("fork-page", "Ada");
        using var client = _host.CreateClient();

        var (status, body, _) = await client.GetAsync($"/hangfire/workflows/{id}");

        Assert.That(status, Is.EqualTo(HttpStatusCode.OK));
        Assert.That(body, Does.Contain("id=\"workflow-fork\"").And.Contain("id=\"workflow-fork-panel\""));
        Assert.That(body, Does.Contain("<option value=\"FlakyStep\" selected>"), "the default is the first step that did not succeed");
        Assert.That(body, Does.Contain("<option value=\"FinishStep\" disabled>"), "a step after one that did not succeed cannot be chosen");
        Assert.That(body, Does.Contain("&quot;release_key&quot;: &quot;fork-page&quot;"), "the editor holds the run's input");
    }

    [Test]
    public async Task Fork_StartsANewRunFromTheChosenStepWithTheEditedInput_AndTheRunsLinkEachOther()
    {
        var original = await _host.StartFailedRunAsync("fork-never-released", "Grace");
        _host.Failures.Release("fork-released");
        var run = await _host.GetRunAsync(original);
        var input = (JObject)run.Input.DeepClone();
        input["dashboard_flaky_input"]!["release_key"] = "fork-released";
        using var client = _host.CreateClient();
        await client.GetAsync($"/hangfire/workflows/{original}");

        var (status, body) = await client.PostFormAsync($"/hangfire/workflows/{original}/fork",
            [new("fromStep", "FlakyStep"), new("input", input.ToString())]);

        Assert.That(status, Is.EqualTo(HttpStatusCode.Created), body);
        var answer = JObject.Parse(body);
        var forkId = Guid.Parse(answer["id"]!.Value<string>()!);
        Assert.That(answer["url"]!.Value<string>(), Is.EqualTo($"/hangfire/workflows/{forkId}"));
        var fork = await _host.WaitForStatusAsync(forkId, WorkflowStatus.Succeeded);
        Assert.Multiple(() =>
        {
            Assert.That(fork.ForkedFrom, Is.EqualTo(original));
            Assert.That(fork.Steps.Single(s => s.StepName == "GreetStep").Attempts, Is.Zero, "copied, never executed");
            Assert.That(fork.Input["dashboard_flaky_input"]!["release_key"]!.Value<string>(), Is.EqualTo("fork-released"));
        });
        Assert.That((await _host.GetRunAsync(original)).Status, Is.EqualTo(WorkflowStatus.Failed), "the original is unchanged");

        var (_, forkPage, _) = await client.GetAsync($"/hangfire/workflows/{forkId}");
        var (_, originalPage, _) = await client.GetAsync($"/hangfire/workflows/{original}");
        Assert.That(forkPage, Does.Contain($"id=\"workflow-forked-from\" href=\"/hangfire/workflows/{original}\""));
        Assert.That(originalPage, Does.Contain($"class=\"workflow-fork-link\" href=\"/hangfire/workflows/{forkId}\""));
        Assert.That(_logs.Entries.Select(e => e.Message), Has.Some.Contains($"fork on workflow run {original} created run {forkId} by (anonymous)"));
    }

    [TestCase("{\"dashboard_greet_input\": {\"name\": []}}", "FlakyStep", "input.dashboard_greet_input.name")]
    [TestCase("{\"dashboard_greet_input\": ", "FlakyStep", "input")]
    [TestCase("{}", "NoSuchStep", "from_step")]
    [TestCase("{}", "FinishStep", "from_step")]
    public async Task Fork_Answers400WithThePathAndCreatesNothing_WhenTheFormIsInvalid(string inputText, string fromStep, string path)
    {
        var original = await _host.StartFailedRunAsync("fork-invalid");
        using var client = _host.CreateClient();
        await client.GetAsync($"/hangfire/workflows/{original}");
        var before = await _host.Client.CountAsync(new WorkflowQuery());

        var (status, body) = await client.PostFormAsync($"/hangfire/workflows/{original}/fork", [new("fromStep", fromStep), new("input", inputText)]);

        Assert.That(status, Is.EqualTo(HttpStatusCode.BadRequest), body);
        var paths = JObject.Parse(body)["errors"]!.Select(e => e["path"]!.Value<string>()!).ToList();
        Assert.That(paths, Has.Some.StartsWith(path), body);
        Assert.That(await _host.Client.CountAsync(new WorkflowQuery()), Is.EqualTo(before), "nothing was created");
    }

    [Test]
    public async Task BulkRetry_RetriesEveryFailedRunOfTheFilter_InAHangfireJobWithProgress()
    {
        var key = "bulk-" + Guid.NewGuid().ToString("N")[..8];
        var failed = new List<Guid>();
        for (var i = 0; i < 3; i++)
        {
            var id = await _host.Client.EnqueueAsync<FlakyWorkflow>(new WorkflowInput(new GreetInput { Name = "bulk" }, new FlakyInput { ReleaseKey = key }),
                new EnqueueOptions { Tags = new Dictionary<string, string> { ["batch"] = key } });
            failed.Add(id);
        }

        var other = await _host.StartFailedRunAsync("bulk-not-selected");
        foreach (var id in failed)
        {
            await _host.WaitForStatusAsync(id, WorkflowStatus.Failed);
        }

        _host.Failures.Release(key);
        using var client = _host.CreateClient();
        var filter = $"status=Failed&tag=batch%3A{key}";
        var (_, listPage, _) = await client.GetAsync($"/hangfire/workflows?{filter}");
        Assert.That(listPage, Does.Contain("id=\"workflow-bulk-retry\"").And.Contain("data-workflow-bulk-everything=\"false\""));
        var (_, countBody, _) = await client.GetAsync($"/hangfire/workflows/bulk/count?{filter}");
        Assert.That(JObject.Parse(countBody)["count"]!.Value<long>(), Is.EqualTo(3));

        var (status, body) = await client.PostAsync($"/hangfire/workflows/bulk/retry?{filter}");

        Assert.That(status, Is.EqualTo(HttpStatusCode.Accepted), body);
        var started = JObject.Parse(body);
        var jobId = started["jobId"]!.Value<string>()!;
        Assert.That(started["listUrl"]!.Value<string>(), Does.EndWith("bulk=" + jobId));
        JObject progress = null!;
        await DashboardTestHost.WaitUntilAsync(async () =>
        {
            var (_, statusBody, _) = await client.GetAsync($"/hangfire/workflows/bulk/{jobId}");
            progress = JObject.Parse(statusBody);
            return progress["finished"]!.Value<bool>();
        }, TimeSpan.FromSeconds(60), "the bulk job finishes");
        Assert.Multiple(() =>
        {
            Assert.That(progress["state"]!.Value<string>(), Is.EqualTo("Succeeded"), progress.ToString());
            Assert.That(progress["action"]!.Value<string>(), Is.EqualTo("retry"));
            Assert.That(progress["total"]!.Value<long?>(), Is.EqualTo(3), progress.ToString());
            Assert.That(progress["done"]!.Value<long>(), Is.EqualTo(3));
        });
        foreach (var id in failed)
        {
            var run = await _host.WaitForStatusAsync(id, WorkflowStatus.Succeeded);
            Assert.That(run.Steps.Single(s => s.StepName == "GreetStep").Attempts, Is.EqualTo(1), "resumed at the failed step");
        }

        Assert.That((await _host.GetRunAsync(other)).Status, Is.EqualTo(WorkflowStatus.Failed), "a run outside the filter is untouched");
        var (_, progressPage, _) = await client.GetAsync(started["listUrl"]!.Value<string>()!);
        Assert.That(progressPage, Does.Contain("id=\"workflow-bulk-progress\"").And.Contain($"/hangfire/workflows/bulk/{jobId}"));
        Assert.That(_logs.Entries.Select(e => e.Message), Has.Some.Contains($"bulk retry of the runs [{filter}] started as job {jobId} by (anonymous)"));
    }

    [Test]
    public async Task BulkCancel_IsRefusedAndChangesNothing_WhenNoFilterIsSetAndEverythingIsNotConfirmed()
    {
        var pending = await _host.EnqueueHelloAsync("bulk-everything", TimeSpan.FromHours(1));
        using var client = _host.CreateClient();
        var (_, listPage, _) = await client.GetAsync("/hangfire/workflows");
        Assert.That(listPage, Does.Contain("data-workflow-bulk-everything=\"true\""));

        var (status, body) = await client.PostAsync("/hangfire/workflows/bulk/cancel");

        Assert.That(status, Is.EqualTo(HttpStatusCode.BadRequest));
        Assert.That(body, Does.Contain("all=true"));
        Assert.That((await _host.GetRunAsync(pending)).Status, Is.EqualTo(WorkflowStatus.Pending));
    }

    [Test]
    public async Task BulkAction_IsRefused_WhenAntiforgeryTokenMissing()
    {
        using var client = _host.CreateClient();
        await client.GetAsync("/hangfire/workflows?status=Failed");

        var (status, _) = await client.PostAsync("/hangfire/workflows/bulk/purge?status=Failed", withAntiforgery: false);

        Assert.That(status, Is.EqualTo(HttpStatusCode.Forbidden));
    }
}
