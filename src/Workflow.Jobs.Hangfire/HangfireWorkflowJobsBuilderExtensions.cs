using Hangfire;
using Hangfire.Common;
using Hangfire.PostgreSql;
using Hangfire.Server;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Npgsql;
using Workflow.Jobs;
using Workflow.Jobs.EntityFrameworkCore;
using Workflow.Jobs.Hangfire;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Runs workflows as Hangfire jobs.</summary>
public static class HangfireWorkflowJobsBuilderExtensions
{
    /// <summary>
    /// Runs workflows as Hangfire jobs. Requires <c>UseNpgsql</c>.
    /// <para>
    /// When the application configures Hangfire itself (<c>AddHangfire</c>, a <see cref="JobStorage"/> of its own, or
    /// <c>AddHangfireServer</c>; registered before or after this call), workflows use the application's storage and
    /// servers: nothing of them is replaced, no second server is started, and the workflow filters are added to the
    /// host's filters. A run is then paired with its job through the outbox.
    /// </para>
    /// <para>
    /// Otherwise this configures Hangfire on PostgreSQL for this host — its own <see cref="JobStorage"/> (sharing the
    /// workflow data source, so a run and its job commit in one transaction), job activator and filters, all from
    /// dependency injection, never Hangfire's static <c>JobStorage.Current</c> — and, unless
    /// <see cref="WorkflowHangfireOptions.RunServer"/> is off, a Hangfire server.
    /// </para>
    /// The decision is taken when the service provider is built. Where a Hangfire server runs in this host (the
    /// library's or the application's), the leader loop runs too (<see cref="WorkflowHangfireOptions.RunLeaderLoop"/>).
    /// </summary>
    public static IWorkflowJobsBuilder AddHangfireJobs(this IWorkflowJobsBuilder builder, Action<WorkflowHangfireOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var options = new WorkflowHangfireOptions();
        configure?.Invoke(options);
        options.Validate();
        var services = builder.Services;
        if (services.Any(d => d.ServiceType == typeof(WorkflowHangfireRegistration)))
        {
            return builder;
        }

        var before = new HashSet<ServiceDescriptor>(services, ReferenceEqualityComparer.Instance);
        var registration = new WorkflowHangfireRegistration(services);
        services.AddSingleton(registration);
        services.TryAddSingleton(options);
        // The Workflows page in the dashboard (also under a plain UseHangfireDashboard); registered once per process.
        Workflow.Jobs.Hangfire.Dashboard.WorkflowDashboardRoutes.EnsureRegistered();

        services.TryAddSingleton(sp => new LibraryJobStorage(() => CreateStorage(sp, options)));

        // Registered with TryAdd: an application's storage and activator registered before this call are kept as
        // they are; registered before an application's AddHangfire, these defer to its configuration.
        services.TryAddSingleton(sp => registration.ResolveStorage(sp));
        services.TryAddSingleton(sp => registration.ResolveActivator(sp));

        if (!services.Any(d => d.ServiceType == typeof(IGlobalConfiguration)))
        {
            // Only used when the application has no Hangfire configuration of its own (its AddHangfire, even when
            // called after this, is the one resolved: the last registration wins).
            services.AddHangfire((sp, config) =>
            {
                config
                    .SetDataCompatibilityLevel(CompatibilityLevel.Version_180)
                    .UseSimpleAssemblyNameTypeSerializer()
                    .UseRecommendedSerializerSettings();
                if (sp.GetService<ILoggerFactory>() is { } loggerFactory)
                {
                    config.UseLogProvider(new HostTolerantLogProvider(loggerFactory));
                }
            });
        }

        // The host's filter provider: added last, so it is the one resolved by every server and client of the
        // host (Hangfire's AddHangfireServer and its DI clients read IJobFilterProvider from the container).
        var filterProvider = ServiceDescriptor.Singleton<IJobFilterProvider>(sp => registration.CreateFilterProvider(sp));
        registration.FilterProviderDescriptor = filterProvider;
        services.Add(filterProvider);

        services.TryAddSingleton(sp => registration.Decide(sp, sp.GetRequiredService<WorkflowHangfireOptions>()));
        services.TryAddSingleton<WorkflowRetryFilter>();
        services.TryAddSingleton<WorkflowStateSyncFilter>();
        services.TryAddSingleton<WorkflowJobOriginFilter>();
        services.TryAddSingleton<WorkflowWaitFilter>();
        services.TryAddSingleton<WorkflowJobFilterProvider>();
        services.TryAddSingleton<WorkflowNameCache>();
        services.TryAddSingleton(sp => new WorkflowJobBulkWriter(sp.GetRequiredKeyedService<NpgsqlDataSource>(WorkflowStorageKeys.DataSource),
            sp.GetRequiredService<LibraryJobStorage>(), sp.GetRequiredService<IJobFilterProvider>(), sp.GetRequiredService<WorkflowHangfireOptions>()));
        services.TryAddSingleton<IWorkflowJobDispatcher, HangfireWorkflowJobDispatcher>();
        services.TryAddSingleton<IWorkflowScheduler, HangfireWorkflowScheduler>();
        services.TryAddTransient(sp => new WorkflowJob(sp.GetRequiredService<WorkflowEngine>(),
            sp.GetRequiredService<ILogger<WorkflowJob>>()));
        services.TryAddTransient(sp => new RecurringWorkflowJob(sp.GetRequiredService<WorkflowClient>(), sp.GetRequiredService<WorkflowRegistry>()));
        services.TryAddTransient(sp => new WorkflowBulkJob(sp.GetRequiredService<WorkflowClient>()));
        services.TryAddTransient(sp => new WorkflowRetentionJob(sp.GetRequiredService<WorkflowClient>(), sp.GetRequiredService<WorkflowJobsOptions>()));
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, WorkflowRetentionSchedule>());

