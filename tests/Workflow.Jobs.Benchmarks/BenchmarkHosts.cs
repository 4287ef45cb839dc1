using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace Workflow.Jobs.Benchmarks;

/// <summary>The hosts of the benchmark, registered the way an application registers the library.</summary>
internal static class BenchmarkHosts
{
    /// <summary>Application name of the worker's connections, so the orchestrator can wait for them to be gone.</summary>
    public const string WorkerApplicationName = "wjbench-worker";

    /// <summary>
    /// The enqueuing side (no Hangfire server): creates runs through <see cref="IWorkflowClient"/> and
    /// plain Hangfire jobs through the <c>IBackgroundJobClientV2</c> from dependency injection.
    /// Starting it migrates the workflow tables and installs Hangfire's schema.
    /// </summary>
    public static async Task<IHost> StartClientAsync(string connectionString, QueueMode queueMode, TimeSpan pollInterval, CancellationToken cancellationToken)
    {
        var builder = NewBuilder();
        builder.Services.AddWorkflowJobs(o => o.UseNpgsql(connectionString))
            .AddWorkflow<OneStepWorkflow>()
            .AddWorkflow<TenStepWorkflow>()
            .AddHangfireJobs(o =>
            {
                o.RunServer = false;
                BenchmarkQueueModes.Configure(o, queueMode, pollInterval);
                // The stranded-dequeue count fetches from this host's storage on a queue of its own (no server runs here).
                o.Queues = ["default", BenchmarkQueueModes.DequeueQueue];
            });
        BenchmarkQueueModes.Apply(builder.Services, queueMode, pollInterval);
        var host = builder.Build();
        await host.StartAsync(cancellationToken).ConfigureAwait(false);
        // Resolving the storage installs Hangfire's schema now rather than inside a measurement.
        _ = host.Services.GetRequiredService<global::Hangfire.JobStorage>();
        return host;
    }

    /// <summary>The worker: a Hangfire server with the library's settings (except the worker count and poll interval given).</summary>
    public static async Task<IHost> StartWorkerAsync(string connectionString, int workers, TimeSpan pollInterval, TimeSpan cancellationCheckInterval,
        QueueMode queueMode, TimeSpan schedulePollingInterval, CancellationToken cancellationToken)
    {
        var builder = NewBuilder();
        var named = new NpgsqlConnectionStringBuilder(connectionString) { ApplicationName = WorkerApplicationName }.ConnectionString;
        builder.Services.AddWorkflowJobs(o =>
            {
                o.UseNpgsql(named);
                o.ApplyMigrationsOnStartup = false;
            })
            .AddWorkflow<OneStepWorkflow>()
            .AddWorkflow<TenStepWorkflow>()
            .AddHangfireJobs(o =>
            {
                o.WorkerCount = workers;
                BenchmarkQueueModes.Configure(o, queueMode, pollInterval);
                o.CancellationCheckInterval = cancellationCheckInterval;
                o.SchedulePollingInterval = schedulePollingInterval;
                o.ServerName = "wjbench-worker";
            });
        BenchmarkQueueModes.Apply(builder.Services, queueMode, pollInterval);
        var host = builder.Build();
        await host.StartAsync(cancellationToken).ConfigureAwait(false);
        return host;
    }

    private static HostApplicationBuilder NewBuilder()
    {
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Logging.ClearProviders();
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.Logging.AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace);
        // EF Core logs the first look for the migrations history table of a new database as a failed command.
        builder.Logging.AddFilter("Microsoft.EntityFrameworkCore.Database.Command", LogLevel.Critical);
        return builder;
    }
}
