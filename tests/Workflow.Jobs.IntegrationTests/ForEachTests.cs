using System.Collections.Concurrent;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Newtonsoft.Json;
using Npgsql;

namespace Workflow.Jobs.IntegrationTests;

[WorkflowKey("fan_out_input")]
public sealed class FanOutInput : WorkflowData
{
    [JsonProperty("count")] public int Count { get; set; }

    /// <summary>This item fails while the step's attempt is at most <see cref="FailTimes"/>.</summary>
    [JsonProperty("fail_index")] public int FailIndex { get; set; } = -1;
    [JsonProperty("fail_times")] public int FailTimes { get; set; }
    [JsonProperty("parallelism")] public int Parallelism { get; set; } = 4;

    /// <summary>This item waits for <see cref="Gate"/> (on every attempt).</summary>
    [JsonProperty("block_index")] public int BlockIndex { get; set; } = -1;
    [JsonProperty("gate")] public string Gate { get; set; } = "";

    /// <summary>Item i finishes only after item i + 1 has (so items finish in reverse order).</summary>
    [JsonProperty("reverse")] public bool Reverse { get; set; }

    /// <summary>Every body waits until <see cref="Parallelism"/> bodies run at once (proves the bound is reached).</summary>
    [JsonProperty("fill")] public bool Fill { get; set; }

    /// <summary>How many fan-outs the step makes (each over the same items).</summary>
    [JsonProperty("calls")] public int Calls { get; set; } = 1;

    /// <summary>Fan out over this many items instead of <see cref="Count"/> from the second attempt on.</summary>
    [JsonProperty("count_on_retry")] public int CountOnRetry { get; set; } = -1;
}

[WorkflowKey("fan_out_output")]
public sealed class FanOutOutput : WorkflowData
{
    [JsonProperty("results")] public List<List<string>> Results { get; set; } = [];
}

/// <summary>What the fan-out bodies of one host did (per host, not static).</summary>
public sealed class FanOutProbe
{
    private readonly ConcurrentQueue<(Guid Run, int Call, int Index, int Attempt, string Key)> _bodies = new();
    private readonly ConcurrentDictionary<Guid, int> _active = new();
    private readonly ConcurrentDictionary<Guid, int> _maxActive = new();
    private readonly ConcurrentDictionary<(Guid, int), TaskCompletionSource> _done = new();
    private readonly ConcurrentDictionary<Guid, TaskCompletionSource> _full = new();

    public void Ran(Guid run, int call, int index, int attempt, string key) => _bodies.Enqueue((run, call, index, attempt, key));

    public IReadOnlyList<(Guid Run, int Call, int Index, int Attempt, string Key)> Bodies(Guid run) => _bodies.Where(b => b.Run == run).ToList();

    public int Runs(Guid run, int index, int call = 1) => _bodies.Count(b => b.Run == run && b.Index == index && b.Call == call);

    public int MaxActive(Guid run) => _maxActive.GetValueOrDefault(run);

    public TaskCompletionSource Done(Guid run, int index) => _done.GetOrAdd((run, index), _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));

    public TaskCompletionSource Full(Guid run) => _full.GetOrAdd(run, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));

    public void Enter(Guid run, int fullAt)
    {
        var now = _active.AddOrUpdate(run, 1, (_, n) => n + 1);
        _maxActive.AddOrUpdate(run, now, (_, max) => Math.Max(max, now));
        if (now >= fullAt)
        {
            Full(run).TrySetResult();
        }
    }

    public void Exit(Guid run) => _active.AddOrUpdate(run, 0, (_, n) => n - 1);
}

