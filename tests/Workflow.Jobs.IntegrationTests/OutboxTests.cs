using Hangfire;
using Hangfire.States;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Npgsql;

namespace Workflow.Jobs.IntegrationTests;

/// <summary>
/// Pairing runs with jobs when the job storage does not join the run's transaction (the outbox), and the
/// job writes that follow a retry or a cancel: each is recorded with the run's change and survives a
/// failure between the two writes.
/// </summary>
[NonParallelizable]
public class OutboxTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);
    private string _connectionString = null!;
    private IHost _host = null!;
    private IWorkflowClient _client = null!;
    private SwitchableDispatcher _dispatcher = null!;

    /// <summary>The real dispatcher, reporting that its storage does not join the run's transaction, and failing on demand.</summary>
    private sealed class SwitchableDispatcher(IBackgroundJobClientV2 client, JobStorage storage) : IWorkflowJobDispatcher
    {
        private readonly Workflow.Jobs.Hangfire.HangfireWorkflowJobDispatcher _inner = new(client, storage);

        public int FailuresLeft { get; set; }

        public bool JoinsRunTransaction => false;

        public string Enqueue(Guid runId, string workflowName, string? queue, TimeSpan? delay)
        {
            // The job is written first, then the process "dies" before the run learns its id: the worst case.
            var jobId = _inner.Enqueue(runId, workflowName, queue, delay);
            FailIfAsked();
            return jobId;
        }

        public bool Requeue(string jobId, string? queue)
        {
            FailIfAsked();
            return _inner.Requeue(jobId, queue);
        }

        public void Delete(string jobId) => _inner.Delete(jobId);

        public bool RequeueAbandoned(string jobId, string? queue) => _inner.RequeueAbandoned(jobId, queue);

        public string? Wake(Guid runId, string workflowName, string? queue, string? jobId) => _inner.Wake(runId, workflowName, queue, jobId);

        /// <summary>Creates a job without any run (tests only).</summary>
        public string EnqueueOrphan(Guid runId) => _inner.Enqueue(runId, "add", null, null);

        private void FailIfAsked()
        {
            if (FailuresLeft > 0)
            {
                FailuresLeft--;
                throw new InvalidOperationException("the process died between the two writes");
            }
        }
    }

    [OneTimeSetUp]
    public async Task StartAsync()
    {
        _connectionString = await TestDatabases.CreateAsync("outbox");
        _host = await TestHosts.StartHangfireHostAsync(_connectionString, configure: services =>
        {
            services.Replace(ServiceDescriptor.Singleton<SwitchableDispatcher, SwitchableDispatcher>());
            services.Replace(ServiceDescriptor.Singleton<IWorkflowJobDispatcher>(sp => sp.GetRequiredService<SwitchableDispatcher>()));
        });
        _client = _host.Services.GetRequiredService<IWorkflowClient>();
        _dispatcher = _host.Services.GetRequiredService<SwitchableDispatcher>();
    }

    [OneTimeTearDown]
    public async Task StopAsync()
    {
        await _host.StopAsync();
        _host.Dispose();
    }

    [SetUp]
    public void Reset() => _dispatcher.FailuresLeft = 0;

    private Task<int> RunOutboxAsync()
        => _host.Services.GetRequiredService<WorkflowJobRequests>().FulfilPendingAsync(TimeSpan.Zero, 100, CancellationToken.None);

    private async Task<string?> JobRequestAsync(Guid id)
    {
        await using var connection = new NpgsqlConnection(_connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT job_request FROM workflow.workflow_runs WHERE uuid = @id", connection);
        command.Parameters.AddWithValue("id", id);
        return await command.ExecuteScalarAsync() as string;
    }

    private string? JobState(string jobId)
    {
        using var connection = _host.Services.GetRequiredService<JobStorage>().GetConnection();
        return connection.GetStateData(jobId)?.Name;
    }

    private async Task<WorkflowRun> WaitForStatusAsync(Guid id, WorkflowStatus status)
    {
        WorkflowRun? run = null;
        await Eventually.UntilAsync(async () => (run = await _client.GetAsync(id))?.Status == status, Deadline, $"run {id} to be {status} (is {run?.Status})");
        return run!;
    }

    [Test]
    public async Task Enqueue_CreatesTheJobAfterTheRunCommits_AndTheRunSucceeds()
    {
        var id = await _client.EnqueueAsync<AddWorkflow>(new WorkflowInput(new AddInput { Argument1 = 4, Argument2 = 5 }));

        var run = await WaitForStatusAsync(id, WorkflowStatus.Succeeded);

        Assert.That(run.JobId, Is.Not.Null);
        Assert.That(await JobRequestAsync(id), Is.Null, "the job write is marked done");
    }

    [Test]
    public async Task Enqueue_FailingBetweenTheRunAndItsJob_LeavesTheRunAwaitingItsJob_AndTheOutboxCreatesIt()
    {
        _dispatcher.FailuresLeft = 1;

        var id = await _client.EnqueueAsync<AddWorkflow>(new WorkflowInput(new AddInput { Argument1 = 1, Argument2 = 1 }));

        var waiting = await _client.GetAsync(id);
        Assert.That(waiting!.Status, Is.EqualTo(WorkflowStatus.Pending));
        Assert.That(waiting.JobId, Is.Null, "the run never learnt the id of the job written before the failure");
        Assert.That(await JobRequestAsync(id), Is.EqualTo("create"));

        await RunOutboxAsync();

        var run = await WaitForStatusAsync(id, WorkflowStatus.Succeeded);
        Assert.That(run.JobId, Is.Not.Null);
        Assert.That(await JobRequestAsync(id), Is.Null);
    }

    [Test]
    public async Task Retry_FailingBeforeTheRequeue_IsCompletedByTheOutbox()
    {
        var id = await _client.EnqueueAsync<NoRetryWorkflow>(new WorkflowInput(new FailInput { FailTimes = 2 }));
        var failed = await WaitForStatusAsync(id, WorkflowStatus.Failed);
        await Eventually.UntilAsync(() => Task.FromResult(JobState(failed.JobId!) == FailedState.StateName), Deadline, "job Failed");
        _dispatcher.FailuresLeft = 1;

        await _client.RetryAsync(id);

        Assert.That((await _client.GetAsync(id))!.Status, Is.EqualTo(WorkflowStatus.Pending));
        Assert.That(JobState(failed.JobId!), Is.EqualTo(FailedState.StateName), "the requeue did not happen");
        Assert.That(await JobRequestAsync(id), Is.EqualTo("requeue"));

        await RunOutboxAsync();

        await WaitForStatusAsync(id, WorkflowStatus.Succeeded);
        Assert.That(await JobRequestAsync(id), Is.Null);
    }

    [Test]
    public async Task Cancel_DeletesTheJob_AndDropsAPendingJobWrite()
    {
        _dispatcher.FailuresLeft = 1;
        var id = await _client.EnqueueAsync<AddWorkflow>(new WorkflowInput(new AddInput()));
        Assert.That(await JobRequestAsync(id), Is.EqualTo("create"));

        await _client.CancelAsync(id);
        await RunOutboxAsync();

        Assert.That((await _client.GetAsync(id))!.Status, Is.EqualTo(WorkflowStatus.Cancelled));
        Assert.That(await JobRequestAsync(id), Is.Null, "a cancelled run gets no job");
    }

    [Test]
    public async Task EnqueueMany_CreatesTheJobsAfterTheBatchCommits_AndTheRunsSucceed()
    {
        var ids = await _client.EnqueueManyAsync("add",
        [
            new WorkflowEnqueueItem(new WorkflowInput(new AddInput { Argument1 = 1 }).ToJson()),
            new WorkflowEnqueueItem(new WorkflowInput(new AddInput { Argument1 = 2 }).ToJson()),
        ]);

        foreach (var id in ids)
        {
            await WaitForStatusAsync(id, WorkflowStatus.Succeeded);
            Assert.That(await JobRequestAsync(id), Is.Null);
        }
    }

    [Test]
    public async Task JobWhoseRunDoesNotExist_CompletesWithoutDoingAnything()
    {
        var jobId = _dispatcher.EnqueueOrphan(Guid.NewGuid());

        await Eventually.UntilAsync(() => Task.FromResult(JobState(jobId) == SucceededState.StateName), Deadline, $"orphan job {jobId} to succeed");
    }
}
