using System.Transactions;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace Workflow.Jobs.EntityFrameworkCore;

/// <summary>
/// The one leader loop: about once per interval, each host tries a session-level advisory lock on a connection of
/// the workflow data source; the host that holds it keeps that connection open as its dedicated leader connection
/// and calls every <see cref="IWorkflowLeaderTask"/> in turn. One host leads at a time across processes. The lock
/// lives as long as the leader's session, so a leader whose process dies or whose connection breaks loses it, and
/// another host takes over at its next tick.
/// </summary>
/// <remarks>
/// Cost: one small query per tick and host: a non-leader's lock attempt on a pooled connection, or the leader's
/// probe on its own connection, which is also its liveness check. The probe (<see cref="WorkflowLeaderSignals"/>)
/// tells which tasks have something to do, so an idle database costs the leader one statement a tick (and the
/// waiting-runs gauge one count every 15 s). A probe that times out counts as a lost connection, as the former
/// liveness check did: a table locked for longer than the command timeout hands leadership over. A leader learns that it lost its connection at its next tick, so a task already running may overlap the
/// new leader's first pass by up to one interval: tasks must be safe to run twice. Pooled connections are not reset
/// when returned, so a connection that may hold the lock never goes back to the pool: it is unlocked explicitly, and
/// when that cannot be confirmed the pool is cleared, which closes the connection instead of reusing it.
/// </remarks>
internal sealed partial class WorkflowLeaderLoop : BackgroundService
{
    /// <summary>First key of the advisory lock (the two-key form, which never meets the runs' one-key guards): "WFJB".</summary>
    internal const int LockClass = 0x57464A42;

    /// <summary>Second key of the advisory lock: the leader.</summary>
    internal const int LockObject = 1;

    private const int CommandTimeoutSeconds = 10;

    private readonly NpgsqlDataSource _dataSource;
    private readonly IServiceScopeFactory _scopes;
    private readonly TimeSpan _interval;
    private readonly TimeProvider _time;
    private readonly ILogger<WorkflowLeaderLoop> _logger;
    private NpgsqlConnection? _leader;
    private DateTimeOffset _nextProbeFailureLog;

