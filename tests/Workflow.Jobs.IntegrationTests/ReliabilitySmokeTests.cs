using Workflow.Jobs.Reliability;

namespace Workflow.Jobs.IntegrationTests;

/// <summary>
/// The short version of <c>deploy/reliability.sh</c>: a few dozen runs on two separate
/// worker processes, one of them killed with SIGKILL mid-run, no database restart (the test server is
/// shared). A quarter of the runs sleep durably (1–2 s) and a quarter wait for an event that this test's
/// process signals. The full suite and its figures: docs/reliability.md.
/// </summary>
public class ReliabilitySmokeTests
{
    [Test]
    public async Task ShortRun_LosesNoRun_ChecksNothingTwice_NeverOverlaps_AndConsumesEachEventOnce_WhenAWorkerProcessIsKilledAmongWaitingRuns()
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
            SleepPercent = 25,
            EventPercent = 25,
            MaxSleepMilliseconds = 2000,
            MaxSignalDelayMilliseconds = 3000,
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
            Assert.That(report.SleepingRuns, Is.Positive, "some runs slept");
            Assert.That(report.EventRuns, Is.Positive, "some runs waited for an event");
            Assert.That(report.ParkedWaits, Is.Positive, "some waits parked their run");
            Assert.That(report.EarlyWakes, Is.Zero, "no sleeping step ran before its sleep ended");
            Assert.That(report.EventsSent, Is.EqualTo(report.EventRuns), "one event sent per waiting run");
            Assert.That(report.EventsStored, Is.EqualTo(report.EventsSent), "each event stored once");
            Assert.That(report.EventsConsumed, Is.EqualTo(report.EventsSent), "every event consumed");
            Assert.That(report.DoubleConsumedEvents, Is.Zero, "double_consumed_events");
            Assert.That(report.WrongEvents + report.EventRunsWithoutEvent, Is.Zero, "each wait got its own run's event");
            Assert.That(report.Passed, Is.True, "the suite's verdict");
        }
    }
}
