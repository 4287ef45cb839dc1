using System.Net;
using Hangfire;
using Hangfire.Common;
using Hangfire.PostgreSql;
using Hangfire.States;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Npgsql;
using Workflow.Jobs.Hangfire;
using Workflow.Jobs.IntegrationTests;

namespace Workflow.Jobs.ExistingApp.Tests;

/// <summary>
/// An application that configured Hangfire its own way, then added Workflow.Jobs: its jobs keep running, workflows use
/// its storage and its one server, and its dashboard shows the Workflows page. Both registration orders.
/// </summary>
[NonParallelizable]
public class ExistingHangfireAppTests
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

    private static string? JobState(JobStorage storage, string jobId)
    {
        using var connection = storage.GetConnection();
        return connection.GetStateData(jobId)?.Name;
    }

    [TestCase(RegistrationOrder.HangfireFirst)]
    [TestCase(RegistrationOrder.WorkflowsFirst)]
    public async Task AppJobs_KeepRunning_OnTheAppStorage_WithOneServer(RegistrationOrder order)
    {
        var connectionString = await TestDatabases.CreateAsync("app_" + order);
        await using var host = await ExistingAppHost.StartAsync(connectionString, order);
        var storage = host.Services.GetRequiredService<JobStorage>();
        Assert.That(storage, Is.InstanceOf<PostgreSqlStorage>());
        Assert.That(storage.ToString(), Does.Contain("Schema: " + ExistingAppHost.Schema), "the application's storage, not one of the library's");
        Assert.That(storage, Is.SameAs(JobStorage.Current), "the storage the application's AddHangfire configured");

        // Static BackgroundJob.Enqueue (JobStorage.Current) and the DI client.
        var staticMarker = "static-" + Guid.NewGuid();
        var diMarker = "di-" + Guid.NewGuid();
        BackgroundJob.Enqueue<LegacyJobs>(j => j.Record(staticMarker));
        host.Services.GetRequiredService<IBackgroundJobClient>().Enqueue<LegacyJobs>(j => j.Record(diMarker));
        var legacy = host.Services.GetRequiredService<LegacyLog>();
        await Eventually.UntilAsync(() => Task.FromResult(legacy.Contains(staticMarker) && legacy.Contains(diMarker)), Deadline, "the application's jobs ran");

        var monitoring = storage.GetMonitoringApi();
        await Eventually.UntilAsync(() => Task.FromResult(monitoring.Servers().Count > 0), Deadline, "the server announced itself");
        // A job's body returns before its Succeeded state is committed.
        await Eventually.UntilAsync(() => Task.FromResult(monitoring.SucceededListCount() >= 2), Deadline, "both jobs Succeeded");
        var librarySchemas = await CountAsync(connectionString, "SELECT count(*) FROM information_schema.schemata WHERE schema_name = 'hangfire'");
        var appJobs = await CountAsync(connectionString, $"SELECT count(*) FROM {ExistingAppHost.Schema}.job");
        Assert.Multiple(() =>
        {
            Assert.That(monitoring.Servers(), Has.Count.EqualTo(1), "exactly one Hangfire server in the host");
            Assert.That(monitoring.SucceededListCount(), Is.EqualTo(2));
            Assert.That(librarySchemas, Is.Zero, "the library built no storage of its own");
            Assert.That(appJobs, Is.EqualTo(2));
        });
    }

    private static List<string> HostedServiceTypes(ExistingAppHost host)
        => host.Services.GetServices<Microsoft.Extensions.Hosting.IHostedService>().Select(s => s.GetType().Name).ToList();

    [TestCase(RegistrationOrder.HangfireFirst)]
    [TestCase(RegistrationOrder.WorkflowsFirst)]
    public async Task AppServer_IsTheOnlyServer_AndTheLeaderLoopRunsBesideIt(RegistrationOrder order)
    {
        var connectionString = await TestDatabases.CreateAsync("leader_" + order);
        await using var host = await ExistingAppHost.StartAsync(connectionString, order);

        var types = HostedServiceTypes(host);
        Assert.That(types.Count(t => t == nameof(BackgroundJobServerHostedService)), Is.EqualTo(1), string.Join(", ", types));
        Assert.That(types.Count(t => t == "WorkflowLeaderLoop"), Is.EqualTo(1), string.Join(", ", types));
        await Eventually.UntilAsync(async () => await CountAsync(connectionString, LeaderLockSql) == 1, Deadline, "the leader lock held by this host");
    }

    [Test]
    public async Task AppWithoutAServerInThisHost_GetsNoServerAndNoLeaderLoop()
    {
        var connectionString = await TestDatabases.CreateAsync("webonly");
        await using var host = await ExistingAppHost.StartAsync(connectionString, RegistrationOrder.WorkflowsFirst, new AppHangfireSettings { RunServer = false });

        var types = HostedServiceTypes(host);
        Assert.That(types, Has.None.EqualTo(nameof(BackgroundJobServerHostedService)).And.None.EqualTo("WorkflowLeaderLoop"), string.Join(", ", types));
        Assert.That(host.Services.GetRequiredService<JobStorage>().ToString(), Does.Contain("Schema: " + ExistingAppHost.Schema));
    }

    /// <summary>The leader loop's advisory lock (two-key form), held by a session of this database.</summary>
    private const string LeaderLockSql =
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 2 AND classid::bigint = 1464224322 AND objid::bigint = 1 AND granted "
        + "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())";

    [TestCase(RegistrationOrder.HangfireFirst)]
    [TestCase(RegistrationOrder.WorkflowsFirst)]
    public async Task WorkflowFilters_ApplyToWorkflowJobs_BesideTheAppFilters(RegistrationOrder order)
    {
        var connectionString = await TestDatabases.CreateAsync("filters_" + order);
        await using var host = await ExistingAppHost.StartAsync(connectionString, order);
        var provider = host.Services.GetRequiredService<IJobFilterProvider>();

        var workflowJob = Job.FromExpression<WorkflowJob>(j => j.ExecuteAsync(Guid.NewGuid(), CancellationToken.None));
        var legacyJob = Job.FromExpression<LegacyJobs>(j => j.Record("x"));
        var workflowFilters = provider.GetFilters(workflowJob).Select(f => f.Instance.GetType().Name).ToList();
        var legacyFilters = provider.GetFilters(legacyJob).Select(f => f.Instance.GetType().Name).ToList();
        Assert.Multiple(() =>
        {
            Assert.That(workflowFilters, Does.Contain("WorkflowRetryFilter").And.Contain("WorkflowStateSyncFilter"));
            Assert.That(legacyFilters, Does.Contain(nameof(AutomaticRetryAttribute)), "the application's global filters still apply to its jobs");
            Assert.That(legacyFilters, Does.Not.Contain("WorkflowRetryFilter").And.Not.Contain("WorkflowStateSyncFilter"));
        });
    }

    [TestCase(RegistrationOrder.HangfireFirst)]
    [TestCase(RegistrationOrder.WorkflowsFirst)]
    public async Task AppDashboard_ShowsTheWorkflowsPage_UnderItsPathAndAuthorization(RegistrationOrder order)
    {
        var connectionString = await TestDatabases.CreateAsync("dash_" + order);
        await using var host = await ExistingAppHost.StartAsync(connectionString, order);
        // A run created in this host (without a job): the page reads the workflow data of the application's DI.
        var id = await host.Services.GetRequiredService<IWorkflowRunner>().CreateAsync<AddWorkflow>(new WorkflowInput(new AddInput { Argument1 = 1 }));

        using var anonymous = host.CreateClient(withKey: false);
        var refused = await anonymous.GetAsync(ExistingAppHost.DashboardPath.TrimStart('/') + "/workflows");
        Assert.That(refused.StatusCode, Is.EqualTo(HttpStatusCode.Unauthorized), "the application's authorization guards the page");

        using var operator_ = host.CreateClient(withKey: true);
        var list = await operator_.GetAsync(ExistingAppHost.DashboardPath.TrimStart('/') + "/workflows");
        var listHtml = await list.Content.ReadAsStringAsync();
        Assert.That(list.StatusCode, Is.EqualTo(HttpStatusCode.OK));
        Assert.That(listHtml, Does.Contain(id.ToString()));

        var jobs = await operator_.GetAsync(ExistingAppHost.DashboardPath.TrimStart('/') + "/jobs/enqueued");
        var jobsHtml = await jobs.Content.ReadAsStringAsync();
        Assert.That(jobs.StatusCode, Is.EqualTo(HttpStatusCode.OK));
        Assert.That(jobsHtml, Does.Contain(ExistingAppHost.DashboardPath + "/workflows"), "the Workflows item in the application's dashboard menu");
    }

    [Test]
    public async Task WithoutAddHangfireJobs_EnqueueNamesTheMethodToCall()
    {
        var connectionString = await TestDatabases.CreateAsync("no_jobs");
        await using var host = await ExistingAppHost.StartAsync(connectionString, RegistrationOrder.HangfireFirst, new AppHangfireSettings { AddHangfireJobs = false });
        var client = host.Services.GetRequiredService<IWorkflowClient>();

        var ex = Assert.ThrowsAsync<InvalidOperationException>(() => client.EnqueueAsync<AddWorkflow>(new WorkflowInput(new AddInput())));

        Assert.That(ex!.Message, Does.Contain("AddHangfireJobs()"));
    }

    [Test]
    public async Task SlowAppSettings_AreNamedInStartUpWarnings()
    {
        var connectionString = await TestDatabases.CreateAsync("settings");
        await using var host = await ExistingAppHost.StartAsync(connectionString, RegistrationOrder.HangfireFirst,
            new AppHangfireSettings { QueuePollInterval = null, SlidingInvisibilityTimeout = false, SchedulePollingInterval = null });

        var warnings = host.Logs.Entries.Where(e => e.Level == LogLevel.Warning && e.Category.StartsWith("Workflow.Jobs", StringComparison.Ordinal))
            .Select(e => e.Message).ToList();
        Assert.Multiple(() =>
        {
            Assert.That(warnings.Count(w => w.Contains("QueuePollInterval", StringComparison.Ordinal) && w.Contains("15 s", StringComparison.Ordinal)), Is.EqualTo(1),
                string.Join("\n", warnings));
            Assert.That(warnings.Count(w => w.Contains("UseSlidingInvisibilityTimeout", StringComparison.Ordinal) && w.Contains("30 min", StringComparison.Ordinal)), Is.EqualTo(1));
            Assert.That(warnings.Count(w => w.Contains("SchedulePollingInterval", StringComparison.Ordinal)), Is.EqualTo(1));
            Assert.That(host.Logs.Entries.Where(e => e.Level >= LogLevel.Error && e.Category.StartsWith("Workflow.Jobs", StringComparison.Ordinal)), Is.Empty);
            Assert.That(host.Logs.Entries.Count(e => e.Message.Contains("through the outbox", StringComparison.Ordinal)), Is.EqualTo(1));
        });
    }

    [Test]
    public async Task TunedAppSettings_GiveNoWarnings()
    {
        var connectionString = await TestDatabases.CreateAsync("tuned");
        // AddHangfireServer() takes its options from DI when the application registers them there.
        await using var host = await ExistingAppHost.StartAsync(connectionString, RegistrationOrder.WorkflowsFirst,
            new AppHangfireSettings { SchedulePollingInterval = null },
            services => services.AddSingleton(new BackgroundJobServerOptions { SchedulePollingInterval = TimeSpan.FromSeconds(1), WorkerCount = 4 }));

        var warnings = host.Logs.Entries.Where(e => e.Level >= LogLevel.Warning && e.Category.StartsWith("Workflow.Jobs", StringComparison.Ordinal))
            .Select(e => e.Message).ToList();
        Assert.That(warnings, Is.Empty);
    }

    [Test]
    public async Task AppFilterProviderRegisteredAfterWorkflows_IsAnError()
    {
        var connectionString = await TestDatabases.CreateAsync("filters_after");
        // Registered after AddHangfireJobs: it is the one the server uses, and it knows no workflow filters.
        await using var host = await ExistingAppHost.StartAsync(connectionString, RegistrationOrder.HangfireFirst,
            configure: services => services.AddSingleton<IJobFilterProvider>(JobFilterProviders.Providers));

        var errors = host.Logs.Entries.Where(e => e.Level == LogLevel.Error && e.Category.StartsWith("Workflow.Jobs", StringComparison.Ordinal)).ToList();
        Assert.That(errors, Has.Count.EqualTo(1));
        Assert.That(errors[0].Message, Does.Contain("IJobFilterProvider").And.Contain("AddHangfireJobs()"));
    }

    [Test]
    public async Task AppActivatorThatCannotBuildWorkflowJobs_IsAnError()
    {
        var connectionString = await TestDatabases.CreateAsync("activator");
        // Hangfire's plain activator (Activator.CreateInstance) knows nothing of the host's services.
        await using var host = await ExistingAppHost.StartAsync(connectionString, RegistrationOrder.HangfireFirst,
            configure: services => services.AddSingleton(new JobActivator()));

        var errors = host.Logs.Entries.Where(e => e.Level == LogLevel.Error && e.Category.StartsWith("Workflow.Jobs", StringComparison.Ordinal)).ToList();
        Assert.That(errors, Has.Count.EqualTo(1));
        Assert.That(errors[0].Message, Does.Contain("JobActivator"));
    }

    [TestCase(RegistrationOrder.HangfireFirst)]
    [TestCase(RegistrationOrder.WorkflowsFirst)]
    public async Task Workflows_RunAsJobsOnTheAppStorage_BesideTheAppJobs(RegistrationOrder order)
    {
        var connectionString = await TestDatabases.CreateAsync("wf_" + order);
        await using var host = await ExistingAppHost.StartAsync(connectionString, order);
        var client = host.Services.GetRequiredService<IWorkflowClient>();
        var storage = host.Services.GetRequiredService<JobStorage>();
        var legacyMarker = "legacy-" + Guid.NewGuid();
        BackgroundJob.Enqueue<LegacyJobs>(j => j.Record(legacyMarker));

        var id = await client.EnqueueAsync<AddThenSquareWorkflow>(new WorkflowInput(new AddInput { Argument1 = 2, Argument2 = 1 }));
        var run = await WaitForStatusAsync(client, id, WorkflowStatus.Succeeded);

        Assert.That(run.Output!["square_output"]!["result"]!.ToObject<int>(), Is.EqualTo(9));
        Assert.That(run.JobId, Is.Not.Null);
        // The run's Succeeded is written by the job itself, just before Hangfire records the job's own state.
        await Eventually.UntilAsync(() => Task.FromResult(JobState(storage, run.JobId!) == SucceededState.StateName), Deadline, "the job Succeeded");
        Assert.That(await CountAsync(connectionString, $"SELECT count(*) FROM {ExistingAppHost.Schema}.job WHERE id = {long.Parse(run.JobId!, System.Globalization.CultureInfo.InvariantCulture)}"),
            Is.EqualTo(1), "the workflow's job is in the application's schema");
        await Eventually.UntilAsync(() => Task.FromResult(host.Services.GetRequiredService<LegacyLog>().Contains(legacyMarker)), Deadline, "the application's job ran");
        Assert.That(storage.GetMonitoringApi().Servers(), Has.Count.EqualTo(1));
        // The application's server runs the workflow filters too: each step attempt names its job and that server.
        Assert.That(run.Steps.SelectMany(s => s.History).Select(a => (a.JobId, a.ServerName)),
            Is.All.EqualTo((run.JobId, storage.GetMonitoringApi().Servers().Single().Name)));
    }

    [Test]
    public async Task DeletingAWorkflowJob_InTheApp_CancelsItsRun()
    {
        var connectionString = await TestDatabases.CreateAsync("delete");
        await using var host = await ExistingAppHost.StartAsync(connectionString, RegistrationOrder.HangfireFirst);
        var client = host.Services.GetRequiredService<IWorkflowClient>();
        var gate = Guid.NewGuid().ToString();
        var id = await client.EnqueueAsync<AddWaitSquareWorkflow>(new WorkflowInput(new AddInput { Argument1 = 1 }, new WaitInput { Gate = gate }));
        await host.Services.GetRequiredService<Gates>().Entered(gate).Task.WaitAsync(Deadline);
        var run = await client.GetAsync(id);

        // Through the application's own DI client, as its dashboard's Delete button does.
        host.Services.GetRequiredService<IBackgroundJobClient>().Delete(run!.JobId!);

        await WaitForStatusAsync(client, id, WorkflowStatus.Cancelled);
    }

    [Test]
    public async Task RunCommittedWhileTheJobStorageFails_GetsItsJobWithinSeconds()
    {
        var connectionString = await TestDatabases.CreateAsync("outbox");
        await using var host = await ExistingAppHost.StartAsync(connectionString, RegistrationOrder.HangfireFirst);
        var client = host.Services.GetRequiredService<IWorkflowClient>();
        // The application's job table refuses new jobs while the switch is on: the second write of an enqueue fails.
        await ExecuteAsync(connectionString,
            $"""
            CREATE TABLE public.refuse_jobs (refuse boolean NOT NULL);
            INSERT INTO public.refuse_jobs VALUES (true);
            CREATE FUNCTION public.refuse_job() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              IF (SELECT refuse FROM public.refuse_jobs) THEN RAISE EXCEPTION 'job storage unavailable'; END IF;
              RETURN NEW;
            END $$;
            CREATE TRIGGER refuse_job BEFORE INSERT ON {ExistingAppHost.Schema}.job FOR EACH ROW EXECUTE FUNCTION public.refuse_job();
            """);

        try
        {
            await client.EnqueueAsync<AddWorkflow>(new WorkflowInput(new AddInput { Argument1 = 4 }));
        }
        // Whether the caller sees the job's failure is not what this test is about.
        catch (Exception)
        {
        }

        var runs = await client.ListAsync(new WorkflowQuery { WorkflowName = "add" });
        Assert.That(runs, Has.Count.EqualTo(1), "the run committed");
        Assert.That(runs[0].JobId, Is.Null, "no job yet");
        await ExecuteAsync(connectionString, "UPDATE public.refuse_jobs SET refuse = false");
        var storageBack = DateTime.UtcNow;

        var run = await WaitForStatusAsync(client, runs[0].Id, WorkflowStatus.Succeeded);
        Assert.That(run.JobId, Is.Not.Null);
        Assert.That(DateTime.UtcNow - storageBack, Is.LessThan(TimeSpan.FromSeconds(15)), "the leader loop's outbox task created the job within seconds");
    }

    [Test]
    public async Task JobWhoseRunDoesNotExist_CompletesQuietly()
    {
        var connectionString = await TestDatabases.CreateAsync("orphan");
        await using var host = await ExistingAppHost.StartAsync(connectionString, RegistrationOrder.HangfireFirst);
        var storage = host.Services.GetRequiredService<JobStorage>();

        var jobId = host.Services.GetRequiredService<IBackgroundJobClient>().Enqueue<WorkflowJob>(j => j.ExecuteAsync(Guid.NewGuid(), CancellationToken.None));

        await Eventually.UntilAsync(() => Task.FromResult(JobState(storage, jobId) is { } state && (state == SucceededState.StateName || state == FailedState.StateName)), Deadline, "the job finished");
        Assert.That(JobState(storage, jobId), Is.EqualTo(SucceededState.StateName));
    }

    private static async Task ExecuteAsync(string connectionString, string sql)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }
}
