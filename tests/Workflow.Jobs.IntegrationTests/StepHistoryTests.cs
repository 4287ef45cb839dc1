using Hangfire;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Npgsql;
using Workflow.Jobs.EntityFrameworkCore;

namespace Workflow.Jobs.IntegrationTests;

/// <summary>WorkflowStepRun.History on a real Hangfire server and PostgreSQL: one row per step attempt.</summary>
public class StepHistoryTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);
    private string _connectionString = null!;
    private IHost _host = null!;
    private IWorkflowClient _client = null!;
    private Gates _gates = null!;

    [OneTimeSetUp]
    public async Task OneTimeSetUpAsync()
    {
        _connectionString = await TestDatabases.CreateAsync(nameof(StepHistoryTests));
        _host = await TestHosts.StartHangfireHostAsync(_connectionString);
        _client = _host.Services.GetRequiredService<IWorkflowClient>();
        _gates = _host.Services.GetRequiredService<Gates>();
    }

    [OneTimeTearDown]
    public async Task OneTimeTearDownAsync()
    {
        await _host.StopAsync();
        _host.Dispose();
    }

    [Test]
    public async Task History_HasEachAttemptWithOutcomeErrorJobAndServer_WhenAStepFailsTwiceThenSucceeds()
    {
        var id = await _client.EnqueueAsync<AddFailSquareWorkflow>(new WorkflowInput(new AddInput { Argument1 = 1, Argument2 = 2 }, new FailInput { FailTimes = 2 }));

        var run = await WaitForStatusAsync(id, WorkflowStatus.Succeeded);

        var fail = run.Steps.Single(s => s.StepName == "FailStep");
        Assert.That(fail.History.Select(a => a.Attempt), Is.EqualTo(new[] { 1, 2, 3 }), "one row per attempt, oldest first");
        Assert.That(fail.History.Select(a => a.Status), Is.EqualTo(new[] { WorkflowStatus.Failed, WorkflowStatus.Failed, WorkflowStatus.Succeeded }));
        Assert.Multiple(() =>
        {
            foreach (var failed in fail.History.Take(2))
            {
                Assert.That(failed.ExceptionMessage, Is.EqualTo("this step failed"));
                Assert.That(failed.ExceptionType, Is.EqualTo(typeof(InvalidOperationException).FullName));
                Assert.That(failed.StackTrace, Does.Contain("InvalidOperationException").And.Contain(nameof(FailStep)));
            }

            var succeeded = fail.History[2];
            Assert.That(succeeded.ExceptionMessage, Is.Null);
            Assert.That(succeeded.ExceptionType, Is.Null);
            Assert.That(succeeded.StackTrace, Is.Null);
        });

        // Every attempt ran in the run's one job (Hangfire retried it), on this host's Hangfire server.
        var servers = JobStorageServers();
        foreach (var attempt in run.Steps.SelectMany(s => s.History))
        {
            Assert.That(attempt.JobId, Is.EqualTo(run.JobId), $"attempt {attempt.Attempt} ran in the run's job");
            Assert.That(servers, Does.Contain(attempt.ServerName), $"attempt {attempt.Attempt} names the Hangfire server that ran it");
            Assert.That(attempt.FinishedAt, Is.GreaterThanOrEqualTo(attempt.StartedAt));
            Assert.That(attempt.Duration, Is.EqualTo(attempt.FinishedAt - attempt.StartedAt));
        }

        Assert.That(fail.History.Zip(fail.History.Skip(1)).All(p => p.First.FinishedAt <= p.Second.StartedAt), Is.True, "attempts follow each other");
        Assert.That(run.Steps.Single(s => s.StepName == "AddStep").History.Select(a => a.Status), Is.EqualTo(new[] { WorkflowStatus.Succeeded }),
            "the step before the failing one ran once");
        Assert.That(run.Steps.Single(s => s.StepName == "SquareStep").History.Select(a => a.Status), Is.EqualTo(new[] { WorkflowStatus.Succeeded }));
    }

    [Test]
    public async Task History_ShowsTheAttemptOfAStepInFlight_AsRunning_WithoutAnEnd()
    {
        var gate = Guid.NewGuid().ToString();
        var id = await _client.EnqueueAsync<AddWaitSquareWorkflow>(new WorkflowInput(new AddInput(), new WaitInput { Gate = gate }));
        await _gates.Entered(gate).Task.WaitAsync(Deadline);

        var attempt = (await _client.GetAsync(id))!.Steps.Single(s => s.StepName == "WaitStep").History.Single();

        Assert.That(attempt.Status, Is.EqualTo(WorkflowStatus.Running));
        Assert.That(attempt.FinishedAt, Is.Null);
        Assert.That(attempt.Duration, Is.Null);
        _gates.Open(gate);
        await WaitForStatusAsync(id, WorkflowStatus.Succeeded);
    }

    [Test]
    public async Task History_EndsTheLostAttemptWithoutAnOutcome_WhenTheExecutionDiesMidStepAndTheRunResumes()
    {
        var gate = Guid.NewGuid().ToString();
        var id = await _client.EnqueueAsync<AddWaitSquareWorkflow>(new WorkflowInput(new AddInput(), new WaitInput { Gate = gate }));
        await _gates.Entered(gate).Task.WaitAsync(Deadline);

        // The execution's own connection (holding the run's guard) dies, as in a crash: its attempt can write nothing more.
        Assert.That(await TerminateGuardConnectionsAsync(), Is.EqualTo(1), "one execution holds a guard");
        _gates.Open(gate);
        var run = await WaitForStatusAsync(id, WorkflowStatus.Succeeded);

        var history = run.Steps.Single(s => s.StepName == "WaitStep").History;
        Assert.That(history, Has.Count.EqualTo(2), string.Join("; ", history.Select(a => $"{a.Attempt} {a.Status} {a.ExceptionMessage}")));
        Assert.Multiple(() =>
        {
            Assert.That(history[0].Status, Is.EqualTo(WorkflowStatus.Pending), "the lost attempt ended without an outcome");
            Assert.That(history[0].FinishedAt, Is.Not.Null.And.LessThanOrEqualTo(history[1].StartedAt), "closed when the next attempt started");
            Assert.That(history[0].ExceptionMessage, Does.StartWith("Abandoned"));
            Assert.That(history[0].JobId, Is.EqualTo(run.JobId));
            Assert.That(history[1].Status, Is.EqualTo(WorkflowStatus.Succeeded));
            Assert.That(history[1].JobId, Is.EqualTo(run.JobId));
        });
    }

    [Test]
    public async Task History_EndsTheAttemptAsInterrupted_WhenTheRunIsCancelledMidStep()
    {
        var gate = Guid.NewGuid().ToString();
        var id = await _client.EnqueueAsync<AddWaitSquareWorkflow>(new WorkflowInput(new AddInput(), new WaitInput { Gate = gate }));
        await _gates.Entered(gate).Task.WaitAsync(Deadline);

        await _client.CancelAsync(id);

        WorkflowStepAttempt? attempt = null;
        await Eventually.UntilAsync(async () =>
                (attempt = (await _client.GetAsync(id))!.Steps.Single(s => s.StepName == "WaitStep").History.Single()).FinishedAt is not null,
            Deadline, "the step body to be stopped and its attempt ended");
        Assert.That(attempt!.Status, Is.EqualTo(WorkflowStatus.Pending));
        Assert.That(attempt.ExceptionMessage, Does.StartWith("Interrupted"));
        Assert.That((await _client.GetAsync(id))!.Status, Is.EqualTo(WorkflowStatus.Cancelled));
    }

    [Test]
    public async Task History_HasNoJobAndTheMachineName_WhenTheRunIsExecutedInProcess()
    {
        var runner = _host.Services.GetRequiredService<IWorkflowRunner>();
        var id = await runner.CreateAsync<AddWorkflow>(new WorkflowInput(new AddInput { Argument1 = 3 }));

        await runner.ExecuteAsync(id);

        var attempt = (await _client.GetAsync(id))!.Steps.Single().History.Single();
        Assert.That(attempt.Status, Is.EqualTo(WorkflowStatus.Succeeded));
        Assert.That(attempt.JobId, Is.Null);
        Assert.That(attempt.ServerName, Is.EqualTo(Environment.MachineName));
    }

    [Test]
    public async Task PurgeAsync_DeletesTheRunsAttempts_WithItsSteps()
    {
        var key = "history-purge-" + Guid.NewGuid().ToString("N");
        var id = await _client.EnqueueAsync<NoRetryWorkflow>(new WorkflowInput(new AddInput(), new FailInput { FailTimes = 9 }), new EnqueueOptions { IdempotencyKey = key });
        var run = await WaitForStatusAsync(id, WorkflowStatus.Failed);
        var stepIds = run.Steps.Select(s => s.Id).ToArray();
        Assert.That(await CountAttemptsAsync(stepIds), Is.EqualTo(run.Steps.Sum(s => s.History.Count)).And.GreaterThanOrEqualTo(2));

        Assert.That(await _client.PurgeAsync(new WorkflowQuery { IdempotencyKey = key }), Is.EqualTo(1));

        Assert.That(await CountAttemptsAsync(stepIds), Is.Zero, "the attempts went with their steps");
    }

    [Test]
    public async Task ListAsync_WithSteps_LeavesHistoryEmpty()
    {
        var id = await _client.EnqueueAsync<AddWorkflow>(new WorkflowInput(new AddInput()), new EnqueueOptions { IdempotencyKey = "history-list-" + Guid.NewGuid().ToString("N") });
        var run = await WaitForStatusAsync(id, WorkflowStatus.Succeeded);

        var listed = await _client.ListAsync(new WorkflowQuery { IdempotencyKey = run.IdempotencyKey, IncludeSteps = true });

        Assert.That(listed.Single().Steps.Single().History, Is.Empty);
        Assert.That(run.Steps.Single().History, Has.Count.EqualTo(1), "GetAsync has it");
    }

    private async Task<WorkflowRun> WaitForStatusAsync(Guid id, WorkflowStatus status)
    {
        WorkflowRun? run = null;
        await Eventually.UntilAsync(async () => (run = await _client.GetAsync(id))?.Status == status, Deadline, $"run {id} to be {status} (is {run?.Status})");
        return run!;
    }

    private List<string> JobStorageServers()
        => _host.Services.GetRequiredService<JobStorage>().GetMonitoringApi().Servers().Select(s => s.Name).ToList();

    private async Task<long> CountAttemptsAsync(Guid[] stepIds)
    {
        await using var connection = new NpgsqlConnection(_connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand($"SELECT count(*) FROM {NpgsqlWorkflowStore.AttemptsTable} WHERE step_uuid = ANY(@steps)", connection);
        command.Parameters.AddWithValue("steps", stepIds);
        return (long)(await command.ExecuteScalarAsync())!;
    }

    private async Task<long> TerminateGuardConnectionsAsync()
    {
        await using var connection = new NpgsqlConnection(_connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(
            """
            SELECT count(pg_terminate_backend(l.pid)) FROM pg_locks l
            WHERE l.locktype = 'advisory' AND l.granted AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
              AND l.objsubid = 1 -- the runs' guards (one bigint key), not the leader loop's lock (two int keys)
            """, connection);
        return (long)(await command.ExecuteScalarAsync())!;
    }
}

/// <summary>How stored attempt rows read: an attempt left open by a dead execution never reads as running.</summary>
public class StepHistoryReadTests
{
    private static readonly DateTimeOffset Start = new(2026, 11, 29, 12, 0, 0, TimeSpan.Zero);

    private static WorkflowStepRun Step(WorkflowStatus status, int attempts) => new()
    {
        Id = Guid.NewGuid(),
        StepName = "s",
        Status = status,
        Input = [],
        Created = Start,
        Modified = Start,
        Attempts = attempts,
    };

    private static WorkflowStepAttemptEntity Open(int attempt) => new() { Attempt = attempt, StartedAt = Start, Status = WorkflowStatus.Running };

    [Test]
    public void Read_KeepsTheLatestOpenAttemptRunning_WhenTheRunIsRunning()
    {
        var history = StepHistory.Read([Open(1)], Step(WorkflowStatus.Running, 1), WorkflowStatus.Running);

        Assert.That(history.Single().Status, Is.EqualTo(WorkflowStatus.Running));
        Assert.That(history.Single().ExceptionMessage, Is.Null);
    }

    [Test]
    public void Read_KeepsTheLatestOpenAttemptRunning_WhenTheRunWaits()
    {
        var history = StepHistory.Read([Open(1)], Step(WorkflowStatus.Waiting, 1), WorkflowStatus.Waiting);

        Assert.That(history.Single().Status, Is.EqualTo(WorkflowStatus.Running));
    }

    [TestCase(WorkflowStatus.Cancelled)]
    [TestCase(WorkflowStatus.Failed)]
    [TestCase(WorkflowStatus.Pending)]
    public void Read_ShowsAnOpenAttemptAsAbandoned_WhenTheRunIsNotExecuting(WorkflowStatus runStatus)
    {
        var history = StepHistory.Read([Open(1)], Step(WorkflowStatus.Running, 1), runStatus);

        Assert.That(history.Single().Status, Is.EqualTo(WorkflowStatus.Pending));
        Assert.That(history.Single().ExceptionMessage, Does.StartWith("Abandoned"));
    }

    [Test]
    public void StackText_IsBoundedWithAnEllipsis_WhenTheExceptionTextIsLonger()
    {
        var text = NpgsqlRunExecution.StackText(new InvalidOperationException(new string('x', 40_000)));

        Assert.That(text, Has.Length.EqualTo(NpgsqlRunExecution.MaxStackTraceLength));
        Assert.That(text, Does.StartWith("System.InvalidOperationException: xxx").And.EndWith("…"));
        Assert.That(NpgsqlRunExecution.Bounded("short", 200), Is.EqualTo("short"));
        Assert.That(NpgsqlRunExecution.Bounded(null, 200), Is.Null);
    }

    [Test]
    public void Read_ShowsAnOpenEarlierAttemptAsAbandoned_AndOrdersByAttempt()
    {
        var history = StepHistory.Read([Open(2), Open(1)], Step(WorkflowStatus.Running, 2), WorkflowStatus.Running);

        Assert.That(history.Select(a => a.Attempt), Is.EqualTo(new[] { 1, 2 }));
        Assert.That(history.Select(a => a.Status), Is.EqualTo(new[] { WorkflowStatus.Pending, WorkflowStatus.Running }));
    }
}
