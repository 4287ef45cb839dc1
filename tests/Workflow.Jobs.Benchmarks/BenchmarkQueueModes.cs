using Hangfire;
using Hangfire.PostgreSql;
using Workflow.Jobs.Hangfire;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Npgsql;

namespace Workflow.Jobs.Benchmarks;

/// <summary>How the benchmark's hosts fetch jobs (<c>--queue</c>): the options of the enqueue→pickup spike.</summary>
public enum QueueMode
{
    /// <summary>The library with <see cref="WorkflowHangfireOptions.WakeWorkersOnEnqueue"/> off: a short queue poll.</summary>
    Poll,

    /// <summary>Hangfire.PostgreSql's own long polling (<c>EnableLongPolling</c>: a LISTEN connection per dequeue).</summary>
    LongPoll,

    /// <summary>
    /// The library's default: the wake-up on enqueue (<see cref="WorkflowHangfireOptions.WakeWorkersOnEnqueue"/>),
    /// the poll interval a fallback.
    /// </summary>
    Notify,
}

/// <summary>Applies a queue mode to the benchmark's hosts.</summary>
internal static class BenchmarkQueueModes
{
    /// <summary>The queue of the dequeue stress (stranded dequeues), beside the library's default queue.</summary>
    public const string DequeueQueue = "wjbench_dequeue";

    public static QueueMode Parse(string value) => value switch
    {
        "poll" => QueueMode.Poll,
        "longpoll" => QueueMode.LongPoll,
        "notify" => QueueMode.Notify,
        _ => throw new ArgumentException($"Unknown queue mode '{value}' (poll, longpoll, notify)."),
    };

    public static string Name(QueueMode mode) => mode switch
    {
        QueueMode.LongPoll => "longpoll",
        QueueMode.Notify => "notify",
        _ => "poll",
    };

    /// <summary>The library's options of a queue mode.</summary>
    public static void Configure(WorkflowHangfireOptions options, QueueMode mode, TimeSpan pollInterval)
    {
        options.QueuePollInterval = pollInterval;
        options.WakeWorkersOnEnqueue = mode == QueueMode.Notify;
    }

    /// <summary>
    /// For <see cref="QueueMode.LongPoll"/>, replaces the library's storage by one with the same options and
    /// Hangfire.PostgreSql's long polling on; nothing for the library's own modes.
    /// </summary>
    public static void Apply(IServiceCollection services, QueueMode mode, TimeSpan pollInterval)
    {
        if (mode != QueueMode.LongPoll)
        {
            return;
        }

        var defaults = new WorkflowHangfireOptions();
        services.Replace(ServiceDescriptor.Singleton<JobStorage>(sp =>
        {
            var dataSource = sp.GetRequiredKeyedService<NpgsqlDataSource>(WorkflowStorageKeys.DataSource);
            return new PostgreSqlStorage(new PostgreSqlDataSourceConnectionFactory(dataSource), new PostgreSqlStorageOptions
            {
                SchemaName = defaults.SchemaName,
                QueuePollInterval = pollInterval,
                InvisibilityTimeout = defaults.InvisibilityTimeout,
                DistributedLockTimeout = defaults.InvisibilityTimeout,
                UseSlidingInvisibilityTimeout = true,
                EnableTransactionScopeEnlistment = true,
                EnableLongPolling = true,
                PrepareSchemaIfNecessary = true,
            });
        }));
    }
}
