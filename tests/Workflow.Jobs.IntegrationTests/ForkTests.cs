using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Newtonsoft.Json.Linq;
using Npgsql;

namespace Workflow.Jobs.IntegrationTests;

/// <summary><see cref="IWorkflowClient.ForkAsync"/> on a real server: copied steps never run, corrected input, links, validation.</summary>
public class ForkTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(90);
    private string _connectionString = null!;
    private IHost _host = null!;
    private IWorkflowClient _client = null!;
    private ExecutionLog _log = null!;

    [OneTimeSetUp]
    public async Task StartAsync()
    {
        _connectionString = await TestDatabases.CreateAsync("fork");
        _host = await TestHosts.StartHangfireHostAsync(_connectionString);
        _client = _host.Services.GetRequiredService<IWorkflowClient>();
        _log = _host.Services.GetRequiredService<ExecutionLog>();
    }

    [OneTimeTearDown]
    public async Task StopAsync()
    {
        await _host.StopAsync();
        _host.Dispose();
    }

    private async Task<WorkflowRun> WaitForStatusAsync(Guid id, WorkflowStatus status)
    {
        WorkflowRun? run = null;
        await Eventually.UntilAsync(async () => (run = await _client.GetAsync(id))?.Status == status, Deadline, $"run {id} to be {status} (is {run?.Status})");
        return run!;
    }

    private async Task<long> CountRunsAsync()
    {
        await using var connection = new NpgsqlConnection(_connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT count(*) FROM workflow.workflow_runs", connection);
        return (long)(await command.ExecuteScalarAsync())!;
    }

    private async Task<WorkflowRun> FailedRunAsync()
    {
        // NoRetry: AddStep, then FailStep failing more often than its one retry allows.
        var id = await _client.EnqueueAsync<NoRetryWorkflow>(new WorkflowInput(new AddInput { Argument1 = 3, Argument2 = 4 }, new FailInput { FailTimes = 5 }));
        return await WaitForStatusAsync(id, WorkflowStatus.Failed);
    }

    [Test]
    public async Task ForkAsync_FromTheFailedStep_WithCorrectedInput_CopiesEarlierStepsWithoutRunningThem()
    {
        var original = await FailedRunAsync();

        var forkId = await _client.ForkAsync(original.Id, new ForkOptions { Input = JObject.Parse("{\"fail_input\":{\"fail_times\":0}}") });

        var fork = await WaitForStatusAsync(forkId, WorkflowStatus.Succeeded);
        Assert.That(fork.ForkedFrom, Is.EqualTo(original.Id));
        Assert.That(_log.Count(forkId, "AddStep"), Is.Zero, "the copied step never ran in the fork");
        Assert.That(_log.Count(forkId, "FailStep"), Is.EqualTo(1));
        var copied = fork.Steps.Single(s => s.StepName == "AddStep");
        Assert.That(copied.Status, Is.EqualTo(WorkflowStatus.Succeeded));
        Assert.That(copied.Attempts, Is.Zero);
        Assert.That(copied.Output!["result"]!.Value<int>(), Is.EqualTo(7));
        Assert.That(fork.Steps.Single(s => s.StepName == "FailStep").PrecedingStepId, Is.EqualTo(copied.Id));
        Assert.That(fork.Input["fail_input"]!["fail_times"]!.Value<int>(), Is.Zero);

        var unchanged = await _client.GetAsync(original.Id);
        Assert.That(unchanged!.Status, Is.EqualTo(WorkflowStatus.Failed), "the original is unchanged");
        Assert.That(unchanged.Input["fail_input"]!["fail_times"]!.Value<int>(), Is.EqualTo(5));
    }

    [Test]
    public async Task ForkAsync_FromTheFirstStep_RunsEveryStepAgain()
    {
        var original = await FailedRunAsync();

        var forkId = await _client.ForkAsync(original.Id, new ForkOptions { FromStep = "AddStep", Input = JObject.Parse("{\"fail_input\":{\"fail_times\":0}}") });

        await WaitForStatusAsync(forkId, WorkflowStatus.Succeeded);
        Assert.That(_log.Count(forkId, "AddStep"), Is.EqualTo(1));
    }

    [Test]
    public async Task ForkAsync_CreatesNothing_WhenTheStepOrTheInputIsInvalid()
    {
        var original = await FailedRunAsync();
        var before = await CountRunsAsync();

        var unknownStep = Assert.ThrowsAsync<WorkflowDataValidationException>(() => _client.ForkAsync(original.Id, new ForkOptions { FromStep = "NoSuchStep" }));
        var badInput = Assert.ThrowsAsync<WorkflowDataValidationException>(() =>
            _client.ForkAsync(original.Id, new ForkOptions { Input = JObject.Parse("{\"test_step_input\":{\"argument_1\":-1}}") }));

        Assert.That(unknownStep!.Errors.Single().Path, Is.EqualTo("from_step"));
        Assert.That(badInput!.Errors.Single().Path, Is.EqualTo("input.test_step_input.argument_1"));
        Assert.That(await CountRunsAsync(), Is.EqualTo(before));
    }

    [Test]
    public void ForkAsync_ThrowsRunNotFound_ForAnUnknownRun()
    {
        Assert.ThrowsAsync<WorkflowRunNotFoundException>(() => _client.ForkAsync(Guid.NewGuid()));
    }
}
