using System.Net;
using System.Text.RegularExpressions;
using Npgsql;

namespace Workflow.Jobs.Dashboard.Tests;

/// <summary>The Workflows page and run page, Retry and Cancel, on a real host with a real Hangfire server.</summary>
[TestFixture]
[Parallelizable(ParallelScope.Self)]
public sealed partial class WorkflowDashboardPageTests
{
    private DashboardTestHost _host = null!;
    private readonly List<Guid> _hello = [];
    private Guid _failed;

    [OneTimeSetUp]
    public async Task StartAsync()
    {
        _host = await DashboardTestHost.StartAsync("pages");
        for (var i = 0; i < 3; i++)
        {
            _hello.Add(await _host.EnqueueHelloAsync("hello " + i));
        }

        _failed = await _host.StartFailedRunAsync("pages-never-released");
        foreach (var id in _hello)
        {
            await _host.WaitForStatusAsync(id, WorkflowStatus.Succeeded);
        }
    }

    [OneTimeTearDown]
    public async Task StopAsync() => await _host.DisposeAsync();

    [Test]
    public async Task ListPage_ShowsRunsWithStatusNameAndProgress_WhenRunsExist()
    {
        using var client = _host.CreateClient();
        // The largest page: other tests of this fixture add runs, which may push these off the default page of 20.
        var (status, body, _) = await client.GetAsync("/hangfire/workflows?count=500");

        Assert.That(status, Is.EqualTo(HttpStatusCode.OK));
        var rows = Rows(body);
        Assert.Multiple(() =>
        {
            Assert.That(rows.Select(r => r.Id), Is.SupersetOf(_hello.Append(_failed)));
            Assert.That(rows.Single(r => r.Id == _failed).Html, Does.Contain("dashboard-flaky").And.Contain("1/3 steps").And.Contain(FlakyStep.Message));
            Assert.That(rows.Single(r => r.Id == _failed).Status, Is.EqualTo("Failed"));
            Assert.That(rows.Single(r => r.Id == _hello[0]).Html, Does.Contain("dashboard-hello").And.Contain("2/2 steps"));
            Assert.That(rows.Single(r => r.Id == _hello[0]).Status, Is.EqualTo("Succeeded"));
            Assert.That(body, Does.Contain("<title>Workflows"), "rendered inside Hangfire's layout");
        });
    }

    [Test]
    public async Task ListPage_ShowsAndFiltersTheConcurrencyKey_WhenARunHasOne()
    {
        var key = "tenant-" + Guid.NewGuid().ToString("N");
        var id = await _host.Client.EnqueueAsync<HelloWorkflow>(new WorkflowInput(new GreetInput { Name = "keyed" }), new EnqueueOptions { ConcurrencyKey = key });
        await _host.WaitForStatusAsync(id, WorkflowStatus.Succeeded);
        using var client = _host.CreateClient();

        var (status, body, _) = await client.GetAsync("/hangfire/workflows?ckey=" + key);

        Assert.That(status, Is.EqualTo(HttpStatusCode.OK));
        var rows = Rows(body);
        Assert.That(rows.Select(r => r.Id), Is.EqualTo(new[] { id }), "only the key's runs");
        Assert.That(rows.Single().Html, Does.Contain("workflow-concurrency-key").And.Contain(key));
        Assert.That(body, Does.Contain("name=\"ckey\""), "the filter form has the concurrency key");
    }

    [Test]
    public async Task ListPage_IsInDashboardMenu_WhenAnyDashboardPageIsOpened()
    {
        using var client = _host.CreateClient();
        var (status, body, _) = await client.GetAsync("/hangfire/recurring");

        Assert.That(status, Is.EqualTo(HttpStatusCode.OK));
        Assert.That(body, Does.Match("<a href=\"/hangfire/workflows\">\\s*Workflows"));
    }

    [Test]
    public async Task ListPage_ShowsOnlyMatchingRuns_WhenFilteredByStatus()
    {
        using var client = _host.CreateClient();
        var (_, body, _) = await client.GetAsync("/hangfire/workflows?status=failed");

        var rows = Rows(body);
        Assert.Multiple(() =>
        {
            Assert.That(rows.Select(r => r.Id), Does.Contain(_failed));
            Assert.That(rows.Select(r => r.Id), Has.None.AnyOf(_hello.Cast<object>().ToArray()));
            Assert.That(rows.Select(r => r.Status), Is.All.EqualTo("Failed"));
        });
    }

