using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Npgsql;

namespace Workflow.Jobs.IntegrationTests;

/// <summary>
/// Flow control on real PostgreSQL with three Hangfire servers (hosts) on one database: the limits hold across servers,
/// runs wait in creation order per key without holding a worker, and a slot held by a dead connection frees.
/// </summary>
public class FlowControlTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(90);
    private readonly ConcurrencyProbe _probe = new();
    private readonly Gates _gates = new();
    private readonly List<IHost> _hosts = [];
    private string _connectionString = null!;
    private IWorkflowClient _client = null!;

    [OneTimeSetUp]
    public async Task OneTimeSetUpAsync()
    {
        _connectionString = await TestDatabases.CreateAsync(nameof(FlowControlTests));
        for (var i = 0; i < 3; i++)
        {
            _hosts.Add(await TestHosts.StartFlowHostAsync(_connectionString, _probe, _gates));
        }

        _client = _hosts[0].Services.GetRequiredService<IWorkflowClient>();
    }

    [OneTimeTearDown]
    public async Task OneTimeTearDownAsync()
    {
        foreach (var host in _hosts)
        {
            await host.StopAsync();
            host.Dispose();
        }
    }

    private static ProbeInput Probe(string group, int workMs = 0, string gate = "") => new() { Group = group, WorkMs = workMs, Gate = gate };

    private Task<Guid> EnqueueAsync<TWorkflow>(ProbeInput input, string? key) where TWorkflow : WorkflowDefinition
        => _client.EnqueueAsync<TWorkflow>(new WorkflowInput(input), new EnqueueOptions { ConcurrencyKey = key });

    private async Task WaitForAllAsync(IEnumerable<Guid> ids, WorkflowStatus status)
    {
        foreach (var id in ids)
        {
            WorkflowRun? run = null;
            await Eventually.UntilAsync(async () => (run = await _client.GetAsync(id))?.Status == status, Deadline,
                () => $"run {id} to be {status} (is {run?.Status}, waiting for {run?.WaitingFor}: {run?.ExceptionMessage})");
        }
    }

    private async Task WaitForSlotWaitersAsync(string key, int count)
        => await Eventually.UntilAsync(async () =>
            (await _client.ListAsync(new WorkflowQuery { ConcurrencyKey = key, Status = WorkflowStatus.Waiting })).Count(r => r.WaitingFor == "concurrency") == count,
            Deadline, $"{count} runs of key {key} to wait for a slot");

    [Test]
    public async Task MaxConcurrencyPerKey_IsNeverExceeded_WhenRunsOfOneKeyRunOnThreeServers()
    {
        var group = Guid.NewGuid().ToString("N");
        var key = "customer-" + group;
        var other = "other-" + group;
        var ids = new List<Guid>();
        for (var i = 0; i < 12; i++)
        {
            ids.Add(await EnqueueAsync<TwoPerKeyWorkflow>(Probe(group, workMs: 300), key));
        }

        var others = new List<Guid>();
        for (var i = 0; i < 4; i++)
        {
            others.Add(await EnqueueAsync<TwoPerKeyWorkflow>(Probe(group + "-other", workMs: 300), other));
        }

        var waiting = (await _client.ListAsync(new WorkflowQuery { ConcurrencyKey = key })).Where(r => r.WaitingFor == "concurrency").ToList();
        await WaitForAllAsync(ids.Concat(others), WorkflowStatus.Succeeded);

        Assert.That(_probe.Max(group), Is.EqualTo(2), "at most two runs of the key executed at once, and two did");
        Assert.That(_probe.Max(group + "-other"), Is.LessThanOrEqualTo(2));
        Assert.That(_probe.Started(group), Has.Count.EqualTo(12), "each run's step ran once");
        var runs = await Task.WhenAll(ids.Select(id => _client.GetAsync(id)));
        Assert.Multiple(() =>
        {
            Assert.That(runs.Select(r => r!.ConcurrencyKey), Is.All.EqualTo(key), "the key is stored and returned");
            Assert.That(runs.Select(r => r!.Attempts), Is.All.EqualTo(1), "waiting for a slot counts no attempt");
            Assert.That(runs.Select(r => r!.WaitingFor), Is.All.Null);
        });
        Assert.That(waiting, Is.Not.Empty, "runs beyond the limit waited (status Waiting, waiting for concurrency) instead of running");
        Assert.That(waiting.Select(r => r.Status), Is.All.AnyOf(WorkflowStatus.Waiting, WorkflowStatus.Pending));
    }

    [Test]
    public async Task MaxConcurrency_IsNeverExceeded_WhenRunsOfManyKeysRunOnThreeServers()
    {
        var group = Guid.NewGuid().ToString("N");
        var ids = new List<Guid>();
        for (var i = 0; i < 10; i++)
        {
            ids.Add(await EnqueueAsync<ThreeAtOnceWorkflow>(Probe(group, workMs: 300), $"{group}-{i % 5}"));
        }

        await WaitForAllAsync(ids, WorkflowStatus.Succeeded);

        Assert.That(_probe.Max(group), Is.EqualTo(3), "at most three runs of the workflow executed at once, and three did");
        Assert.That(_probe.Started(group), Has.Count.EqualTo(10));
    }

    [Test]
    public async Task MaxConcurrencyPerKey_StartsRunsInCreationOrder_WhenNewRunsArriveWhileOthersWait()
    {
        var group = Guid.NewGuid().ToString("N");
        var key = "fifo-" + group;
        var gate = group + "-first";
        var first = await EnqueueAsync<OnePerKeyWorkflow>(Probe(group, gate: gate), key);
        await _gates.Entered(gate).Task.WaitAsync(Deadline);
        var queued = new List<Guid>();
        for (var i = 0; i < 4; i++)
        {
            queued.Add(await EnqueueAsync<OnePerKeyWorkflow>(Probe(group, workMs: 50), key));
        }

        await WaitForSlotWaitersAsync(key, 4);

        // The slot frees while new runs of the key keep arriving: none of them may pass the ones already waiting.
        _gates.Open(gate);
        var late = new List<Guid>();
        for (var i = 0; i < 4; i++)
        {
            late.Add(await EnqueueAsync<OnePerKeyWorkflow>(Probe(group, workMs: 50), key));
        }

        var all = new[] { first }.Concat(queued).Concat(late).ToList();
        await WaitForAllAsync(all, WorkflowStatus.Succeeded);

        Assert.That(_probe.Started(group), Is.EqualTo(all), "runs of one key started in creation order (first in, first out)");
        Assert.That(_probe.Max(group), Is.EqualTo(1));
    }

    [Test]
    public async Task MaxConcurrencyPerKey_StartsTheNextRun_WhenTheSlotHoldersConnectionDies()
    {
        var group = Guid.NewGuid().ToString("N");
        var key = "killed-" + group;
        var gate = group + "-holder";
        var holder = await EnqueueAsync<OnePerKeyWorkflow>(Probe(group, gate: gate), key);
        await _gates.Entered(gate).Task.WaitAsync(Deadline);
        var next = await EnqueueAsync<OnePerKeyWorkflow>(Probe(group + "-next"), key);
        await WaitForSlotWaitersAsync(key, 1);

        // The holder's guard connection (which holds its slot) dies, as with a killed process: no lease to expire.
        Assert.That(await TerminateGuardConnectionsAsync(), Is.GreaterThan(0));

        await WaitForAllAsync([next], WorkflowStatus.Succeeded);
        Assert.That(_probe.Started(group + "-next"), Is.EqualTo(new[] { next }));

        // The holder is resumed (its execution's loss is not a failure) and finishes once its gate opens.
        _gates.Open(gate);
        await WaitForAllAsync([holder], WorkflowStatus.Succeeded);
    }

    [Test]
    public void EnqueueAsync_RejectsTheConcurrencyKey_WhenItIsBlankOrTooLong()
    {
        foreach (var key in new[] { " ", new string('k', 201), "a\0b" })
        {
            var ex = Assert.ThrowsAsync<WorkflowDataValidationException>(() => EnqueueAsync<OnePerKeyWorkflow>(Probe("rejected"), key));
            Assert.That(ex!.Errors.Select(e => e.Path), Is.EqualTo(new[] { "concurrency_key" }));
        }
    }

    private async Task<long> TerminateGuardConnectionsAsync()
    {
        await using var connection = new NpgsqlConnection(_connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(
            """
            SELECT count(pg_terminate_backend(p.pid)) FROM (
                SELECT DISTINCT l.pid FROM pg_locks l
                WHERE l.locktype = 'advisory' AND l.granted AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                  AND l.objsubid = 1 -- the runs' guards and slots (one bigint key), not the leader loop's lock (two int keys)
            ) p
            """, connection);
        return (long)(await command.ExecuteScalarAsync())!;
    }
}
