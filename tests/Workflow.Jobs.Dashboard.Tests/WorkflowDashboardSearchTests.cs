using System.Net;
using System.Text.RegularExpressions;

namespace Workflow.Jobs.Dashboard.Tests;

/// <summary>The Workflows page's search filters (error text, idempotency key, created range, tags) and the menu's Failed badge, on a real host.</summary>
[TestFixture]
[Parallelizable(ParallelScope.Self)]
public sealed partial class WorkflowDashboardSearchTests
{
    private DashboardTestHost _host = null!;
    private Guid _keyed;
    private Guid _other;
    private Guid _failed;
    private readonly List<Guid> _batch = [];

    [OneTimeSetUp]
    public async Task StartAsync()
    {
        _host = await DashboardTestHost.StartAsync("search");
        var later = new EnqueueOptions { Delay = TimeSpan.FromHours(1) };
        _keyed = await _host.Client.EnqueueAsync<HelloWorkflow>(new WorkflowInput(new GreetInput { Name = "a" }),
            later with { IdempotencyKey = "dash-a", Tags = new Dictionary<string, string> { ["customer"] = "c-1" } });
        _other = await _host.Client.EnqueueAsync<HelloWorkflow>(new WorkflowInput(new GreetInput { Name = "b" }),
            later with { Tags = new Dictionary<string, string> { ["customer"] = "c-2" } });
        _failed = await _host.Client.EnqueueAsync<FlakyWorkflow>(new WorkflowInput(new GreetInput { Name = "f" }, new FlakyInput { ReleaseKey = "search-never" }),
            new EnqueueOptions { Tags = new Dictionary<string, string> { ["customer"] = "c-1" } });
        for (var i = 0; i < 11; i++)
        {
            _batch.Add(await _host.Client.EnqueueAsync<HelloWorkflow>(new WorkflowInput(new GreetInput { Name = "p" + i }),
                later with { Tags = new Dictionary<string, string> { ["batch"] = "p 1" } }));
        }

        await _host.WaitForStatusAsync(_failed, WorkflowStatus.Failed);
    }

    [OneTimeTearDown]
    public async Task StopAsync() => await _host.DisposeAsync();

    private async Task<(HttpStatusCode Status, string Body, List<Guid> Ids)> ListAsync(string query)
    {
        using var client = _host.CreateClient();
        var (status, body, _) = await client.GetAsync("/hangfire/workflows" + query);
        return (status, body, RunRows().Matches(body).Select(m => Guid.Parse(m.Groups["id"].Value)).ToList());
    }

    [Test]
    public async Task ListPage_ShowsRunsWithTheTag_AndKeepsTheTagInTheForm_WhenFilteredByTag()
    {
        var (status, body, ids) = await ListAsync("?tag=customer:c-1");

        Assert.That(status, Is.EqualTo(HttpStatusCode.OK));
        Assert.That(ids, Is.EquivalentTo(new[] { _keyed, _failed }));
        Assert.That(body, Does.Contain("name=\"tag\" class=\"form-control input-sm\" placeholder=\"key:value\" value=\"customer:c-1\""));
        Assert.That(body, Does.Contain("id=\"workflow-tag-1\""), "an empty input to add another tag");
    }

    [Test]
    public async Task ListPage_RequiresEveryTag_WhenTagIsRepeated()
    {
        var (_, _, both) = await ListAsync("?tag=customer:c-1&tag=" + Uri.EscapeDataString("batch:p 1"));
        var (_, _, batch) = await ListAsync("?tag=" + Uri.EscapeDataString("batch:p 1") + "&count=50");

        Assert.That(both, Is.Empty);
        Assert.That(batch, Is.EquivalentTo(_batch));
    }

    [Test]
    public async Task ListPage_ShowsOnlyRunsWhoseErrorContainsTheText_IgnoringCase()
    {
        var (_, body, ids) = await ListAsync("?error=" + Uri.EscapeDataString(FlakyStep.Message.ToUpperInvariant()));

        Assert.That(ids, Is.EqualTo(new[] { _failed }));
        Assert.That(body, Does.Contain("value=\"" + FlakyStep.Message.ToUpperInvariant() + "\""));
    }

    [Test]
    public async Task ListPage_ShowsTheRun_WhenFilteredByIdempotencyKey()
    {
        var (_, _, ids) = await ListAsync("?key=dash-a");

        Assert.That(ids, Is.EqualTo(new[] { _keyed }));
    }

    [Test]
    public async Task ListPage_ShowsRunsCreatedInTheRange_WhenFilteredByCreatedTime()
    {
        var now = DateTimeOffset.UtcNow;
        var (_, _, past) = await ListAsync("?before=2000-01-01T00:00");
        var (_, body, recent) = await ListAsync("?after=" + Uri.EscapeDataString(now.AddDays(-1).ToString("yyyy-MM-dd'T'HH:mm", System.Globalization.CultureInfo.InvariantCulture))
            + "&before=" + Uri.EscapeDataString(now.AddDays(1).ToString("O", System.Globalization.CultureInfo.InvariantCulture)) + "&tag=customer:c-2");

        Assert.That(past, Is.Empty);
        Assert.That(recent, Is.EqualTo(new[] { _other }));
        Assert.That(body, Does.Contain("type=\"datetime-local\" id=\"workflow-after\""));
    }

