namespace Workflow.Jobs;

/// <summary>
/// Options of the Hangfire integration (<c>AddHangfireJobs</c>). The storage and server settings apply when the
/// library configures Hangfire itself; an application that configured Hangfire its own way keeps its own settings
/// (the ones Workflow.Jobs depends on are checked when the host starts).
/// </summary>
public sealed class WorkflowHangfireOptions
{
    /// <summary>
    /// Also run a Hangfire server in this host. Default <c>true</c>; turn it off for web-only hosts. Without effect
    /// when the application configured Hangfire itself: its own servers (<c>AddHangfireServer</c>) run the workflow
    /// jobs, and the library never starts a second one.
    /// </summary>
    public bool RunServer { get; set; } = true;

    /// <summary>Hangfire workers of the server. Default: Hangfire's (processors × 5, at most 20).</summary>
    public int? WorkerCount { get; set; }

    /// <summary>Queues the server listens to. Default <c>["default"]</c>.</summary>
    public IReadOnlyList<string> Queues { get; set; } = ["default"];

    /// <summary>
    /// Wake idle workers when a job is enqueued, from any process: the enqueue transaction also sends a PostgreSQL
    /// <c>NOTIFY</c>, and each server listens on one connection of its own and wakes one waiting worker per job.
    /// Default <c>true</c>. The queue poll (<see cref="QueuePollInterval"/>) is then only a fallback, for jobs
    /// enqueued without a notification (by a process without the wake-up, or to a queue not in <see cref="Queues"/>)
    /// and while the listening connection is being reopened; an idle server costs a few commits a second instead of
    /// one per worker per poll. Applies only when the library built the Hangfire storage (an application's own
    /// storage keeps its queue settings), to the queues named in <see cref="Queues"/>: a host that enqueues runs to
    /// other queues (processed by servers elsewhere) should name them there too.
    /// </summary>
    public bool WakeWorkersOnEnqueue { get; set; } = true;

    /// <summary>
    /// How often idle workers look for new jobs without being woken. Default: 5 s with
    /// <see cref="WakeWorkersOnEnqueue"/> (a fallback), 50 ms without it (Hangfire.PostgreSql's default of 15 s
    /// is far too slow for workflows, and its long polling can strand a fetched job, see docs). Each idle worker
    /// makes one small read-only transaction per interval; a job enqueued from another process without a
    /// wake-up waits on average about interval / (workers + 1) before an idle worker looks.
    /// </summary>
    public TimeSpan? QueuePollInterval { get; set; }

    /// <summary>The queue poll in effect: <see cref="QueuePollInterval"/> or its default.</summary>
    internal TimeSpan EffectiveQueuePollInterval
        => QueuePollInterval ?? (WakeWorkersOnEnqueue ? FallbackQueuePollInterval : TimeSpan.FromMilliseconds(50));

    /// <summary>The default queue poll with the wake-up on.</summary>
    internal static readonly TimeSpan FallbackQueuePollInterval = TimeSpan.FromSeconds(5);

    /// <summary>
    /// How long a fetched job may go without a heartbeat before another server takes it again (the
    /// recovery bound after a worker process dies). Default 1 minute. Processing jobs renew it
    /// (sliding invisibility timeout), so long steps are not taken twice. It is also the expiry of
    /// Hangfire's distributed locks (job state locks, scheduler locks), which a killed process leaves behind.
    /// </summary>
    public TimeSpan InvisibilityTimeout { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>
    /// How often the server checks whether the jobs it is running were deleted, requeued or taken by
    /// another worker meanwhile (Hangfire's job-ownership check), so that the step in flight sees its
    /// cancellation token fire. Default 5 s (Hangfire's default). Each check is one query (one commit) per
    /// running job: on a busy 8-worker server, 1.6 commits per second at 5 s, 8 at 1 s. A cancelled run
    /// also stops at its next checkpoint whatever this interval.
    /// </summary>
    public TimeSpan CancellationCheckInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// How often the server moves due scheduled jobs (delayed runs, retries with a delay) to their queue.
    /// Default 1 s (Hangfire's default is 15 s, which would add up to 15 s to every retry delay). One small
    /// query per interval per server.
    /// </summary>
    public TimeSpan SchedulePollingInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Schema of Hangfire's tables. Default <c>hangfire</c>.</summary>
    public string SchemaName { get; set; } = "hangfire";

    /// <summary>Name of this server in the dashboard (default: Hangfire's machine-based name).</summary>
    public string? ServerName { get; set; }

    /// <summary>How long graceful shutdown waits for running steps before cancelling them. Default 15 s.</summary>
    public TimeSpan ShutdownTimeout { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>
    /// Run the leader loop in this host when a Hangfire server runs here (the library's or the application's).
    /// Default <c>true</c>. The loop does the periodic work that one host at a time does for all hosts on the
    /// database (such as creating the jobs of runs left without one); of all hosts running it, one holds
    /// leadership (a PostgreSQL advisory lock on one dedicated connection) and another takes over within a few
    /// intervals when that host stops or loses its connection. Turn it off only where another host runs it.
    /// </summary>
    public bool RunLeaderLoop { get; set; } = true;

    /// <summary>
    /// How often the leader loop checks leadership and, while this host leads, runs its tasks. Default 1 s. Each
    /// tick costs one small query per host (the lock attempt, or the leader's liveness check), plus what tasks do.
    /// </summary>
    public TimeSpan LeaderLoopInterval { get; set; } = TimeSpan.FromSeconds(1);

    internal void Validate()
    {
        if (LeaderLoopInterval < TimeSpan.FromMilliseconds(10))
        {
            throw new InvalidOperationException($"{nameof(WorkflowHangfireOptions)}.{nameof(LeaderLoopInterval)} must be at least 10 ms.");
        }

        if (QueuePollInterval is { } poll && poll <= TimeSpan.Zero)
        {
            throw new InvalidOperationException($"{nameof(WorkflowHangfireOptions)}.{nameof(QueuePollInterval)} must be positive.");
        }

        if (InvisibilityTimeout < TimeSpan.FromSeconds(10))
        {
            throw new InvalidOperationException($"{nameof(WorkflowHangfireOptions)}.{nameof(InvisibilityTimeout)} must be at least 10 seconds.");
        }

        if (SchedulePollingInterval <= TimeSpan.Zero)
        {
            throw new InvalidOperationException($"{nameof(WorkflowHangfireOptions)}.{nameof(SchedulePollingInterval)} must be positive.");
        }

        if (CancellationCheckInterval <= TimeSpan.Zero)
        {
            throw new InvalidOperationException($"{nameof(WorkflowHangfireOptions)}.{nameof(CancellationCheckInterval)} must be positive.");
        }

        if (WorkerCount is < 1)
        {
            throw new InvalidOperationException($"{nameof(WorkflowHangfireOptions)}.{nameof(WorkerCount)} must be at least 1.");
        }

        if (Queues is null || Queues.Count == 0)
        {
            throw new InvalidOperationException($"{nameof(WorkflowHangfireOptions)}.{nameof(Queues)} must name at least one queue.");
        }
    }
}
