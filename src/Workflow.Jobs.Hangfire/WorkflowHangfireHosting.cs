using Hangfire;
using Hangfire.AspNetCore;
using Hangfire.Common;
using Hangfire.PostgreSql;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Workflow.Jobs.Hangfire;

/// <summary>
/// How Workflow.Jobs runs on Hangfire in this host, decided once when the service provider first needs it
/// (not by the order in which the application registered its services).
/// </summary>
/// <param name="Storage">The Hangfire storage of this host: the application's, or the one the library built.</param>
/// <param name="JoinsRunTransaction">
/// The library built the storage on the workflow data source, so a run and its job commit in one transaction.
/// False for an application's storage: runs and jobs are paired through the outbox.
/// </param>
/// <param name="LibraryOwnsServer">The library runs a Hangfire server in this host.</param>
/// <param name="ApplicationConfigured">The application registered Hangfire itself (configuration, storage or server).</param>
/// <param name="ServerInThisHost">A Hangfire server runs in this host: the library's or the application's.</param>
internal sealed record WorkflowHangfireStorage(
    JobStorage Storage, bool JoinsRunTransaction, bool LibraryOwnsServer, bool ApplicationConfigured, bool ServerInThisHost);

/// <summary>What the application registered of Hangfire by itself.</summary>
internal sealed record ApplicationHangfire(bool Configuration, bool Storage, bool Server)
{
    public bool Any => Configuration || Storage || Server;
}

/// <summary>
/// Recorded in the service collection by <c>AddHangfireJobs</c>: the descriptors the library added, so that
/// the application's own Hangfire registrations can be told apart from them once the collection is complete,
/// whichever was registered first.
/// </summary>
internal sealed class WorkflowHangfireRegistration
{
    private readonly IServiceCollection _services;
    private readonly HashSet<ServiceDescriptor> _own = new(ReferenceEqualityComparer.Instance);
    private readonly Lazy<ApplicationHangfire> _application;

    public WorkflowHangfireRegistration(IServiceCollection services)
    {
        _services = services;
        _application = new Lazy<ApplicationHangfire>(Detect, LazyThreadSafetyMode.ExecutionAndPublication);
    }

    /// <summary>The library's own filter provider registration (left out when composing the others).</summary>
    public ServiceDescriptor? FilterProviderDescriptor { get; set; }

    /// <summary>What the application registered, read from the complete service collection on first use.</summary>
    public ApplicationHangfire Application => _application.Value;

    public void MarkOwn(IEnumerable<ServiceDescriptor> descriptors)
    {
        foreach (var descriptor in descriptors)
        {
            _own.Add(descriptor);
        }
    }

    /// <summary>
    /// The <see cref="JobStorage"/> registered by the library, which is the one resolved only when the
    /// application registered none of its own before or after it. With an application's <c>AddHangfire</c>
    /// (registered after this one, so its own registration was skipped), this returns what that registration
    /// would have returned: Hangfire's <c>AddHangfire</c> runs the application's configuration and keeps the
    /// storage it configured in <see cref="JobStorage.Current"/>. Otherwise the library's own storage.
    /// </summary>
    public JobStorage ResolveStorage(IServiceProvider services)
    {
        if (Application.Configuration)
        {
            services.GetRequiredService<IGlobalConfiguration>();
            return JobStorage.Current;
        }

        return services.GetRequiredService<LibraryJobStorage>().Storage;
    }

    /// <summary>The <see cref="JobActivator"/> registered by the library; as for the storage, the application's configuration wins.</summary>
    public JobActivator ResolveActivator(IServiceProvider services)
    {
        if (Application.Configuration)
        {
            services.GetRequiredService<IGlobalConfiguration>();
            return JobActivator.Current;
        }

        return new AspNetCoreJobActivator(services.GetRequiredService<IServiceScopeFactory>());
    }