    [Test]
    public async Task ListPage_ShowsOnlyMatchingRuns_WhenFilteredByName()
    {
        using var client = _host.CreateClient();
        var (_, body, _) = await client.GetAsync("/hangfire/workflows?name=dashboard-hello");

        var ids = Rows(body).Select(r => r.Id).ToList();
        Assert.Multiple(() =>
        {
            Assert.That(ids, Is.SupersetOf(_hello));
            Assert.That(ids, Does.Not.Contain(_failed));
        });
    }

    [TestCase("Running,Succeeded")]
    [TestCase("Failed,Succeeded")]
    [TestCase("3")]
    [TestCase("Bogus")]
    public async Task ListPage_Answers400NamingStatus_WhenStatusIsNotOneName(string status)
    {
        using var client = _host.CreateClient();

        var (code, body, _) = await client.GetAsync("/hangfire/workflows?status=" + Uri.EscapeDataString(status));

        Assert.That(code, Is.EqualTo(HttpStatusCode.BadRequest));
        Assert.That(body, Does.Contain("id=\"workflow-filter-error\"").And.Contain("The parameter &#39;status&#39;").And.Contain("expected one of"));
        Assert.That(Rows(body), Is.Empty, "no run is listed for a filter that cannot be applied (no Failed run under Running,Succeeded)");
    }

    [Test]
    public async Task ListPage_Answers400NamingName_WhenNameContainsNul()
    {
        using var client = _host.CreateClient();

        var (code, body, _) = await client.GetAsync("/hangfire/workflows?name=dashboard%00hello");

        Assert.That(code, Is.EqualTo(HttpStatusCode.BadRequest));
        Assert.That(body, Does.Contain("The parameter &#39;name&#39; contains a NUL character"));
        Assert.That(Rows(body), Is.Empty);
    }

    [TestCase(WorkflowStatus.Waiting, "label-info")]
    [TestCase(WorkflowStatus.Compensated, "workflow-status-compensated")]
    public async Task ListPage_ShowsAndFiltersStatus_WhenRunIsInNewStatus(WorkflowStatus status, string css)
    {
        // A delayed run is never picked up; its stored status is set as the engine would set it.
        var id = await _host.EnqueueHelloAsync("status " + status, TimeSpan.FromHours(1));
        await SetStatusAsync(id, status);
        using var client = _host.CreateClient();

        var (code, body, _) = await client.GetAsync("/hangfire/workflows?status=" + status.ToString().ToLowerInvariant());
        var (_, runPage, _) = await client.GetAsync($"/hangfire/workflows/{id}");

        Assert.That(code, Is.EqualTo(HttpStatusCode.OK));
        var rows = Rows(body);
        Assert.Multiple(() =>
        {
            Assert.That(rows.Select(r => r.Id), Does.Contain(id));
            Assert.That(rows.Select(r => r.Status), Is.All.EqualTo(status.ToString()));
            Assert.That(rows.Single(r => r.Id == id).Html, Does.Contain(css).And.Contain($"data-status=\"{status}\""));
            Assert.That(body, Does.Contain($"<option value=\"{status}\" selected>"), "the status filter offers it");
            Assert.That(runPage, Does.Contain($"data-status=\"{status}\""));
        });
    }

    [Test]
    public async Task Pages_UseDashboardStylesheetAndScript_WhenRendered()
    {
        using var client = _host.CreateClient();
        var (_, body, _) = await client.GetAsync($"/hangfire/workflows/{_failed}");
        var css = StylesheetLink().Match(body);
        var js = ScriptLink().Match(body);
        Assert.That(css.Success && js.Success, Is.True, "the layout links Hangfire's combined stylesheet and script");

        var (cssStatus, stylesheet, _) = await client.GetAsync(css.Groups["href"].Value);
        var (jsStatus, script, _) = await client.GetAsync(js.Groups["href"].Value);

        Assert.Multiple(() =>
        {
            Assert.That(body, Does.Not.Contain("<style>").And.Not.Contain("fetch("), "no inline stylesheet or script in the page");
            Assert.That(cssStatus, Is.EqualTo(HttpStatusCode.OK));
            Assert.That(stylesheet, Does.Contain(".workflow-progress"));
            Assert.That(jsStatus, Is.EqualTo(HttpStatusCode.OK));
            Assert.That(script, Does.Contain("data-workflow-command"));
        });
    }

