using System.Data;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Hangfire.PostgreSql;
using Hangfire.Storage;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace Workflow.Jobs.Hangfire;

/// <summary>
/// Hangfire.PostgreSql's queue (long polling off) with a wake-up that crosses processes
/// (<see cref="WorkflowHangfireOptions.WakeWorkersOnEnqueue"/>). An enqueue inserts the queue row and sends a
/// <c>NOTIFY</c> in the same round trip and transaction (PostgreSQL delivers it at commit, so a woken worker
/// sees the row). One LISTEN connection per provider, opened by the first dequeue (so only hosts that run a
/// server listen), turns each notification into the wake-up of one waiting dequeue of this process through the
/// queue's public <see cref="PostgreSqlJobQueue.FetchNextJob"/>; the poll interval is only a fallback.
/// <para>
/// No wake-up is lost, which is what keeps a job from waiting for the fallback poll: a dequeue always fetches
/// before it waits, and its signal is an auto-reset event that stays set until its wait, so a signal that lands
/// while it is fetching makes it fetch again. A dequeue that returns (with another job, or cancelled) while it
/// held signals passes them on to other waiting dequeues. That costs at most one fetch more per job, instead
/// of waking every idle worker for every job. A lost LISTEN connection wakes every waiting dequeue when it is
/// open again; meanwhile the fallback poll picks jobs up.
/// </para>
/// Nothing waits on a notification with a cancellation token (the race that strands a fetched job under
/// Hangfire.PostgreSql's own long polling): the listener waits with a timeout, and a dequeue's wait is
/// Hangfire.PostgreSql's own short wait on its events.
/// </summary>
internal sealed partial class NotifyingJobQueueProvider : IPersistentJobQueueProvider, IDisposable
{
    private static readonly TimeSpan ListenWait = TimeSpan.FromMilliseconds(500);
    private static readonly TimeSpan ReconnectDelay = TimeSpan.FromSeconds(1);
    private readonly PostgreSqlStorage _storage;
    private readonly NpgsqlDataSource _dataSource;
    private readonly PostgreSqlJobQueueProvider _inner;
    private readonly ILogger _logger;
    private readonly string _enqueueSql;
    private readonly Lock _gate = new();
    private readonly LinkedList<Waiter> _waiters = new();
    private readonly CancellationTokenSource _stopping = new();
    private Task? _listener;
    private long _notifications;
    private bool _disposed;

    public NotifyingJobQueueProvider(PostgreSqlStorage storage, NpgsqlDataSource dataSource, string schemaName, ILogger logger)
    {
        _storage = storage;
        _dataSource = dataSource;
        _logger = logger;
        _inner = new PostgreSqlJobQueueProvider(storage, new PostgreSqlStorageOptions { SchemaName = schemaName });
        Channel = ChannelName(schemaName);
        _enqueueSql = $"INSERT INTO {QuoteIdentifier(schemaName)}.\"jobqueue\" (\"jobid\", \"queue\") VALUES ($1, $2)";
    }

    /// <summary>The notification channel: one per Hangfire schema, so databases' schemas do not wake each other's workers.</summary>
    public string Channel { get; }

    /// <summary>Notifications received by this provider's listener (each wakes one waiting dequeue of its queue).</summary>
    public long Notifications => Interlocked.Read(ref _notifications);

    /// <summary>Whether the listener holds an open LISTEN connection now.</summary>
    public bool Listening { get; private set; }

    public IPersistentJobQueue GetJobQueue() => new Queue(this, new PostgreSqlJobQueue(_storage));

    /// <summary>
    /// The monitoring API of Hangfire.PostgreSql's queue, except that it names no queue of its own: the storage's
    /// default provider already lists every queue of the table, and the dashboard would show each one twice.
    /// </summary>
    public IPersistentJobQueueMonitoringApi GetJobQueueMonitoringApi() => new Monitoring(_inner.GetJobQueueMonitoringApi());

    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
        }

        _stopping.Cancel();
#pragma warning disable VSTHRD002 // Hangfire's storage and the container dispose synchronously; the listener ends within one ListenWait.
        try
        {
            _listener?.Wait(TimeSpan.FromSeconds(5));
        }
        catch (AggregateException)
        {
            // The listener logs its own failures; disposal only waits for it to end.
        }
