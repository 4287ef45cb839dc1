using System.Net;
using System.Net.Sockets;
using Hangfire;
using Hangfire.PostgreSql;
using Hangfire.PostgreSql.Factories;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Npgsql;

namespace Workflow.Jobs.Dashboard.Tests;

/// <summary>
/// A host whose workflow database cannot be reached (its connection string points at a closed port; Hangfire's own
/// storage is on a real database, so only the Workflows pages are affected): the pages answer a clear 503.
/// </summary>
[TestFixture]
[Parallelizable(ParallelScope.Self)]
public sealed class WorkflowDashboardUnavailableTests
{
    private readonly CapturingLoggerProvider _logs = new();
    private DashboardTestHost _host = null!;

    [OneTimeSetUp]
    public async Task StartAsync()
    {
        var hangfireDatabase = await DashboardDatabase.CreateAsync("unavailable-hangfire");
        var closedPort = new NpgsqlConnectionStringBuilder(DashboardDatabase.ServerConnectionString)
        {
            Host = "127.0.0.1",
            Port = ClosedPort(),
            Database = "workflow_jobs_unreachable",
            Timeout = 3,
        }.ConnectionString;
        _host = await DashboardTestHost.StartAsync("unavailable", runServer: false, logs: _logs,
            workflowConnectionString: closedPort,
            configureWorkflows: o => o.ApplyMigrationsOnStartup = false,
            configureBuilder: b => b.Services.Replace(ServiceDescriptor.Singleton<JobStorage>(_ =>
            {
                var options = new PostgreSqlStorageOptions { PrepareSchemaIfNecessary = true };
                return new PostgreSqlStorage(new NpgsqlConnectionFactory(hangfireDatabase, options), options);
            })));
    }

    [OneTimeTearDown]
    public async Task StopAsync() => await _host.DisposeAsync();

    [TestCase("/hangfire/workflows")]
    [TestCase("/hangfire/workflows?status=Failed&name=dashboard-hello")]
    [TestCase("/hangfire/workflows/9b0c8a55-2f4e-4d0e-9d51-1f1a4a2b6c7d")]
    public async Task Page_Answers503WithClearPage_WhenDatabaseIsUnavailable(string path)
    {
        using var client = _host.CreateClient();

        var (status, body, response) = await client.GetAsync(path);

        Assert.Multiple(() =>
        {
            Assert.That(status, Is.EqualTo(HttpStatusCode.ServiceUnavailable));
            Assert.That(response.Headers.RetryAfter?.Delta, Is.EqualTo(TimeSpan.FromSeconds(5)));
            Assert.That(body, Does.Contain("<title>Database unavailable</title>").And.Contain("cannot be reached"));
            Assert.That(body, Does.Not.Contain("Exception").And.Not.Contain("127.0.0.1").And.Not.Contain("   at "), "no stack trace, no connection details");
        });
        Assert.That(_logs.Entries.Where(e => e.EventId.Id == 311), Is.Not.Empty, "the outage is logged");
    }

    [Test]
    public async Task Command_Answers503AndChangesNothing_WhenDatabaseIsUnavailable()
    {
        using var client = _host.CreateClient();
        await client.GetAsync("/hangfire/recurring"); // a page of Hangfire's own: the antiforgery token

        var (status, body) = await client.PostAsync("/hangfire/workflows/9b0c8a55-2f4e-4d0e-9d51-1f1a4a2b6c7d/cancel");

        Assert.That(status, Is.EqualTo(HttpStatusCode.ServiceUnavailable));
        Assert.That(body, Does.Contain("database is unavailable"));
    }

    /// <summary>A port nothing listens on: bound by the system, then released.</summary>
    private static int ClosedPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }
}