    [Test]
    public async Task ListPage_PagesNewestFirst_WhenMoreRunsThanPageSize()
    {
        // Delayed runs stay Pending: twelve of them, filtered by status, are two pages of ten.
        var pending = new List<Guid>();
        for (var i = 0; i < 12; i++)
        {
            pending.Add(await _host.EnqueueHelloAsync("later " + i, TimeSpan.FromHours(1)));
        }

        using var client = _host.CreateClient();
        var (_, first, _) = await client.GetAsync("/hangfire/workflows?status=Pending&count=10");
        var (_, second, _) = await client.GetAsync("/hangfire/workflows?status=Pending&count=10&from=10");

        var firstIds = Rows(first).Select(r => r.Id).ToList();
        var secondIds = Rows(second).Select(r => r.Id).ToList();
        Assert.Multiple(() =>
        {
            Assert.That(firstIds, Has.Count.EqualTo(10));
            Assert.That(secondIds, Has.Count.EqualTo(2));
            Assert.That(firstIds.Concat(secondIds), Is.EqualTo(Enumerable.Reverse(pending)), "newest first, no run twice or missing");
            Assert.That(first, Does.Contain("from=10&amp;count=10").And.Contain("rel=\"next\""));
            Assert.That(second, Does.Contain("rel=\"prev\"").And.Not.Contain("rel=\"next\""));
        });
    }

    [Test]
    public async Task RunPage_ShowsStepsErrorJsonAndJobLink_WhenRunFailed()
    {
        var run = await _host.GetRunAsync(_failed);
        using var client = _host.CreateClient();
        var (status, body, _) = await client.GetAsync($"/hangfire/workflows/{_failed}");

        Assert.That(status, Is.EqualTo(HttpStatusCode.OK));
        var steps = StepRows().Matches(body).Select(m => (Name: m.Groups["name"].Value, Html: m.Groups["html"].Value)).ToList();
        Assert.Multiple(() =>
        {
            Assert.That(steps.Select(s => s.Name), Is.EqualTo(new[] { "GreetStep", "FlakyStep", "FinishStep" }));
            Assert.That(steps[0].Html, Does.Contain("data-status=\"Succeeded\""));
            Assert.That(steps[1].Html, Does.Contain("data-status=\"Failed\"").And.Contain(FlakyStep.Message));
            Assert.That(steps[2].Html, Does.Contain("Not started"));
            Assert.That(body, Does.Contain("&quot;dashboard_flaky_input&quot;: {"), "input JSON, indented and encoded");
            Assert.That(body, Does.Contain("&quot;greeting&quot;: &quot;Hello, world&quot;"), "output JSON of the succeeded step");
            Assert.That(body, Does.Contain($"href=\"/hangfire/jobs/details/{run.JobId}\""));
            Assert.That(body, Does.Contain("id=\"workflow-retry\"").And.Contain("id=\"workflow-cancel\""));
        });
    }

    [Test]
    public async Task RunPage_EncodesValues_WhenInputContainsMarkup()
    {
        var id = await _host.EnqueueHelloAsync("<script>alert('x')</script>");
        await _host.WaitForStatusAsync(id, WorkflowStatus.Succeeded);
        using var client = _host.CreateClient();

        var (_, body, _) = await client.GetAsync($"/hangfire/workflows/{id}");

        Assert.That(body, Does.Contain("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;").And.Not.Contain("<script>alert("));
    }

    [Test]
    public async Task RunPage_Returns404_WhenRunUnknown()
    {
        using var client = _host.CreateClient();
        var (status, body, _) = await client.GetAsync($"/hangfire/workflows/{Guid.NewGuid()}");

        Assert.That(status, Is.EqualTo(HttpStatusCode.NotFound));
        Assert.That(body, Does.Contain("Workflow run not found"));
    }

    [Test]
    public async Task Retry_ResumesRunAtFailedStep_WhenPostedWithAntiforgeryToken()
    {
        var id = await _host.StartFailedRunAsync("retry-ok");
        _host.Failures.Release("retry-ok");
        using var client = _host.CreateClient();
        await client.GetAsync($"/hangfire/workflows/{id}");

        var (status, _) = await client.PostAsync($"/hangfire/workflows/{id}/retry");

        Assert.That(status, Is.EqualTo(HttpStatusCode.NoContent));
        var run = await _host.WaitForStatusAsync(id, WorkflowStatus.Succeeded);
        Assert.Multiple(() =>
        {
            Assert.That(run.Steps.Single(s => s.StepName == "GreetStep").Attempts, Is.EqualTo(1), "the succeeded step is not run again");
            Assert.That(run.Steps.Single(s => s.StepName == "FlakyStep").Attempts, Is.EqualTo(2));
            Assert.That(run.CompletedSteps, Is.EqualTo(3));
        });
    }