        services.AddSingleton<IHostedService, WorkflowHangfireStartup>();
        services.AddSingleton<IHostedService>(sp => CreateServer(sp, options));
        services.AddSingleton<IHostedService>(sp => CreateLeaderLoop(sp, options));

        registration.MarkOwn(services.Where(d => !before.Contains(d)));
        return builder;
    }

    /// <summary>
    /// The library's Hangfire storage on the workflow data source, with the queue wake-up on the server's queues
    /// when <see cref="WorkflowHangfireOptions.WakeWorkersOnEnqueue"/> is on.
    /// </summary>
    private static (PostgreSqlStorage Storage, IDisposable? Owned) CreateStorage(IServiceProvider services, WorkflowHangfireOptions options)
    {
        var dataSource = services.GetRequiredKeyedService<NpgsqlDataSource>(WorkflowStorageKeys.DataSource);
        var storage = new PostgreSqlStorage(new PostgreSqlDataSourceConnectionFactory(dataSource), new PostgreSqlStorageOptions
        {
            SchemaName = options.SchemaName,
            QueuePollInterval = options.EffectiveQueuePollInterval,
            InvisibilityTimeout = options.InvisibilityTimeout,
            // Hangfire.PostgreSql's locks are rows that a killed process never deletes; a job whose state
            // lock it held waits for the lock to expire (default 10 minutes), so expire it with the same bound.
            DistributedLockTimeout = options.InvisibilityTimeout,
            UseSlidingInvisibilityTimeout = true,
            EnableTransactionScopeEnlistment = true,
            EnableLongPolling = false,
            PrepareSchemaIfNecessary = true,
        });
        if (!options.WakeWorkersOnEnqueue)
        {
            return (storage, null);
        }

        var provider = new NotifyingJobQueueProvider(storage, dataSource, options.SchemaName,
            services.GetRequiredService<ILoggerFactory>().CreateLogger<NotifyingJobQueueProvider>());
        // A server's queues must all belong to one provider (Hangfire.PostgreSql refuses a server whose queues do not).
        storage.QueueProviders.Add(provider, options.Queues.Distinct(StringComparer.OrdinalIgnoreCase));
        return (storage, provider);
    }

    /// <summary>The library's Hangfire server, as Hangfire's <c>AddHangfireServer</c> would build it; nothing when the library does not own the server.</summary>
    private static IHostedService CreateServer(IServiceProvider services, WorkflowHangfireOptions options)
    {
        var hosting = services.GetRequiredService<WorkflowHangfireStorage>();
        if (!hosting.LibraryOwnsServer)
        {
            return new InactiveHostedService();
        }

        // Runs the Hangfire configuration (serializer settings, log provider) before the server starts.
        services.GetRequiredService<IGlobalConfiguration>();
        var server = new BackgroundJobServerOptions
        {
            Queues = options.Queues.ToArray(),
            ShutdownTimeout = options.ShutdownTimeout,
            CancellationCheckInterval = options.CancellationCheckInterval,
            SchedulePollingInterval = options.SchedulePollingInterval,
            Activator = services.GetRequiredService<JobActivator>(),
            FilterProvider = services.GetRequiredService<IJobFilterProvider>(),
            TimeZoneResolver = services.GetService<ITimeZoneResolver>(),
        };
        if (options.WorkerCount is { } workers)
        {
            server.WorkerCount = workers;
        }

        if (options.ServerName is not null)
        {
            server.ServerName = options.ServerName;
        }

        var processes = services.GetServices<IBackgroundProcess>().ToList();
        if (hosting.JoinsRunTransaction)
        {
            // On the library's own storage, the schedulers poll behind one probe (WorkflowSchedulers): Hangfire's
            // lightweight server, plus the schedulers and the storage's processes it leaves out.
            server.IsLightweightServer = true;
            processes.Add(new WorkflowSchedulers(services.GetRequiredKeyedService<NpgsqlDataSource>(WorkflowStorageKeys.DataSource), options.SchemaName,
                server, server.FilterProvider));
            processes.AddRange(WorkflowSchedulers.StorageProcesses(hosting.Storage));
        }

        return new BackgroundJobServerHostedService(hosting.Storage, server, processes, services.GetService<IHostApplicationLifetime>());
    }

    /// <summary>The leader loop, in hosts where a Hangfire server runs (the library's or the application's).</summary>
    private static IHostedService CreateLeaderLoop(IServiceProvider services, WorkflowHangfireOptions options)
    {
        var hosting = services.GetRequiredService<WorkflowHangfireStorage>();
        if (!options.RunLeaderLoop || !hosting.ServerInThisHost)
        {
            return new InactiveHostedService();
        }

        return new WorkflowLeaderLoop(
            services.GetRequiredKeyedService<NpgsqlDataSource>(WorkflowStorageKeys.DataSource),
            services.GetRequiredService<IServiceScopeFactory>(),
            options.LeaderLoopInterval,
            services.GetService<TimeProvider>() ?? TimeProvider.System,
            services.GetRequiredService<ILogger<WorkflowLeaderLoop>>());
    }
}
