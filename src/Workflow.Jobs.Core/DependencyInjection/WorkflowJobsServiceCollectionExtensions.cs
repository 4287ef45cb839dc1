using System.Diagnostics.Metrics;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Workflow.Jobs;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registration of Workflow.Jobs.</summary>
public static class WorkflowJobsServiceCollectionExtensions
{
    /// <summary>
    /// Adds the workflow engine. Configure storage in <paramref name="configure"/> (for example
    /// <c>options.UseNpgsql(connectionString)</c>) and add workflows on the returned builder.
    /// </summary>
    public static IWorkflowJobsBuilder AddWorkflowJobs(this IServiceCollection services, Action<WorkflowJobsOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configure);
        var options = new WorkflowJobsOptions();
        configure(options);
        services.TryAddSingleton(options);
        foreach (var extension in options.Extensions)
        {
            extension(services);
        }

        services.AddLogging();
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton(sp => new WorkflowRegistry(sp.GetServices<WorkflowRegistration>()));
        services.TryAddSingleton<IWorkflowCatalog>(sp => new WorkflowCatalog(sp.GetRequiredService<WorkflowRegistry>()));
        services.TryAddSingleton(sp => new WorkflowMetrics(sp.GetService<IMeterFactory>()));
        services.TryAddSingleton<WorkflowExecutionOrigin>();
        services.TryAddSingleton<WorkflowEngine>();
        services.TryAddSingleton<WorkflowRunner>();
        services.TryAddSingleton<IWorkflowRunner>(sp => sp.GetRequiredService<WorkflowRunner>());
        services.TryAddSingleton<WorkflowJobRequests>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IWorkflowLeaderTask, WorkflowOutboxTask>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IWorkflowLeaderTask, WorkflowRecoveryTask>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IWorkflowLeaderTask, WorkflowWaitingMetricsTask>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IWorkflowLeaderTask, WorkflowConcurrencyTask>());
        services.TryAddSingleton<WorkflowWaker>();
        services.TryAddSingleton<WorkflowClient>();
        services.TryAddSingleton<IWorkflowClient>(sp => sp.GetRequiredService<WorkflowClient>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, WorkflowJobsStartup>());
        return new WorkflowJobsBuilder(services);
    }

    /// <summary>Registers a workflow definition and its step types (transient, so constructor injection works).</summary>
    public static IWorkflowJobsBuilder AddWorkflow<TWorkflow>(this IWorkflowJobsBuilder builder) where TWorkflow : WorkflowDefinition, new()
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.AddSingleton(new WorkflowRegistration(typeof(TWorkflow)));
        IReadOnlyList<Type> steps;
        try
        {
            steps = new TWorkflow().Steps ?? [];
        }
        // The registry reports broken definitions, naming the type, when the host starts.
        catch (Exception)
        {
            steps = [];
        }

        foreach (var step in steps)
        {
            if (step is { IsClass: true, IsAbstract: false } && typeof(IWorkflowStep).IsAssignableFrom(step))
            {
                builder.Services.TryAddTransient(step);
            }
        }

        return builder;
    }

    private sealed class WorkflowJobsBuilder(IServiceCollection services) : IWorkflowJobsBuilder
    {
        public IServiceCollection Services { get; } = services;
    }
}
