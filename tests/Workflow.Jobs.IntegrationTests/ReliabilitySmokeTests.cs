using Workflow.Jobs.Reliability;

namespace Workflow.Jobs.IntegrationTests;

/// <summary>
/// The short version of <c>deploy/reliability.sh</c>: a few dozen runs on two separate
/// worker processes, one of them killed with SIGKILL mid-run, no database restart (the test server is
/// shared). The full suite and its figures: docs/reliability.md.
/// </summary>
public class ReliabilitySmokeTests
{
    [Test]
    public async Task ShortRun_WithAWorkerProcessKilled_LosesNoRun_ChecksNothingTwice_AndNeverOverlaps()
    {
        var connectionString = await TestDatabases.CreateAsync(nameof(ReliabilitySmokeTests));
        var settings = new ReliabilitySettings
        {
            ConnectionString = connectionString,
            Runs = 40,
            Processes = 2,
            WorkersPerProcess = 3,
            Kills = 1,
            DatabaseRestartCommand = null,
            LoadSeconds = 10,
            DeadlineSeconds = 100,
            MaxWorkMilliseconds = 800,
            LogDirectory = Path.Combine(TestContext.CurrentContext.WorkDirectory, "reliability-smoke"),
        };

        var report = await new ReliabilityRun(settings, TestContext.Progress).RunAsync(CancellationToken.None);

        foreach (var line in report.DetailLines().Append(report.FinalLine))
        {
            await TestContext.Out.WriteLineAsync(line);
        }

        using (Assert.EnterMultipleScope())
        {
            Assert.That(report.Facts.Kills, Is.EqualTo(1), "one worker process was killed");
            Assert.That(report.RecoverySeconds, Is.Not.Empty, "the killed process had step bodies in flight");
            Assert.That(report.Unrecovered, Is.Zero, "every interrupted run was picked up again");
            Assert.That(report.Lost, Is.Zero, "lost");
            Assert.That(report.DuplicateCheckpoints, Is.Zero, "duplicate_checkpoints");
            Assert.That(report.OverlappingExecutions, Is.Zero, "overlapping_executions");
            Assert.That(report.RunsWithoutJob + report.JobsWithoutRun + report.ExtraRuns, Is.Zero, "a run and its job are written together");
            Assert.That(report.WrongOutputs, Is.Zero, "every run's output is the value chain of its seed");
            Assert.That(report.Steps, Is.EqualTo(settings.Runs * ReliabilityWorkflow.StepCount));
        }
    }
}
