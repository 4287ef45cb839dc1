using System.Collections.Concurrent;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using Workflow.Jobs.EntityFrameworkCore;

namespace Workflow.Jobs.IntegrationTests;

/// <summary>The leader loop on a real PostgreSQL: one leader at a time, take-over, failing tasks, no lock left behind.</summary>
public class WorkflowLeaderLoopTests
{
    private static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan TakeOver = TimeSpan.FromSeconds(5);

    private string _connectionString = "";
    private readonly List<NpgsqlDataSource> _dataSources = [];
    private readonly List<WorkflowLeaderLoop> _loops = [];

    [OneTimeSetUp]
    public async Task CreateDatabaseAsync() => _connectionString = await TestDatabases.CreateAsync("leader");

    [TearDown]
    public async Task StopLoopsAsync()
    {
        foreach (var loop in _loops)
        {
            await loop.StopAsync(CancellationToken.None);
            loop.Dispose();
        }

        foreach (var dataSource in _dataSources)
        {
            await dataSource.DisposeAsync();
        }

        _loops.Clear();
        _dataSources.Clear();
    }

    /// <summary>Counts passes and tracks how many tasks of all loops run at once (shared by the loops of a test).</summary>
    private sealed class Overlap
    {
        private int _active;
        private int _max;

        public int Max => Volatile.Read(ref _max);

        public async Task RunAsync(TimeSpan duration, CancellationToken cancellationToken)
        {
            var now = Interlocked.Increment(ref _active);
            int seen;
            while ((seen = Volatile.Read(ref _max)) < now && Interlocked.CompareExchange(ref _max, now, seen) != seen)
            {
            }

            try
            {
                // Stands for a task's work, so that two leaders at once would overlap.
                await Task.Delay(duration, cancellationToken);
            }
            finally
            {
                Interlocked.Decrement(ref _active);
            }
        }
    }

    private sealed class CountingTask(Overlap overlap, TimeSpan duration) : IWorkflowLeaderTask
    {
        private int _passes;

        public string Name => "counting";

        public int Passes => Volatile.Read(ref _passes);

        public async Task RunOnceAsync(CancellationToken cancellationToken)
        {
            await overlap.RunAsync(duration, cancellationToken);
            Interlocked.Increment(ref _passes);
        }
    }

    /// <summary>Records what the probe told it at each tick; runs only while a run is Running, as the recovery task does.</summary>
    private sealed class RunningOnlyTask : IWorkflowLeaderTask
    {
        private int _ticks;
        private int _passes;

        public string Name => "running-only";

        public int Ticks => Volatile.Read(ref _ticks);

        public int Passes => Volatile.Read(ref _passes);

        public bool IsNeeded(WorkflowLeaderSignals signals)
        {
            Interlocked.Increment(ref _ticks);
            return signals.RunsRunning;
        }

