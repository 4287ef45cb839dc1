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

        // Per-host Hangfire services, registered before AddHangfire so that its TryAdd* keep them.
        services.Replace(ServiceDescriptor.Singleton<JobStorage>(sp => new PostgreSqlStorage(
            new PostgreSqlDataSourceConnectionFactory(sp.GetRequiredKeyedService<NpgsqlDataSource>(WorkflowStorageKeys.DataSource)),
            new PostgreSqlStorageOptions
            {
                SchemaName = options.SchemaName,
                QueuePollInterval = options.QueuePollInterval,
                InvisibilityTimeout = options.InvisibilityTimeout,
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
            services.AddHangfire(config => config
                .SetDataCompatibilityLevel(CompatibilityLevel.Version_180)
                .UseSimpleAssemblyNameTypeSerializer()
                .UseRecommendedSerializerSettings());
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
                server.CancellationCheckInterval = TimeSpan.FromSeconds(1);
            });
        }

        return builder;
    }
}
