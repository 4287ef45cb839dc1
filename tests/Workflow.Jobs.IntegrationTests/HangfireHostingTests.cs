using Hangfire;
using Hangfire.States;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Npgsql;

namespace Workflow.Jobs.IntegrationTests;

/// <summary>Hosting behaviour: shutdown and resume elsewhere, hosts side by side, atomic enqueue, Hangfire.PostgreSql on Npgsql 10.</summary>
public class HangfireHostingTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    private static async Task<long> CountAsync(string connectionString, string sql)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        return (long)(await command.ExecuteScalarAsync())!;
    }

    private static async Task<WorkflowRun> WaitForStatusAsync(IWorkflowClient client, Guid id, WorkflowStatus status)
    {
        WorkflowRun? run = null;
        await Eventually.UntilAsync(async () => (run = await client.GetAsync(id))?.Status == status, Deadline, $"run {id} to be {status} (is {run?.Status})");
        return run!;
    }

    [Test]
    public async Task GracefulShutdownMidStep_RequeuesTheJob_AndTheRunResumesOnAnotherServer()
    {
        var connectionString = await TestDatabases.CreateAsync("shutdown");
        var first = await TestHosts.StartHangfireHostAsync(connectionString);
        var gate = Guid.NewGuid().ToString();
        Guid id;
        try
        {
            var client = first.Services.GetRequiredService<IWorkflowClient>();
            id = await client.EnqueueAsync<AddWaitSquareWorkflow>(new WorkflowInput(new AddInput { Argument1 = 2 }, new WaitInput { Gate = gate }));
            await first.Services.GetRequiredService<Gates>().Entered(gate).Task.WaitAsync(Deadline);
        }
        finally
        {
            // Shutdown cancels the step in flight (its gate is never opened on this server).
            await first.StopAsync();
        }

        var firstLog = first.Services.GetRequiredService<ExecutionLog>();
        Assert.That(firstLog.Count(id, "AddStep"), Is.EqualTo(1));
        first.Dispose();

        var second = await TestHosts.StartHangfireHostAsync(connectionString);
        try
        {
            second.Services.GetRequiredService<Gates>().Open(gate);
            var client = second.Services.GetRequiredService<IWorkflowClient>();
            var run = await WaitForStatusAsync(client, id, WorkflowStatus.Succeeded);

            var secondLog = second.Services.GetRequiredService<ExecutionLog>();
            Assert.That(secondLog.Count(id, "AddStep"), Is.Zero, "the checkpointed step is not run again");
            Assert.That(secondLog.Count(id, "WaitStep"), Is.EqualTo(1));
            Assert.That(run.Output!["square_output"]!["result"]!.ToObject<int>(), Is.EqualTo(4));
            Assert.That(run.Steps[1].Attempts, Is.EqualTo(2), "the interrupted attempt counts");
        }
        finally
        {
            await second.StopAsync();
            second.Dispose();
        }
    }

    [Test]
    public async Task TwoHostsInOneProcess_EachUseTheirOwnStorage()
    {
        var a = await TestHosts.StartHangfireHostAsync(await TestDatabases.CreateAsync("host_a"));
        var b = await TestHosts.StartHangfireHostAsync(await TestDatabases.CreateAsync("host_b"));
        try
        {
            Assert.That(a.Services.GetRequiredService<JobStorage>(), Is.Not.SameAs(b.Services.GetRequiredService<JobStorage>()));
            var clientA = a.Services.GetRequiredService<IWorkflowClient>();
            var clientB = b.Services.GetRequiredService<IWorkflowClient>();
            var idsA = new List<Guid>();
            var idsB = new List<Guid>();
            for (var i = 0; i < 10; i++)
            {
                idsA.Add(await clientA.EnqueueAsync<AddWorkflow>(new WorkflowInput(new AddInput { Argument1 = i })));
                idsB.Add(await clientB.EnqueueAsync<AddWorkflow>(new WorkflowInput(new AddInput { Argument1 = i })));
            }

            foreach (var id in idsA)
            {
                await WaitForStatusAsync(clientA, id, WorkflowStatus.Succeeded);
                Assert.That(await clientB.GetAsync(id), Is.Null);
            }

            foreach (var id in idsB)
            {
                await WaitForStatusAsync(clientB, id, WorkflowStatus.Succeeded);
                Assert.That(await clientA.GetAsync(id), Is.Null);
            }

            // Each run executed in the host whose storage holds it.
            var logA = a.Services.GetRequiredService<ExecutionLog>();
            var logB = b.Services.GetRequiredService<ExecutionLog>();
            Assert.That(idsA.All(id => logA.Count(id, "AddStep") == 1 && logB.Count(id, "AddStep") == 0), Is.True);
            Assert.That(idsB.All(id => logB.Count(id, "AddStep") == 1 && logA.Count(id, "AddStep") == 0), Is.True);
        }
        finally
        {
            await a.StopAsync();
            await b.StopAsync();
            a.Dispose();
            b.Dispose();
        }
    }

    /// <summary>Creates the real job, then fails: the second half of the enqueue.</summary>
    private sealed class FailingAfterCreateDispatcher(IBackgroundJobClientV2 client, JobStorage storage) : IWorkflowJobDispatcher
    {
        private readonly Workflow.Jobs.Hangfire.HangfireWorkflowJobDispatcher _inner = new(client, storage);

        public bool JoinsRunTransaction => _inner.JoinsRunTransaction;

        public string Enqueue(Guid runId, string workflowName, string? queue, TimeSpan? delay)
        {
            _inner.Enqueue(runId, workflowName, queue, delay);
            throw new InvalidOperationException("crash after the job was created");
        }

        public bool Requeue(string jobId, string? queue) => _inner.Requeue(jobId, queue);

        public void Delete(string jobId) => _inner.Delete(jobId);

        public bool RequeueAbandoned(string jobId, string? queue) => _inner.RequeueAbandoned(jobId, queue);

        public string? Wake(Guid runId, string workflowName, string? queue, string? jobId) => _inner.Wake(runId, workflowName, queue, jobId);
    }

    [Test]
    public async Task EnqueueFailingAfterTheJobIsCreated_LeavesNeitherRunNorJob()
    {
        var connectionString = await TestDatabases.CreateAsync("atomic");
        var host = await TestHosts.StartHangfireHostAsync(connectionString, configure: services =>
            services.Replace(ServiceDescriptor.Singleton<IWorkflowJobDispatcher, FailingAfterCreateDispatcher>()));
        try
        {
            var client = host.Services.GetRequiredService<IWorkflowClient>();
            var ex = Assert.ThrowsAsync<InvalidOperationException>(() => client.EnqueueAsync<AddWorkflow>(new WorkflowInput(new AddInput())));
            Assert.That(ex!.Message, Does.Contain("crash after the job was created"));

            Assert.That(await CountAsync(connectionString, "SELECT count(*) FROM workflow.workflow_runs"), Is.Zero);
            Assert.That(await CountAsync(connectionString, "SELECT count(*) FROM hangfire.job"), Is.Zero);
            Assert.That(await CountAsync(connectionString, "SELECT count(*) FROM hangfire.jobqueue"), Is.Zero);
        }
        finally
        {
            await host.StopAsync();
            host.Dispose();
        }
    }

    [Test]
    public async Task HangfirePostgreSql_WorksWithNpgsql10_ForMonitoringParametersContinuationsAndLocks()
    {
        var connectionString = await TestDatabases.CreateAsync("compat");
        var host = await TestHosts.StartHangfireHostAsync(connectionString, configure: services => services.AddSingleton<CompatibilityLog>());
        try
        {
            Assert.That(typeof(NpgsqlConnection).Assembly.GetName().Version!.Major, Is.EqualTo(10));
            var client = host.Services.GetRequiredService<IWorkflowClient>();
            var jobs = host.Services.GetRequiredService<IBackgroundJobClientV2>();
            var storage = host.Services.GetRequiredService<JobStorage>();
            var id = await client.EnqueueAsync<AddWorkflow>(new WorkflowInput(new AddInput { Argument1 = 1 }));
            var run = await WaitForStatusAsync(client, id, WorkflowStatus.Succeeded);

            // A continuation of the workflow job runs after it (the job is activated from this host's DI).
            var marker = Guid.NewGuid();
            var continuation = jobs.ContinueJobWith<CompatJob>(run.JobId!, j => j.Record(marker));
            var compat = host.Services.GetRequiredService<CompatibilityLog>();
            await Eventually.UntilAsync(() => Task.FromResult(compat.Contains(marker)), Deadline, "continuation ran");
            await Eventually.UntilAsync(() => Task.FromResult(storage.GetMonitoringApi().JobDetails(continuation).History[0].StateName == SucceededState.StateName),
                Deadline, "continuation succeeded");

            var monitoring = storage.GetMonitoringApi();
            await Eventually.UntilAsync(() => Task.FromResult(monitoring.SucceededListCount() >= 2), Deadline, "succeeded jobs counted");
            Assert.That(monitoring.Servers(), Is.Not.Empty);
            Assert.That(monitoring.JobDetails(run.JobId!).History.Select(h => h.StateName), Does.Contain(ProcessingState.StateName));

            using var connection = storage.GetConnection();
            connection.SetJobParameter(run.JobId!, "custom", "\"value\"");
            Assert.That(connection.GetJobParameter(run.JobId!, "custom"), Is.EqualTo("\"value\""));
            using var distributedLock = connection.AcquireDistributedLock("workflow-test-lock", TimeSpan.FromSeconds(5));
            Assert.That(distributedLock, Is.Not.Null);
        }
        finally
        {
            await host.StopAsync();
            host.Dispose();
        }
    }
}

public sealed class CompatibilityLog
{
    private readonly System.Collections.Concurrent.ConcurrentDictionary<Guid, bool> _seen = new();

    public void Add(Guid id) => _seen[id] = true;

    public bool Contains(Guid id) => _seen.ContainsKey(id);
}

/// <summary>A plain Hangfire job, to check continuations with Npgsql 10.</summary>
public sealed class CompatJob(CompatibilityLog log)
{
    public void Record(Guid marker) => log.Add(marker);
}
