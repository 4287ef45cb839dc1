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
        using var telemetry = new NpgsqlTelemetryCapture();
        var logs = new CapturedLogs();

        using (var host = await TestHosts.StartEngineHostAsync(withPassword.ConnectionString, services => services.AddSingleton(CaptureEverything(logs))))
        {
            var runner = host.Services.GetRequiredService<IWorkflowRunner>();
            var id = await runner.CreateAsync<AddThenSquareWorkflow>(new WorkflowInput(new AddInput { Argument1 = 2, Argument2 = 3 }, new SquareInput { Offset = 1 }));
            await runner.ExecuteAsync(id);
            telemetry.RecordObservableInstruments();
            await host.StopAsync();
        }

        // Other fixtures' connections are recorded too: look for this database and this password only.
        var tags = telemetry.MetricTags.Select(t => (Where: "metric " + t.Instrument, t.Key, t.Value))
            .Concat(telemetry.Spans.SelectMany(span => span.Select(tag => (Where: "span", tag.Key, tag.Value))))
            .ToList();
        var leaks = tags.Where(t => t.Value.Contains(password, StringComparison.Ordinal)
                                    || t.Value.Contains($"Database={database}", StringComparison.OrdinalIgnoreCase)).ToList();
        var logLeaks = logs.Entries.Where(e => e.Text.Contains(password, StringComparison.Ordinal)
                                               || e.Text.Contains("Host=", StringComparison.OrdinalIgnoreCase)).ToList();
        var ours = telemetry.Spans.Where(span => span.GetValueOrDefault("db.namespace") == database).ToList();
        Assert.Multiple(() =>
        {
            Assert.That(leaks, Is.Empty, "tags that carry the password or a connection string naming the database");
            Assert.That(logLeaks, Is.Empty, "log entries that carry the password or a connection string");
            Assert.That(ours, Is.Not.Empty, "the library's commands were traced");
            Assert.That(ours.Select(span => span.GetValueOrDefault("db.npgsql.data_source")), Has.All.EqualTo("Workflow.Jobs"),
                "the spans name the library's data source by its name");
            Assert.That(telemetry.PoolNames, Does.Contain("Workflow.Jobs"), "the library's pool reported metrics under its name");
        });
    }

    /// <summary>A logger factory of the host that sends every level of every category to <paramref name="logs"/>.</summary>
    private static ILoggerFactory CaptureEverything(CapturedLogs logs)
        => LoggerFactory.Create(builder => builder.SetMinimumLevel(LogLevel.Trace).AddProvider(logs));
}
