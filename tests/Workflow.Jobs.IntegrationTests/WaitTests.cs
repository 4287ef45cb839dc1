using System.Transactions;
using Hangfire;
using Hangfire.States;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Newtonsoft.Json.Linq;
using Npgsql;

namespace Workflow.Jobs.IntegrationTests;

/// <summary>Durable sleeps and events on a real Hangfire server and real PostgreSQL.</summary>
public class WaitTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);
    private string _connectionString = null!;
    private IHost _host = null!;
    private IWorkflowClient _client = null!;
    private ExecutionLog _log = null!;
    private IBackgroundJobClientV2 _jobs = null!;
    private JobStorage _storage = null!;

    [OneTimeSetUp]
    public async Task OneTimeSetUpAsync()
    {
        _connectionString = await TestDatabases.CreateAsync(nameof(WaitTests));
        _host = await TestHosts.StartHangfireHostAsync(_connectionString);
        _client = _host.Services.GetRequiredService<IWorkflowClient>();
        _log = _host.Services.GetRequiredService<ExecutionLog>();
        _jobs = _host.Services.GetRequiredService<IBackgroundJobClientV2>();
        _storage = _host.Services.GetRequiredService<JobStorage>();
    }

    [OneTimeTearDown]
    public async Task OneTimeTearDownAsync()
    {
        await _host.StopAsync();
        _host.Dispose();
    }

    private static async Task<WorkflowRun> WaitForStatusAsync(IWorkflowClient client, Guid id, WorkflowStatus status)
    {
        WorkflowRun? run = null;
        await Eventually.UntilAsync(async () => (run = await client.GetAsync(id))?.Status == status, Deadline,
            () => $"run {id} to be {status} (is {run?.Status}: {run?.ExceptionMessage}, waiting for {run?.WaitingFor})");
        return run!;
    }

    private Task<WorkflowRun> WaitForStatusAsync(Guid id, WorkflowStatus status) => WaitForStatusAsync(_client, id, status);

    private string? JobState(string jobId)
    {
        using var connection = _storage.GetConnection();
        return connection.GetStateData(jobId)?.Name;
    }

    private async Task WaitForJobStateAsync(string jobId, string state)
        => await Eventually.UntilAsync(() => Task.FromResult(JobState(jobId) == state), Deadline, $"job {jobId} to be {state} (is {JobState(jobId)})");

    private async Task<long> CountAsync(string sql, Guid run)
    {
        await using var connection = new NpgsqlConnection(_connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        command.Parameters.AddWithValue("run", run);
        return (long)(await command.ExecuteScalarAsync())!;
    }

    private static WorkflowInput SleepInput(double seconds)
        => new(new AddInput { Argument1 = 1, Argument2 = 2 }, new SleepInput { Seconds = seconds }, new SquareInput());

    [Test]
    public async Task SleepAsync_ParksTheRunAndWakesItAtTheWakeTime_WhenTheTimeComes()
    {
        var before = DateTimeOffset.UtcNow;
        var id = await _client.EnqueueAsync<SleepThenSquareWorkflow>(SleepInput(3));

        var waiting = await WaitForStatusAsync(id, WorkflowStatus.Waiting);
        Assert.That(waiting.WaitingFor, Is.EqualTo("sleep"));
        Assert.That(waiting.WakeAt, Is.GreaterThan(before.AddSeconds(2.5)).And.LessThan(DateTimeOffset.UtcNow.AddSeconds(3.5)));
        Assert.That(waiting.Steps.Single(s => s.StepName == nameof(SleepStep)).Status, Is.EqualTo(WorkflowStatus.Waiting));
        await WaitForJobStateAsync(waiting.JobId!, ScheduledState.StateName);

        var run = await WaitForStatusAsync(id, WorkflowStatus.Succeeded);
        Assert.That(run.SucceededAt, Is.GreaterThanOrEqualTo(waiting.WakeAt));
        Assert.That(run.Output!["square_output"]!["result"]!.Value<int>(), Is.EqualTo(9));
        Assert.That(run.WaitingFor, Is.Null);
        Assert.That(run.WakeAt, Is.Null);
        var sleeps = _log.For(id).Where(e => e.Step == nameof(SleepStep)).ToList();
        Assert.That(sleeps, Has.Count.EqualTo(2), "the step body runs again from its start after the wait");
        Assert.That(sleeps.Select(s => s.Attempt), Is.All.EqualTo(1), "a wake is not a new attempt");
        Assert.That(run.Attempts, Is.EqualTo(1), "a wake is not a new attempt of the run");
        using var connection = _storage.GetConnection();
        Assert.That(connection.GetJobParameter(run.JobId!, "RetryCount"), Is.Null.Or.EqualTo("0"), "the retry budget is unchanged");
    }

    [Test]
    public async Task EnqueueNow_WakesASleepingRunEarly_WhenAnOperatorEnqueuesItsScheduledJob()
    {
        var id = await _client.EnqueueAsync<SleepThenSquareWorkflow>(SleepInput(3600));
        var waiting = await WaitForStatusAsync(id, WorkflowStatus.Waiting);
        await WaitForJobStateAsync(waiting.JobId!, ScheduledState.StateName);

        // The dashboard's "Enqueue now" on a scheduled job.
        Assert.That(_jobs.ChangeState(waiting.JobId!, new EnqueuedState(), ScheduledState.StateName), Is.True);

        var run = await WaitForStatusAsync(id, WorkflowStatus.Succeeded);
        Assert.That(run.SucceededAt, Is.LessThan(waiting.WakeAt!.Value.AddMinutes(-50)));
        Assert.That(run.Attempts, Is.EqualTo(1));
    }

    [Test]
    public async Task ExecuteAsync_GoesBackToWaitingWithoutRunningAnything_WhenTheWaitIsNotOver()
    {
        var id = await _client.EnqueueAsync<SleepThenSquareWorkflow>(SleepInput(3600));
        var waiting = await WaitForStatusAsync(id, WorkflowStatus.Waiting);
        var executions = _log.For(id).Count;

        // As a job fetched from a stale queue entry would: the engine checks the wait before anything else.
        var engine = _host.Services.GetRequiredService<WorkflowEngine>();
        var ex = Assert.ThrowsAsync<WorkflowParkedException>(() => engine.ExecuteAsync(id, retriedByScheduler: true, CancellationToken.None));

        Assert.That(ex!.WakeAt, Is.EqualTo(waiting.WakeAt));
        Assert.That(_log.For(id), Has.Count.EqualTo(executions), "no step ran");
        var run = await _client.GetAsync(id);
        Assert.That(run!.Status, Is.EqualTo(WorkflowStatus.Waiting));
        Assert.That(run.Modified, Is.EqualTo(waiting.Modified), "nothing was written");
        await _client.CancelAsync(id);
    }

    [Test]
    public async Task CancelAsync_CancelsAWaitingRunAndDeletesItsScheduledJob_WhenTheRunIsWaiting()
    {
        var id = await _client.EnqueueAsync<SleepThenSquareWorkflow>(SleepInput(3600));
        var waiting = await WaitForStatusAsync(id, WorkflowStatus.Waiting);
        await WaitForJobStateAsync(waiting.JobId!, ScheduledState.StateName);

        await _client.CancelAsync(id);

        var run = await _client.GetAsync(id);
        Assert.That(run!.Status, Is.EqualTo(WorkflowStatus.Cancelled));
        Assert.That(run.WaitingFor, Is.Null);
        await WaitForJobStateAsync(waiting.JobId!, DeletedState.StateName);
    }

    [Test]
    public async Task SignalAsync_WakesTheRunAndTheWaitReturnsThePayload_WhenTheRunWaitsForTheEvent()
    {
        var id = await _client.EnqueueAsync<ApprovalWorkflow>(new WorkflowInput(new AddInput(), new ApprovalInput()));
        var waiting = await WaitForStatusAsync(id, WorkflowStatus.Waiting);
        Assert.That(waiting.WaitingFor, Is.EqualTo("approved"));
        Assert.That(waiting.WakeAt, Is.Null, "no timeout");
        await WaitForJobStateAsync(waiting.JobId!, ScheduledState.StateName);

        await _client.SignalAsync(id, "approved", new ApprovalEvent { Approver = "ada" });

        var run = await WaitForStatusAsync(id, WorkflowStatus.Succeeded);
        Assert.That(run.Output!["approval_output"]!["approver"]!.Value<string>(), Is.EqualTo("ada"));
        Assert.That(run.Attempts, Is.EqualTo(1));
        Assert.That(await CountAsync("SELECT count(*) FROM workflow.workflow_events WHERE run_uuid = @run AND consumed_step_uuid IS NOT NULL", id), Is.EqualTo(1));
    }

    [Test]
    public async Task SignalAsync_KeepsTheEvent_WhenItIsSentBeforeTheWait()
    {
        var id = await _client.EnqueueAsync<ApprovalWorkflow>(new WorkflowInput(new AddInput(), new ApprovalInput()),
            new EnqueueOptions { Delay = TimeSpan.FromDays(1) });
        var jobId = (await _client.GetAsync(id))!.JobId!;

        await _client.SignalAsync(id, "approved", JObject.Parse("{\"approver\":\"early\"}"));
        Assert.That((await _client.GetAsync(id))!.Status, Is.EqualTo(WorkflowStatus.Pending));
        _jobs.ChangeState(jobId, new EnqueuedState(), ScheduledState.StateName);

        var run = await WaitForStatusAsync(id, WorkflowStatus.Succeeded);
        Assert.That(run.Output!["approval_output"]!["approver"]!.Value<string>(), Is.EqualTo("early"));
        Assert.That(_log.Count(id, nameof(ApprovalStep)), Is.EqualTo(1), "the wait found its event: it never parked");
    }

    [Test]
    public async Task SignalAsync_EachEventIsConsumedByExactlyOneWait_WhenSignalsAreConcurrentAndTheRunHasDuplicateJobs()
    {
        const int count = 8;
        var id = await _client.EnqueueAsync<CollectWorkflow>(new WorkflowInput(new CollectInput { Count = count }));
        await WaitForStatusAsync(id, WorkflowStatus.Waiting);

        // A second job of the same run (a duplicate): the execution guard and the (step, wait) key keep it harmless.
        var duplicate = _jobs.Create(global::Hangfire.Common.Job.FromExpression<Workflow.Jobs.Hangfire.WorkflowJob>(j => j.ExecuteAsync(id, CancellationToken.None)),
            new EnqueuedState());
        await Task.WhenAll(Enumerable.Range(1, count).Select(i => Task.Run(() => _client.SignalAsync(id, "item", new ItemEvent { Value = i }))));

        var run = await WaitForStatusAsync(id, WorkflowStatus.Succeeded);
        var values = run.Output!["collect_output"]!["values"]!.Values<int>().ToList();
        Assert.That(values, Is.EquivalentTo(Enumerable.Range(1, count)), "every event consumed once, by one wait each");
        Assert.That(await CountAsync("SELECT count(DISTINCT (consumed_step_uuid, consumed_wait)) FROM workflow.workflow_events WHERE run_uuid = @run", id),
            Is.EqualTo(count));
        Assert.That(await CountAsync("SELECT count(*) FROM workflow.workflow_events WHERE run_uuid = @run AND consumed_step_uuid IS NULL", id), Is.Zero);
        await WaitForJobStateAsync(duplicate, SucceededState.StateName);
    }

    [Test]
    public async Task WaitForEventAsync_ThrowsEventTimeout_WhenTheEventDoesNotArriveBeforeTheDeadline()
    {
        var id = await _client.EnqueueAsync<ApprovalWorkflow>(new WorkflowInput(new AddInput(), new ApprovalInput { TimeoutSeconds = 2 }));
        var waiting = await WaitForStatusAsync(id, WorkflowStatus.Waiting);
        Assert.That(waiting.WakeAt, Is.Not.Null, "the deadline is the wake time");

        var run = await WaitForStatusAsync(id, WorkflowStatus.Failed);

        Assert.That(run.ExceptionMessage, Does.Contain("Event 'approved' did not arrive before"));
        Assert.That(_log.Count(id, nameof(ApprovalStep)), Is.EqualTo(2), "parked once, timed out on the wake: not retried (the deadline is fixed)");
    }

    [Test]
    public async Task SignalAsync_RefusesAnInvalidPayloadWithPathsAndStoresNothing_WhenItDoesNotFitTheType()
    {
        var id = await _client.EnqueueAsync<ApprovalWorkflow>(new WorkflowInput(new AddInput(), new ApprovalInput()));
        await WaitForStatusAsync(id, WorkflowStatus.Waiting);

        var ex = Assert.ThrowsAsync<WorkflowDataValidationException>(() => _client.SignalAsync(id, "approved", JObject.Parse("{\"approver\":7,\"extra\":1}")));

        Assert.That(ex!.Errors.Select(e => e.Path), Is.SupersetOf(new[] { "approver", "extra" }));
        Assert.That(await CountAsync("SELECT count(*) FROM workflow.workflow_events WHERE run_uuid = @run", id), Is.Zero);
        Assert.That((await _client.GetAsync(id))!.Status, Is.EqualTo(WorkflowStatus.Waiting));
        await _client.CancelAsync(id);
    }

    [TestCase("sleep")]
    [TestCase("children")]
    [TestCase("concurrency")]
    [TestCase(" ")]
    public async Task SignalAsync_RefusesAReservedOrBlankEventName_NamingTheField(string name)
    {
        var id = await _client.EnqueueAsync<ApprovalWorkflow>(new WorkflowInput(new AddInput(), new ApprovalInput()));
        await WaitForStatusAsync(id, WorkflowStatus.Waiting);

        var ex = Assert.ThrowsAsync<WorkflowDataValidationException>(() => _client.SignalAsync(id, name, new JObject()));

        Assert.That(ex!.Errors.Select(e => e.Path), Is.EqualTo(new[] { "event_name" }));
        Assert.That(await CountAsync("SELECT count(*) FROM workflow.workflow_events WHERE run_uuid = @run", id), Is.Zero);
        await _client.CancelAsync(id);
    }

    [Test]
    public async Task SignalAsync_FailsWithRunFinishedOrNotFound_WhenTheRunIsFinishedOrUnknown()
    {
        var id = await _client.EnqueueAsync<AddWorkflow>(new WorkflowInput(new AddInput()));
        await WaitForStatusAsync(id, WorkflowStatus.Succeeded);

        var finished = Assert.ThrowsAsync<UnitOfWorkException>(() => _client.SignalAsync(id, "approved", new ApprovalEvent { Approver = "x" }));
        Assert.That(finished!.Code, Is.EqualTo(UnitOfWorkException.RunFinishedCode));
        Assert.That(await CountAsync("SELECT count(*) FROM workflow.workflow_events WHERE run_uuid = @run", id), Is.Zero);
        Assert.ThrowsAsync<WorkflowRunNotFoundException>(() => _client.SignalAsync(Guid.NewGuid(), "approved", new ApprovalEvent { Approver = "x" }));
    }

    [Test]
    public async Task SignalAsync_JoinsTheCallersTransaction_WhenItRollsBack()
    {
        var id = await _client.EnqueueAsync<ApprovalWorkflow>(new WorkflowInput(new AddInput(), new ApprovalInput()));
        await WaitForStatusAsync(id, WorkflowStatus.Waiting);

        using (new TransactionScope(TransactionScopeOption.Required, new TransactionOptions { IsolationLevel = IsolationLevel.ReadCommitted },
                   TransactionScopeAsyncFlowOption.Enabled))
        {
            await _client.SignalAsync(id, "approved", new ApprovalEvent { Approver = "rolled-back" });
        }

        Assert.That(await CountAsync("SELECT count(*) FROM workflow.workflow_events WHERE run_uuid = @run", id), Is.Zero);
        Assert.That((await _client.GetAsync(id))!.Status, Is.EqualTo(WorkflowStatus.Waiting));

        using (var scope = new TransactionScope(TransactionScopeOption.Required, new TransactionOptions { IsolationLevel = IsolationLevel.ReadCommitted },
                   TransactionScopeAsyncFlowOption.Enabled))
        {
            await _client.SignalAsync(id, "approved", new ApprovalEvent { Approver = "committed" });
            scope.Complete();
        }

        var run = await WaitForStatusAsync(id, WorkflowStatus.Succeeded);
        Assert.That(run.Output!["approval_output"]!["approver"]!.Value<string>(), Is.EqualTo("committed"));
    }

    [Test]
    public async Task SleepAsync_ResumesOnAnotherHost_WhenTheHostIsStoppedDuringTheWait()
    {
        var connectionString = await TestDatabases.CreateAsync(nameof(WaitTests) + "_restart");
        var first = await TestHosts.StartHangfireHostAsync(connectionString);
        Guid id;
        try
        {
            var client = first.Services.GetRequiredService<IWorkflowClient>();
            id = await client.EnqueueAsync<SleepThenSquareWorkflow>(SleepInput(4));
            await WaitForStatusAsync(client, id, WorkflowStatus.Waiting);
        }
        finally
        {
            await first.StopAsync();
            first.Dispose();
        }

        var second = await TestHosts.StartHangfireHostAsync(connectionString);
        try
        {
            var run = await WaitForStatusAsync(second.Services.GetRequiredService<IWorkflowClient>(), id, WorkflowStatus.Succeeded);
            Assert.That(run.Output!["square_output"]!["result"]!.Value<int>(), Is.EqualTo(9));
            Assert.That(second.Services.GetRequiredService<ExecutionLog>().Count(id, nameof(SleepStep)), Is.EqualTo(1), "the second host ran the wake");
        }
        finally
        {
            await second.StopAsync();
            second.Dispose();
        }
    }

    [Test]
    public async Task SleepAsync_CostsSixRoundTripsOfWhichThreeCommitWrites_BeyondTheSameRunWithoutAWait()
    {
        var connectionString = await TestDatabases.CreateAsync(nameof(WaitTests) + "_cost");
        using var host = await TestHosts.StartEngineHostAsync(connectionString);
        var client = host.Services.GetRequiredService<WorkflowClient>();
        var engine = host.Services.GetRequiredService<WorkflowEngine>();
        var store = host.Services.GetRequiredService<IWorkflowStore>();
        var workflow = host.Services.GetRequiredService<WorkflowRegistry>().Get(typeof(SleepThenSquareWorkflow));
        var database = new NpgsqlConnectionStringBuilder(connectionString).Database;
        using var telemetry = new NpgsqlTelemetryCapture();
        int RoundTrips() => telemetry.Spans.Count(span => span.GetValueOrDefault("db.namespace") == database);

        var plain = await client.CreateWithoutJobAsync(workflow, SleepInput(0).ToJson(), CancellationToken.None);
        var before = RoundTrips();
        await engine.ExecuteAsync(plain, retriedByScheduler: true, CancellationToken.None);
        var plainCost = RoundTrips() - before;

        var sleeping = await client.CreateWithoutJobAsync(workflow, SleepInput(3600).ToJson(), CancellationToken.None);
        before = RoundTrips();
        Assert.ThrowsAsync<WorkflowParkedException>(() => engine.ExecuteAsync(sleeping, retriedByScheduler: true, CancellationToken.None));
        // What the job filter does when the job is enqueued at the wake time (or by "Enqueue now").
        Assert.That(await store.TransitionAsync(sleeping, RunOperation.Wake, DateTimeOffset.UtcNow, null, JobRequestKind.None, CancellationToken.None), Is.Not.Null);
        await engine.ExecuteAsync(sleeping, retriedByScheduler: true, CancellationToken.None);
        var sleepingCost = RoundTrips() - before;

        // Park (one transaction), wake (one), the resumed execution's start (one): 3 commits that write; the resumed
        // execution's guard and load, its unlock, and the step's read of its recorded waits: 3 round trips that only read.
        Assert.That(sleepingCost - plainCost, Is.EqualTo(6), $"plain run {plainCost} round trips, with a sleep {sleepingCost}");
        Assert.That((await client.GetAsync(sleeping))!.Status, Is.EqualTo(WorkflowStatus.Succeeded));
    }
}
