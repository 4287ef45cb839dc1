using System.Net;
using System.Text.RegularExpressions;

namespace Workflow.Jobs.Dashboard.Tests;

/// <summary>The run page's attempt history (kept apart from the other page tests).</summary>
public sealed partial class WorkflowDashboardPageTests
{
    [Test]
    public async Task RunPage_ShowsEachStepsAttempts_WithEveryErrorAndTheLastStackTraceCollapsed_WhenAStepFailedTwiceThenSucceeded()
    {
        var id = await _host.StartFailedRunAsync("history-twice");
        await _host.Client.RetryAsync(id);
        await DashboardTestHost.WaitUntilAsync(async () =>
            await _host.GetRunAsync(id) is { Status: WorkflowStatus.Failed } failed && failed.Steps.Single(s => s.StepName == "FlakyStep").History.Count == 2,
            TimeSpan.FromSeconds(60), "the retried run to fail again");
        _host.Failures.Release("history-twice");
        await _host.Client.RetryAsync(id);
        var run = await _host.WaitForStatusAsync(id, WorkflowStatus.Succeeded);
        using var client = _host.CreateClient();

        var (status, body, _) = await client.GetAsync($"/hangfire/workflows/{id}");

        Assert.That(status, Is.EqualTo(HttpStatusCode.OK));
        var flaky = AttemptTables().Matches(body).Single(m => m.Groups["step"].Value == "FlakyStep").Groups["html"].Value;
        var attempts = AttemptRows().Matches(flaky).Select(m => (Status: m.Groups["status"].Value, Html: m.Groups["html"].Value)).ToList();
        Assert.Multiple(() =>
        {
            Assert.That(attempts.Select(a => a.Status), Is.EqualTo(new[] { "Failed", "Failed", "Succeeded" }), "oldest first, with outcomes");
            Assert.That(attempts.Take(2).Select(a => a.Html), Is.All.Contain(FlakyStep.Message).And.All.Contain("System.InvalidOperationException"),
                "the full error of each failed attempt");
            Assert.That(Regex.Count(flaky, "<details class=\"workflow-stack-trace\">"), Is.EqualTo(1), "one stack trace, collapsed");
            Assert.That(attempts[1].Html, Does.Contain("<details class=\"workflow-stack-trace\"><summary>Stack trace</summary>"),
                "the stack trace of the last failed attempt");
            Assert.That(attempts.Select(a => a.Html), Is.All.Contain($"href=\"/hangfire/jobs/details/{run.JobId}\""), "each attempt links its job");
            Assert.That(attempts.Select(a => a.Html), Is.All.Contain("workflow-attempt-bar"), "each finished attempt has its duration");
            Assert.That(AttemptTables().Matches(body).Select(m => m.Groups["step"].Value), Is.EqualTo(new[] { "GreetStep", "FlakyStep", "FinishStep" }));
        });
    }

    [GeneratedRegex("<div class=\"workflow-attempts\" data-step=\"(?<step>[^\"]+)\">(?<html>.*?)</table>", RegexOptions.Singleline)]
    private static partial Regex AttemptTables();

    [GeneratedRegex("<tr class=\"js-workflow-attempt\" data-attempt=\"\\d+\" data-status=\"(?<status>[^\"]+)\">(?<html>.*?)</tr>", RegexOptions.Singleline)]
    private static partial Regex AttemptRows();
}