#pragma warning restore VSTHRD002
        _stopping.Dispose();
    }

    internal static string ChannelName(string schemaName)
    {
        var name = "workflow_jobs_" + schemaName;
        // LISTEN takes the name unquoted (folded to lower case) and pg_notify compares it exactly: lower case only.
        if (name.Length <= 63 && name.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c == '_'))
        {
            return name;
        }

        // Identifiers are limited to 63 bytes; a long, upper-case or unusual schema name gets a stable digest instead.
        var digest = SHA256.HashData(Encoding.UTF8.GetBytes(schemaName));
        return "workflow_jobs_" + Convert.ToHexStringLower(digest, 0, 16);
    }

    private static string QuoteIdentifier(string name) => "\"" + name.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";

    private void EnsureListening()
    {
        if (Volatile.Read(ref _listener) is not null)
        {
            return;
        }

        lock (_gate)
        {
            if (_listener is null && !_disposed)
            {
                _listener = Task.Run(() => ListenAsync(_stopping.Token));
            }
        }
    }

    private async Task ListenAsync(CancellationToken stopping)
    {
        while (!stopping.IsCancellationRequested)
        {
            try
            {
                var connection = await _dataSource.OpenConnectionAsync(stopping).ConfigureAwait(false);
                await using (connection.ConfigureAwait(false))
                {
                    connection.Notification += OnNotification;
                    try
                    {
                        await ExecuteAsync(connection, $"LISTEN {Channel}", stopping).ConfigureAwait(false);
                        Listening = true;
                        // Whatever was enqueued while nobody listened.
                        WakeAll();
                        while (!stopping.IsCancellationRequested)
                        {
                            // A timeout, not the stopping token: a wait never races a cancellation (see the class comment).
                            await connection.WaitAsync(ListenWait, CancellationToken.None).ConfigureAwait(false);
                        }

                        // The pool keeps sessions as they are (no reset on close): leave none listening.
                        await ExecuteAsync(connection, "UNLISTEN *", CancellationToken.None).ConfigureAwait(false);
                    }
                    finally
                    {
                        Listening = false;
                        connection.Notification -= OnNotification;
                    }
                }
            }
            catch (OperationCanceledException) when (stopping.IsCancellationRequested)
            {
                return;
            }
            // Any failure of the LISTEN connection means the same: fall back to the poll until it is open again.
            catch (Exception ex) when (!stopping.IsCancellationRequested)
            {
                LogListenerFailed(ex, Channel, ReconnectDelay.TotalSeconds);
                try
                {
                    await Task.Delay(ReconnectDelay, stopping).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
            catch (Exception) when (stopping.IsCancellationRequested)
            {
                return;
            }
        }
    }

    private static async Task ExecuteAsync(NpgsqlConnection connection, string sql, CancellationToken cancellationToken)
    {
        var command = new NpgsqlCommand(sql, connection);
        await using (command.ConfigureAwait(false))
        {
            await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    private void OnNotification(object sender, NpgsqlNotificationEventArgs e)
    {
        Interlocked.Increment(ref _notifications);
        WakeOne(e.Payload, 1);
    }

    /// <summary>Signals up to <paramref name="count"/> waiting dequeues of <paramref name="queue"/>, those holding the fewest signals first.</summary>
    private void WakeOne(string queue, int count)
    {
        lock (_gate)
        {
            for (var i = 0; i < count; i++)
            {
                Waiter? chosen = null;
                foreach (var waiter in _waiters)
                {
                    if (waiter.Listens(queue) && (chosen is null || waiter.Signals < chosen.Signals))
                    {
                        chosen = waiter;
                    }
                }

                if (chosen is null)
                {
                    // Every worker of that queue is busy: each fetches before it waits again.
                    return;
                }

                chosen.Signal(queue);
            }
        }
    }

    private void WakeAll()
    {
        lock (_gate)
        {
            foreach (var waiter in _waiters)
            {
                waiter.Signal(null);
            }
        }
    }

    private LinkedListNode<Waiter> Register(Waiter waiter)
    {
        lock (_gate)
        {
            return _waiters.AddLast(waiter);
        }
    }

    private void Unregister(LinkedListNode<Waiter> node)
    {
        string[] handOver;
        lock (_gate)
        {
            _waiters.Remove(node);
            handOver = node.Value.TakeSignals();
        }

        // Signals this dequeue held when it returned may have been meant for jobs it did not take: pass them on.
        foreach (var queue in handOver)
        {
            WakeOne(queue, 1);
        }
    }

    [LoggerMessage(EventId = 240, Level = LogLevel.Warning,
        Message = "The LISTEN connection of the queue wake-up (channel {Channel}) failed; workers fall back to the queue poll until it is open again (retried in {Seconds} s)")]
    private partial void LogListenerFailed(Exception exception, string channel, double seconds);

    /// <summary>One dequeue in progress: the queues it fetches from and the signals it was given.</summary>
    private sealed class Waiter(PostgreSqlJobQueue queue, string[] queues)
    {
        private readonly List<string> _signalled = [];

        public int Signals => _signalled.Count;

        public bool Listens(string queueName) => Array.Exists(queues, q => string.Equals(q, queueName, StringComparison.OrdinalIgnoreCase));

        /// <summary>Under the provider's lock.</summary>
        public void Signal(string? queueName)
        {
            _signalled.Add(queueName ?? queues[0]);
            queue.FetchNextJob();
        }

        /// <summary>Under the provider's lock.</summary>
        public string[] TakeSignals()
        {
            var taken = _signalled.ToArray();
            _signalled.Clear();
            return taken;
        }
    }

    private sealed class Queue(NotifyingJobQueueProvider owner, PostgreSqlJobQueue inner) : IPersistentJobQueue
    {
        public IFetchedJob Dequeue(string[] queues, CancellationToken cancellationToken)
        {
            owner.EnsureListening();
            var node = owner.Register(new Waiter(inner, queues));
            try
            {
                var fetched = inner.Dequeue(queues, cancellationToken);
                return new FetchedJob(owner, fetched, (fetched as PostgreSqlFetchedJob)?.Queue ?? queues[0]);
            }
            finally
            {
                owner.Unregister(node);
            }
        }

        public void Enqueue(IDbConnection connection, string queue, string jobId)
        {
            // Hangfire.PostgreSql's own insert, and the notification, in one round trip of the enqueue's transaction.
            var npgsql = (NpgsqlConnection)connection;
            using var batch = new NpgsqlBatch(npgsql);
            var insert = new NpgsqlBatchCommand(owner._enqueueSql);
            insert.Parameters.Add(new NpgsqlParameter<long> { TypedValue = long.Parse(jobId, CultureInfo.InvariantCulture) });
            insert.Parameters.Add(new NpgsqlParameter<string> { TypedValue = queue });
            batch.BatchCommands.Add(insert);
            var notify = new NpgsqlBatchCommand("SELECT pg_notify($1, $2)");
            notify.Parameters.Add(new NpgsqlParameter<string> { TypedValue = owner.Channel });
            notify.Parameters.Add(new NpgsqlParameter<string> { TypedValue = queue });
            batch.BatchCommands.Add(notify);
            batch.ExecuteNonQuery();
        }
    }

    /// <summary>
    /// A fetched job whose requeue (a worker stopped before it ran the job: shutdown) also wakes a worker, of this
    /// server or another, instead of leaving the job to the fallback poll.
    /// </summary>
    private sealed class FetchedJob(NotifyingJobQueueProvider owner, IFetchedJob inner, string queue) : IFetchedJob
    {
        public string JobId => inner.JobId;

        public void RemoveFromQueue() => inner.RemoveFromQueue();

        public void Requeue()
        {
            inner.Requeue();
            owner.NotifyRequeued(queue);
        }

        public void Dispose() => inner.Dispose();
    }

    private void NotifyRequeued(string queue)
    {
        try
        {
            using var connection = _dataSource.OpenConnection();
            using var command = new NpgsqlCommand("SELECT pg_notify($1, $2)", connection);
            command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = Channel });
            command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = queue });
            command.ExecuteNonQuery();
        }
        // The requeue itself is done; without its notification the job waits for the fallback poll.
        catch (Exception ex) when (ex is NpgsqlException or InvalidOperationException or TimeoutException)
        {
            LogRequeueNotificationFailed(ex, queue);
        }
    }

    [LoggerMessage(EventId = 241, Level = LogLevel.Warning,
        Message = "A job requeued on queue {Queue} could not wake a worker (its notification failed); it waits for the queue poll")]
    private partial void LogRequeueNotificationFailed(Exception exception, string queue);

    private sealed class Monitoring(IPersistentJobQueueMonitoringApi inner) : IPersistentJobQueueMonitoringApi
    {
        public IEnumerable<string> GetQueues() => [];

        public IEnumerable<long> GetEnqueuedJobIds(string queue, int from, int perPage) => inner.GetEnqueuedJobIds(queue, from, perPage);

        public IEnumerable<long> GetFetchedJobIds(string queue, int from, int perPage) => inner.GetFetchedJobIds(queue, from, perPage);

        public EnqueuedAndFetchedCountDto GetEnqueuedAndFetchedCount(string queue) => inner.GetEnqueuedAndFetchedCount(queue);
    }
}
