using System.Net;

namespace Workflow.Jobs.Dashboard.Tests;

/// <summary>A read-only dashboard shows runs but neither offers nor accepts Retry, Cancel, Fork or bulk actions.</summary>
[TestFixture]
[Parallelizable(ParallelScope.Self)]
public sealed class WorkflowDashboardReadOnlyTests
{
    private DashboardTestHost _host = null!;
    private Guid _failed;

    [OneTimeSetUp]
    public async Task StartAsync()
    {
        _host = await DashboardTestHost.StartAsync("readonly", o => o.ReadOnly = true);
        _failed = await _host.StartFailedRunAsync("read-only");
        _host.Failures.Release("read-only");
    }

    [OneTimeTearDown]
    public async Task StopAsync() => await _host.DisposeAsync();

    [Test]
    public async Task RunPage_HidesRetryAndCancel_WhenReadOnly()
    {
        using var client = _host.CreateClient();
        var (status, body, _) = await client.GetAsync($"/hangfire/workflows/{_failed}");

        Assert.That(status, Is.EqualTo(HttpStatusCode.OK));
        Assert.That(body, Does.Not.Contain("id=\"workflow-retry\"").And.Not.Contain("id=\"workflow-cancel\"").And.Contain("Read-only dashboard"));
    }

    [TestCase("retry")]
    [TestCase("cancel")]
    public async Task Command_IsRefused_WhenReadOnly(string command)
    {
        using var client = _host.CreateClient();
        await client.GetAsync($"/hangfire/workflows/{_failed}");

        var (status, body) = await client.PostAsync($"/hangfire/workflows/{_failed}/{command}");

        Assert.That(status, Is.EqualTo(HttpStatusCode.Forbidden));
        Assert.That(body, Does.Contain("read-only"));
        Assert.That((await _host.GetRunAsync(_failed)).Status, Is.EqualTo(WorkflowStatus.Failed));
    }

    [Test]
    public async Task Pages_OfferNeitherForkNorBulkActions_WhenReadOnly()
    {
        using var client = _host.CreateClient();
        var (_, runPage, _) = await client.GetAsync($"/hangfire/workflows/{_failed}");
        var (_, listPage, _) = await client.GetAsync("/hangfire/workflows?status=Failed");

        Assert.That(runPage, Does.Not.Contain("id=\"workflow-fork\"").And.Not.Contain("id=\"workflow-fork-panel\""));
        Assert.That(listPage, Does.Contain("js-workflow-run").And.Not.Contain("id=\"workflow-bulk\""));
    }

    [Test]
    public async Task Fork_IsRefusedAndCreatesNothing_WhenReadOnly()
    {
        using var client = _host.CreateClient();
        await client.GetAsync($"/hangfire/workflows/{_failed}");
        var before = await _host.Client.CountAsync(new WorkflowQuery());

        var (status, body) = await client.PostFormAsync($"/hangfire/workflows/{_failed}/fork", [new("fromStep", "")]);

        Assert.That(status, Is.EqualTo(HttpStatusCode.Forbidden));
        Assert.That(body, Does.Contain("read-only"));
        Assert.That(await _host.Client.CountAsync(new WorkflowQuery()), Is.EqualTo(before));
    }

    [TestCase("retry")]
    [TestCase("cancel")]
    [TestCase("purge")]
    public async Task BulkAction_IsRefusedAndStartsNoJob_WhenReadOnly(string action)
    {
        using var client = _host.CreateClient();
        await client.GetAsync("/hangfire/workflows?status=Failed");
        var jobsBefore = _host.Storage.GetMonitoringApi().GetStatistics();

        var (status, body) = await client.PostAsync($"/hangfire/workflows/bulk/{action}?status=Failed");

        Assert.That(status, Is.EqualTo(HttpStatusCode.Forbidden));
        Assert.That(body, Does.Contain("read-only"));
        Assert.That(_host.Storage.GetMonitoringApi().GetStatistics().Enqueued + _host.Storage.GetMonitoringApi().GetStatistics().Succeeded,
            Is.EqualTo(jobsBefore.Enqueued + jobsBefore.Succeeded), "no bulk job");
        Assert.That((await _host.GetRunAsync(_failed)).Status, Is.EqualTo(WorkflowStatus.Failed));
    }

    [Test]
    public async Task HangfireRequeue_IsRefused_WhenReadOnly()
    {
        var run = await _host.GetRunAsync(_failed);
        using var client = _host.CreateClient();
        await client.GetAsync($"/hangfire/jobs/details/{run.JobId}");

        var (status, _) = await client.PostAsync($"/hangfire/jobs/actions/requeue/{run.JobId}");

        Assert.That((int)status, Is.EqualTo(401).Or.EqualTo(403), "Hangfire's own commands obey the same read-only setting");
        Assert.That((await _host.GetRunAsync(_failed)).Status, Is.EqualTo(WorkflowStatus.Failed));
    }
}