    [Test]
    public async Task ListPage_CarriesEveryFilterAcrossPages()
    {
        var (_, first, firstIds) = await ListAsync("?tag=" + Uri.EscapeDataString("batch:p 1") + "&status=Pending&count=10");

        var next = NextLink().Match(first);
        Assert.That(next.Success, Is.True, "a next page");
        var href = WebUtility.HtmlDecode(next.Groups["href"].Value);
        Assert.That(href, Does.Contain("tag=batch%3Ap%201").And.Contain("status=Pending").And.Contain("from=10").And.Contain("count=10"));
        var (_, _, secondIds) = await ListAsync(href["/hangfire/workflows".Length..]);
        Assert.That(firstIds.Concat(secondIds), Is.EqualTo(Enumerable.Reverse(_batch)), "newest first, each run once");
    }

    [TestCase("?after=yesterday", "after")]
    [TestCase("?before=2026-13-01", "before")]
    [TestCase("?tag=customer", "tag")]
    [TestCase("?tag=:c-1", "tag")]
    [TestCase("?tag=customer:c-1&tag=customer:c-2", "tag")]
    [TestCase("?error=a%00b", "error")]
    [TestCase("?key=a%00b", "key")]
    [TestCase("?parent=not-a-run", "parent")]
    public async Task ListPage_Answers400NamingTheParameter_WhenAFilterCannotBeApplied(string query, string parameter)
    {
        var (status, body, ids) = await ListAsync(query);

        Assert.That(status, Is.EqualTo(HttpStatusCode.BadRequest));
        Assert.That(body, Does.Contain("The parameter &#39;" + parameter + "&#39;"));
        Assert.That(ids, Is.Empty);
    }

    [Test]
    public async Task ListPage_ShowsOnlyTheRunsChildren_WhenFilteredByParent_AsTheRunPagesLinkDoes()
    {
        var parent = await _host.Client.EnqueueAsync<GreetAllWorkflow>(new WorkflowInput(new GreetAllInput { Names = ["x", "y", "z"] }));
        await _host.WaitForStatusAsync(parent, WorkflowStatus.Succeeded);
        var children = (await _host.Client.ListAsync(new WorkflowQuery { WorkflowName = "dashboard-hello", Limit = 1000 })).Where(r => r.ParentId == parent).Select(r => r.Id).ToList();
        using var client = _host.CreateClient();
        var (_, page, _) = await client.GetAsync("/hangfire/workflows/" + parent);

        var link = ChildrenLink().Match(page);
        Assert.That(link.Success, Is.True, "the run page links to its children");
        var href = WebUtility.HtmlDecode(link.Groups["href"].Value);
        Assert.That(href, Is.EqualTo("/hangfire/workflows?parent=" + parent));
        var (status, body, ids) = await ListAsync(href["/hangfire/workflows".Length..]);
        Assert.That(status, Is.EqualTo(HttpStatusCode.OK));
        Assert.That(children, Has.Count.EqualTo(3));
        Assert.That(ids, Is.EquivalentTo(children), "the run's three children, not the parent nor any other run");
        Assert.That(body, Does.Contain("id=\"workflow-parent\"").And.Contain("value=\"" + parent + "\""), "the filter form keeps the parent");
    }

    [Test]
    public async Task RunPageAndList_ShowTheTags_LinkingToTheRunsThatShareThem()
    {
        using var client = _host.CreateClient();
        var (_, page, _) = await client.GetAsync("/hangfire/workflows/" + _keyed);
        var (_, list, _) = await ListAsync("?key=dash-a");

        Assert.That(page, Does.Contain("href=\"/hangfire/workflows?tag=customer%3Ac-1\">customer: c-1</a>"));
        Assert.That(page, Does.Contain("href=\"/hangfire/workflows?key=dash-a\">dash-a</a>"));
        Assert.That(list, Does.Contain("<span class=\"label label-default workflow-tag\">customer: c-1</span>"));
    }

    [Test]
    public async Task Menu_ShowsTheCountOfFailedRuns_OnEveryDashboardPage()
    {
        using var client = _host.CreateClient();
        var (_, jobs, _) = await client.GetAsync("/hangfire/recurring");
        var (_, workflows, _) = await client.GetAsync("/hangfire/workflows");

        Assert.That(Badge().Match(jobs).Groups["value"].Value, Is.EqualTo("1"));
        Assert.That(Badge().Match(workflows).Groups["value"].Value, Is.EqualTo("1"));
    }

    [Test]
    public async Task Badge_IsRefreshedThroughHangfiresStatsEndpoint()
    {
        using var client = _host.CreateClient();
        await client.GetAsync("/hangfire/workflows");

        var (status, body) = await client.PostFormAsync("/hangfire/stats", [KeyValuePair.Create("metrics[]", "workflows:failed")]);

        Assert.That(status, Is.EqualTo(HttpStatusCode.OK));
        var metric = Newtonsoft.Json.Linq.JObject.Parse(body)["workflows:failed"];
        Assert.That(metric?["value"]?.ToString(), Is.EqualTo("1"), body);
    }

    [GeneratedRegex("<tr class=\"js-workflow-run\" data-workflow-id=\"(?<id>[0-9a-f-]{36})\"")]
    private static partial Regex RunRows();

    [GeneratedRegex("<a rel=\"next\" class=\"js-workflow-next\" href=\"(?<href>[^\"]+)\"")]
    private static partial Regex NextLink();

    [GeneratedRegex("<a id=\"workflow-children-list\" href=\"(?<href>[^\"]+)\"")]
    private static partial Regex ChildrenLink();

    [GeneratedRegex("<span data-metric=\"workflows:failed\"[^>]*>\\s*(?<value>[^<]*?)\\s*</span>")]
    private static partial Regex Badge();
}
