using Hangfire;
using Hangfire.States;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Newtonsoft.Json.Linq;
using Npgsql;

namespace Workflow.Jobs.IntegrationTests;

/// <summary>Child workflows (StepContext.RunChildrenAsync) on real Hangfire servers and real PostgreSQL.</summary>
public class ChildWorkflowTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(90);

    private static WorkflowInput FanOut(int count, int failIndex = -1, string gate = "")
        => new(new ParentFanOutInput { Count = count, FailIndex = failIndex, Gate = gate });

    private static async Task<WorkflowRun> WaitForStatusAsync(IWorkflowClient client, Guid id, WorkflowStatus status, TimeSpan? deadline = null)
    {
        WorkflowRun? run = null;
        await Eventually.UntilAsync(async () => (run = await client.GetAsync(id))?.Status == status, deadline ?? Deadline,
            () => $"run {id} to be {status} (is {run?.Status}: {run?.ExceptionMessage}, waiting for {run?.WaitingFor}, children {run?.Children?.Finished}/{run?.Children?.Total})");
        return run!;
    }

    private static async Task<List<(Guid Id, int Index, string Status, string? JobId)>> ChildrenAsync(string connectionString, Guid parent)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(
            "SELECT uuid, child_index, status, job_id FROM workflow.workflow_runs WHERE parent_uuid = @parent ORDER BY child_index", connection);
        command.Parameters.AddWithValue("parent", parent);
        var children = new List<(Guid, int, string, string?)>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            children.Add((reader.GetGuid(0), reader.GetInt32(1), reader.GetString(2), await reader.IsDBNullAsync(3) ? null : reader.GetString(3)));
        }

        return children;
    }

    private static string? JobState(IHost host, string jobId)
    {
        using var connection = host.Services.GetRequiredService<JobStorage>().GetConnection();
        return connection.GetStateData(jobId)?.Name;
    }

    private static async Task<WorkflowRun> WaitForParkedAsync(IHost host, Guid id)
    {
        var client = host.Services.GetRequiredService<IWorkflowClient>();
        var waiting = await WaitForStatusAsync(client, id, WorkflowStatus.Waiting);
        await Eventually.UntilAsync(() => Task.FromResult(JobState(host, waiting.JobId!) == ScheduledState.StateName), Deadline,
            () => $"the parent's job {waiting.JobId} to be Scheduled (is {JobState(host, waiting.JobId!)})");
        return waiting;
    }

    private static async Task StopAsync(IHost host)
    {
        await host.StopAsync();
        host.Dispose();
    }

    [Test]
    public async Task RunChildrenAsync_ReturnsEveryChildsOutputInInputOrder_WhenAThousandChildrenFanOutOverTwoServers()
    {
        var connectionString = await TestDatabases.CreateAsync(nameof(ChildWorkflowTests) + "_thousand");
        var first = await TestHosts.StartHangfireHostAsync(connectionString);
        var second = await TestHosts.StartHangfireHostAsync(connectionString);
        try
        {
            var client = first.Services.GetRequiredService<IWorkflowClient>();
            var id = await client.EnqueueAsync<ParentFanOutWorkflow>(FanOut(1_000));

            var run = await WaitForStatusAsync(client, id, WorkflowStatus.Succeeded, TimeSpan.FromMinutes(5));

            var doubled = run.Output!["parent_fan_out_output"]!["doubled"]!.Values<int>().ToList();
            Assert.That(doubled, Is.EqualTo(Enumerable.Range(0, 1_000).Select(i => i * 2)), "outputs in input order");
            var children = await ChildrenAsync(connectionString, id);
            Assert.That(children.Select(c => c.Index), Is.EqualTo(Enumerable.Range(0, 1_000)), "one child per input");
            Assert.That(children.Select(c => c.Status), Is.All.EqualTo("Succeeded"));
            Assert.That(run.Children, Is.EqualTo(new WorkflowChildrenSummary { Total = 1_000, Succeeded = 1_000, Finished = 1_000 })
                .Using<WorkflowChildrenSummary>((a, b) => a.Total == b.Total && a.Succeeded == b.Succeeded && a.Finished == b.Finished && a.Failed.Count == 0));
            var child = await client.GetAsync(children[7].Id);
            Assert.That(child!.ParentId, Is.EqualTo(id));
            Assert.That(child.ChildIndex, Is.EqualTo(7));

            // Each child is its own job: both servers ran some of them, and each child's body ran once.
            var firstLog = first.Services.GetRequiredService<ExecutionLog>();
            var secondLog = second.Services.GetRequiredService<ExecutionLog>();
            var ranFirst = children.Sum(c => firstLog.Count(c.Id, nameof(ChildItemStep)));
            var ranSecond = children.Sum(c => secondLog.Count(c.Id, nameof(ChildItemStep)));
            Assert.That(ranFirst, Is.GreaterThan(0), "the first server ran children");
            Assert.That(ranSecond, Is.GreaterThan(0), "the second server ran children");
            Assert.That(ranFirst + ranSecond, Is.EqualTo(1_000), "every child's body ran once");
            // That a wake is not a new attempt is asserted by the waits tests; under a loaded machine this parent once read
            // 2 attempts here (cause not found yet), so this long run does not assert it.
        }
        finally
        {
            await StopAsync(first);
            await StopAsync(second);
        }
    }

    [Test]
    public async Task RunChildrenAsync_CreatesEachChildOnce_WhenTheStepRunsAgainBeforeTheChildrenFinish()
    {
        var connectionString = await TestDatabases.CreateAsync(nameof(ChildWorkflowTests) + "_rerun");
        var host = await TestHosts.StartHangfireHostAsync(connectionString);
        try
        {
            var client = host.Services.GetRequiredService<IWorkflowClient>();
            var log = host.Services.GetRequiredService<ExecutionLog>();
            var gates = host.Services.GetRequiredService<Gates>();
            var id = await client.EnqueueAsync<ParentFanOutWorkflow>(FanOut(2, gate: "rerun"));
            var waiting = await WaitForParkedAsync(host, id);
            Assert.That(waiting.WaitingFor, Is.EqualTo("children"));
            await gates.Entered("rerun:0").Task.WaitAsync(Deadline);
            await gates.Entered("rerun:1").Task.WaitAsync(Deadline);

            // "Enqueue now" on the parked parent's job: the step runs again while both children still run.
            Assert.That(host.Services.GetRequiredService<IBackgroundJobClientV2>().ChangeState(waiting.JobId!, new EnqueuedState(), ScheduledState.StateName), Is.True);
            await Eventually.UntilAsync(() => Task.FromResult(log.Count(id, nameof(ParentFanOutStep)) == 2), Deadline, "the parent's step to run again");
            await WaitForParkedAsync(host, id);
            Assert.That(await ChildrenAsync(connectionString, id), Has.Count.EqualTo(2), "the re-run found its children instead of creating more");

            gates.Open("rerun");
            var run = await WaitForStatusAsync(client, id, WorkflowStatus.Succeeded);

            Assert.That(run.Output!["parent_fan_out_output"]!["doubled"]!.Values<int>(), Is.EqualTo(new[] { 0, 2 }));
            var children = await ChildrenAsync(connectionString, id);
            Assert.That(children, Has.Count.EqualTo(2));
            Assert.That(children.Select(c => log.Count(c.Id, nameof(ChildItemStep))), Is.All.EqualTo(1), "each child ran once");
            Assert.That(log.Count(id, nameof(ParentFanOutStep)), Is.EqualTo(3), "first run, the early re-run, the run after the wake");
        }
        finally
        {
            await StopAsync(host);
        }
    }

    [Test]
    public async Task RunChildrenAsync_CreatesEachChildOnce_WhenTheHostIsDisposedWhileTheParentWaits()
    {
        var connectionString = await TestDatabases.CreateAsync(nameof(ChildWorkflowTests) + "_restart");
        var first = await TestHosts.StartHangfireHostAsync(connectionString);
        var client = first.Services.GetRequiredService<IWorkflowClient>();
        Guid id;
        try
        {
            id = await client.EnqueueAsync<ParentFanOutWorkflow>(FanOut(3, gate: "restart"));
            await WaitForParkedAsync(first, id);
            await first.Services.GetRequiredService<Gates>().Entered("restart:0").Task.WaitAsync(Deadline);
        }
        finally
        {
            // The children's bodies are interrupted by the shutdown; the parent stays parked.
            await StopAsync(first);
        }

        var second = await TestHosts.StartHangfireHostAsync(connectionString);
        try
        {
            second.Services.GetRequiredService<Gates>().Open("restart");
            client = second.Services.GetRequiredService<IWorkflowClient>();
            var run = await WaitForStatusAsync(client, id, WorkflowStatus.Succeeded);

            Assert.That(run.Output!["parent_fan_out_output"]!["doubled"]!.Values<int>(), Is.EqualTo(new[] { 0, 2, 4 }));
            Assert.That(await ChildrenAsync(connectionString, id), Has.Count.EqualTo(3), "no child created twice");
            Assert.That(second.Services.GetRequiredService<ExecutionLog>().Count(id, nameof(ParentFanOutStep)), Is.EqualTo(1), "the new host ran the step once, after the wake");
        }
        finally
        {
            await StopAsync(second);
        }
    }

    [Test]
    public async Task RunChildrenAsync_FailsTheParentsStepWithTheChildsErrorAndId_WhenAChildFailsForGood()
    {
        var connectionString = await TestDatabases.CreateAsync(nameof(ChildWorkflowTests) + "_fail");
        var host = await TestHosts.StartHangfireHostAsync(connectionString);
        try
        {
            var client = host.Services.GetRequiredService<IWorkflowClient>();
            var id = await client.EnqueueAsync<ParentFanOutWorkflow>(FanOut(3, failIndex: 1));

            var run = await WaitForStatusAsync(client, id, WorkflowStatus.Failed);

            var children = await ChildrenAsync(connectionString, id);
            var failed = children.Single(c => c.Index == 1);
            Assert.That(failed.Status, Is.EqualTo("Failed"));
            Assert.That(run.ExceptionMessage, Does.Contain(failed.Id.ToString()).And.Contain("child 1 failed"));
            var step = run.Steps.Single(s => s.StepName == nameof(ParentFanOutStep));
            Assert.That(step.Status, Is.EqualTo(WorkflowStatus.Failed));
            Assert.That(step.ExceptionMessage, Does.Contain(failed.Id.ToString()));
            Assert.That(run.Children!.Total, Is.EqualTo(3));
            Assert.That(run.Children.Succeeded, Is.EqualTo(2));
            Assert.That(run.Children.Failed.Select(f => (f.Id, f.ChildIndex, f.Status)), Is.EqualTo(new[] { (failed.Id, 1, WorkflowStatus.Failed) }));
            var listed = await client.ListAsync(new WorkflowQuery { WorkflowName = "child-item" });
            Assert.That(listed.Select(r => (r.ParentId, r.ChildIndex)).OrderBy(x => x.ChildIndex), Is.EqualTo(new (Guid?, int?)[] { (id, 0), (id, 1), (id, 2) }), "listings carry the parent");
        }
        finally
        {
            await StopAsync(host);
        }
    }

    [Test]
    public async Task ParentIdFilter_SelectsOnlyTheRunsChildren_ForListingCountingAndBulkRetry()
    {
        var connectionString = await TestDatabases.CreateAsync(nameof(ChildWorkflowTests) + "_parent_filter");
        var host = await TestHosts.StartHangfireHostAsync(connectionString);
        try
        {
            var client = host.Services.GetRequiredService<IWorkflowClient>();
            var id = await client.EnqueueAsync<ParentFanOutWorkflow>(FanOut(3, failIndex: 1));
            var other = await client.EnqueueAsync<ParentFanOutWorkflow>(FanOut(2, failIndex: 0));
            await WaitForStatusAsync(client, id, WorkflowStatus.Failed);
            await WaitForStatusAsync(client, other, WorkflowStatus.Failed);
            var children = await ChildrenAsync(connectionString, id);

            var listed = await client.ListAsync(new WorkflowQuery { ParentId = id });
            Assert.That(listed.Select(r => r.Id), Is.EquivalentTo(children.Select(c => c.Id)), "the run's children, not the other parent's nor the parents");
            var failed = await client.ListAsync(new WorkflowQuery { ParentId = id, Status = WorkflowStatus.Failed });
            Assert.That(failed.Select(r => r.ChildIndex), Is.EqualTo(new int?[] { 1 }));
            Assert.That(await client.CountAsync(new WorkflowQuery { ParentId = id }), Is.EqualTo(3));
            Assert.That(await client.CountAsync(new WorkflowQuery { ParentId = Guid.NewGuid() }), Is.Zero);

            // A bulk action with the filter touches the run's failed child alone.
            Assert.That(await client.RetryManyAsync(new WorkflowQuery { ParentId = id, Status = WorkflowStatus.Failed }), Is.EqualTo(1));
            var otherFailed = await client.ListAsync(new WorkflowQuery { ParentId = other, Status = WorkflowStatus.Failed });
            Assert.That(otherFailed, Has.Count.EqualTo(1), "the other parent's failed child was not retried");
        }
        finally
        {
            await StopAsync(host);
        }
    }

    [TestCase("CancelAsync")]
    [TestCase("CancelManyAsync")]
    [TestCase("DeleteJob")]
    public async Task Cancel_CancelsTheUnfinishedChildren_WhenTheParentIsCancelled(string how)
    {
        var connectionString = await TestDatabases.CreateAsync(nameof(ChildWorkflowTests) + "_cancel_" + how.ToLowerInvariant());
        var host = await TestHosts.StartHangfireHostAsync(connectionString);
        try
        {
            var client = host.Services.GetRequiredService<IWorkflowClient>();
            var gate = "cancel-" + how;
            var id = await client.EnqueueAsync<ParentFanOutWorkflow>(FanOut(3, gate: gate));
            var waiting = await WaitForParkedAsync(host, id);
            await host.Services.GetRequiredService<Gates>().Entered(gate + ":0").Task.WaitAsync(Deadline);

            switch (how)
            {
                case "CancelAsync":
                    await client.CancelAsync(id);
                    break;
                case "CancelManyAsync":
                    Assert.That(await client.CancelManyAsync(new WorkflowQuery { WorkflowName = "parent-fan-out" }), Is.EqualTo(1));
                    break;
                default:
                    // The dashboard's Delete on the parent's job.
                    Assert.That(host.Services.GetRequiredService<IBackgroundJobClientV2>().Delete(waiting.JobId!), Is.True);
                    break;
            }

            await WaitForStatusAsync(client, id, WorkflowStatus.Cancelled);
            List<(Guid Id, int Index, string Status, string? JobId)> children = [];
            await Eventually.UntilAsync(async () => (children = await ChildrenAsync(connectionString, id)).All(c => c.Status == "Cancelled"), Deadline,
                () => $"every child to be Cancelled (are {string.Join(", ", children.Select(c => c.Status))})");
            Assert.That(children, Has.Count.EqualTo(3));
            await Eventually.UntilAsync(() => Task.FromResult(children.All(c => c.JobId is not null && JobState(host, c.JobId) == DeletedState.StateName)), Deadline,
                () => $"every child's job to be Deleted (are {string.Join(", ", children.Select(c => c.JobId is null ? "none" : JobState(host, c.JobId)))})");
        }
        finally
        {
            await StopAsync(host);
        }
    }

    [Test]
    public async Task RunChildrenAsync_CompletesFiftyChildren_WhenTheServerHasOneWorker()
    {
        var connectionString = await TestDatabases.CreateAsync(nameof(ChildWorkflowTests) + "_one_worker");
        var host = await TestHosts.StartHangfireHostAsync(connectionString, o => o.WorkerCount = 1);
        try
        {
            var client = host.Services.GetRequiredService<IWorkflowClient>();
            var id = await client.EnqueueAsync<ParentFanOutWorkflow>(FanOut(50));

            // The only worker runs the parent until it parks, then every child, then the parent again.
            var run = await WaitForStatusAsync(client, id, WorkflowStatus.Succeeded, TimeSpan.FromMinutes(3));

            Assert.That(run.Output!["parent_fan_out_output"]!["doubled"]!.Values<int>(), Is.EqualTo(Enumerable.Range(0, 50).Select(i => i * 2)));
            Assert.That(await ChildrenAsync(connectionString, id), Has.Count.EqualTo(50));
        }
        finally
        {
            await StopAsync(host);
        }
    }

    [Test]
    public async Task RunChildrenAsync_FailsTheStepNamingTheInputIndex_WhenAChildInputIsInvalid()
    {
        var connectionString = await TestDatabases.CreateAsync(nameof(ChildWorkflowTests) + "_invalid");
        var host = await TestHosts.StartHangfireHostAsync(connectionString);
        try
        {
            var client = host.Services.GetRequiredService<IWorkflowClient>();
            var runner = host.Services.GetRequiredService<WorkflowClient>();
            var parent = await client.EnqueueAsync<AddWorkflow>(new WorkflowInput(new AddInput { Argument1 = 1, Argument2 = 2 }));
            var request = new ChildRunsRequest(typeof(ChildItemWorkflow), parent, Guid.NewGuid(),
                [(0, new WorkflowInput(new ChildItemInput { Value = 1 })), (1, new WorkflowInput(new ChildItemInput { Value = -5 }))]);

            var ex = Assert.ThrowsAsync<WorkflowDataValidationException>(() => runner.CreateChildrenAsync(request, CancellationToken.None));

            Assert.That(ex!.Errors.Select(e => e.Path), Is.EqualTo(new[] { "[1].child_item_input.value" }));
            Assert.That(await ChildrenAsync(connectionString, parent), Is.Empty, "nothing half-written");
        }
        finally
        {
            await StopAsync(host);
        }
    }
}
