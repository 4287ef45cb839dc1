using System.Text.RegularExpressions;
using Microsoft.Playwright;

namespace Workflow.Jobs.Dashboard.Tests;

/// <summary>
/// Fork from the run page and a bulk retry from the list page in a real browser (headless Debian Chromium driven by
/// Playwright, as <see cref="WorkflowDashboardBrowserTests"/>), on a host of their own so their runs do not change the
/// other browser test's list.
/// </summary>
[TestFixture]
[Parallelizable(ParallelScope.Self)]
public sealed partial class WorkflowDashboardOperatorBrowserTests
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

        _host = await DashboardTestHost.StartAsync("browserops");
        _profile = Directory.CreateTempSubdirectory("workflow-jobs-chromium-ops-").FullName;
    }

    [OneTimeTearDown]
    public async Task StopAsync()
    {
        await _host.DisposeAsync();
        Directory.Delete(_profile, recursive: true);
    }

    [Test]
    public async Task Fork_ShowsErrorsWithPaths_ThenStartsTheFork_WhenSubmittedInTheBrowser()
    {
        var original = await _host.StartFailedRunAsync("browser-fork-never-released", "Ada");
        _host.Failures.Release("browser-fork-released");
        using var playwright = await Playwright.CreateAsync();
        await using var browser = await LaunchAsync(playwright);
        var page = browser.Pages.Count > 0 ? browser.Pages[0] : await browser.NewPageAsync();

        await page.GotoAsync($"hangfire/workflows/{original}", new() { WaitUntil = WaitUntilState.DOMContentLoaded });
        await page.Locator("#workflow-fork").ClickAsync();
        await Assertions.Expect(page.Locator("#workflow-fork-panel")).ToBeVisibleAsync();
        await Assertions.Expect(page.Locator("#workflow-fork-step")).ToHaveValueAsync("FlakyStep");
        await Assertions.Expect(page.Locator("#workflow-fork-input")).ToHaveValueAsync(new Regex("browser-fork-never-released"));

        // An invalid input: the errors come back with their paths, and nothing is created.
        var before = await _host.Client.CountAsync(new WorkflowQuery());
        await page.Locator("#workflow-fork-input").FillAsync("""{"dashboard_greet_input": {"name": []}}""");
        await page.Locator("#workflow-fork-submit").ClickAsync();
        await Assertions.Expect(page.Locator("#workflow-fork-errors")).ToBeVisibleAsync();
        await Assertions.Expect(page.Locator("#workflow-fork-errors .workflow-error-path")).ToContainTextAsync(["input.dashboard_greet_input.name"]);
        await SaveScreenshotAsync(page, "fork-errors.png", "The Fork panel with an invalid input");
        Assert.That(await _host.Client.CountAsync(new WorkflowQuery()), Is.EqualTo(before), "nothing was created");

        // The corrected input: the browser moves to the new run's page, which links to the original.
        var input = (await _host.GetRunAsync(original)).Input.ToString().Replace("browser-fork-never-released", "browser-fork-released", StringComparison.Ordinal);
        await page.Locator("#workflow-fork-input").FillAsync(input);
        var forkPage = page.WaitForURLAsync(url => ForkUrl().IsMatch(url) && !url.EndsWith(original.ToString(), StringComparison.Ordinal),
            new() { WaitUntil = WaitUntilState.Commit });
        await page.Locator("#workflow-fork-submit").ClickAsync();
        await forkPage;
        var forkId = Guid.Parse(page.Url[^36..]);
        Assert.That(forkId, Is.Not.EqualTo(original));
        await Assertions.Expect(page.Locator("#workflow-forked-from")).ToHaveAttributeAsync("href", $"/hangfire/workflows/{original}");
        await DashboardTestHost.WaitUntilAsync(async () =>
        {
            await page.ReloadAsync(new() { WaitUntil = WaitUntilState.DOMContentLoaded });
            return await page.Locator("#workflow-status [data-status]").TextContentAsync() == "Succeeded";
        }, TimeSpan.FromSeconds(90), "the fork's page to show it Succeeded");
        await SaveScreenshotAsync(page, "fork-run-page.png", "The fork, succeeded, linked to its original");

        await page.Locator("#workflow-forked-from").ClickAsync();
        await Assertions.Expect(page.Locator("a.workflow-fork-link")).ToHaveAttributeAsync("href", $"/hangfire/workflows/{forkId}");
        Assert.That((await _host.GetRunAsync(forkId)).Steps.Single(s => s.StepName == "GreetStep").Attempts, Is.Zero, "copied, never executed");
    }

    [Test]
    public async Task BulkRetry_RetriesTheFilteredRunsAndShowsProgress_WhenConfirmedInTheBrowser()
    {
        var key = "browser-bulk-" + Guid.NewGuid().ToString("N")[..8];
        var failed = new List<Guid>();
        for (var i = 0; i < 3; i++)
        {
            failed.Add(await _host.Client.EnqueueAsync<FlakyWorkflow>(new WorkflowInput(new GreetInput { Name = "bulk " + i }, new FlakyInput { ReleaseKey = key }),
                new EnqueueOptions { Tags = new Dictionary<string, string> { ["batch"] = key } }));
        }

        foreach (var id in failed)
        {
            await _host.WaitForStatusAsync(id, WorkflowStatus.Failed);
        }

        _host.Failures.Release(key);
        using var playwright = await Playwright.CreateAsync();
        await using var browser = await LaunchAsync(playwright);
        var page = browser.Pages.Count > 0 ? browser.Pages[0] : await browser.NewPageAsync();
        var dialogs = new List<string>();
        page.Dialog += (_, dialog) =>
        {
            dialogs.Add(dialog.Message);
            // Playwright waits for the dialog to be handled; the handler cannot await (an event).
            _ = dialog.AcceptAsync();
        };

        await page.GotoAsync($"hangfire/workflows?status=Failed&tag=batch:{key}", new() { WaitUntil = WaitUntilState.DOMContentLoaded });
        await Assertions.Expect(page.Locator("tr.js-workflow-run[data-status='Failed']")).ToHaveCountAsync(3);
        var started = page.WaitForURLAsync(new Regex("bulk=[0-9]+$"), new() { WaitUntil = WaitUntilState.Commit });
        await page.Locator("#workflow-bulk-retry").ClickAsync();
        await started;

        await Assertions.Expect(page.Locator("#workflow-bulk-progress")).ToHaveAttributeAsync("data-state", "Succeeded", new() { Timeout = 90_000 });
        await Assertions.Expect(page.Locator("#workflow-bulk-progress")).ToHaveAttributeAsync("data-done", "3");
        await Assertions.Expect(page.Locator("#workflow-bulk-progress-text")).ToContainTextAsync("3 runs retried of 3 selected");
        await SaveScreenshotAsync(page, "bulk-retry-progress.png", "The list page after a bulk retry");
        Assert.That(dialogs, Has.Count.EqualTo(1), "one confirmation: the filter does not select every run");
        Assert.That(dialogs[0], Does.Contain("among the 3 runs of this filter"));
        foreach (var id in failed)
        {
            await _host.WaitForStatusAsync(id, WorkflowStatus.Succeeded);
        }
    }

    private async Task<IBrowserContext> LaunchAsync(IPlaywright playwright)
    {
        var browser = await playwright.Chromium.LaunchPersistentContextAsync(_profile, new BrowserTypeLaunchPersistentContextOptions
        {
            ExecutablePath = ChromiumPath,
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
            ViewportSize = new ViewportSize { Width = 1280, Height = 900 },
            BaseURL = _host.BaseAddress.ToString(),
        });
        browser.SetDefaultTimeout(90_000);
        return browser;
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

    [GeneratedRegex("/hangfire/workflows/[0-9a-f-]{36}$")]
    private static partial Regex ForkUrl();
}