        public Task RunOnceAsync(CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref _passes);
            return Task.CompletedTask;
        }
    }

    private sealed class ThrowingTask : IWorkflowLeaderTask
    {
        private int _calls;

        public string Name => "throwing";

        public int Calls => Volatile.Read(ref _calls);

        public Task RunOnceAsync(CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref _calls);
            throw new InvalidOperationException("task failure");
        }
    }

    /// <summary>A loop of its own host: its own data source (pool) and its own tasks.</summary>
    private Task<WorkflowLeaderLoop> StartLoopAsync(params IWorkflowLeaderTask[] tasks) => StartLoopOnAsync(_connectionString, tasks);

    private async Task<WorkflowLeaderLoop> StartLoopOnAsync(string connectionString, params IWorkflowLeaderTask[] tasks)
    {
        var builder = new NpgsqlConnectionStringBuilder(connectionString) { NoResetOnClose = true };
        var dataSource = NpgsqlDataSource.Create(builder.ConnectionString);
        _dataSources.Add(dataSource);
        var services = new ServiceCollection();
        foreach (var task in tasks)
        {
            services.AddSingleton(task);
        }

        var provider = services.BuildServiceProvider();
        var loop = new WorkflowLeaderLoop(dataSource, provider.GetRequiredService<IServiceScopeFactory>(), Interval, TimeProvider.System,
            NullLogger<WorkflowLeaderLoop>.Instance);
        _loops.Add(loop);
        await loop.StartAsync(CancellationToken.None);
        return loop;
    }

    private async Task<List<int>> LockHoldersAsync()
    {
        await using var connection = new NpgsqlConnection(_connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 2 AND classid::bigint = @class AND objid::bigint = @object AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            connection);
        command.Parameters.AddWithValue("class", (long)WorkflowLeaderLoop.LockClass);
        command.Parameters.AddWithValue("object", (long)WorkflowLeaderLoop.LockObject);
        var pids = new List<int>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            pids.Add(reader.GetInt32(0));
        }

        return pids;
    }

    [Test]
    public async Task TwoLoops_OnlyOneRunsTasks_AndTheOtherTakesOverWhenItStops()
    {
        var overlap = new Overlap();
        var taskA = new CountingTask(overlap, TimeSpan.FromMilliseconds(40));
        var taskB = new CountingTask(overlap, TimeSpan.FromMilliseconds(40));
        var loopA = await StartLoopAsync(taskA);
        var loopB = await StartLoopAsync(taskB);

        await Eventually.UntilAsync(() => Task.FromResult(taskA.Passes + taskB.Passes >= 20), TimeSpan.FromSeconds(30), "20 passes of the leader's task");
        var (leader, leaderTask, follower, followerTask) = taskA.Passes > 0 ? (loopA, taskA, loopB, taskB) : (loopB, taskB, loopA, taskA);
        Assert.Multiple(() =>
        {
            Assert.That(followerTask.Passes, Is.Zero, "the other loop never ran its task");
            Assert.That(leader.IsLeader, Is.True);
            Assert.That(follower.IsLeader, Is.False);
            Assert.That(overlap.Max, Is.EqualTo(1), "never two tasks at once");
        });
        Assert.That(await LockHoldersAsync(), Has.Count.EqualTo(1));

        await leader.StopAsync(CancellationToken.None);
        var stoppedPasses = leaderTask.Passes;
        var stopped = DateTime.UtcNow;
        await Eventually.UntilAsync(() => Task.FromResult(followerTask.Passes >= 3), TakeOver, "the other loop to take over");
        Assert.Multiple(() =>
        {
            Assert.That(DateTime.UtcNow - stopped, Is.LessThan(TakeOver));
            Assert.That(leaderTask.Passes, Is.EqualTo(stoppedPasses), "a stopped loop runs no task");
            Assert.That(follower.IsLeader, Is.True);
            Assert.That(overlap.Max, Is.EqualTo(1), "never two tasks at once");
        });
    }

    [Test]
    public async Task LeaderConnectionKilled_AnotherLoopLeadsWithinSeconds()
    {
        var overlap = new Overlap();
        var taskA = new CountingTask(overlap, TimeSpan.Zero);
        var taskB = new CountingTask(overlap, TimeSpan.Zero);
        await StartLoopAsync(taskA);
        await StartLoopAsync(taskB);
        await Eventually.UntilAsync(async () => (await LockHoldersAsync()).Count == 1 && taskA.Passes + taskB.Passes > 0, TimeSpan.FromSeconds(30), "a leader");
        var killed = (await LockHoldersAsync()).Single();

        await using (var connection = new NpgsqlConnection(_connectionString))
        {
            await connection.OpenAsync();
            await using var terminate = new NpgsqlCommand("SELECT pg_terminate_backend(@pid)", connection);
            terminate.Parameters.AddWithValue("pid", killed);
            Assert.That(await terminate.ExecuteScalarAsync(), Is.True);
        }

        var passes = taskA.Passes + taskB.Passes;
        await Eventually.UntilAsync(async () => (await LockHoldersAsync()) is [var pid] && pid != killed && taskA.Passes + taskB.Passes > passes + 2,
            TakeOver, "a new leader session running the tasks");
        Assert.That(await LockHoldersAsync(), Has.Count.EqualTo(1));
    }

    [Test]
    public async Task ThrowingTask_DoesNotStopTheLoopOrTheOtherTasks()
    {
        var throwing = new ThrowingTask();
        var counting = new CountingTask(new Overlap(), TimeSpan.Zero);
        await StartLoopAsync(throwing, counting);

        await Eventually.UntilAsync(() => Task.FromResult(throwing.Calls >= 5 && counting.Passes >= 5), TimeSpan.FromSeconds(30), "five passes despite the failures");
        Assert.That(counting.Passes, Is.GreaterThanOrEqualTo(throwing.Calls - 1), "the task after the failing one runs at every pass");
    }

    [Test]
    public async Task StoppedLoop_LeavesNoLockInThePool()
    {
        var counting = new CountingTask(new Overlap(), TimeSpan.Zero);
        var loop = await StartLoopAsync(counting);
        await Eventually.UntilAsync(() => Task.FromResult(counting.Passes > 0), TimeSpan.FromSeconds(30), "leadership");

        await loop.StopAsync(CancellationToken.None);

        Assert.That(loop.IsLeader, Is.False);
        Assert.That(await LockHoldersAsync(), Is.Empty, "the lock was released, not pooled with its connection");
    }

    [Test]
    public async Task Probe_SkipsATaskWithNothingToDo_AndRunsItOnceThereIs()
    {
        // A migrated database: the probe reads the runs table.
        var connectionString = await TestDatabases.CreateAsync("leader_probe");
        var engine = await TestHosts.StartEngineHostAsync(connectionString);
        try
        {
            var task = new RunningOnlyTask();
            await StartLoopOnAsync(connectionString, task);
            await Eventually.UntilAsync(() => Task.FromResult(task.Ticks >= 3), TimeSpan.FromSeconds(30), "three ticks of the leader");
            Assert.That(task.Passes, Is.Zero, "no run is Running: the probe skips the task");

            await using (var connection = new NpgsqlConnection(connectionString))
            {
                await connection.OpenAsync();
                await using var insert = new NpgsqlCommand("""
                    INSERT INTO workflow.workflow_runs (uuid, workflow_name, status, input_data, created, modified, is_removed, step_names, completed_steps, attempts, tags)
                    VALUES (gen_random_uuid(), 'add', 'Running', '{}', now(), now(), false, ARRAY['add'], 0, 1, '{}')
                    """, connection);
                await insert.ExecuteNonQueryAsync();
            }

            await Eventually.UntilAsync(() => Task.FromResult(task.Passes >= 2), TimeSpan.FromSeconds(30), "the task to run at each tick while a run is Running");
        }
        finally
        {
            await engine.StopAsync();
            engine.Dispose();
        }
    }
}
