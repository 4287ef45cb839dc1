using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace Workflow.Jobs.Sample.Tests;

/// <summary>The sample host's first start on a database it creates itself: what its logs and Npgsql's metrics and traces show.</summary>
/// <remarks>
/// Not run beside other fixtures: its Npgsql listener is process-wide and records every Npgsql span, so while it listens
/// the sampler of another fixture's host no longer decides which of that host's spans are recorded (the telemetry test
/// then saw Hangfire's unparented polling spans exported).
/// </remarks>
[NonParallelizable]
public class SampleDiagnosticsTests
{
    [Test]
    public async Task FirstStart_NamesNoConnectionStringInNpgsqlTelemetry_AndLogsNoError_WhenItCreatesTheDatabase()
    {
        var connectionString = TestDatabases.NewConnectionString("sample-first-start");
        var database = new NpgsqlConnectionStringBuilder(connectionString).Database!;
        var namingTheDatabase = $"Database={database}";
        using var telemetry = new NpgsqlTelemetryCapture();
        var logs = new CapturedLogs();

        await using (var host = await SampleHost.StartOnAsync(connectionString, services: s => s.AddSingleton<ILoggerProvider>(logs)))
        {
            using var client = host.CreateClient();
            using var health = await client.GetAsync("/health");
            Assert.That(health.IsSuccessStatusCode, Is.True, "the sample created and migrated its database");
            telemetry.RecordObservableInstruments();
        }

        // Hangfire's log provider is process-wide (the last host started supplies it), so Hangfire entries may
        // come from other fixtures' hosts; every other category is this host's own.
        var errors = logs.Entries.Where(e => e.Level >= LogLevel.Error && !e.Category.StartsWith("Hangfire", StringComparison.Ordinal));
        Assert.Multiple(() =>
        {
            Assert.That(telemetry.PoolNames.Where(name => name.Contains(namingTheDatabase, StringComparison.OrdinalIgnoreCase)), Is.Empty,
                "pools named by a connection string naming the sample's database");
            Assert.That(telemetry.Spans.SelectMany(span => span.Values).Where(value => value.Contains(namingTheDatabase, StringComparison.OrdinalIgnoreCase)),
                Is.Empty, "span tags with a connection string naming the sample's database");
            Assert.That(telemetry.PoolNames, Does.Contain("Workflow.Jobs"), "the library's pool reported metrics under its name");
            Assert.That(errors, Is.Empty);
        });
    }
}
