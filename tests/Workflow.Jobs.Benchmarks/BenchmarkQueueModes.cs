using System.Collections.Concurrent;
using System.Data;
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
    /// <summary>The library as it is: a short queue poll, no long polling.</summary>
    Poll,

    /// <summary>Hangfire.PostgreSql's own long polling (<c>EnableLongPolling</c>: a LISTEN connection per dequeue).</summary>
    LongPoll,

    /// <summary>
    /// A queue provider wrapping Hangfire.PostgreSql's queue: the enqueue transaction also sends a
    /// NOTIFY, one LISTEN connection per storage wakes the waiting dequeues; the poll interval becomes a
    /// fallback.
    /// </summary>
    Notify,
}

/// <summary>Replaces the library's Hangfire storage by one of the spike's variants (same options otherwise).</summary>
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

    /// <summary>
    /// For <see cref="QueueMode.Poll"/> nothing (the library's own storage); otherwise the same
    /// storage options as the library's with long polling on, or with the notifying queue provider.
    /// </summary>
    public static void Apply(IServiceCollection services, QueueMode mode, TimeSpan pollInterval)
    {
        if (mode == QueueMode.Poll)
        {
            return;
        }

        var defaults = new WorkflowHangfireOptions();
        services.TryAddSingleton<NotifyingQueueProviderHolder>();
        services.Replace(ServiceDescriptor.Singleton<JobStorage>(sp =>
        {
            var dataSource = sp.GetRequiredKeyedService<NpgsqlDataSource>(WorkflowStorageKeys.DataSource);
            var storage = new PostgreSqlStorage(new PostgreSqlDataSourceConnectionFactory(dataSource), new PostgreSqlStorageOptions
            {
                SchemaName = defaults.SchemaName,
                QueuePollInterval = pollInterval,
                InvisibilityTimeout = defaults.InvisibilityTimeout,
                DistributedLockTimeout = defaults.InvisibilityTimeout,
                UseSlidingInvisibilityTimeout = true,
                EnableTransactionScopeEnlistment = true,
                EnableLongPolling = mode == QueueMode.LongPoll,
                PrepareSchemaIfNecessary = true,
            });
            if (mode == QueueMode.Notify)
            {
                var provider = new NotifyingJobQueueProvider(storage, dataSource);
                sp.GetRequiredService<NotifyingQueueProviderHolder>().Provider = provider;
                // One server's queues must all belong to one provider.
                storage.QueueProviders.Add(provider, ["default", DequeueQueue]);
            }

            return storage;
        }));
    }
}

/// <summary>Owns the notifying provider so that the host disposes it (closing its LISTEN connection).</summary>
internal sealed class NotifyingQueueProviderHolder : IDisposable
{
    public NotifyingJobQueueProvider? Provider { get; set; }

    public void Dispose() => Provider?.Dispose();
}

/// <summary>
/// Spike: Hangfire.PostgreSql's queue (long polling off) with a cross-process wake-up. Enqueue adds a
/// <c>NOTIFY</c> to the enqueue transaction (delivered at commit, so a woken worker sees the row); one
/// LISTEN connection per provider signals every dequeue waiting in this process through the queue's
/// public <see cref="PostgreSqlJobQueue.FetchNextJob"/>. Each dequeue fetches before it waits, and
/// the signal is an auto-reset event that stays set until the wait, so no wake-up is lost between a
/// fetch that found nothing and the wait; a lost LISTEN connection only falls back to the poll.
/// </summary>
internal sealed class NotifyingJobQueueProvider : IPersistentJobQueueProvider, IDisposable
{
    private const string Channel = "wjbench_new_job";
    private readonly PostgreSqlStorage _storage;
    private readonly PostgreSqlJobQueueProvider _inner;
    private readonly NpgsqlDataSource _dataSource;
    private readonly ConcurrentDictionary<PostgreSqlJobQueue, byte> _waiting = new();
    private readonly Lock _gate = new();
    private volatile bool _stopping;
    private Task? _listener;

    public NotifyingJobQueueProvider(PostgreSqlStorage storage, NpgsqlDataSource dataSource)
    {
        _storage = storage;
        _dataSource = dataSource;
        _inner = new PostgreSqlJobQueueProvider(storage, new PostgreSqlStorageOptions { SchemaName = new WorkflowHangfireOptions().SchemaName });
    }

    /// <summary>Notifications received (each wakes every waiting dequeue of this process).</summary>
    public long Notifications;

    public IPersistentJobQueue GetJobQueue() => new Queue(this, new PostgreSqlJobQueue(_storage));

    public IPersistentJobQueueMonitoringApi GetJobQueueMonitoringApi() => _inner.GetJobQueueMonitoringApi();

    private void EnsureListening()
    {
        if (_listener is not null)
        {
            return;
        }

        lock (_gate)
        {
            _listener ??= Task.Run(ListenAsync);
        }
    }

    private async Task ListenAsync()
    {
        while (!_stopping)
        {
            try
            {
                await using var connection = await _dataSource.OpenConnectionAsync().ConfigureAwait(false);
                connection.Notification += (_, _) =>
                {
                    Interlocked.Increment(ref Notifications);
                    WakeAll();
                };
                await using (var listen = new NpgsqlCommand($"LISTEN {Channel}", connection))
                {
                    await listen.ExecuteNonQueryAsync().ConfigureAwait(false);
                }

                // Whatever was enqueued while nobody listened.
                WakeAll();
                while (!_stopping)
                {
                    // A timeout instead of a cancellation token: the wait never races a cancellation.
                    await connection.WaitAsync(1000).ConfigureAwait(false);
                }
            }
            // A lost LISTEN connection only falls back to the poll until it is reopened.
            catch (Exception) when (!_stopping)
            {
                await Task.Delay(1000).ConfigureAwait(false);
            }
        }
    }

    private void WakeAll()
    {
        foreach (var queue in _waiting.Keys)
        {
            queue.FetchNextJob();
        }
    }

    public void Dispose()
    {
        _stopping = true;
#pragma warning disable VSTHRD002 // Dispose is synchronous (the Hangfire storage disposes the provider); the wait for the listener loop is bounded.
        _listener?.Wait(TimeSpan.FromSeconds(5));
#pragma warning restore VSTHRD002
    }

    private sealed class Queue(NotifyingJobQueueProvider owner, PostgreSqlJobQueue inner) : IPersistentJobQueue
    {
        public global::Hangfire.Storage.IFetchedJob Dequeue(string[] queues, CancellationToken cancellationToken)
        {
            owner.EnsureListening();
            owner._waiting.TryAdd(inner, 0);
            try
            {
                return inner.Dequeue(queues, cancellationToken);
            }
            finally
            {
                owner._waiting.TryRemove(inner, out _);
            }
        }

        public void Enqueue(IDbConnection connection, string queue, string jobId)
        {
            inner.Enqueue(connection, queue, jobId);
            using var notify = connection.CreateCommand();
            notify.CommandText = $"NOTIFY {Channel}";
            notify.ExecuteNonQuery();
        }
    }
}
