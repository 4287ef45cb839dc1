using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace Workflow.Jobs.IntegrationTests;

/// <summary>Calls made while the workflow database cannot be reached fail with one documented, retryable exception.</summary>
public class StorageOutageTests
{
    private ServiceProvider _services = null!;

    [OneTimeSetUp]
    public void SetUp()
    {
        // A port nothing listens on: every connection attempt is refused at once.
        var unreachable = new NpgsqlConnectionStringBuilder(TestDatabases.ServerConnectionString) { Port = 1, Timeout = 2 }.ConnectionString;
        var services = new ServiceCollection();
        services.AddSingleton<ILoggerFactory>(NullLoggerFactory.Instance);
        services.AddSingleton<ExecutionLog>();
        services.AddWorkflowJobs(o => o.UseNpgsql(unreachable)).AddWorkflow<AddWorkflow>();
        _services = services.BuildServiceProvider();
    }

    [OneTimeTearDown]
    public void TearDown() => _services.Dispose();

    [Test]
    public void CreateAsync_ThrowsStorageUnavailable_WhenTheDatabaseIsUnreachable()
    {
        var runner = _services.GetRequiredService<IWorkflowRunner>();

        var ex = Assert.ThrowsAsync<WorkflowStorageUnavailableException>(() => runner.CreateAsync<AddWorkflow>(new WorkflowInput(new AddInput())));

        Assert.That(ex!.Code, Is.EqualTo(UnitOfWorkException.StorageUnavailableCode));
        Assert.That(ex.InnerException, Is.InstanceOf<NpgsqlException>());
        Assert.That(ex.Message, Does.Contain("unavailable"));
    }

    [Test]
    public void CancelAsync_ThrowsStorageUnavailable_WhenTheDatabaseIsUnreachable()
    {
        var client = _services.GetRequiredService<IWorkflowClient>();

        var ex = Assert.ThrowsAsync<WorkflowStorageUnavailableException>(() => client.CancelAsync(Guid.NewGuid()));

        Assert.That(ex!.Code, Is.EqualTo(UnitOfWorkException.StorageUnavailableCode));
    }

    [Test]
    public void SignalAsync_ThrowsStorageUnavailable_WhenTheDatabaseIsUnreachable()
    {
        var client = _services.GetRequiredService<IWorkflowClient>();

        var ex = Assert.ThrowsAsync<WorkflowStorageUnavailableException>(() => client.SignalAsync(Guid.NewGuid(), "approved", new Newtonsoft.Json.Linq.JObject()));

        Assert.That(ex!.Code, Is.EqualTo(UnitOfWorkException.StorageUnavailableCode));
        Assert.That(ex.InnerException, Is.InstanceOf<NpgsqlException>());
    }
}