    [Test]
    public async Task Retry_IsRefused_WhenAntiforgeryTokenMissing()
    {
        var id = await _host.StartFailedRunAsync("retry-no-token");
        using var client = _host.CreateClient();
        await client.GetAsync($"/hangfire/workflows/{id}");

        var (status, _) = await client.PostAsync($"/hangfire/workflows/{id}/retry", withAntiforgery: false);

        Assert.That(status, Is.EqualTo(HttpStatusCode.Forbidden));
        Assert.That((await _host.GetRunAsync(id)).Status, Is.EqualTo(WorkflowStatus.Failed));
    }

    [Test]
    public async Task Retry_IsRefused_WhenBrowserMarksRequestCrossSite()
    {
        var id = await _host.StartFailedRunAsync("retry-cross-site");
        using var client = _host.CreateClient();
        await client.GetAsync($"/hangfire/workflows/{id}");
        client.ExtraHeaders["Sec-Fetch-Site"] = "cross-site";

        var (status, _) = await client.PostAsync($"/hangfire/workflows/{id}/retry");

        Assert.That(status, Is.EqualTo(HttpStatusCode.Forbidden));
        Assert.That((await _host.GetRunAsync(id)).Status, Is.EqualTo(WorkflowStatus.Failed));
    }

    [Test]
    public async Task Retry_Returns409WithReason_WhenRunSucceeded()
    {
        using var client = _host.CreateClient();
        await client.GetAsync($"/hangfire/workflows/{_hello[1]}");

        var (status, body) = await client.PostAsync($"/hangfire/workflows/{_hello[1]}/retry");

        Assert.That(status, Is.EqualTo(HttpStatusCode.Conflict));
        Assert.That(body, Does.Contain("Succeeded"));
    }

    [Test]
    public async Task Command_Returns405_WhenNotPost()
    {
        using var client = _host.CreateClient();

        var (status, _, response) = await client.GetAsync($"/hangfire/workflows/{_failed}/retry");

        Assert.That(status, Is.EqualTo(HttpStatusCode.MethodNotAllowed));
        Assert.That(response.Content.Headers.Allow, Is.EquivalentTo(new[] { "POST" }));
    }

    [Test]
    public async Task Cancel_CancelsRunAndDeletesItsJob_WhenPosted()
    {
        var id = await _host.EnqueueHelloAsync("to cancel", TimeSpan.FromHours(1));
        using var client = _host.CreateClient();
        var (_, page, _) = await client.GetAsync($"/hangfire/workflows/{id}");
        Assert.That(page, Does.Contain("id=\"workflow-cancel\"").And.Not.Contain("id=\"workflow-retry\""), "a pending run can be cancelled, not retried");

        var (status, _) = await client.PostAsync($"/hangfire/workflows/{id}/cancel");

        Assert.That(status, Is.EqualTo(HttpStatusCode.NoContent));
        var run = await _host.GetRunAsync(id);
        Assert.Multiple(() =>
        {
            Assert.That(run.Status, Is.EqualTo(WorkflowStatus.Cancelled));
            Assert.That(_host.JobState(run.JobId!), Is.EqualTo("Deleted"));
        });
    }

    private async Task SetStatusAsync(Guid id, WorkflowStatus status)
    {
        await using var connection = new NpgsqlConnection(_host.ConnectionString);
        await connection.OpenAsync();
        await using var update = new NpgsqlCommand("UPDATE workflow.workflow_runs SET status = @status WHERE uuid = @id", connection);
        update.Parameters.AddWithValue("status", status.ToString());
        update.Parameters.AddWithValue("id", id);
        Assert.That(await update.ExecuteNonQueryAsync(), Is.EqualTo(1));
    }

    private static List<(Guid Id, string Status, string Html)> Rows(string body)
        => RunRows().Matches(body).Select(m => (Guid.Parse(m.Groups["id"].Value), m.Groups["status"].Value, m.Groups["html"].Value)).ToList();

    [GeneratedRegex("<tr class=\"js-workflow-run\" data-workflow-id=\"(?<id>[0-9a-f-]{36})\" data-status=\"(?<status>\\w+)\">(?<html>.*?)</tr>", RegexOptions.Singleline)]
    private static partial Regex RunRows();

    [GeneratedRegex("<link rel=\"stylesheet\" href=\"(?<href>/hangfire/css\\d+)\"")]
    private static partial Regex StylesheetLink();

    [GeneratedRegex("<script src=\"(?<href>/hangfire/js\\d+)\"")]
    private static partial Regex ScriptLink();

    [GeneratedRegex("<tr class=\"js-workflow-step\" data-step=\"(?<name>[^\"]+)\">(?<html>.*?)</tr>", RegexOptions.Singleline)]
    private static partial Regex StepRows();
}
