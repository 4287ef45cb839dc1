using Microsoft.Playwright;

namespace Workflow.Jobs.Dashboard.Tests;

/// <summary>
/// The Workflows page in a real browser: headless Debian Chromium (/usr/bin/chromium, installed by deploy/test.sh
/// when missing) driven by Playwright, never a browser that Playwright downloads.
/// </summary>
[TestFixture]
[Parallelizable(ParallelScope.Self)]
public sealed class WorkflowDashboardBrowserTests
{
    private const string ChromiumPath = "/usr/bin/chromium";

    private DashboardTestHost _host = null!;
    private string _profile = null!;

    [OneTimeSetUp]
    public async Task StartAsync()
    {
        if (!File.Exists(ChromiumPath))
        {
            Assert.Fail($"{ChromiumPath} is missing: install Debian's chromium package (deploy/test.sh does when run as root).");
        }

        _host = await DashboardTestHost.StartAsync("browser");
        _profile = Directory.CreateTempSubdirectory("workflow-jobs-chromium-").FullName;
    }

    [OneTimeTearDown]
    public async Task StopAsync()
    {
        await _host.DisposeAsync();
        Directory.Delete(_profile, recursive: true);
    }

    [Test]
    public async Task Retry_MakesFailedRunSucceed_WhenPressedInTheBrowser()
    {
        await _host.EnqueueHelloAsync("Ada");
        await _host.EnqueueHelloAsync("Grace");
        var failed = await _host.StartFailedRunAsync("browser-retry", "Linus");
        // The outage is over: a retry now gets through the flaky step.
        _host.Failures.Release("browser-retry");

        using var playwright = await Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchPersistentContextAsync(_profile, new BrowserTypeLaunchPersistentContextOptions
        {
            ExecutablePath = ChromiumPath,
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
            ViewportSize = new ViewportSize { Width = 1280, Height = 900 },
            BaseURL = _host.BaseAddress.ToString(),
        });
        browser.SetDefaultTimeout(90_000);
        var page = browser.Pages.Count > 0 ? browser.Pages[0] : await browser.NewPageAsync();

        await page.GotoAsync("hangfire/workflows", new() { WaitUntil = WaitUntilState.DOMContentLoaded });
        var failedRow = page.Locator("tr.js-workflow-run[data-status='Failed']");
        await Assertions.Expect(failedRow).ToHaveCountAsync(1);
        await Assertions.Expect(failedRow).ToContainTextAsync("1/3 steps");
        await SaveScreenshotAsync(page, "workflows-page.png", "The Workflows page with a failed run");

        // Waiting for the run page starts before the click, so a navigation that completes at once is not missed.
        var runPage = page.WaitForURLAsync($"**/hangfire/workflows/{failed}", new() { WaitUntil = WaitUntilState.Commit });
        await failedRow.Locator("a.workflow-run-link").ClickAsync();
        await runPage;
        await Assertions.Expect(page.Locator("#workflow-status [data-status]")).ToHaveTextAsync("Failed");
        await Assertions.Expect(page.Locator("tr.js-workflow-step[data-step='FlakyStep']")).ToContainTextAsync(FlakyStep.Message);
        await SaveScreenshotAsync(page, "failed-run-page.png", "The failed run, before Retry");

        // The button POSTs the command, then the page reloads itself.
        var retry = page.WaitForResponseAsync(response => response.Url.EndsWith("/retry", StringComparison.Ordinal));
        var reloaded = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        page.Load += (_, _) => reloaded.TrySetResult();
        await page.Locator("#workflow-retry").ClickAsync();
        Assert.That((await retry).Status, Is.EqualTo(204), "the Retry command's answer");
        await reloaded.Task.WaitAsync(TimeSpan.FromSeconds(90));

        // The run resumes in the background: reload until the page shows it succeeded.
        await DashboardTestHost.WaitUntilAsync(async () =>
        {
            await page.ReloadAsync(new() { WaitUntil = WaitUntilState.DOMContentLoaded });
            return await page.Locator("#workflow-status [data-status]").TextContentAsync() == "Succeeded";
        }, TimeSpan.FromSeconds(90), "the run page to show the retried run as Succeeded");
        await Assertions.Expect(page.Locator("#workflow-progress")).ToContainTextAsync("3/3 steps");
        await Assertions.Expect(page.Locator("#workflow-retry")).ToHaveCountAsync(0);
        await SaveScreenshotAsync(page, "succeeded-run-page.png", "The same run after Retry");
        Assert.That((await _host.GetRunAsync(failed)).Status, Is.EqualTo(WorkflowStatus.Succeeded));
    }

