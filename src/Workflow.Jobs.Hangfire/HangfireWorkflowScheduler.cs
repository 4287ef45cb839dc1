using System.ComponentModel;
using Hangfire;
using Hangfire.Common;
using Hangfire.Server;
using Newtonsoft.Json;

namespace Workflow.Jobs.Hangfire;

/// <summary>Recurring workflows as Hangfire recurring jobs whose id is the schedule's id.</summary>
internal sealed class HangfireWorkflowScheduler(IRecurringJobManagerV2 manager, WorkflowRegistry registry) : IWorkflowScheduler
{
    public Task AddOrUpdateRecurringAsync<TWorkflow>(string recurringId, string cron, WorkflowInput input, RecurringWorkflowOptions? options = null,
        CancellationToken cancellationToken = default) where TWorkflow : WorkflowDefinition
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(recurringId);
        ArgumentException.ThrowIfNullOrWhiteSpace(cron);
        ArgumentNullException.ThrowIfNull(input);
        cancellationToken.ThrowIfCancellationRequested();
        var workflow = registry.Get(typeof(TWorkflow));
        // Validated now, so a bad schedule is refused here rather than failing at every firing.
        var snapshot = WorkflowInputValidator.Validate(workflow, input.ToJson()).ToString(Formatting.None);
        var queue = options?.Queue;
        var job = Job.FromExpression<RecurringWorkflowJob>(j => j.StartAsync(recurringId, workflow.Name, snapshot, null, CancellationToken.None), queue);
        manager.AddOrUpdate(recurringId, job, cron, new RecurringJobOptions
        {
            TimeZone = options?.TimeZone ?? TimeZoneInfo.Utc,
            MisfireHandling = (options?.MisfireHandling ?? RecurringMisfireHandling.Relaxed) switch
            {
                RecurringMisfireHandling.Strict => MisfireHandlingMode.Strict,
                RecurringMisfireHandling.Ignorable => MisfireHandlingMode.Ignorable,
                _ => MisfireHandlingMode.Relaxed,
            },
        });
        return Task.CompletedTask;
    }

    public Task RemoveRecurringAsync(string recurringId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(recurringId);
        cancellationToken.ThrowIfCancellationRequested();
        manager.RemoveIfExists(recurringId);
        return Task.CompletedTask;
    }
}

/// <summary>
/// The Hangfire recurring job of a schedule: each firing creates a new run from the schedule's input
/// snapshot, linked to the schedule, and enqueues its job (atomically).
/// </summary>
internal sealed class RecurringWorkflowJob
{
    private readonly WorkflowClient _client;
    private readonly WorkflowRegistry _registry;

    internal RecurringWorkflowJob(WorkflowClient client, WorkflowRegistry registry)
    {
        _client = client;
        _registry = registry;
    }

    /// <summary>Starts one run of the schedule.</summary>
    /// <param name="recurringId">The schedule (and Hangfire recurring job) id.</param>
    /// <param name="workflowName">The workflow's persisted name.</param>
    /// <param name="input">The schedule's composite input, as JSON.</param>
    /// <param name="context">Filled in by Hangfire.</param>
    /// <param name="cancellationToken">Filled in by Hangfire.</param>
    [AutomaticRetry(Attempts = 3)]
    [DisplayName("Start {1} (schedule {0})")]
    public async Task StartAsync(string recurringId, string workflowName, string input, PerformContext? context, CancellationToken cancellationToken)
    {
        var workflow = _registry.Find(workflowName)
            ?? throw new UnitOfWorkException($"Unknown workflow '{workflowName}' in schedule '{recurringId}'.", UnitOfWorkException.UnknownWorkflowCode);
        // One run per firing even if this job is retried: the firing's job id is the idempotency key.
        var key = context?.BackgroundJob?.Id is { } jobId ? $"recurring:{recurringId}:{jobId}" : null;
        await _client.EnqueueAsync(workflow, WorkflowJson.ParseObject(input), new EnqueueOptions { IdempotencyKey = key, Queue = context?.BackgroundJob?.Job?.Queue },
            recurringId, cancellationToken).ConfigureAwait(false);
    }
}
