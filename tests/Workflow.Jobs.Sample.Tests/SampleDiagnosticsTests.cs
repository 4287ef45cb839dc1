using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace Workflow.Jobs.Sample.Tests;

/// <summary>The sample host's first start on a database it creates itself: what its logs and Npgsql's metrics show.</summary>
public class SampleDiagnosticsTests
{
    [Test]
    public async Task FirstStart_NamesNoConnectionStringInNpgsqlMetrics_AndLogsNoError_WhenItCreatesTheDatabase()
    {
        var connectionString = TestDatabases.NewConnectionString("sample-first-start");
        var database = new NpgsqlConnectionStringBuilder(connectionString).Database!;
        var poolNames = new ConcurrentQueue<string>();
        using var meters = new MeterListener();
        meters.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == "Npgsql")
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        meters.SetMeasurementEventCallback<int>((_, _, tags, _) => RecordPoolName(poolNames, tags));
        meters.SetMeasurementEventCallback<long>((_, _, tags, _) => RecordPoolName(poolNames, tags));
        meters.SetMeasurementEventCallback<double>((_, _, tags, _) => RecordPoolName(poolNames, tags));
        meters.Start();
        var logs = new CapturedLogs();

        await using (var host = await SampleHost.StartOnAsync(connectionString, services: s => s.AddSingleton<ILoggerProvider>(logs)))
        {
            using var client = host.CreateClient();
            using var health = await client.GetAsync("/health");
            Assert.That(health.IsSuccessStatusCode, Is.True, "the sample created and migrated its database");
            meters.RecordObservableInstruments();
        }

        // Hangfire's log provider is process-wide (the last host started supplies it), so Hangfire entries may
        // come from other fixtures' hosts; every other category is this host's own.
        var errors = logs.Entries.Where(e => e.Level >= LogLevel.Error && !e.Category.StartsWith("Hangfire", StringComparison.Ordinal));
        Assert.Multiple(() =>
        {
            Assert.That(poolNames.Where(name => name.Contains(database, StringComparison.Ordinal)), Is.Empty,
                "pools named by a connection string naming the sample's database");
            Assert.That(poolNames, Does.Contain("Workflow.Jobs"), "the library's pool reported metrics under its name");
            Assert.That(errors, Is.Empty);
        });
    }

    private static void RecordPoolName(ConcurrentQueue<string> poolNames, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        foreach (var (key, value) in tags)
        {
            if (key == "db.client.connection.pool.name" && value is string name)
            {
                poolNames.Enqueue(name);
            }
        }
    }
}
