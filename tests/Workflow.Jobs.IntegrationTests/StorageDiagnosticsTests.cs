using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace Workflow.Jobs.IntegrationTests;

/// <summary>
/// What the storage tells the outside world: the logs of a first start on a fresh database, and Npgsql's
/// metrics and traces of the library's data source, which must never carry the connection string.
/// </summary>
public class StorageDiagnosticsTests
{
    [Test]
    public async Task FirstStart_LogsNoError_WhenTheDatabaseIsFresh()
    {
        var connectionString = await TestDatabases.CreateAsync("diag-first-start");
        var logs = new CapturedLogs();

        using (var host = await TestHosts.StartEngineHostAsync(connectionString, services => services.AddSingleton(CaptureEverything(logs))))
        {
            await host.StopAsync();
        }

        var entries = logs.Entries;
        Assert.Multiple(() =>
        {
            Assert.That(entries.Where(e => e.Level >= LogLevel.Error), Is.Empty);
            Assert.That(entries.Where(e => e.Category.StartsWith("Microsoft.EntityFrameworkCore.Migrations", StringComparison.Ordinal)
                                           && e.Text.Contains("Applying migration", StringComparison.Ordinal)), Is.Not.Empty,
                "the host migrated the fresh database, and its logs were captured");
        });
    }

    [Test]
    public async Task FirstStart_LogsNoError_WhenSeveralHostsStartTogetherOnAFreshDatabase()
    {
        var connectionString = await TestDatabases.CreateAsync("diag-together");
        var logs = new CapturedLogs();

        var hosts = await Task.WhenAll(Enumerable.Range(0, 3).Select(_ =>
            TestHosts.StartEngineHostAsync(connectionString, services => services.AddSingleton(CaptureEverything(logs)))));
        try
        {
            var id = await hosts[2].Services.GetRequiredService<IWorkflowRunner>().CreateAsync<AddWorkflow>(new WorkflowInput(new AddInput { Argument1 = 1 }));
            Assert.That(id, Is.Not.EqualTo(Guid.Empty), "the database is migrated");
        }
        finally
        {
            foreach (var host in hosts)
            {
                await host.StopAsync();
                host.Dispose();
            }
        }

        Assert.That(logs.Entries.Where(e => e.Level >= LogLevel.Error), Is.Empty);
    }

    [Test]
    public async Task NpgsqlMetricsTracesAndLogs_CarryNoConnectionString_WhenTheLibraryQueries()
    {
        var password = $"pw-{Guid.NewGuid():N}";
        var withPassword = new NpgsqlConnectionStringBuilder(await TestDatabases.CreateAsync("diag-telemetry")) { Password = password };
        var database = withPassword.Database!;
        var tags = new ConcurrentQueue<(string Source, string Key, string Value)>();
        using var meters = new MeterListener();
        meters.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == "Npgsql")
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        meters.SetMeasurementEventCallback<int>((instrument, _, measured, _) => Record(tags, instrument.Name, measured));
        meters.SetMeasurementEventCallback<long>((instrument, _, measured, _) => Record(tags, instrument.Name, measured));
        meters.SetMeasurementEventCallback<double>((instrument, _, measured, _) => Record(tags, instrument.Name, measured));
        var traced = new ConcurrentQueue<Dictionary<string, string>>();
        meters.Start();
        using var activities = new ActivityListener
        {
            ShouldListenTo = source => source.Name == "Npgsql",
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = activity =>
            {
                var span = activity.TagObjects.ToDictionary(t => t.Key, t => Text(t.Value));
                traced.Enqueue(span);
                foreach (var (key, value) in span)
                {
                    tags.Enqueue(("trace " + activity.DisplayName, key, value));
                }
            },
        };
        ActivitySource.AddActivityListener(activities);
        var logs = new CapturedLogs();

        using (var host = await TestHosts.StartEngineHostAsync(withPassword.ConnectionString, services => services.AddSingleton(CaptureEverything(logs))))
        {
            var runner = host.Services.GetRequiredService<IWorkflowRunner>();
            var id = await runner.CreateAsync<AddThenSquareWorkflow>(new WorkflowInput(new AddInput { Argument1 = 2, Argument2 = 3 }, new SquareInput { Offset = 1 }));
            await runner.ExecuteAsync(id);
            meters.RecordObservableInstruments();
            await host.StopAsync();
        }

        var seen = tags.ToList();
        var leaks = seen.Where(t => t.Value.Contains(password, StringComparison.Ordinal)
                                    || (t.Value.Contains(database, StringComparison.Ordinal) && t.Value != database)).ToList();
        var logLeaks = logs.Entries.Where(e => e.Text.Contains(password, StringComparison.Ordinal)
                                               || e.Text.Contains("Host=", StringComparison.OrdinalIgnoreCase)).ToList();
        Assert.Multiple(() =>
        {
            Assert.That(leaks, Is.Empty, "tags that carry the password or a connection string naming the database");
            Assert.That(logLeaks, Is.Empty, "log entries that carry the password or a connection string");
            var ours = traced.Where(span => span.GetValueOrDefault("db.namespace") == database).ToList();
            Assert.That(ours, Is.Not.Empty, "the library's commands were traced");
            Assert.That(ours.Select(span => span.GetValueOrDefault("db.npgsql.data_source")), Has.All.EqualTo("Workflow.Jobs"),
                "the spans name the library's data source by its name");
            Assert.That(seen.Where(t => t.Key == "db.client.connection.pool.name" && t.Value == "Workflow.Jobs"), Is.Not.Empty,
                "the library's pool reported metrics under its name");
        });
    }

    private static void Record(ConcurrentQueue<(string Source, string Key, string Value)> tags, string instrument,
        ReadOnlySpan<KeyValuePair<string, object?>> measured)
    {
        foreach (var (key, value) in measured)
        {
            tags.Enqueue(("metric " + instrument, key, Text(value)));
        }
    }

    private static string Text(object? value) => Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture) ?? "";

    /// <summary>A logger factory of the host that sends every level of every category to <paramref name="logs"/>.</summary>
    private static ILoggerFactory CaptureEverything(CapturedLogs logs)
        => LoggerFactory.Create(builder => builder.SetMinimumLevel(LogLevel.Trace).AddProvider(logs));
}