/// <summary>Fans out over its items with <see cref="StepContext.ForEachAsync{TItem, TResult}(IReadOnlyList{TItem}, Func{ForEachItem{TItem}, Task{TResult}}, ForEachOptions?, CancellationToken)"/>.</summary>
public sealed class FanOutStep(FanOutProbe probe, Gates gates) : WorkflowStep<FanOutInput, FanOutOutput>
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    protected override async Task<FanOutOutput> ProcessInputAsync(FanOutInput input, StepContext context, CancellationToken cancellationToken)
    {
        var count = context.Attempt > 1 && input.CountOnRetry >= 0 ? input.CountOnRetry : input.Count;
        var items = Enumerable.Range(0, count).ToList();
        var output = new FanOutOutput();
        for (var call = 1; call <= input.Calls; call++)
        {
            var thisCall = call;
            var results = await context.ForEachAsync(items, async item =>
            {
                probe.Ran(context.WorkflowId, thisCall, item.Index, context.Attempt, item.IdempotencyKey);
                probe.Enter(context.WorkflowId, input.Parallelism);
                try
                {
                    if (input.Fill)
                    {
                        await probe.Full(context.WorkflowId).Task.WaitAsync(Patience, item.CancellationToken);
                    }

                    if (input.Reverse && item.Index < count - 1)
                    {
                        await probe.Done(context.WorkflowId, item.Index + 1).Task.WaitAsync(Patience, item.CancellationToken);
                    }

                    if (item.Index == input.BlockIndex)
                    {
                        gates.Entered(input.Gate).TrySetResult();
                        await gates.Gate(input.Gate).Task.WaitAsync(item.CancellationToken);
                    }

                    if (item.Index == input.FailIndex && context.Attempt <= input.FailTimes)
                    {
                        throw new InvalidOperationException($"item {item.Index} refused");
                    }

                    return $"{thisCall}:{item.Item}:{item.IdempotencyKey}";
                }
                finally
                {
                    probe.Exit(context.WorkflowId);
                    probe.Done(context.WorkflowId, item.Index).TrySetResult();
                }
            }, new ForEachOptions { MaxDegreeOfParallelism = input.Parallelism }, cancellationToken);
            output.Results.Add(results.ToList());
        }

        return output;
    }
}

[WorkflowName("fan-out")]
public sealed class FanOutWorkflow : WorkflowDefinition
{
    public override IReadOnlyList<Type> Steps { get; } = [typeof(FanOutStep)];

    public override WorkflowRetryPolicy? Retry { get; } = new() { Attempts = 3, DelaysInSeconds = [0] };
}

[WorkflowName("fan-out-no-retry")]
public sealed class FanOutNoRetryWorkflow : WorkflowDefinition
{
    public override IReadOnlyList<Type> Steps { get; } = [typeof(FanOutStep)];

    public override WorkflowRetryPolicy? Retry { get; } = new() { Attempts = 0 };
}

