using System.ComponentModel;
using Hangfire;
using Hangfire.Common;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Workflow.Jobs.Hangfire;

/// <summary>The recurring maintenance job of <see cref="WorkflowJobsOptions.Retention"/> (visible on the Recurring Jobs page).</summary>
internal sealed class WorkflowRetentionJob
{
    /// <summary>The recurring job's id.</summary>
    public const string RecurringId = "workflow-jobs-retention";

    private readonly WorkflowClient _client;
    private readonly WorkflowJobsOptions _options;

    internal WorkflowRetentionJob(WorkflowClient client, WorkflowJobsOptions options)
    {
        _client = client;
        _options = options;
    }

    /// <summary>Deletes the finished runs older than the configured ages.</summary>
    /// <param name="cancellationToken">Filled in by Hangfire.</param>
    [DisplayName("Workflow.Jobs retention: delete old finished runs")]
    [AutomaticRetry(Attempts = 0)]
    public Task<int> RunAsync(CancellationToken cancellationToken)
        => _options.Retention is { } retention ? _client.ApplyRetentionAsync(retention, cancellationToken) : Task.FromResult(0);
}

/// <summary>Registers (or updates) the retention job's schedule when the host starts, if retention is configured.</summary>
internal sealed class WorkflowRetentionSchedule(IServiceProvider services, WorkflowJobsOptions options) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (options.Retention is { } retention)
        {
            // Resolved only when needed: a host without retention never touches the recurring-job manager.
            var manager = services.GetRequiredService<IRecurringJobManagerV2>();
            manager.AddOrUpdate(WorkflowRetentionJob.RecurringId, Job.FromExpression<WorkflowRetentionJob>(j => j.RunAsync(CancellationToken.None)),
                retention.Cron, new RecurringJobOptions { TimeZone = TimeZoneInfo.Utc });
        }

        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
