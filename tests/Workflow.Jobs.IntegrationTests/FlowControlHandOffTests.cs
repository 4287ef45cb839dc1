using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Workflow.Jobs.IntegrationTests;

/// <summary>
/// The hand-off of freed flow-control slots on real PostgreSQL and a real Hangfire server: an execution that gives its slot
/// back offers it to the oldest queued run itself. The database has no leader loop at all, so nothing else could wake a
/// run waiting for a slot.
/// </summary>
public class FlowControlHandOffTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(90);
    private readonly ConcurrencyProbe _probe = new();
    private readonly Gates _gates = new();
    private IHost _host = null!;
    private IWorkflowClient _client = null!;

    [OneTimeSetUp]
    public async Task OneTimeSetUpAsync()
    {
        var connectionString = await TestDatabases.CreateAsync(nameof(FlowControlHandOffTests));
        _host = await TestHosts.StartFlowHostAsync(connectionString, _probe, _gates, o => o.RunLeaderLoop = false);
        _client = _host.Services.GetRequiredService<IWorkflowClient>();
    }

    [OneTimeTearDown]
    public async Task OneTimeTearDownAsync()
    {
        await _host.StopAsync();
        _host.Dispose();
    }

    [Test]
    public async Task QueuedRuns_StartOneAfterAnotherInCreationOrder_WhenEachExecutionHandsItsSlotOn()
    {
        var group = Guid.NewGuid().ToString("N");
        var key = "hand-off-" + group;
        var gate = group + "-first";
        var options = new EnqueueOptions { ConcurrencyKey = key };
        var first = await _client.EnqueueAsync<OnePerKeyWorkflow>(new WorkflowInput(new ProbeInput { Group = group, Gate = gate }), options);
        await _gates.Entered(gate).Task.WaitAsync(Deadline);
        var queued = new List<Guid>();
        for (var i = 0; i < 4; i++)
        {
            queued.Add(await _client.EnqueueAsync<OnePerKeyWorkflow>(new WorkflowInput(new ProbeInput { Group = group, WorkMs = 20 }), options));
        }

        await Eventually.UntilAsync(async () =>
            (await _client.ListAsync(new WorkflowQuery { ConcurrencyKey = key, Status = WorkflowStatus.Waiting })).Count(r => r.WaitingFor == "concurrency") == 4,
            Deadline, "the four later runs to wait for the key's slot");

        _gates.Open(gate);
        var all = new[] { first }.Concat(queued).ToList();
        foreach (var id in all)
        {
            WorkflowRun? run = null;
            await Eventually.UntilAsync(async () => (run = await _client.GetAsync(id))?.Status == WorkflowStatus.Succeeded, Deadline,
                () => $"run {id} to succeed (is {run?.Status}, waiting for {run?.WaitingFor})");
        }

        Assert.That(_probe.Started(group), Is.EqualTo(all), "each run started once, in creation order");
        Assert.That(_probe.Max(group), Is.EqualTo(1), "never two runs of the key at once");
        var runs = await Task.WhenAll(all.Select(id => _client.GetAsync(id)));
        Assert.That(runs.Select(r => r!.Attempts), Is.All.EqualTo(1), "waiting for a slot counts no attempt");
    }
}
