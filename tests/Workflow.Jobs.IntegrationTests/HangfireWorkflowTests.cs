using System.Transactions;
using Hangfire;
using Hangfire.States;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Newtonsoft.Json.Linq;
using Npgsql;

namespace Workflow.Jobs.IntegrationTests;

/// <summary>Runs as Hangfire jobs: a real BackgroundJobServer on real PostgreSQL.</summary>
public class HangfireWorkflowTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);
    private string _connectionString = null!;
    private IHost _host = null!;
    private IWorkflowClient _client = null!;
    private ExecutionLog _log = null!;
    private Gates _gates = null!;
    private IBackgroundJobClientV2 _jobs = null!;
    private JobStorage _storage = null!;

    [OneTimeSetUp]
    public async Task OneTimeSetUpAsync()
    {
        _connectionString = await TestDatabases.CreateAsync(nameof(HangfireWorkflowTests));
        _host = await TestHosts.StartHangfireHostAsync(_connectionString);
        _client = _host.Services.GetRequiredService<IWorkflowClient>();
        _log = _host.Services.GetRequiredService<ExecutionLog>();
        _gates = _host.Services.GetRequiredService<Gates>();
        _jobs = _host.Services.GetRequiredService<IBackgroundJobClientV2>();
        _storage = _host.Services.GetRequiredService<JobStorage>();
    }

    [OneTimeTearDown]
    public async Task OneTimeTearDownAsync()
    {
        await _host.StopAsync();
        _host.Dispose();
    }

    private Task<WorkflowRun> WaitForStatusAsync(Guid id, WorkflowStatus status) => WaitForStatusAsync(_client, id, status);

    private static async Task<WorkflowRun> WaitForStatusAsync(IWorkflowClient client, Guid id, WorkflowStatus status)
    {
        WorkflowRun? run = null;
        await Eventually.UntilAsync(async () => (run = await client.GetAsync(id))?.Status == status, Deadline, $"run {id} to be {status} (is {run?.Status})");
        return run!;
    }

    private string? JobState(string jobId)
    {
        using var connection = _storage.GetConnection();
        return connection.GetStateData(jobId)?.Name;
    }

    private async Task<long> CountAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(_connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        return (long)(await command.ExecuteScalarAsync())!;
    }

    [Test]
    public async Task EnqueueAsync_RunsTheRunAsOneJob_WhoseOnlyArgumentIsTheRunId()
    {
        var id = await _client.EnqueueAsync<AddThenSquareWorkflow>(new WorkflowInput(new AddInput { Argument1 = 2, Argument2 = 3 }));

        var run = await WaitForStatusAsync(id, WorkflowStatus.Succeeded);

        Assert.That(run.Output!["square_output"]!["result"]!.Value<int>(), Is.EqualTo(25));
        Assert.That(run.JobId, Is.Not.Null);
        await Eventually.UntilAsync(() => Task.FromResult(JobState(run.JobId!) == SucceededState.StateName), Deadline, "job Succeeded");
        using var connection = _storage.GetConnection();
        var job = connection.GetJobData(run.JobId!)!.Job;
        Assert.That(job.Type, Is.EqualTo(typeof(Workflow.Jobs.Hangfire.WorkflowJob)));
        Assert.That(job.Args, Has.Count.EqualTo(2), "the run id and Hangfire's cancellation token placeholder");
        Assert.That(job.Args[0], Is.EqualTo(id));
        Assert.That(connection.GetJobParameter(run.JobId!, "WorkflowName"), Does.Contain("add-then-square"));
    }

    [Test]
    public async Task DashboardDisplayName_ShowsWorkflowNameAndRunId()
    {
        var id = await _client.EnqueueAsync<AddWorkflow>(new WorkflowInput(new AddInput()), new EnqueueOptions { Delay = TimeSpan.FromDays(1) });
        var jobId = (await _client.GetAsync(id))!.JobId!;
        using var connection = _storage.GetConnection();
        var job = connection.GetJobData(jobId)!.Job;
        var http = new Microsoft.AspNetCore.Http.DefaultHttpContext { RequestServices = _host.Services };
        var context = new global::Hangfire.Dashboard.AspNetCoreDashboardContext(_storage, new DashboardOptions(), http);
        var attribute = typeof(Workflow.Jobs.Hangfire.WorkflowJob).GetMethod(nameof(Workflow.Jobs.Hangfire.WorkflowJob.ExecuteAsync))!
            .GetCustomAttributes(typeof(JobDisplayNameAttribute), true).Cast<JobDisplayNameAttribute>().Single();

        Assert.That(attribute.Format(context, job), Is.EqualTo($"add run {id}"));
        await _client.CancelAsync(id);
    }

    [Test]
    public async Task EnqueueAsync_ByName_WithJObject_Works_AndUnknownNameIsRefused()
    {
        var id = await _client.EnqueueAsync("add", JObject.Parse("{\"test_step_input\":{\"argument_1\":20,\"argument_2\":22}}"));
        var run = await WaitForStatusAsync(id, WorkflowStatus.Succeeded);
        Assert.That(run.Output!["test_step_output"]!["result"]!.Value<int>(), Is.EqualTo(42));

        var ex = Assert.ThrowsAsync<UnitOfWorkException>(() => _client.EnqueueAsync("no-such-workflow", []));
        Assert.That(ex!.Code, Is.EqualTo("unknown_workflow"));
    }

    [Test]
    public async Task EnqueueAsync_InvalidInput_PersistsAndEnqueuesNothing()
    {
        var runs = await CountAsync("SELECT count(*) FROM workflow.workflow_runs");
        var jobs = await CountAsync("SELECT count(*) FROM hangfire.job");

        var ex = Assert.ThrowsAsync<WorkflowDataValidationException>(() =>
            _client.EnqueueAsync("add", JObject.Parse("{\"test_step_input\":{\"argument_1\":\"x\",\"argument_2\":null}}")));

        Assert.That(ex!.Errors.Select(e => e.Path), Is.EquivalentTo(new[] { "test_step_input.argument_1", "test_step_input.argument_2" }));
        Assert.That(await CountAsync("SELECT count(*) FROM workflow.workflow_runs"), Is.EqualTo(runs));
        Assert.That(await CountAsync("SELECT count(*) FROM hangfire.job"), Is.EqualTo(jobs));
    }

    [Test]
    public async Task StepFailingOnce_IsRetriedByHangfire_AndEarlierStepDoesNotRunAgain()
    {
        var id = await _client.EnqueueAsync<AddFailSquareWorkflow>(new WorkflowInput(new AddInput { Argument1 = 1, Argument2 = 1 }, new FailInput { FailTimes = 1 }));

        var run = await WaitForStatusAsync(id, WorkflowStatus.Succeeded);

        Assert.That(_log.Count(id, "AddStep"), Is.EqualTo(1));
        Assert.That(_log.Count(id, "FailStep"), Is.EqualTo(2));
        Assert.That(_log.Count(id, "SquareStep"), Is.EqualTo(1));
        Assert.That(run.Steps.Select(s => s.Attempts), Is.EqualTo(new[] { 1, 2, 1 }));
        Assert.That(run.Steps[1].ExceptionMessage, Is.EqualTo("this step failed"), "the failure stays in the step's history");
    }

    [Test]
    public async Task RunWaitingForARetry_IsPending_WithTheErrorRecorded_NotFailed()
    {
        var id = await _client.EnqueueAsync<SlowRetryWorkflow>(new WorkflowInput(new FailInput { FailTimes = 1 }));
        var jobId = (await _client.GetAsync(id))!.JobId!;

        await Eventually.UntilAsync(() => Task.FromResult(JobState(jobId) == ScheduledState.StateName && _log.Count(id, "FailStep") == 1), Deadline,
            "retry scheduled");

        var run = (await _client.GetAsync(id))!;
        Assert.That(run.Status, Is.EqualTo(WorkflowStatus.Pending), "a run reads Failed only when no retry follows");
        Assert.That(run.ExceptionMessage, Is.EqualTo("this step failed"));
        Assert.That(run.FailedAt, Is.Not.Null);
        Assert.That(run.Steps.Single().Status, Is.EqualTo(WorkflowStatus.Failed));
        await _client.CancelAsync(id);
    }

    [Test]
    public async Task NonRetryableException_FailsTheRunAtOnce_WithoutRetries()
    {
        var id = await _client.EnqueueAsync<AddFailSquareWorkflow>(new WorkflowInput(new FailInput { FailTimes = 5, NonRetryable = true }));

        var run = await WaitForStatusAsync(id, WorkflowStatus.Failed);

        await Eventually.UntilAsync(() => Task.FromResult(JobState(run.JobId!) == FailedState.StateName), Deadline, "job Failed");
        Assert.That(_log.Count(id, "FailStep"), Is.EqualTo(1));
        Assert.That(run.ExceptionMessage, Is.EqualTo("this step failed for good"));
    }

    [Test]
    public async Task RetriesExhausted_RunIsFailed_ThenDashboardRequeueResumesIt()
    {
        // no-retry allows 1 retry; the step fails on attempts 1..2 and succeeds on 3.
        var id = await _client.EnqueueAsync<NoRetryWorkflow>(new WorkflowInput(new FailInput { FailTimes = 2 }));
        var failed = await WaitForStatusAsync(id, WorkflowStatus.Failed);
        await Eventually.UntilAsync(() => Task.FromResult(JobState(failed.JobId!) == FailedState.StateName), Deadline, "job Failed");
        Assert.That(_log.Count(id, "FailStep"), Is.EqualTo(2));

        // What the dashboard's Requeue button does on the Failed page.
        Assert.That(_jobs.ChangeState(failed.JobId!, new EnqueuedState(), FailedState.StateName), Is.True);

        var run = await WaitForStatusAsync(id, WorkflowStatus.Succeeded);
        Assert.That(_log.Count(id, "AddStep"), Is.EqualTo(1));
        Assert.That(_log.Count(id, "FailStep"), Is.EqualTo(3));
        Assert.That(run.JobId, Is.EqualTo(failed.JobId));
    }

    [Test]
    public async Task RetryAsync_ResumesAFailedRun_AfterRetriesAreExhausted()
    {
        var id = await _client.EnqueueAsync<NoRetryWorkflow>(new WorkflowInput(new FailInput { FailTimes = 2 }));
        await WaitForStatusAsync(id, WorkflowStatus.Failed);
        await Eventually.UntilAsync(async () => JobState((await _client.GetAsync(id))!.JobId!) == FailedState.StateName, Deadline, "job Failed");

        await _client.RetryAsync(id);

        await WaitForStatusAsync(id, WorkflowStatus.Succeeded);
        Assert.That(_log.Count(id, "AddStep"), Is.EqualTo(1));
        Assert.That(_log.Count(id, "FailStep"), Is.EqualTo(3));
        Assert.ThrowsAsync<WorkflowStateException>(() => _client.RetryAsync(id), "a succeeded run cannot be retried");
    }

    [Test]
    public async Task RunningRun_ShowsRunning_AndCancelAsync_CancelsTheStepInFlight_AndStartsNoOtherStep()
    {
        var gate = Guid.NewGuid().ToString();
        var id = await _client.EnqueueAsync<AddWaitSquareWorkflow>(new WorkflowInput(new WaitInput { Gate = gate }));
        await _gates.Entered(gate).Task.WaitAsync(Deadline);
        var running = await WaitForStatusAsync(id, WorkflowStatus.Running);
        Assert.That(running.Steps.Select(s => (s.StepName, s.Status)), Is.EqualTo(new[] { ("AddStep", WorkflowStatus.Succeeded), ("WaitStep", WorkflowStatus.Running) }));

        await _client.CancelAsync(id);

        await Eventually.UntilAsync(() => Task.FromResult(_gates.Gate(gate).Task.IsCompleted || JobState(running.JobId!) == DeletedState.StateName), Deadline, "job deleted");
        var run = await WaitForStatusAsync(id, WorkflowStatus.Cancelled);
        // The step's token fires (Hangfire notices the deletion); the gate is never opened.
        await Eventually.UntilAsync(async () => !(await _client.GetAsync(id))!.Steps.Any(s => s.Status == WorkflowStatus.Running)
                                                  || _log.Count(id, "WaitStep") == 1, Deadline, "step interrupted");
        _gates.Open(gate);
        Assert.That(_log.Count(id, "SquareStep"), Is.Zero);
        Assert.That(run.Status, Is.EqualTo(WorkflowStatus.Cancelled));
        Assert.ThrowsAsync<WorkflowStateException>(async () =>
        {
            var done = await _client.EnqueueAsync<AddWorkflow>(new WorkflowInput(new AddInput()));
            await WaitForStatusAsync(done, WorkflowStatus.Succeeded);
            await _client.CancelAsync(done);
        }, "a succeeded run cannot be cancelled");
    }

    [Test]
    public async Task DeletingTheJob_CancelsTheRun()
    {
        var id = await _client.EnqueueAsync<AddWorkflow>(new WorkflowInput(new AddInput()), new EnqueueOptions { Delay = TimeSpan.FromHours(1) });
        var run = (await _client.GetAsync(id))!;
        Assert.That(JobState(run.JobId!), Is.EqualTo(ScheduledState.StateName));

        Assert.That(_jobs.Delete(run.JobId!), Is.True);

        await WaitForStatusAsync(id, WorkflowStatus.Cancelled);
        Assert.That(_log.Count(id, "AddStep"), Is.Zero);
    }

    [Test]
    public async Task RequeueWhileProcessing_NeverOverlapsTwoExecutions()
    {
        var gate = Guid.NewGuid().ToString();
        var id = await _client.EnqueueAsync<AddWaitSquareWorkflow>(new WorkflowInput(new WaitInput { Gate = gate }));
        await _gates.Entered(gate).Task.WaitAsync(Deadline);
        var jobId = (await _client.GetAsync(id))!.JobId!;

        // The dashboard's Requeue on a processing job, twice, plus a duplicate job for the same run.
        Assert.That(_jobs.ChangeState(jobId, new EnqueuedState(), ProcessingState.StateName), Is.True);
        var duplicate = _jobs.Create(global::Hangfire.Common.Job.FromExpression<Workflow.Jobs.Hangfire.WorkflowJob>(j => j.ExecuteAsync(id, CancellationToken.None)), new EnqueuedState());
        // Both extra executions are picked up and wait on the run's guard while the first holds it.
        await Eventually.UntilAsync(() => Task.FromResult(JobState(duplicate) == ProcessingState.StateName), Deadline, "duplicate processing");

        _gates.Open(gate);

        await WaitForStatusAsync(id, WorkflowStatus.Succeeded);
        await Eventually.UntilAsync(() => Task.FromResult(JobState(duplicate) == SucceededState.StateName), Deadline, "duplicate job done");
        // Hangfire may abort the first execution when it notices its job was requeued (its token fires and the
        // step body runs again later): that is at-least-once. What must never happen is two at the same time,
        // or a checkpointed step running again.
        Assert.That(_log.MaxConcurrent(id), Is.EqualTo(1), "two executions of the run overlapped");
        Assert.That(_log.Count(id, "AddStep"), Is.EqualTo(1));
        Assert.That(_log.Count(id, "WaitStep"), Is.InRange(1, 2));
        Assert.That(_log.Count(id, "SquareStep"), Is.EqualTo(1));
    }

    [Test]
    public async Task RunCreatedInsideAFailingTransaction_LeavesNeitherRunNorJob()
    {
        var runs = await CountAsync("SELECT count(*) FROM workflow.workflow_runs");
        var jobs = await CountAsync("SELECT count(*) FROM hangfire.job");
        Guid id;
        using (new TransactionScope(TransactionScopeOption.Required, new TransactionOptions { IsolationLevel = IsolationLevel.ReadCommitted },
                   TransactionScopeAsyncFlowOption.Enabled))
        {
            id = await _client.EnqueueAsync<AddWorkflow>(new WorkflowInput(new AddInput()));
            // The caller's work fails: the scope is disposed without Complete().
        }

        Assert.That(await _client.GetAsync(id), Is.Null);
        Assert.That(await CountAsync("SELECT count(*) FROM workflow.workflow_runs"), Is.EqualTo(runs));
        Assert.That(await CountAsync("SELECT count(*) FROM hangfire.job"), Is.EqualTo(jobs));
    }

    [Test]
    public async Task RunCreatedInsideACompletedTransaction_IsCommittedWithItsJob()
    {
        Guid id;
        using (var scope = new TransactionScope(TransactionScopeOption.Required, new TransactionOptions { IsolationLevel = IsolationLevel.ReadCommitted },
                   TransactionScopeAsyncFlowOption.Enabled))
        {
            id = await _client.EnqueueAsync<AddWorkflow>(new WorkflowInput(new AddInput { Argument1 = 1 }));
            scope.Complete();
        }

        await WaitForStatusAsync(id, WorkflowStatus.Succeeded);
    }

    [Test]
    public async Task IdempotencyKey_RepeatedConcurrently_ReturnsOneRunWithOneJob()
    {
        var key = "order-" + Guid.NewGuid();
        var ids = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Task.Run(() =>
            _client.EnqueueAsync<AddWorkflow>(new WorkflowInput(new AddInput()), new EnqueueOptions { IdempotencyKey = key }))));

        Assert.That(ids.Distinct().Count(), Is.EqualTo(1));
        await WaitForStatusAsync(ids[0], WorkflowStatus.Succeeded);
        Assert.That(await CountAsync($"SELECT count(*) FROM workflow.workflow_runs WHERE idempotency_key = '{key}'"), Is.EqualTo(1));
        Assert.That(await CountAsync($"SELECT count(*) FROM hangfire.job WHERE arguments ->> 0 = '\"{ids[0]}\"'"), Is.EqualTo(1));
        Assert.That(_log.Count(ids[0], "AddStep"), Is.EqualTo(1));
    }

    [Test]
    public async Task EnqueueOptions_QueueAndDelay_AreApplied()
    {
        var delayed = await _client.EnqueueAsync<AddWorkflow>(new WorkflowInput(new AddInput()), new EnqueueOptions { Delay = TimeSpan.FromMinutes(30) });
        var queued = await _client.EnqueueAsync<AddWorkflow>(new WorkflowInput(new AddInput()), new EnqueueOptions { Queue = "reports" });

        Assert.That(JobState((await _client.GetAsync(delayed))!.JobId!), Is.EqualTo(ScheduledState.StateName));
        var jobId = (await _client.GetAsync(queued))!.JobId!;
        using var connection = _storage.GetConnection();
        Assert.That(connection.GetJobData(jobId)!.Job.Queue, Is.EqualTo("reports"));
        Assert.That(JobState(jobId), Is.EqualTo(EnqueuedState.StateName), "no server listens to 'reports' in this host");
        await _client.CancelAsync(delayed);
        await _client.CancelAsync(queued);
    }

    [Test]
    public async Task RecurringWorkflow_TriggerNow_CreatesALinkedRunFromTheSnapshot()
    {
        var scheduler = _host.Services.GetRequiredService<IWorkflowScheduler>();
        var recurringId = "nightly-" + Guid.NewGuid().ToString("N")[..8];
        var input = new WorkflowInput(new AddInput { Argument1 = 3, Argument2 = 4 });
        await scheduler.AddOrUpdateRecurringAsync<AddThenSquareWorkflow>(recurringId, Cron.Never(), input);
        input.Set(new AddInput { Argument1 = 100 }); // the schedule holds a snapshot

        // The dashboard's "Trigger now", twice.
        var manager = _host.Services.GetRequiredService<IRecurringJobManagerV2>();
        manager.TriggerJob(recurringId);
        manager.TriggerJob(recurringId);

        IReadOnlyList<WorkflowRun> runs = [];
        await Eventually.UntilAsync(async () => (runs = await _client.ListAsync(new WorkflowQuery { RecurringId = recurringId })).Count == 2
                                                  && runs.All(r => r.Status == WorkflowStatus.Succeeded), Deadline, "two recurring runs");
        // A listing carries no output JSON; each run's own read does.
        var outputs = new List<int>();
        foreach (var listed in runs)
        {
            outputs.Add((await _client.GetAsync(listed.Id))!.Output!["square_output"]!["result"]!.Value<int>());
        }

        Assert.That(outputs, Is.All.EqualTo(49));
        Assert.That(runs.Select(r => r.RecurringId), Is.All.EqualTo(recurringId));

        await scheduler.RemoveRecurringAsync(recurringId);
        using var connection = _storage.GetConnection();
        Assert.That(connection.GetAllEntriesFromHash($"recurring-job:{recurringId}"), Is.Null);
    }

    [Test]
    public void RecurringWorkflow_WithInvalidInput_IsRefused()
    {
        var scheduler = _host.Services.GetRequiredService<IWorkflowScheduler>();
        var ex = Assert.ThrowsAsync<WorkflowDataValidationException>(() =>
            scheduler.AddOrUpdateRecurringAsync<AddWorkflow>("bad", Cron.Daily(), new WorkflowInput(new AddInput { Argument1 = -1 })));
        Assert.That(ex!.Errors.Single().Path, Is.EqualTo("test_step_input.argument_1"));
    }

    [Test]
    public async Task ThreeHundredConcurrentRuns_AllSucceed_EachStepExecutedOnce()
    {
        var ids = await Task.WhenAll(Enumerable.Range(0, 300).Select(i => Task.Run(() =>
            _client.EnqueueAsync<AddThenSquareWorkflow>(new WorkflowInput(new AddInput { Argument1 = i % 100 }, new SquareInput { Offset = 1 })))));

        await Eventually.UntilAsync(async () =>
            (await _client.ListAsync(new WorkflowQuery { WorkflowName = "add-then-square", Status = WorkflowStatus.Succeeded, Limit = 1000 }))
                .Count(r => ids.Contains(r.Id)) == 300, TimeSpan.FromMinutes(3), "300 runs succeeded");

        foreach (var id in ids)
        {
            Assert.That(_log.Count(id, "AddStep"), Is.EqualTo(1));
            Assert.That(_log.Count(id, "SquareStep"), Is.EqualTo(1));
        }
    }
}
