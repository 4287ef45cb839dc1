using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Npgsql;

namespace Workflow.Jobs.IntegrationTests;

/// <summary>
/// The execution guard with pooled connections that are not reset on reuse (no DISCARD ALL): the
/// advisory lock must never be left on a pooled session, whatever way an execution ends.
/// </summary>
public class NpgsqlRunExecutionTests
{
    private string _connectionString = null!;
    private IHost _host = null!;
    private IWorkflowRunner _runner = null!;

    [OneTimeSetUp]
    public async Task OneTimeSetUpAsync()
    {
        _connectionString = await TestDatabases.CreateAsync(nameof(NpgsqlRunExecutionTests));
        _host = await TestHosts.StartEngineHostAsync(_connectionString);
        _runner = _host.Services.GetRequiredService<IWorkflowRunner>();
    }

    [OneTimeTearDown]
    public async Task OneTimeTearDownAsync()
    {
        await _host.StopAsync();
        _host.Dispose();
    }

    [Test]
    public void UseNpgsql_TurnsSessionResetOff_UnlessResetSessionOnCloseIsSet()
    {
        static bool NoReset(Action<WorkflowNpgsqlOptions>? configure)
        {
            var services = new ServiceCollection();
            services.AddWorkflowJobs(o => o.UseNpgsql("Host=localhost;Database=x", configure));
            using var provider = services.BuildServiceProvider();
            var dataSource = provider.GetRequiredKeyedService<NpgsqlDataSource>(WorkflowStorageKeys.DataSource);
            return new NpgsqlConnectionStringBuilder(dataSource.ConnectionString).NoResetOnClose;
        }

        Assert.That(NoReset(null), Is.True);
        Assert.That(NoReset(o => o.ResetSessionOnClose = true), Is.False);
    }

    [Test]
    public async Task ExecuteAsync_LeavesNoAdvisoryLockOnPooledSessions_AfterSuccessFailureAndWaiting()
    {
        var gates = _host.Services.GetRequiredService<Gates>();
        var succeeded = await _runner.CreateAsync<AddThenSquareWorkflow>(new WorkflowInput(new AddInput { Argument1 = 1, Argument2 = 2 }));
        var failing = await _runner.CreateAsync<AddFailSquareWorkflow>(new WorkflowInput(new FailInput { FailTimes = 1, NonRetryable = true }));
        var gate = Guid.NewGuid().ToString();
        var waited = await _runner.CreateAsync<AddWaitSquareWorkflow>(new WorkflowInput(new WaitInput { Gate = gate }));

        await _runner.ExecuteAsync(succeeded);
        Assert.ThrowsAsync<UnitOfWorkException>(() => _runner.ExecuteAsync(failing));
        var first = Task.Run(() => _runner.ExecuteAsync(waited));
        await gates.Entered(gate).Task.WaitAsync(TimeSpan.FromSeconds(30));
        var second = Task.Run(() => _runner.ExecuteAsync(waited));
        Assert.That(await AdvisoryLocksAsync(), Is.EqualTo(1), "the first execution holds its guard meanwhile");
        gates.Open(gate);
        await Task.WhenAll(first, second).WaitAsync(TimeSpan.FromSeconds(30));

        Assert.That(await AdvisoryLocksAsync(), Is.Zero);
    }

    [Test]
    public async Task ExecuteAsync_ReleasesTheGuard_WhenLoadingTheRunFailsAfterTakingIt()
    {
        // A stored input nested beyond what the engine reads: loading fails after the guard was taken.
        var id = await _runner.CreateAsync<AddWorkflow>(new WorkflowInput(new AddInput()));
        var nested = new string('[', WorkflowJson.MaxDepth + 10) + new string(']', WorkflowJson.MaxDepth + 10);
        await ExecAsync("UPDATE workflow.workflow_runs SET input_data = jsonb_build_object('deep', @deep::jsonb) WHERE uuid = @id", ("deep", nested), ("id", id));

        Assert.That(() => _runner.ExecuteAsync(id), Throws.Exception);

        Assert.That(await AdvisoryLocksAsync(), Is.Zero, "no pooled session may keep the run's guard");
    }

    [Test]
    public async Task ExecuteAsync_CancelledWhileWaitingForTheGuard_TakesNothing_AndTheRunStillExecutesLater()
    {
        var id = await _runner.CreateAsync<AddWorkflow>(new WorkflowInput(new AddInput { Argument1 = 2, Argument2 = 3 }));
        await using (var holder = new NpgsqlConnection(_connectionString))
        {
            await holder.OpenAsync();
            await using (var take = new NpgsqlCommand("SELECT pg_advisory_lock(@key)", holder))
            {
                take.Parameters.AddWithValue("key", EntityFrameworkCore.NpgsqlRunExecution.LockKey(id));
                await take.ExecuteNonQueryAsync();
            }

            using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(500));
            Assert.That(() => _runner.ExecuteAsync(id, cancel.Token), Throws.InstanceOf<OperationCanceledException>());
        }

        Assert.That(await AdvisoryLocksAsync(), Is.Zero);
        var output = await _runner.ExecuteAsync(id).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.That(output.Get<AddOutput>()!.Result, Is.EqualTo(5));
    }

    /// <summary>Advisory locks held in this fixture's database, by any session.</summary>
    [Test]
    public async Task ExecuteAsync_ClearsTheSlotWait_WhenTheRunFailsBeforeItsStart()
    {
        // A run offered a flow-control slot (Pending, still marked as queued for one) whose execution fails before its
        // start: its stored steps no longer match the definition.
        var id = await _runner.CreateAsync<AddWorkflow>(new WorkflowInput(new AddInput()));
        await ExecAsync("UPDATE workflow.workflow_runs SET step_names = ARRAY['NoSuchStep'], waiting_for = 'concurrency' WHERE uuid = @id", ("id", id));

        Assert.That(() => _runner.ExecuteAsync(id), Throws.Exception);

        await using var connection = new NpgsqlConnection(_connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT status, waiting_for FROM workflow.workflow_runs WHERE uuid = @id", connection);
        command.Parameters.AddWithValue("id", id);
        await using var reader = await command.ExecuteReaderAsync();
        Assert.That(await reader.ReadAsync(), Is.True);
        Assert.That(reader.GetString(0), Is.EqualTo("Failed"));
        Assert.That(await reader.IsDBNullAsync(1), Is.True, "a failed run waits for no slot");
    }

    private async Task<long> AdvisoryLocksAsync()
    {
        await using var connection = new NpgsqlConnection(_connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            connection);
        return (long)(await command.ExecuteScalarAsync())!;
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
}