    public WorkflowLeaderLoop(NpgsqlDataSource dataSource, IServiceScopeFactory scopes, TimeSpan interval, TimeProvider time, ILogger<WorkflowLeaderLoop> logger)
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(interval, TimeSpan.Zero);
        _dataSource = dataSource;
        _scopes = scopes;
        _interval = interval;
        _time = time;
        _logger = logger;
    }

    /// <summary>Whether this loop holds leadership right now.</summary>
    public bool IsLeader => Volatile.Read(ref _leader) is not null;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                if (await HoldsLeadershipAsync(stoppingToken).ConfigureAwait(false)
                    && await ProbeAsync(stoppingToken).ConfigureAwait(false) is { } signals)
                {
                    await RunTasksAsync(signals, stoppingToken).ConfigureAwait(false);
                }

                await Task.Delay(_interval, _time, stoppingToken).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        finally
        {
            if (Interlocked.Exchange(ref _leader, null) is { } leader)
            {
                await CloseAsync(leader, mayHoldLock: true).ConfigureAwait(false);
                LogReleased();
            }
        }
    }

    private async Task<bool> HoldsLeadershipAsync(CancellationToken cancellationToken)
    {
        if (_leader is not null)
        {
            // The probe that follows is the leader's liveness check.
            return true;
        }

        NpgsqlConnection? candidate = null;
        var mayHoldLock = false;
        try
        {
            // A connection of the data source enlists in an ambient transaction: the lock must belong to the session alone.
            using (new TransactionScope(TransactionScopeOption.Suppress, TransactionScopeAsyncFlowOption.Enabled))
            {
                candidate = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            }

            await using var tryLock = new NpgsqlCommand("SELECT pg_try_advisory_lock(@class, @object)", candidate) { CommandTimeout = CommandTimeoutSeconds };
            tryLock.Parameters.AddWithValue("class", LockClass);
            tryLock.Parameters.AddWithValue("object", LockObject);
            mayHoldLock = true;
            var acquired = (bool)(await tryLock.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
            mayHoldLock = acquired;
            if (!acquired)
            {
                return false;
            }

            Volatile.Write(ref _leader, candidate);
            candidate = null;
            LogAcquired();
            return true;
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            LogUnavailable(ex);
            return false;
        }
        finally
        {
            if (candidate is not null)
            {
                await CloseAsync(candidate, mayHoldLock).ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// Runs the probe on the leader's own connection: what the tasks have to do, or null when the connection failed
    /// (leadership lost). A probe that fails on a live connection (the tables missing, say) runs every task.
    /// </summary>
    private async Task<WorkflowLeaderSignals?> ProbeAsync(CancellationToken cancellationToken)
    {
        var leader = _leader!;
        try
        {
            await using var probe = new NpgsqlCommand(NpgsqlWorkflowStore.LeaderProbeSql, leader) { CommandTimeout = CommandTimeoutSeconds };
            await using var reader = await probe.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            return new WorkflowLeaderSignals(
                await reader.IsDBNullAsync(0, cancellationToken).ConfigureAwait(false) ? null : await reader.GetFieldValueAsync<DateTimeOffset>(0, cancellationToken).ConfigureAwait(false),
                reader.GetBoolean(1),
                reader.GetBoolean(2));
        }
        catch (PostgresException ex) when (leader.State == System.Data.ConnectionState.Open)
        {
            // Logged at most once a minute: a database without the migrations yet fails the probe at every tick.
            var now = _time.GetUtcNow();
            if (now >= _nextProbeFailureLog)
            {
                _nextProbeFailureLog = now + TimeSpan.FromMinutes(1);
                LogProbeFailed(ex);
            }

            return WorkflowLeaderSignals.All;
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            Volatile.Write(ref _leader, null);
            await CloseAsync(leader, mayHoldLock: true).ConfigureAwait(false);
            LogLost(ex);
            return null;
        }
    }

    private async Task RunTasksAsync(WorkflowLeaderSignals signals, CancellationToken cancellationToken)
    {
        await using var scope = _scopes.CreateAsyncScope();
        foreach (var task in scope.ServiceProvider.GetServices<IWorkflowLeaderTask>())
        {
            cancellationToken.ThrowIfCancellationRequested();
            try
            {
                if (task.IsNeeded(signals))
                {
                    await task.RunOnceAsync(cancellationToken).ConfigureAwait(false);
                }
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                throw;
            }
            // A failing task is logged and tried again at the next tick; it never stops the loop or the other tasks.
            catch (Exception ex)
            {
                LogTaskFailed(ex, task.Name);
            }
        }
    }

    /// <summary>Closes a connection that may hold the lock without ever returning the lock to the pool.</summary>
    private async Task CloseAsync(NpgsqlConnection connection, bool mayHoldLock)
    {
        try
        {
            if (mayHoldLock && connection.State == System.Data.ConnectionState.Open)
            {
                await using var unlock = new NpgsqlCommand("SELECT pg_advisory_unlock(@class, @object)", connection) { CommandTimeout = CommandTimeoutSeconds };
                unlock.Parameters.AddWithValue("class", LockClass);
                unlock.Parameters.AddWithValue("object", LockObject);
                await unlock.ExecuteScalarAsync(CancellationToken.None).ConfigureAwait(false);
                mayHoldLock = false;
            }
        }
        // Whatever the failure, the outcome is the same: the session must not be reused.
        catch (Exception)
        {
        }
        finally
        {
            if (mayHoldLock && connection.State == System.Data.ConnectionState.Open)
            {
                // Not confirmed on a live connection: clearing the pool closes this connection when it is disposed
                // below, instead of pooling a session that holds the lock. (A broken connection is never pooled.)
                _dataSource.Clear();
            }

            await connection.DisposeAsync().ConfigureAwait(false);
        }
    }

    [LoggerMessage(EventId = 400, Level = LogLevel.Information, Message = "This host now leads the Workflow.Jobs leader loop")]
    private partial void LogAcquired();

    [LoggerMessage(EventId = 401, Level = LogLevel.Information, Message = "This host released the leadership of the Workflow.Jobs leader loop")]
    private partial void LogReleased();

    [LoggerMessage(EventId = 402, Level = LogLevel.Warning, Message = "This host lost the leadership of the Workflow.Jobs leader loop: its connection failed")]
    private partial void LogLost(Exception exception);

    [LoggerMessage(EventId = 403, Level = LogLevel.Warning, Message = "The Workflow.Jobs leader loop could not reach the database; it tries again at its next tick")]
    private partial void LogUnavailable(Exception exception);

    [LoggerMessage(EventId = 405, Level = LogLevel.Warning, Message = "The Workflow.Jobs leader loop's probe failed; every leader task runs at this tick")]
    private partial void LogProbeFailed(Exception exception);

    [LoggerMessage(EventId = 404, Level = LogLevel.Error, Message = "Leader task {TaskName} failed; it runs again at the next tick")]
    private partial void LogTaskFailed(Exception exception, string taskName);
}
