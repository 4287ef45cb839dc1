using Hangfire;
using Hangfire.States;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Newtonsoft.Json.Linq;
using Npgsql;

namespace Workflow.Jobs.IntegrationTests;

[WorkflowName("add-wait-square-no-retry")]
public sealed class AddWaitSquareNoRetryWorkflow : WorkflowDefinition
{
    public override IReadOnlyList<Type> Steps { get; } = [typeof(AddStep), typeof(WaitStep), typeof(SquareStep)];

    public override WorkflowRetryPolicy? Retry { get; } = new() { Attempts = 0 };
}

/// <summary>
/// What a dead connection or a dead process leaves behind, on a real server:
/// the execution's connection dropped mid-step, and a Hangfire lock left by a killed process.
/// </summary>
public class RecoveryTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);
    private string _connectionString = null!;
    private IHost _host = null!;
    private IWorkflowClient _client = null!;
    private ExecutionLog _log = null!;
    private Gates _gates = null!;

    [OneTimeSetUp]
    public async Task OneTimeSetUpAsync()
    {
        _connectionString = await TestDatabases.CreateAsync(nameof(RecoveryTests));
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        builder.Services.AddSingleton<ILoggerFactory>(NullLoggerFactory.Instance);
        builder.Services.AddSingleton<ExecutionLog>();
        builder.Services.AddSingleton<Gates>();
        builder.Services.AddWorkflowJobs(o =>
            {
                o.UseNpgsql(_connectionString);
                // The tests run the recovery pass themselves and want it to act on its first sight.
                o.RecoveryDelay = TimeSpan.Zero;
            })
            .AddWorkflow<AddWaitSquareNoRetryWorkflow>()
            .AddWorkflow<AddWorkflow>()
            .AddHangfireJobs(o =>
            {
                o.WorkerCount = 2;
                o.QueuePollInterval = TimeSpan.FromMilliseconds(50);
                o.ShutdownTimeout = TimeSpan.FromSeconds(2);
                // The smallest recovery bound allowed, so that an expired lock is seen quickly.
                o.InvisibilityTimeout = TimeSpan.FromSeconds(10);
                // The tests run the recovery pass themselves (with no delay): no leader loop doing it too.
                o.RunLeaderLoop = false;
            });
        _host = builder.Build();
        await _host.StartAsync();
        _client = _host.Services.GetRequiredService<IWorkflowClient>();
        _log = _host.Services.GetRequiredService<ExecutionLog>();
        _gates = _host.Services.GetRequiredService<Gates>();
    }

    [OneTimeTearDown]
    public async Task OneTimeTearDownAsync()
    {
        await _host.StopAsync();
        _host.Dispose();
    }

    [Test]
    public async Task ConnectionDroppedMidStep_RunIsRetried_EvenWithRetriesOff_AndResumesAfterItsCheckpoint()
    {
        var gate = Guid.NewGuid().ToString();
        var id = await _client.EnqueueAsync<AddWaitSquareNoRetryWorkflow>(new WorkflowInput(new AddInput { Argument1 = 1, Argument2 = 2 }, new WaitInput { Gate = gate }));
        await _gates.Entered(gate).Task.WaitAsync(Deadline);

        // The execution's own connection (the one holding the run's guard) dies, as in a database restart.
        Assert.That(await TerminateGuardConnectionAsync(), Is.EqualTo(1), "one execution holds a guard");
        _gates.Open(gate);

        WorkflowRun? run = null;
        await Eventually.UntilAsync(async () => (run = await _client.GetAsync(id))?.Status is WorkflowStatus.Succeeded or WorkflowStatus.Failed, Deadline,
            "the run to finish");
        Assert.That(run!.Status, Is.EqualTo(WorkflowStatus.Succeeded), run.ExceptionMessage);
        Assert.That(run.Output!["square_output"]!["result"]!.Value<int>(), Is.EqualTo(9));
        Assert.That(_log.Count(id, "AddStep"), Is.EqualTo(1), "the checkpointed step did not run again");
        Assert.That(_log.Count(id, "WaitStep"), Is.EqualTo(2), "the step whose checkpoint was lost ran again (at least once)");
        using var connection = _host.Services.GetRequiredService<JobStorage>().GetConnection();
        Assert.That(connection.GetJobParameter(run.JobId!, "RetryCount"), Is.Null.Or.EqualTo("0"), "the retry budget was not used");
    }

    [Test]
    public async Task JobStateLock_LeftByAKilledProcess_ExpiresWithTheInvisibilityTimeout_NotHangfiresTenMinutes()
    {
        var id = await _client.EnqueueAsync<AddWorkflow>(new WorkflowInput(new AddInput { Argument1 = 4, Argument2 = 5 }), new EnqueueOptions { Delay = TimeSpan.FromDays(1) });
        var jobId = (await _client.GetAsync(id))!.JobId!;
        // A process killed in the middle of a state change leaves its lock row behind, never deleted.
        await ExecuteAsync($"INSERT INTO hangfire.lock (resource, updatecount, acquired) VALUES ('hangfire:job:{jobId}:state-lock', 0, now())");

        // Enqueuing the job needs that lock: it waits until the lock expires, then the run executes.
        var jobs = _host.Services.GetRequiredService<IBackgroundJobClientV2>();
        var requeue = Task.Run(() => jobs.Requeue(jobId));
        Assert.That(await requeue.WaitAsync(Deadline), Is.True);

        await Eventually.UntilAsync(async () => (await _client.GetAsync(id))?.Status == WorkflowStatus.Succeeded, Deadline, "the run to succeed");
    }

    [Test]
    public async Task ConnectionDroppedMidStep_CancelsTheStepBody_SoTheResumedExecutionNeverOverlapsIt()
    {
        var gate = Guid.NewGuid().ToString();
        var id = await _client.EnqueueAsync<AddWaitSquareNoRetryWorkflow>(new WorkflowInput(new AddInput { Argument1 = 2, Argument2 = 2 }, new WaitInput { Gate = gate }));
        await _gates.Entered(gate).Task.WaitAsync(Deadline);

        Assert.That(await TerminateGuardConnectionAsync(), Is.EqualTo(1), "one execution holds a guard");

        // The gate stays closed: only the guard watch can end the first body, and the run must resume
        // (a second body enters the step) while the first one is no longer running.
        await Eventually.UntilAsync(() => Task.FromResult(_log.Count(id, "WaitStep") == 2), Deadline, "the step to be resumed by a new execution");
        _gates.Open(gate);
        await Eventually.UntilAsync(async () => (await _client.GetAsync(id))?.Status == WorkflowStatus.Succeeded, Deadline, "the run to succeed");
        Assert.That(_log.MaxConcurrent(id), Is.EqualTo(1), "the two bodies of the step never ran at the same time");
        Assert.That(_log.Count(id, "AddStep"), Is.EqualTo(1));
    }

    [Test]
    public async Task RecoveryPass_RequeuesTheJobOfARunWhoseExecutionDied()
    {
        // What a SIGKILLed worker leaves: the run Running, its job Processing on a server that is gone, and no
        // guard (PostgreSQL released it with the session).
        var runner = _host.Services.GetRequiredService<IWorkflowRunner>();
        var id = await runner.CreateAsync<AddWorkflow>(new WorkflowInput(new AddInput { Argument1 = 20, Argument2 = 22 }));
        var dispatcher = _host.Services.GetRequiredService<IWorkflowJobDispatcher>();
        var jobId = dispatcher.Enqueue(id, "add", null, TimeSpan.FromDays(1));
        var jobs = _host.Services.GetRequiredService<IBackgroundJobClientV2>();
        Assert.That(jobs.ChangeState(jobId, new DeadServerProcessingState(), ScheduledState.StateName), Is.True);
        await ExecuteAsync($"UPDATE workflow.workflow_runs SET status = 'Running', job_id = '{jobId}' WHERE uuid = '{id}'");

        await RecoveryPassAsync();

        await Eventually.UntilAsync(async () => (await _client.GetAsync(id))?.Status == WorkflowStatus.Succeeded, Deadline, "the recovered run to succeed");
        Assert.That((await _client.GetAsync(id))!.Output!["test_step_output"]!["result"]!.Value<int>(), Is.EqualTo(42));
    }

    [Test]
    public async Task RecoveryPass_RequeuesTheJobOfACompensatingRunWhoseExecutionDied_AndLeavesAQueuedOneAlone()
    {
        // A worker killed while it ran a run's compensations: the run Compensating, its job Processing on a server that
        // is gone, no guard. Beside it, a Compensating run whose job waits to be picked up (Scheduled here): also no guard.
        var runner = _host.Services.GetRequiredService<IWorkflowRunner>();
        var dispatcher = _host.Services.GetRequiredService<IWorkflowJobDispatcher>();
        var jobs = _host.Services.GetRequiredService<IBackgroundJobClientV2>();
        var id = await runner.CreateAsync<AddWorkflow>(new WorkflowInput(new AddInput { Argument1 = 1, Argument2 = 2 }));
        var jobId = dispatcher.Enqueue(id, "add", null, TimeSpan.FromDays(1));
        Assert.That(jobs.ChangeState(jobId, new DeadServerProcessingState(), ScheduledState.StateName), Is.True);
        await ExecuteAsync($"UPDATE workflow.workflow_runs SET status = 'Compensating', job_id = '{jobId}' WHERE uuid = '{id}'");
        var queued = await runner.CreateAsync<AddWorkflow>(new WorkflowInput(new AddInput()));
        var queuedJob = dispatcher.Enqueue(queued, "add", null, TimeSpan.FromDays(1));
        await ExecuteAsync($"UPDATE workflow.workflow_runs SET status = 'Compensating', job_id = '{queuedJob}' WHERE uuid = '{queued}'");

        await RecoveryPassAsync();

        await Eventually.UntilAsync(async () => (await _client.GetAsync(id))?.Status == WorkflowStatus.Compensated, Deadline, "the recovered run to finish compensating");
        using (var connection = _host.Services.GetRequiredService<JobStorage>().GetConnection())
        {
            Assert.That(connection.GetStateData(queuedJob).Name, Is.EqualTo(ScheduledState.StateName), "the queued compensation's job is not touched");
        }

        Assert.That((await _client.GetAsync(queued))!.Status, Is.EqualTo(WorkflowStatus.Compensating));
        await _client.CancelAsync(queued);
    }

    [Test]
    public async Task RecoveryPass_LeavesALiveExecutionAlone()
    {
        var gate = Guid.NewGuid().ToString();
        var id = await _client.EnqueueAsync<AddWaitSquareNoRetryWorkflow>(new WorkflowInput(new AddInput(), new WaitInput { Gate = gate }));
        await _gates.Entered(gate).Task.WaitAsync(Deadline);
        var jobId = (await _client.GetAsync(id))!.JobId!;

        await RecoveryPassAsync();
        await RecoveryPassAsync();

        using (var connection = _host.Services.GetRequiredService<JobStorage>().GetConnection())
        {
            Assert.That(connection.GetStateData(jobId).Name, Is.EqualTo(ProcessingState.StateName));
        }

        Assert.That((await _client.GetAsync(id))!.Status, Is.EqualTo(WorkflowStatus.Running));
        _gates.Open(gate);
        await Eventually.UntilAsync(async () => (await _client.GetAsync(id))?.Status == WorkflowStatus.Succeeded, Deadline, "the run to succeed");
        Assert.That(_log.Count(id, "WaitStep"), Is.EqualTo(1), "the live execution was never disturbed");
    }

    /// <summary>The Processing state a worker of a server that no longer exists would have written.</summary>
    private sealed class DeadServerProcessingState : IState
    {
        public string Name => ProcessingState.StateName;

        public string Reason => "taken by a worker that was then killed";

        public bool IsFinal => false;

        public bool IgnoreJobLoadException => false;

        public Dictionary<string, string> SerializeData() => new()
        {
            ["StartedAt"] = global::Hangfire.Common.JobHelper.SerializeDateTime(DateTime.UtcNow),
            ["ServerId"] = "dead-server",
            ["WorkerId"] = "dead-worker",
        };
    }

    private Task RecoveryPassAsync()
        => _host.Services.GetServices<IWorkflowLeaderTask>().OfType<WorkflowRecoveryTask>().Single().RunOnceAsync(CancellationToken.None);

    private async Task<long> TerminateGuardConnectionAsync()
    {
        return await ExecuteAsync(
            """
            SELECT count(pg_terminate_backend(l.pid)) FROM pg_locks l
            WHERE l.locktype = 'advisory' AND l.granted AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
              AND l.objsubid = 1 -- the runs' guards (one bigint key), not the leader loop's lock (two int keys)
            """);
    }

    private async Task<long> ExecuteAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(_connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        return Convert.ToInt64(await command.ExecuteScalarAsync() ?? 0L, System.Globalization.CultureInfo.InvariantCulture);
    }
}