/// <summary>Fan-out inside a step, run as Hangfire jobs on real PostgreSQL: item checkpoints, resume, order, parallelism, keys.</summary>
public class ForEachTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);
    private string _connectionString = null!;
    private IHost _host = null!;
    private IWorkflowClient _client = null!;
    private FanOutProbe _probe = null!;
    private Gates _gates = null!;

    [OneTimeSetUp]
    public async Task OneTimeSetUpAsync()
    {
        _connectionString = await TestDatabases.CreateAsync(nameof(ForEachTests));
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        builder.Services.AddSingleton<ILoggerFactory>(NullLoggerFactory.Instance);
        builder.Services.AddSingleton<FanOutProbe>();
        builder.Services.AddSingleton<Gates>();
        builder.Services.AddWorkflowJobs(o => o.UseNpgsql(_connectionString))
            .AddWorkflow<FanOutWorkflow>()
            .AddWorkflow<FanOutNoRetryWorkflow>()
            .AddHangfireJobs(o =>
            {
                o.WorkerCount = 4;
                o.QueuePollInterval = TimeSpan.FromMilliseconds(50);
                o.ShutdownTimeout = TimeSpan.FromSeconds(2);
            });
        _host = builder.Build();
        await _host.StartAsync();
        _client = _host.Services.GetRequiredService<IWorkflowClient>();
        _probe = _host.Services.GetRequiredService<FanOutProbe>();
        _gates = _host.Services.GetRequiredService<Gates>();
    }

    [OneTimeTearDown]
    public async Task OneTimeTearDownAsync()
    {
        await _host.StopAsync();
        _host.Dispose();
    }

    private async Task<WorkflowRun> WaitForAsync(Guid id, params WorkflowStatus[] statuses)
    {
        WorkflowRun? run = null;
        await Eventually.UntilAsync(async () => (run = await _client.GetAsync(id)) is { } r && statuses.Contains(r.Status), Deadline,
            () => $"run {id} to be {string.Join(" or ", statuses)} (is {run?.Status}: {run?.ExceptionMessage})");
        return run!;
    }

    private static List<string> Expected(Guid stepId, int count, int call = 1)
        => Enumerable.Range(0, count).Select(i => $"{call}:{i}:{stepId:D}:{call}:{i}").ToList();

    [Test]
    public async Task ForEachAsync_RetryRunsOnlyTheFailedItem_WhenItem7Of10Fails()
    {
        var id = await _client.EnqueueAsync<FanOutNoRetryWorkflow>(new WorkflowInput(new FanOutInput { Count = 10, FailIndex = 7, FailTimes = 1 }));

        var failed = await WaitForAsync(id, WorkflowStatus.Failed, WorkflowStatus.Succeeded);

        Assert.That(failed.Status, Is.EqualTo(WorkflowStatus.Failed));
        Assert.That(failed.ExceptionMessage, Does.StartWith("Item 7 of 10 failed: item 7 refused"));
        var step = failed.Steps.Single();
        Assert.That(step.Items, Is.EqualTo(new WorkflowItemSummary { Total = 10, Succeeded = 9, Failed = 1, Calls = 1 }), "the others continued and were checkpointed");
        var store = _host.Services.GetRequiredService<IWorkflowStore>();
        var failedItems = await store.GetStepItemsAsync(step.Id, WorkflowStatus.Failed, 0, 50, CancellationToken.None);
        Assert.That(failedItems.Select(i => (i.Call, i.Index, i.ExceptionMessage)), Is.EqualTo(new[] { (1, 7, (string?)"item 7 refused") }));

        await _client.RetryAsync(id);
        var run = await WaitForAsync(id, WorkflowStatus.Succeeded);

        Assert.That(Enumerable.Range(0, 10).Select(i => _probe.Runs(id, i)), Is.EqualTo(new[] { 1, 1, 1, 1, 1, 1, 1, 2, 1, 1 }),
            "the retry ran only the unfinished item");
        Assert.That(run.Output!["fan_out_output"]!.ToObject<FanOutOutput>()!.Results.Single(), Is.EqualTo(Expected(step.Id, 10)),
            "results in input order, nine of them read back from their checkpoints");
        Assert.That(run.Steps.Single().Items, Is.EqualTo(new WorkflowItemSummary { Total = 10, Succeeded = 10, Failed = 0, Calls = 1 }));
    }

    [Test]
    public async Task ForEachAsync_SchedulerRetryRunsOnlyUnfinishedItems_WhenAnItemFailsOnTheFirstAttempt()
    {
        var id = await _client.EnqueueAsync<FanOutWorkflow>(new WorkflowInput(new FanOutInput { Count = 10, FailIndex = 7, FailTimes = 1 }));

        var run = await WaitForAsync(id, WorkflowStatus.Succeeded, WorkflowStatus.Failed);

        Assert.That(run.Status, Is.EqualTo(WorkflowStatus.Succeeded), run.ExceptionMessage);
        Assert.That(run.Steps.Single().Attempts, Is.EqualTo(2));
        Assert.That(_probe.Bodies(id).Where(b => b.Attempt == 2).Select(b => b.Index), Is.EqualTo(new[] { 7 }), "attempt 2 ran item 7 only");
        Assert.That(run.Output!["fan_out_output"]!.ToObject<FanOutOutput>()!.Results.Single(), Is.EqualTo(Expected(run.Steps.Single().Id, 10)));
    }

    [Test]
    public async Task ForEachItem_IdempotencyKeyIsTheSameOnEveryAttempt_AndDiffersPerCallAndIndex()
    {
        var id = await _client.EnqueueAsync<FanOutWorkflow>(new WorkflowInput(new FanOutInput { Count = 3, FailIndex = 1, FailTimes = 2, Calls = 2 }));

        var run = await WaitForAsync(id, WorkflowStatus.Succeeded, WorkflowStatus.Failed);

        Assert.That(run.Status, Is.EqualTo(WorkflowStatus.Succeeded), run.ExceptionMessage);
        var stepId = run.Steps.Single().Id;
        var item1 = _probe.Bodies(id).Where(b => b.Call == 1 && b.Index == 1).ToList();
        Assert.That(item1.Select(b => b.Attempt), Is.EqualTo(new[] { 1, 2, 3 }), "item 1 of the first call ran on each attempt");
        Assert.That(item1.Select(b => b.Key).Distinct(), Is.EqualTo(new[] { $"{stepId:D}:1:1" }), "with the same key each time");
        var keys = _probe.Bodies(id).Select(b => (b.Call, b.Index, b.Key)).Distinct().ToList();
        Assert.That(keys.Select(k => k.Key).Distinct().Count(), Is.EqualTo(6), "one key per (call, index)");
        var output = run.Output!["fan_out_output"]!.ToObject<FanOutOutput>()!;
        Assert.That(output.Results, Is.EqualTo(new[] { Expected(stepId, 3, 1), Expected(stepId, 3, 2) }), "the two fan-outs of the step did not mix");
        Assert.That(run.Steps.Single().Items, Is.EqualTo(new WorkflowItemSummary { Total = 6, Succeeded = 6, Failed = 0, Calls = 2 }));
    }

    [Test]
    public async Task ForEachAsync_ReturnsResultsInInputOrder_WhenItemsFinishInReverseOrder()
    {
        var id = await _client.EnqueueAsync<FanOutWorkflow>(new WorkflowInput(new FanOutInput { Count = 6, Parallelism = 6, Reverse = true }));

        var run = await WaitForAsync(id, WorkflowStatus.Succeeded, WorkflowStatus.Failed);

        Assert.That(run.Status, Is.EqualTo(WorkflowStatus.Succeeded), run.ExceptionMessage);
        Assert.That(run.Output!["fan_out_output"]!.ToObject<FanOutOutput>()!.Results.Single(), Is.EqualTo(Expected(run.Steps.Single().Id, 6)));
    }

    [Test]
    public async Task ForEachAsync_RunsAtMostMaxDegreeOfParallelismBodiesAtOnce()
    {
        var id = await _client.EnqueueAsync<FanOutWorkflow>(new WorkflowInput(new FanOutInput { Count = 20, Parallelism = 3, Fill = true }));

        var run = await WaitForAsync(id, WorkflowStatus.Succeeded, WorkflowStatus.Failed);

        Assert.That(run.Status, Is.EqualTo(WorkflowStatus.Succeeded), run.ExceptionMessage);
        Assert.That(_probe.MaxActive(id), Is.EqualTo(3), "the bound was reached and never exceeded");
        Assert.That(_probe.Bodies(id), Has.Count.EqualTo(20));
    }

    [Test]
    public async Task ForEachAsync_ResumesWithoutRerunningCommittedItems_WhenTheExecutionDiesMidFanOut()
    {
        var gate = Guid.NewGuid().ToString();
        var id = await _client.EnqueueAsync<FanOutWorkflow>(new WorkflowInput(new FanOutInput { Count = 8, Parallelism = 1, BlockIndex = 5, Gate = gate }));
        await _gates.Entered(gate).Task.WaitAsync(Deadline);
        await Eventually.UntilAsync(async () => await ScalarAsync<long>("SELECT count(*) FROM workflow.workflow_step_items WHERE status = 'Succeeded' AND step_uuid IN " +
            $"(SELECT uuid FROM workflow.workflow_steps WHERE workflow_record_uuid = '{id}')") == 5, Deadline, "items 0-4 committed");

        // The execution's guard connection dies (as when its process is killed): the run resumes in a new execution.
        Assert.That(await TerminateGuardConnectionAsync(id), Is.EqualTo(1), "one execution holds the run's guard");
        _gates.Open(gate);
        var run = await WaitForAsync(id, WorkflowStatus.Succeeded, WorkflowStatus.Failed);

        Assert.That(run.Status, Is.EqualTo(WorkflowStatus.Succeeded), run.ExceptionMessage);
        Assert.That(Enumerable.Range(0, 5).Select(i => _probe.Runs(id, i)), Is.All.EqualTo(1), "committed items did not run again");
        Assert.That(_probe.Runs(id, 5), Is.EqualTo(2), "the item in flight ran again");
        Assert.That(run.Output!["fan_out_output"]!.ToObject<FanOutOutput>()!.Results.Single(), Is.EqualTo(Expected(run.Steps.Single().Id, 8)));
    }

    [Test]
    public async Task ForEachAsync_FailsTheStepForGood_WhenARetryFansOutOverADifferentNumberOfItems()
    {
        var id = await _client.EnqueueAsync<FanOutWorkflow>(new WorkflowInput(new FanOutInput { Count = 4, FailIndex = 0, FailTimes = 1, CountOnRetry = 5 }));

        var run = await WaitForAsync(id, WorkflowStatus.Failed, WorkflowStatus.Succeeded);

        Assert.That(run.Status, Is.EqualTo(WorkflowStatus.Failed));
        Assert.That(run.ExceptionMessage, Does.Contain("was given 5 items, but its checkpoints were written for 4"));
        Assert.That(run.Steps.Single().Attempts, Is.EqualTo(2), "not retried again: the mismatch is final");
    }

    private async Task<long> TerminateGuardConnectionAsync(Guid runId)
    {
        // The run's guard: a session-level advisory lock whose 64-bit key is split over classid and objid.
        var key = Workflow.Jobs.EntityFrameworkCore.NpgsqlRunExecution.LockKey(runId);
        return await ScalarAsync<long>(
            $"""
            SELECT count(pg_terminate_backend(l.pid)) FROM pg_locks l
            WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
              AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
              AND ((l.classid::bigint << 32) | l.objid::bigint) = {key}
            """);
    }

    private async Task<T> ScalarAsync<T>(string sql)
    {
        await using var connection = new NpgsqlConnection(_connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        return (T)(await command.ExecuteScalarAsync())!;
    }
}