    [Test]
    public async Task SendEvent_WakesTheWaitingRun_WhenAValidPayloadIsSentFromTheRunPage()
    {
        var id = await _host.Client.EnqueueAsync<ApprovalWorkflow>(new WorkflowInput(new GreetInput { Name = "Ada" }));
        await _host.WaitForStatusAsync(id, WorkflowStatus.Waiting);

        var profile = Directory.CreateTempSubdirectory("workflow-jobs-chromium-").FullName;
        using var playwright = await Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchPersistentContextAsync(profile, new BrowserTypeLaunchPersistentContextOptions
        {
            ExecutablePath = ChromiumPath,
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
            ViewportSize = new ViewportSize { Width = 1280, Height = 900 },
            BaseURL = _host.BaseAddress.ToString(),
        });
        browser.SetDefaultTimeout(90_000);
        var page = browser.Pages.Count > 0 ? browser.Pages[0] : await browser.NewPageAsync();

        await page.GotoAsync($"hangfire/workflows/{id}", new() { WaitUntil = WaitUntilState.DOMContentLoaded });
        await Assertions.Expect(page.Locator("#workflow-status [data-status]")).ToHaveTextAsync("Waiting");
        await Assertions.Expect(page.Locator("#workflow-waiting")).ToContainTextAsync("event approval");
        await Assertions.Expect(page.Locator("#workflow-event-name")).ToHaveValueAsync("approval");

        // Not JSON: refused in the browser, nothing sent.
        await page.Locator("#workflow-event-payload").FillAsync("{ approver: ");
        await page.Locator("#workflow-send-event").ClickAsync();
        await Assertions.Expect(page.Locator("#workflow-event-json-error")).ToBeVisibleAsync();

        // JSON that does not fit the wait's type: the server's refusal names the field.
        var refused = page.WaitForResponseAsync(response => response.Url.EndsWith("/event", StringComparison.Ordinal));
        await page.Locator("#workflow-event-payload").FillAsync("{\"approver\": \"\"}");
        await page.Locator("#workflow-send-event").ClickAsync();
        Assert.That((await refused).Status, Is.EqualTo(400));
        await Assertions.Expect(page.Locator("#workflow-command-error")).ToContainTextAsync("approver");
        await SaveScreenshotAsync(page, "waiting-run-send-event.png", "A waiting run with a refused event");

        var sent = page.WaitForResponseAsync(response => response.Url.EndsWith("/event", StringComparison.Ordinal));
        await page.Locator("#workflow-event-payload").FillAsync("{\"approver\": \"Grace\"}");
        await page.Locator("#workflow-send-event").ClickAsync();
        Assert.That((await sent).Status, Is.EqualTo(204));

        var run = await _host.WaitForStatusAsync(id, WorkflowStatus.Succeeded);
        Assert.That(run.Output!["dashboard_approved_output"]!["approver"]!.ToString(), Is.EqualTo("Grace"));
        await browser.CloseAsync();
        Directory.Delete(profile, recursive: true);
    }

    /// <summary>Saves a full-page screenshot under the test's work directory and attaches it to the test result.</summary>
    private static async Task SaveScreenshotAsync(IPage page, string fileName, string description)
    {
        var folder = Path.Combine(TestContext.CurrentContext.WorkDirectory, "screenshots");
        Directory.CreateDirectory(folder);
        var path = Path.Combine(folder, fileName);
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = path, FullPage = true });
        TestContext.AddTestAttachment(path, description);
    }
}
