using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Workflow.Jobs;

/// <summary>
/// Checks the definitions and prepares storage before any hosted service (the Hangfire server
/// included) starts: it runs in <see cref="IHostedLifecycleService.StartingAsync"/>.
/// </summary>
internal sealed partial class WorkflowJobsStartup : IHostedLifecycleService
{
    private readonly IServiceProvider _services;
    private readonly WorkflowJobsOptions _options;
    private readonly ILogger<WorkflowJobsStartup> _logger;

    public WorkflowJobsStartup(IServiceProvider services, WorkflowJobsOptions options, ILogger<WorkflowJobsStartup> logger)
    {
        _services = services;
        _options = options;
        _logger = logger;
    }

    public async Task StartingAsync(CancellationToken cancellationToken)
    {
        _options.Validate();
        var registry = _services.GetRequiredService<WorkflowRegistry>();
        foreach (var workflow in registry.All)
        {
            foreach (var step in workflow.Steps)
            {
                // Fail at start-up, naming the type, rather than at the first run.
                using var scope = _services.CreateScope();
                _ = scope.ServiceProvider.GetService(step.StepType)
                    ?? throw new WorkflowDefinitionException($"Step '{step.StepType.FullName}' of workflow '{workflow.Name}' is not registered in dependency injection.");
            }
        }

        if (_options.ApplyMigrationsOnStartup)
        {
            foreach (var initializer in _services.GetServices<IWorkflowStorageInitializer>())
            {
                await initializer.InitializeAsync(cancellationToken).ConfigureAwait(false);
            }
        }

        LogReady(registry.All.Count);
    }

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    [LoggerMessage(EventId = 100, Level = LogLevel.Information, Message = "Workflow.Jobs ready with {WorkflowCount} workflows")]
    private partial void LogReady(int workflowCount);
}