    /// <summary>
    /// The host's filter provider: every other filter provider registered (Hangfire's default, which holds the
    /// global filters and the attributes, or the application's own), plus the workflow filters, which only
    /// apply to workflow jobs.
    /// </summary>
    public IJobFilterProvider CreateFilterProvider(IServiceProvider services)
    {
        var providers = new List<IJobFilterProvider>();
        foreach (var descriptor in _services.ToList())
        {
            if (descriptor.ServiceType != typeof(IJobFilterProvider) || descriptor.IsKeyedService || ReferenceEquals(descriptor, FilterProviderDescriptor))
            {
                continue;
            }

            var provider = descriptor.ImplementationInstance
                ?? descriptor.ImplementationFactory?.Invoke(services)
                ?? ActivatorUtilities.CreateInstance(services, descriptor.ImplementationType!);
            providers.Add((IJobFilterProvider)provider);
        }

        if (providers.Count == 0)
        {
            // What Hangfire's own AddHangfire registers: global filters and filter attributes.
            providers.Add(JobFilterProviders.Providers);
        }

        providers.Add(services.GetRequiredService<WorkflowJobFilterProvider>());
        return new WorkflowHostFilterProvider(providers);
    }

    public WorkflowHangfireStorage Decide(IServiceProvider services, WorkflowHangfireOptions options)
    {
        var application = Application;
        var storage = services.GetRequiredService<JobStorage>();
        var own = services.GetRequiredService<LibraryJobStorage>().Owns(storage);
        var libraryServer = options.RunServer && !application.Configuration && !application.Server;
        return new WorkflowHangfireStorage(storage, own, libraryServer, application.Any, libraryServer || application.Server);
    }

    private ApplicationHangfire Detect()
    {
        bool configuration = false, storage = false, server = false;
        foreach (var descriptor in _services.ToList())
        {
            if (descriptor.IsKeyedService || _own.Contains(descriptor))
            {
                continue;
            }

            if (descriptor.ServiceType == typeof(IGlobalConfiguration))
            {
                configuration = true;
            }
            else if (descriptor.ServiceType == typeof(JobStorage))
            {
                storage = true;
            }
            else if (descriptor.ServiceType == typeof(IHostedService) && IsHangfireServer(ImplementationType(descriptor)))
            {
                server = true;
            }
        }

        return new ApplicationHangfire(configuration, storage, server);
    }

    private static bool IsHangfireServer(Type? type)
        => type is not null && (typeof(BackgroundJobServerHostedService).IsAssignableFrom(type)
            || typeof(BackgroundProcessingServerHostedService).IsAssignableFrom(type));

    // A factory registration (AddHangfireServer's) is a Func<IServiceProvider, TImplementation>: its type argument names the implementation.
    private static Type? ImplementationType(ServiceDescriptor descriptor)
        => descriptor.ImplementationType
            ?? descriptor.ImplementationInstance?.GetType()
            ?? (descriptor.ImplementationFactory?.GetType() is { IsGenericType: true } factory ? factory.GetGenericArguments()[^1] : null);
}

/// <summary>
/// The Hangfire storage the library builds on the workflow data source, created only when it is used, with what it
/// owns (the queue wake-up's listener), disposed with the host.
/// </summary>
internal sealed class LibraryJobStorage(Func<(PostgreSqlStorage Storage, IDisposable? Owned)> create) : IDisposable
{
    private readonly Lazy<(PostgreSqlStorage Storage, IDisposable? Owned)> _storage = new(create, LazyThreadSafetyMode.ExecutionAndPublication);

    public PostgreSqlStorage Storage => _storage.Value.Storage;

    /// <summary>The queue wake-up of the storage, when it has one.</summary>
    public NotifyingJobQueueProvider? WakeUp => _storage.IsValueCreated ? _storage.Value.Owned as NotifyingJobQueueProvider : null;

    public bool Owns(JobStorage storage) => _storage.IsValueCreated && ReferenceEquals(_storage.Value.Storage, storage);

    public void Dispose()
    {
        if (_storage.IsValueCreated)
        {
            _storage.Value.Owned?.Dispose();
        }
    }
}

/// <summary>
/// The filter providers of a host, workflow filters included: Hangfire's collection (ordering and de-duplication
/// as usual), as a type of its own so start-up can tell it is the one in use.
/// </summary>
internal sealed class WorkflowHostFilterProvider(IReadOnlyList<IJobFilterProvider> providers) : JobFilterProviderCollection(providers.ToArray());

/// <summary>Stands in for a hosted service that this host does not run (a server or loop that another owner runs).</summary>
internal sealed class InactiveHostedService : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
