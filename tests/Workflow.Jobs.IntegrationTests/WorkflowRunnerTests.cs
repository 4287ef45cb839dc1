using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Newtonsoft.Json.Linq;
using Npgsql;
using Workflow.Jobs.EntityFrameworkCore;

namespace Workflow.Jobs.IntegrationTests;

/// <summary>The engine on real PostgreSQL, in-process (no job scheduler).</summary>
public class WorkflowRunnerTests
{
    private string _connectionString = null!;
    private IHost _host = null!;
    private IWorkflowRunner _runner = null!;
    private IWorkflowClient _client = null!;
    private ExecutionLog _log = null!;

    [OneTimeSetUp]
    public async Task OneTimeSetUpAsync()
    {
        _connectionString = await TestDatabases.CreateAsync(nameof(WorkflowRunnerTests));
        _host = await TestHosts.StartEngineHostAsync(_connectionString);
        _runner = _host.Services.GetRequiredService<IWorkflowRunner>();
        _client = _host.Services.GetRequiredService<IWorkflowClient>();
        _log = _host.Services.GetRequiredService<ExecutionLog>();
    }

    [OneTimeTearDown]
    public async Task OneTimeTearDownAsync()
    {
        await _host.StopAsync();
        _host.Dispose();
    }

    private async Task<T> ScalarAsync<T>(string sql, params (string Name, object Value)[] parameters)
    {
        await using var connection = new NpgsqlConnection(_connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        foreach (var (name, value) in parameters)
        {
            command.Parameters.AddWithValue(name, value);
        }

        return (T)(await command.ExecuteScalarAsync())!;
    }

    private async Task ExecAsync(string sql, params (string Name, object Value)[] parameters)
    {
        await using var connection = new NpgsqlConnection(_connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        foreach (var (name, value) in parameters)
        {
            command.Parameters.AddWithValue(name, value);
        }

        await command.ExecuteNonQueryAsync();
    }

    [Test]
    public async Task ExecuteAsync_OneStepAddWorkflow_OutputsFive()
    {
        var id = await _runner.CreateAsync<AddWorkflow>(new WorkflowInput(new AddInput { Argument1 = 2, Argument2 = 3 }));

        var output = await _runner.ExecuteAsync(id);

        Assert.That(output.Get<AddOutput>()!.Result, Is.EqualTo(5));
        var run = await _client.GetAsync(id);
        Assert.That(run!.Status, Is.EqualTo(WorkflowStatus.Succeeded));
        Assert.That(run.Output!["test_step_output"]!["result"]!.Value<int>(), Is.EqualTo(5));
        Assert.That(run.SucceededAt, Is.Not.Null);
        Assert.That(run.SucceededAt!.Value.Offset, Is.EqualTo(TimeSpan.Zero));
        Assert.That(run.Steps, Has.Count.EqualTo(1));
        Assert.That(run.Steps[0].Status, Is.EqualTo(WorkflowStatus.Succeeded));
        Assert.That(run.Steps[0].Attempts, Is.EqualTo(1));
        Assert.That(run.Steps[0].Input["argument_1"]!.Value<int>(), Is.EqualTo(2));
        Assert.That(run.CompletedSteps, Is.EqualTo(1));
    }

    [Test]
    public async Task ExecuteAsync_AddThenSquare_WithoutSquareInput_OutputsTwentyFive()
    {
        var id = await _runner.CreateAsync<AddThenSquareWorkflow>(new WorkflowInput(new AddInput { Argument1 = 2, Argument2 = 3 }));

        var output = await _runner.ExecuteAsync(id);

        Assert.That(output.Get<SquareOutput>()!.Result, Is.EqualTo(25));
        Assert.That(output.Get<AddOutput>()!.Result, Is.EqualTo(5));
        var run = await _client.GetAsync(id);
        Assert.That(run!.Steps.Select(s => s.StepName), Is.EqualTo(new[] { "AddStep", "SquareStep" }));
        Assert.That(run.Steps[1].PrecedingStepId, Is.EqualTo(run.Steps[0].Id));
        Assert.That(run.Steps[1].Input.Properties(), Is.Empty);
    }

    [Test]
    public async Task ExecuteAsync_FailingStep_RecordsMessageOnStepAndRun_KeepsEarlierOutput()
    {
        var id = await _runner.CreateAsync<AddFailSquareWorkflow>(new WorkflowInput(new AddInput { Argument1 = 1, Argument2 = 1 }, new FailInput { FailTimes = 1 }));

        var ex = Assert.ThrowsAsync<UnitOfWorkException>(() => _runner.ExecuteAsync(id));

        Assert.That(ex!.Message, Is.EqualTo("this step failed"));
        Assert.That(ex.InnerException, Is.TypeOf<InvalidOperationException>());
        var run = await _client.GetAsync(id);
        Assert.That(run!.Status, Is.EqualTo(WorkflowStatus.Failed));
        Assert.That(run.ExceptionMessage, Is.EqualTo("this step failed"));
        Assert.That(run.FailedAt, Is.Not.Null);
        Assert.That(run.Steps.Select(s => (s.StepName, s.Status)), Is.EqualTo(new[]
        {
            ("AddStep", WorkflowStatus.Succeeded),
            ("FailStep", WorkflowStatus.Failed),
        }), "the step after the failed one gets no record");
        Assert.That(run.Steps[1].ExceptionMessage, Is.EqualTo("this step failed"));
        Assert.That(run.Steps[1].FailedAt, Is.Not.Null);
        Assert.That(run.Output!["test_step_output"]!["result"]!.Value<int>(), Is.EqualTo(2), "succeeded steps keep their outputs");
    }

    [Test]
    public async Task ExecuteAsync_AgainAfterFailure_ResumesAtFailedStep()
    {
        var id = await _runner.CreateAsync<AddFailSquareWorkflow>(new WorkflowInput(new AddInput { Argument1 = 1, Argument2 = 2 }, new FailInput { FailTimes = 1 }));
        Assert.ThrowsAsync<UnitOfWorkException>(() => _runner.ExecuteAsync(id));

        var output = await _runner.ExecuteAsync(id);

        Assert.That(output.Get<SquareOutput>()!.Result, Is.EqualTo(9));
        Assert.That(output.Get<FailOutput>()!.Attempt, Is.EqualTo(2));
        Assert.That(_log.Count(id, "AddStep"), Is.EqualTo(1), "a checkpointed step never runs again");
        Assert.That(_log.Count(id, "FailStep"), Is.EqualTo(2));
        var run = await _client.GetAsync(id);
        Assert.That(run!.Status, Is.EqualTo(WorkflowStatus.Succeeded));
        Assert.That(run.Steps.Select(s => s.Attempts), Is.EqualTo(new[] { 1, 2, 1 }));
        var stepIds = _log.For(id).Where(e => e.Step == "FailStep").Select(e => e.StepId).Distinct().ToList();
        Assert.That(stepIds, Has.Count.EqualTo(1), "StepId is stable across attempts");
        Assert.That(run.Attempts, Is.EqualTo(2));
    }

    [Test]
    public async Task ExecuteAsync_SucceededRun_ReturnsStoredOutput_WithoutRunningSteps()
    {
        var id = await _runner.CreateAsync<AddWorkflow>(new WorkflowInput(new AddInput { Argument1 = 4, Argument2 = 4 }));
        await _runner.ExecuteAsync(id);

        var again = await _runner.ExecuteAsync(id);

        Assert.That(again.Get<AddOutput>()!.Result, Is.EqualTo(8));
        Assert.That(_log.Count(id, "AddStep"), Is.EqualTo(1));
    }

    [Test]
    public async Task CreateAsync_InvalidInput_ReportsEveryError_AndPersistsNothing()
    {
        var before = await ScalarAsync<long>("SELECT count(*) FROM workflow.workflow_runs");
        var input = WorkflowInput.FromJson(JObject.Parse("{\"test_step_input\":{\"argument_1\":\"abc\"},\"square_input\":{\"offset\":\"x\"}}"));

        var ex = Assert.ThrowsAsync<WorkflowDataValidationException>(() => _runner.CreateAsync<AddThenSquareWorkflow>(input));

        Assert.That(ex!.Errors.Select(e => e.Path), Is.EquivalentTo(new[] { "test_step_input.argument_1", "square_input.offset" }));
        Assert.That(await ScalarAsync<long>("SELECT count(*) FROM workflow.workflow_runs"), Is.EqualTo(before));
    }

    [Test]
    public async Task ExecuteAsync_Concurrently_RunsEachStepOnce()
    {
        var ids = new List<Guid>();
        for (var i = 0; i < 10; i++)
        {
            ids.Add(await _runner.CreateAsync<AddThenSquareWorkflow>(new WorkflowInput(new AddInput { Argument1 = i, Argument2 = 1 })));
        }

        // Four executions of each run at once: the guard lets one run the steps; the others wait and return the stored output.
        var outputs = await Task.WhenAll(ids.SelectMany(id => Enumerable.Range(0, 4).Select(_ => Task.Run(() => _runner.ExecuteAsync(id)))));

        Assert.That(outputs.All(o => o.Get<SquareOutput>() is not null), Is.True);
        foreach (var id in ids)
        {
            Assert.That(_log.Count(id, "AddStep"), Is.EqualTo(1));
            Assert.That(_log.Count(id, "SquareStep"), Is.EqualTo(1));
        }
    }

    [Test]
    public async Task SecondExecution_Waits_WhileFirstHoldsTheRun()
    {
        var gate = Guid.NewGuid().ToString();
        var gates = _host.Services.GetRequiredService<Gates>();
        var id = await _runner.CreateAsync<AddWaitSquareWorkflow>(new WorkflowInput(new WaitInput { Gate = gate }));
        var first = Task.Run(() => _runner.ExecuteAsync(id));
        await gates.Entered(gate).Task.WaitAsync(TimeSpan.FromSeconds(30));

        var second = Task.Run(() => _runner.ExecuteAsync(id));
        // The second has had several lock polls; it must still be waiting, having run nothing.
        await Eventually.UntilAsync(() => Task.FromResult(_log.Count(id, "AddStep") == 1), TimeSpan.FromSeconds(5), "first execution ran AddStep");
        Assert.That(await Task.WhenAny(second, Task.Delay(TimeSpan.FromMilliseconds(800))), Is.Not.SameAs(second), "second execution must wait for the first");

        gates.Open(gate);
        await Task.WhenAll(first, second).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.That(_log.Count(id, "WaitStep"), Is.EqualTo(1));
        Assert.That(_log.Count(id, "SquareStep"), Is.EqualTo(1));
    }

    [Test]
    public async Task Database_EnforcesOneLiveStepRecordPerRunAndStep()
    {
        var id = await _runner.CreateAsync<AddWorkflow>(new WorkflowInput(new AddInput()));
        await _runner.ExecuteAsync(id);

        var ex = Assert.ThrowsAsync<PostgresException>(() => ExecAsync(
            "INSERT INTO workflow.workflow_steps (uuid, workflow_record_uuid, step_name, status, input_data, created, modified, is_removed, attempts) " +
            "VALUES (@id, @run, 'AddStep', 'Pending', '{}', now(), now(), false, 0)", ("id", Guid.NewGuid()), ("run", id)));

        Assert.That(ex!.SqlState, Is.EqualTo(PostgresErrorCodes.UniqueViolation));
    }

    [Test]
    public async Task SoftDeletedRun_IsInvisible_AndNeverExecuted()
    {
        var id = await _runner.CreateAsync<AddWorkflow>(new WorkflowInput(new AddInput()));
        await ExecAsync("UPDATE workflow.workflow_runs SET is_removed = true WHERE uuid = @id", ("id", id));

        Assert.That(await _client.GetAsync(id), Is.Null);
        Assert.That((await _client.ListAsync(new WorkflowQuery { Limit = 1000 })).Select(r => r.Id), Does.Not.Contain(id));
        var ex = Assert.ThrowsAsync<WorkflowRunNotFoundException>(() => _runner.ExecuteAsync(id));
        Assert.That(ex!.Code, Is.EqualTo(UnitOfWorkException.NotFoundCode));
        Assert.That(_log.Count(id, "AddStep"), Is.Zero);
    }

    [Test]
    public async Task SoftDeletedStep_IsInvisible_AndRunsAgain()
    {
        var id = await _runner.CreateAsync<AddWorkflow>(new WorkflowInput(new AddInput { Argument1 = 1 }));
        await _runner.ExecuteAsync(id);
        await ExecAsync("UPDATE workflow.workflow_steps SET is_removed = true WHERE workflow_record_uuid = @id", ("id", id));
        await ExecAsync("UPDATE workflow.workflow_runs SET status = 'Failed' WHERE uuid = @id", ("id", id));

        Assert.That((await _client.GetAsync(id))!.Steps, Is.Empty);
        await _runner.ExecuteAsync(id);

        Assert.That(_log.Count(id, "AddStep"), Is.EqualTo(2));
        Assert.That((await _client.GetAsync(id))!.Steps, Has.Count.EqualTo(1));
    }

    [Test]
    public async Task ExecuteAsync_FailsWithClearMessage_WhenDefinitionChanged()
    {
        var id = await _runner.CreateAsync<AddThenSquareWorkflow>(new WorkflowInput(new AddInput()));
        await ExecAsync("UPDATE workflow.workflow_runs SET step_names = ARRAY['AddStep','OldStep'] WHERE uuid = @id", ("id", id));

        var ex = Assert.ThrowsAsync<UnitOfWorkException>(() => _runner.ExecuteAsync(id));

        Assert.That(ex!.Code, Is.EqualTo("definition_mismatch"));
        var run = await _client.GetAsync(id);
        Assert.That(run!.Status, Is.EqualTo(WorkflowStatus.Failed));
        Assert.That(run.ExceptionMessage, Does.Contain("OldStep").And.Contain("SquareStep"));
        Assert.That(_log.Count(id, "AddStep"), Is.Zero);
    }

    [Test]
    public async Task ListAsync_FiltersByStatusAndName_NewestFirst_WithPaging()
    {
        var a = await _runner.CreateAsync<AddWorkflow>(new WorkflowInput(new AddInput()));
        var b = await _runner.CreateAsync<AddWorkflow>(new WorkflowInput(new AddInput()));
        await _runner.ExecuteAsync(b);

        var succeeded = await _client.ListAsync(new WorkflowQuery { WorkflowName = "add", Status = WorkflowStatus.Succeeded, Limit = 1000 });
        var pending = await _client.ListAsync(new WorkflowQuery { WorkflowName = "add", Status = WorkflowStatus.Pending, Limit = 1000, IncludeSteps = true });
        var page = await _client.ListAsync(new WorkflowQuery { WorkflowName = "add", Limit = 1, Offset = 0 });

        Assert.That(succeeded.Select(r => r.Id), Does.Contain(b).And.Not.Contain(a));
        Assert.That(pending.Select(r => r.Id), Does.Contain(a).And.Not.Contain(b));
        Assert.That(page, Has.Count.EqualTo(1));
        Assert.That(succeeded.Zip(succeeded.Skip(1)).All(p => p.First.Created >= p.Second.Created), Is.True);
    }

    [Test]
    public async Task Steps_AreResolvedFromDependencyInjection()
    {
        var id = await _runner.CreateAsync<AddWorkflow>(new WorkflowInput(new AddInput()));
        await _runner.ExecuteAsync(id);
        // AddStep's constructor takes the host's ExecutionLog singleton; the entry proves injection.
        Assert.That(_log.Count(id, "AddStep"), Is.EqualTo(1));
    }

    [Test]
    public async Task Migrations_CreateTheSchema_WithUniqueAndListingIndexes()
    {
        await using var scope = _host.Services.CreateAsyncScope();
        var factory = scope.ServiceProvider.GetRequiredService<IDbContextFactory<WorkflowDbContext>>();
        await using var db = await factory.CreateDbContextAsync();
        Assert.That(await db.Database.GetPendingMigrationsAsync(), Is.Empty);
        var indexes = await ScalarAsync<string>("SELECT string_agg(indexname, ',' ORDER BY indexname) FROM pg_indexes WHERE schemaname = 'workflow'");
        Assert.That(indexes, Does.Contain("ux_workflow_steps_run_step").And.Contain("ix_workflow_runs_status_created").And.Contain("ix_workflow_runs_name_created"));
    }
}
