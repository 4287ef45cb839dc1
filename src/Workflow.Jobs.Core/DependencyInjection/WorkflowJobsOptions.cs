using Microsoft.Extensions.DependencyInjection;

namespace Workflow.Jobs;

/// <summary>Options of Workflow.Jobs, set in <c>services.AddWorkflowJobs(options =&gt; ...)</c>. Validated when the host starts.</summary>
public sealed class WorkflowJobsOptions
{
    private readonly List<Action<IServiceCollection>> _extensions = [];

    /// <summary>Create or migrate the workflow tables when the host starts. Default <c>true</c>.</summary>
    public bool ApplyMigrationsOnStartup { get; set; } = true;

    /// <summary>How failed runs are retried when a definition does not say. Default: 3 retries after 2, 10 and 60 seconds.</summary>
    public WorkflowRetryPolicy DefaultRetry { get; set; } = new();

    /// <summary>
    /// How often an execution that finds its run executing elsewhere checks again (it waits; it never
    /// runs a step meanwhile). Default 200 ms.
    /// </summary>
    public TimeSpan ExecutionLockPollInterval { get; set; } = TimeSpan.FromMilliseconds(200);

    /// <summary>
    /// How old a job write recorded on a run (create, requeue or delete its job) must be before the outbox
    /// does it in place of the caller that recorded it (which normally does it at once, after its commit).
    /// Default 5 s.
    /// </summary>
    public TimeSpan OutboxDelay { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// How long a run must be seen Running with no live execution (its guard free: the executing process or
    /// its connection died) before the leader loop requeues its job. Longer than the storage's guard check
    /// (a worker that lost its connection cancels its step body first). Default 2 s.
    /// </summary>
    public TimeSpan RecoveryDelay { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>How long finished runs are kept; null (the default) keeps them forever.</summary>
    public WorkflowRetention? Retention { get; set; }

    /// <summary>
    /// Register what an adapter package provides (used by <c>UseNpgsql</c> and the Hangfire package).
    /// </summary>
    internal void AddExtension(Action<IServiceCollection> registration)
    {
        ArgumentNullException.ThrowIfNull(registration);
        _extensions.Add(registration);
    }

    internal IReadOnlyList<Action<IServiceCollection>> Extensions => _extensions;

    internal void Validate()
    {
        if (ExecutionLockPollInterval <= TimeSpan.Zero)
        {
            throw new InvalidOperationException($"{nameof(WorkflowJobsOptions)}.{nameof(ExecutionLockPollInterval)} must be positive.");
        }

        Retention?.Validate();

        if (RecoveryDelay < TimeSpan.Zero)
        {
            throw new InvalidOperationException($"{nameof(WorkflowJobsOptions)}.{nameof(RecoveryDelay)} must not be negative.");
        }

        if (OutboxDelay < TimeSpan.Zero)
        {
            throw new InvalidOperationException($"{nameof(WorkflowJobsOptions)}.{nameof(OutboxDelay)} must not be negative.");
        }

        if (DefaultRetry is null || DefaultRetry.Attempts < 0 || DefaultRetry.DelaysInSeconds is null || DefaultRetry.DelaysInSeconds.Any(d => d < 0))
        {
            throw new InvalidOperationException($"{nameof(WorkflowJobsOptions)}.{nameof(DefaultRetry)} must have non-negative attempts and delays.");
        }
    }
}

/// <summary>Returned by <c>AddWorkflowJobs</c>: adds workflows and adapter services.</summary>
public interface IWorkflowJobsBuilder
{
    /// <summary>The service collection.</summary>
    IServiceCollection Services { get; }
}

/// <summary>Prepares storage when the host starts (migrations).</summary>
internal interface IWorkflowStorageInitializer
{
    Task InitializeAsync(CancellationToken cancellationToken);
}
