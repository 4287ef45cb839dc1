using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Workflow.Jobs.IntegrationTests;

public static class TestHosts
{
    /// <summary>A host with the engine and PostgreSQL storage (no job scheduler), started (so migrated).</summary>
    public static Task<IHost> StartEngineHostAsync(string connectionString, Action<IServiceCollection>? configure = null)
        => StartAsync(connectionString, builder => builder, configure);

    /// <summary>A host with the engine, PostgreSQL storage and a real Hangfire server, started.</summary>
    public static Task<IHost> StartHangfireHostAsync(string connectionString, Action<WorkflowHangfireOptions>? hangfire = null,
        Action<IServiceCollection>? configure = null, Func<IWorkflowJobsBuilder, IWorkflowJobsBuilder>? workflows = null)
        => StartAsync(connectionString, builder => builder.AddHangfireJobs(o =>
        {
            o.WorkerCount = 4;
            o.QueuePollInterval = TimeSpan.FromMilliseconds(50);
            o.ShutdownTimeout = TimeSpan.FromSeconds(2);
            hangfire?.Invoke(o);
        }), configure, workflows);

    /// <summary>A Hangfire host with the flow-controlled workflows too, sharing <paramref name="probe"/> and <paramref name="gates"/> with the test's other hosts.</summary>
    public static Task<IHost> StartFlowHostAsync(string connectionString, ConcurrencyProbe probe, Gates gates, Action<WorkflowHangfireOptions>? hangfire = null)
        => StartHangfireHostAsync(connectionString, hangfire, services =>
        {
            services.AddSingleton(probe);
            services.AddSingleton(gates);
        }, builder => builder.AddWorkflow<TwoPerKeyWorkflow>().AddWorkflow<OnePerKeyWorkflow>().AddWorkflow<ThreeAtOnceWorkflow>());

    private static async Task<IHost> StartAsync(string connectionString, Func<IWorkflowJobsBuilder, IWorkflowJobsBuilder> scheduler,
        Action<IServiceCollection>? configure, Func<IWorkflowJobsBuilder, IWorkflowJobsBuilder>? workflows = null)
    {
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        // Hangfire's static log provider follows the last host started: a factory no host disposal can break.
        builder.Services.AddSingleton<ILoggerFactory>(Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance);
        builder.Services.AddSingleton<ExecutionLog>();
        builder.Services.AddSingleton<Gates>();
        var jobs = builder.Services.AddWorkflowJobs(o => o.UseNpgsql(connectionString));
        workflows?.Invoke(jobs);
        scheduler(jobs
            .AddWorkflow<AddWorkflow>()
            .AddWorkflow<AddThenSquareWorkflow>()
            .AddWorkflow<AddFailSquareWorkflow>()
            .AddWorkflow<AddWaitSquareWorkflow>()
            .AddWorkflow<NoRetryWorkflow>()
            .AddWorkflow<SlowRetryWorkflow>()
            .AddWorkflow<SleepThenSquareWorkflow>()
            .AddWorkflow<ApprovalWorkflow>()
            .AddWorkflow<CollectWorkflow>()
            .AddWorkflow<ChildItemWorkflow>()
            .AddWorkflow<ParentFanOutWorkflow>());
        // Last, so a test's registrations win (the last registration of a service is the one resolved).
        configure?.Invoke(builder.Services);
        var host = builder.Build();
        await host.StartAsync();
        return host;
    }
}
