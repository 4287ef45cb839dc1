using Hangfire;
using Hangfire.PostgreSql;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Newtonsoft.Json.Linq;
using Npgsql;
using Workflow.Jobs.Hangfire;

namespace Workflow.Jobs.IntegrationTests;

/// <summary>
/// <see cref="WorkflowHangfireOptions.WakeWorkersOnEnqueue"/> on a real server: the server's fallback poll is set to
/// ten minutes, so a run that starts within the deadline was started by the wake-up, never by the poll.
/// </summary>
public class QueueWakeUpTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan NoPoll = TimeSpan.FromMinutes(10);
    private const string ListingQueue = "wakeup_listing";
    private string _connectionString = null!;
    private IHost _server = null!;
    private IHost _web = null!;
    private IWorkflowClient _client = null!;

    [OneTimeSetUp]
    public async Task StartAsync()
    {
        _connectionString = await TestDatabases.CreateAsync("wakeup");
        _server = await TestHosts.StartHangfireHostAsync(_connectionString, o => o.QueuePollInterval = NoPoll);
        // Another host without a server: every run below is enqueued from it, as from another process.
        _web = await TestHosts.StartHangfireHostAsync(_connectionString, o =>
        {
            o.RunServer = false;
            o.QueuePollInterval = NoPoll;
            // A queue of the wake-up's that no server takes, for the dashboard listing test.
            o.Queues = ["default", ListingQueue];
        });
        _client = _web.Services.GetRequiredService<IWorkflowClient>();
        var wakeUp = WakeUp(_server);
        await Eventually.UntilAsync(() => Task.FromResult(wakeUp.Listening), Deadline, "the server's wake-up to listen");
    }

    [OneTimeTearDown]
    public async Task StopAsync()
    {
        await _web.StopAsync();
        _web.Dispose();
        await _server.StopAsync();
        _server.Dispose();
    }

    private static NotifyingJobQueueProvider WakeUp(IHost host)
        => host.Services.GetRequiredService<LibraryJobStorage>().WakeUp ?? throw new InvalidOperationException("The storage has no wake-up.");

    private static WorkflowInput Add(int a, int b) => new(new AddInput { Argument1 = a, Argument2 = b });

    private async Task WaitForSuccessAsync(Guid id)
        => await Eventually.UntilAsync(async () => (await _client.GetAsync(id))?.Status == WorkflowStatus.Succeeded, Deadline, $"run {id} to succeed");

    [Test]
    public async Task EnqueueAsync_StartsTheRunWithoutWaitingForThePoll_WhenEnqueuedFromAnotherHost()
    {
        var ids = new List<Guid>();
        for (var i = 0; i < 5; i++)
        {
            ids.Add(await _client.EnqueueAsync<AddWorkflow>(Add(i, 1)));
        }

        foreach (var id in ids)
        {
            await WaitForSuccessAsync(id);
        }

        Assert.That(WakeUp(_server).Notifications, Is.GreaterThanOrEqualTo(1));
    }

    [Test]
    public async Task EnqueueManyAsync_StartsEveryRunOfTheBatch_WhenOneNotificationWakesOneWorker()
    {
        // One transaction, one queue: PostgreSQL delivers one notification, which wakes one worker; the others are
        // woken by the signals each worker hands on when it returns with a job.
        var items = Enumerable.Range(0, 30).Select(i => new WorkflowEnqueueItem(
            JObject.Parse($"{{\"test_step_input\":{{\"argument_1\":{i},\"argument_2\":1}}}}"))).ToList();
        var ids = await _client.EnqueueManyAsync("add", items);

        foreach (var id in ids)
        {
            await WaitForSuccessAsync(id);
        }
    }

    [Test]
    public async Task EnqueueAsync_StartsTheRun_WhenTheListeningConnectionWasTerminated()
    {
        var wakeUp = WakeUp(_server);
        await using (var connection = new NpgsqlConnection(_connectionString))
        {
            await connection.OpenAsync();
            await using var terminate = new NpgsqlCommand(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = current_database() AND query = @listen", connection);
            terminate.Parameters.AddWithValue("listen", "LISTEN " + wakeUp.Channel);
            Assert.That(await terminate.ExecuteScalarAsync(), Is.EqualTo(1L), "the server's LISTEN connection (a host without a server never listens)");
        }

        // Enqueued at once, maybe while the server is not listening: reopening the connection wakes every waiting worker.
        var id = await _client.EnqueueAsync<AddWorkflow>(Add(20, 22));
        await WaitForSuccessAsync(id);
        await Eventually.UntilAsync(() => Task.FromResult(wakeUp.Listening), Deadline, "the wake-up to listen again");
        var after = await _client.EnqueueAsync<AddWorkflow>(Add(1, 2));
        await WaitForSuccessAsync(after);
    }

    [Test]
    public void MonitoringApi_ListsEachQueueOnce_WhenTheWakeUpOwnsTheQueue()
    {
        var storage = (PostgreSqlStorage)_web.Services.GetRequiredService<JobStorage>();
        Assert.That(storage.QueueProviders.GetProvider(ListingQueue), Is.InstanceOf<NotifyingJobQueueProvider>());
        using (var connection = storage.GetConnection())
        using (var transaction = connection.CreateWriteTransaction())
        {
            // A queue row that stays: no server takes this queue.
            transaction.AddToQueue(ListingQueue, "0");
            transaction.Commit();
        }

        var queues = storage.GetMonitoringApi().Queues().Select(q => q.Name).ToList();
        Assert.That(queues.Count(q => q == ListingQueue), Is.EqualTo(1), string.Join(", ", queues));
    }
}
