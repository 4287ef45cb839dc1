using Hangfire;
using Hangfire.AspNetCore;
using Hangfire.Common;
using Hangfire.PostgreSql;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Npgsql;
using Workflow.Jobs;
using Workflow.Jobs.Hangfire;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Runs workflows as Hangfire jobs.</summary>
public static class HangfireWorkflowJobsBuilderExtensions
{
    /// <summary>
    /// Configures Hangfire on PostgreSQL for this host — its own <see cref="JobStorage"/> (sharing the
    /// workflow data source, so enqueue is atomic), job activator and filters, all from dependency
    /// injection, never Hangfire's static <c>JobStorage.Current</c> — and, unless
    /// <see cref="WorkflowHangfireOptions.RunServer"/> is off, a Hangfire server. Requires <c>UseNpgsql</c>.
    /// </summary>
    public static IWorkflowJobsBuilder AddHangfireJobs(this IWorkflowJobsBuilder builder, Action<WorkflowHangfireOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var options = new WorkflowHangfireOptions();
        configure?.Invoke(options);
        options.Validate();
        var services = builder.Services;
        services.TryAddSingleton(options);
        // The Workflows page in the dashboard (also under a plain UseHangfireDashboard); registered once per process.
        Workflow.Jobs.Hangfire.Dashboard.WorkflowDashboardRoutes.EnsureRegistered();

        // Per-host Hangfire services, registered before AddHangfire so that its TryAdd* keep them.
        services.Replace(ServiceDescriptor.Singleton<JobStorage>(sp => new PostgreSqlStorage(
            new PostgreSqlDataSourceConnectionFactory(sp.GetRequiredKeyedService<NpgsqlDataSource>(WorkflowStorageKeys.DataSource)),
            new PostgreSqlStorageOptions
            {
                SchemaName = options.SchemaName,
                QueuePollInterval = options.QueuePollInterval,
                InvisibilityTimeout = options.InvisibilityTimeout,
                // Hangfire.PostgreSql's locks are rows that a killed process never deletes; a job whose state
                // lock it held waits for the lock to expire (default 10 minutes), so expire it with the same bound.
                DistributedLockTimeout = options.InvisibilityTimeout,
                UseSlidingInvisibilityTimeout = true,
                EnableTransactionScopeEnlistment = true,
                EnableLongPolling = false,
                PrepareSchemaIfNecessary = true,
            })));
        services.Replace(ServiceDescriptor.Singleton<JobActivator>(sp => new AspNetCoreJobActivator(sp.GetRequiredService<IServiceScopeFactory>())));
        services.Replace(ServiceDescriptor.Singleton<IJobFilterProvider>(sp => new JobFilterProviderCollection(
            JobFilterProviders.Providers, sp.GetRequiredService<WorkflowJobFilterProvider>())));

        if (!services.Any(d => d.ServiceType == typeof(IGlobalConfiguration)))
        {
            services.AddHangfire((sp, config) =>
            {
                config
                    .SetDataCompatibilityLevel(CompatibilityLevel.Version_180)
                    .UseSimpleAssemblyNameTypeSerializer()
                    .UseRecommendedSerializerSettings();
                if (sp.GetService<Microsoft.Extensions.Logging.ILoggerFactory>() is { } loggerFactory)
                {
                    config.UseLogProvider(new HostTolerantLogProvider(loggerFactory));
                }
            });
        }

        services.TryAddSingleton<WorkflowRetryFilter>();
        services.TryAddSingleton<WorkflowStateSyncFilter>();
        services.TryAddSingleton<WorkflowJobFilterProvider>();
        services.TryAddSingleton<WorkflowNameCache>();
        services.TryAddSingleton<IWorkflowJobDispatcher, HangfireWorkflowJobDispatcher>();
        services.TryAddSingleton<IWorkflowScheduler, HangfireWorkflowScheduler>();
        services.TryAddTransient(sp => new WorkflowJob(sp.GetRequiredService<WorkflowEngine>(),
            sp.GetRequiredService<Microsoft.Extensions.Logging.ILogger<WorkflowJob>>()));
        services.TryAddTransient(sp => new RecurringWorkflowJob(sp.GetRequiredService<WorkflowClient>(), sp.GetRequiredService<WorkflowRegistry>()));

        if (options.RunServer)
        {
            services.AddHangfireServer((sp, server) =>
            {
                server.Queues = options.Queues.ToArray();
                if (options.WorkerCount is { } workers)
                {
                    server.WorkerCount = workers;
                }

                if (options.ServerName is not null)
                {
                    server.ServerName = options.ServerName;
                }

                server.ShutdownTimeout = options.ShutdownTimeout;
                server.CancellationCheckInterval = options.CancellationCheckInterval;
                server.SchedulePollingInterval = options.SchedulePollingInterval;
            });
        }

        return builder;
    }
}
