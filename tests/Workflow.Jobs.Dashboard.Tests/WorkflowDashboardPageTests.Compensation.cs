using System.Net;
using System.Text.RegularExpressions;

namespace Workflow.Jobs.Dashboard.Tests;

/// <summary>The run page's compensation parts: the Cancel and compensate command and the compensation timeline.</summary>
public sealed partial class WorkflowDashboardPageTests
{
    [Test]
    public async Task CancelAndCompensate_CompensatesTheRun_AndThePageShowsTheCompensationTimeline()
    {
        var id = await _host.StartFailedRunAsync("pages-compensate-never-released");
        var failed = await _host.GetRunAsync(id);
        var succeeded = failed.Steps.Where(s => s.Status == WorkflowStatus.Succeeded).Select(s => s.StepName).ToList();
        using var client = _host.CreateClient();
        var (_, before, _) = await client.GetAsync($"/hangfire/workflows/{id}");
        Assert.That(before, Does.Contain("id=\"workflow-cancel-compensate\""), "a failed run can be cancelled and compensated");

        var (status, _) = await client.PostAsync($"/hangfire/workflows/{id}/cancel-compensate");

        Assert.That(status, Is.EqualTo(HttpStatusCode.NoContent));
        await _host.WaitForStatusAsync(id, WorkflowStatus.Compensated);
        var (_, page, _) = await client.GetAsync($"/hangfire/workflows/{id}");
        var rows = CompensationRows().Matches(page).Select(m => (Step: m.Groups["name"].Value, Html: m.Groups["html"].Value)).ToList();
        Assert.Multiple(() =>
        {
            Assert.That(succeeded, Is.Not.Empty);
            Assert.That(rows.Select(r => r.Step), Is.EqualTo(Enumerable.Reverse(succeeded)), "the succeeded steps, in the order they are undone");
            Assert.That(rows.Select(r => r.Html), Has.All.Contain("data-compensation=\"Done\""));
            Assert.That(page, Does.Contain("id=\"workflow-compensation-requested\""));
            Assert.That(page, Does.Not.Contain("id=\"workflow-cancel-compensate\""), "a compensated run offers no command");
        });
    }

    [GeneratedRegex("<tr class=\"js-workflow-compensation\" data-step=\"(?<name>[^\"]+)\">(?<html>.*?)</tr>", RegexOptions.Singleline)]
    private static partial Regex CompensationRows();
}
