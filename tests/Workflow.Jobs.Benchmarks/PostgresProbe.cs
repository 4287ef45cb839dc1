using System.Diagnostics;
using Npgsql;

namespace Workflow.Jobs.Benchmarks;

/// <summary>Cumulative counters of one database (and the cluster's WAL) at one moment.</summary>
internal sealed record StatsSnapshot(long Commits, long BlocksHit, long BlocksRead, long WalSyncs, long WalRecords)
{
    public StatsSnapshot Minus(StatsSnapshot earlier) => new(
        Commits - earlier.Commits, BlocksHit - earlier.BlocksHit, BlocksRead - earlier.BlocksRead,
        WalSyncs - earlier.WalSyncs, WalRecords - earlier.WalRecords);
}

/// <summary>
/// Reads <c>pg_stat_database</c> from a connection to the server's <c>postgres</c> database, so that
/// reading the counters adds nothing to the benchmark database's own.
/// </summary>
/// <remarks>
/// PostgreSQL reports a backend's counters when the backend goes idle, at most once a second, and an
/// idle backend that has just reported waits up to 10 s before reporting again; a backend that exits
/// reports on the way out. So a snapshot is taken only after every connection to the benchmark database
/// but the orchestrator's own has been closed (the worker host disposed, the enqueuing pool cleared),
/// the orchestrator's own connection has forced its report (<c>pg_stat_force_next_flush()</c>), and the
/// counters have stopped moving.
/// </remarks>
internal sealed class PostgresProbe : IAsyncDisposable
{
    private readonly NpgsqlConnection _server;

    private PostgresProbe(NpgsqlConnection server) => _server = server;

    public static async Task<PostgresProbe> OpenAsync(string serverConnectionString, CancellationToken cancellationToken)
    {
        var builder = new NpgsqlConnectionStringBuilder(serverConnectionString) { Database = "postgres", ApplicationName = "wjbench-stats", Pooling = false };
        var connection = new NpgsqlConnection(builder.ConnectionString);
        await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
        return new PostgresProbe(connection);
    }

    public async Task<string> ShowAsync(string setting, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand("SELECT current_setting(@name)", _server);
        command.Parameters.AddWithValue("name", setting);
        return (string)(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
    }

    public async Task ExecuteAsync(string sql, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(sql, _server) { CommandTimeout = 0 };
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    public async Task<StatsSnapshot> ReadAsync(string database, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(
            """
            SELECT d.xact_commit, d.blks_hit, d.blks_read, w.wal_sync, w.wal_records
            FROM pg_stat_database d, pg_stat_wal w WHERE d.datname = @db
            """, _server);
        command.Parameters.AddWithValue("db", database);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        if (!await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            throw new InvalidOperationException($"No statistics for database {database}.");
        }

        return new StatsSnapshot(reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2), reader.GetInt64(3), reader.GetInt64(4));
    }

    /// <summary>
    /// Waits until <paramref name="database"/> has no client connection but <paramref name="own"/>'s and
    /// its counters are still, then reads them.
    /// </summary>
    public async Task<StatsSnapshot> QuiesceAsync(BenchDatabase own, CancellationToken cancellationToken)
    {
        await own.ReleasePooledConnectionsAsync(cancellationToken).ConfigureAwait(false);
        var deadline = Stopwatch.StartNew();
        while (await OtherBackendsAsync(own, cancellationToken).ConfigureAwait(false) > 0)
        {
            if (deadline.Elapsed > TimeSpan.FromSeconds(60))
            {
                throw new TimeoutException($"Connections to {own.Name} did not close within 60 s.");
            }

            await Task.Delay(20, cancellationToken).ConfigureAwait(false);
        }

        // Exiting backends report their counters on the way out; wait until nothing moves for a while.
        var previous = await ReadAsync(own.Name, cancellationToken).ConfigureAwait(false);
        var still = 0;
        while (still < 3)
        {
            await Task.Delay(100, cancellationToken).ConfigureAwait(false);
            var current = await ReadAsync(own.Name, cancellationToken).ConfigureAwait(false);
            still = current.Commits == previous.Commits ? still + 1 : 0;
            previous = current;
            if (deadline.Elapsed > TimeSpan.FromSeconds(90))
            {
                throw new TimeoutException($"The counters of {own.Name} did not settle within 90 s.");
            }
        }

        return previous;
    }

    /// <summary>Statements run in <paramref name="database"/> since the last reset, per job (pg_stat_statements).</summary>
    public async Task<string> StatementsAsync(string database, int jobs, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(
            """
            SELECT s.calls, s.rows, s.total_exec_time, regexp_replace(s.query, '\s+', ' ', 'g')
            FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
            WHERE d.datname = @db ORDER BY s.calls DESC
            """, _server);
        command.Parameters.AddWithValue("db", database);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        var text = new System.Text.StringBuilder();
        var c = System.Globalization.CultureInfo.InvariantCulture;
        double total = 0;
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            var perJob = reader.GetInt64(0) / (double)jobs;
            total += perJob;
            var query = reader.GetString(3);
            text.AppendLine(c, $"    {perJob,8:0.000}/job {reader.GetDouble(2) / Math.Max(1, reader.GetInt64(0)),7:0.000} ms  {(query.Length > 150 ? query[..150] : query)}");
        }

        text.Append(c, $"    {total,8:0.000}/job statements in all");
        return text.ToString();
    }

    private async Task<long> OtherBackendsAsync(BenchDatabase own, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = @db AND backend_type = 'client backend' AND pid <> @own", _server);
        command.Parameters.AddWithValue("db", own.Name);
        command.Parameters.AddWithValue("own", own.OwnProcessId);
        return (long)(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
    }

    /// <summary>
    /// CPU time (ms) spent so far by the PostgreSQL cluster: the postmaster, its live children (backends,
    /// WAL writer, checkpointer, ...) and, through the postmaster's children counters, every child that
    /// has exited (a backend reports on exit, the postmaster reaps it). Read from /proc, so only when the
    /// server runs on this machine; 0 otherwise.
    /// </summary>
    public async Task<double> ClusterCpuMillisecondsAsync(CancellationToken cancellationToken)
    {
        if (_postmaster is null)
        {
            await using var command = new NpgsqlCommand("SELECT pg_backend_pid()", _server);
            var backend = (int)(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
            _postmaster = ReadStat(backend) is { } stat ? stat.ParentId : 0;
        }

        if (_postmaster is not > 0 || ReadStat(_postmaster.Value) is not { } postmaster)
        {
            return 0;
        }

        var ticks = postmaster.Ticks + postmaster.ChildTicks;
        foreach (var directory in Directory.EnumerateDirectories("/proc"))
        {
            if (int.TryParse(Path.GetFileName(directory), out var pid) && pid != _postmaster && ReadStat(pid) is { } child && child.ParentId == _postmaster)
            {
                ticks += child.Ticks;
            }
        }

        // Linux reports these in clock ticks of 1/100 s (USER_HZ).
        return ticks * 10.0;
    }

    private int? _postmaster;

    /// <summary>Parent id, own user+system ticks and reaped children's ticks of a process, from /proc/pid/stat.</summary>
    private static (int ParentId, long Ticks, long ChildTicks)? ReadStat(int pid)
    {
        try
        {
            var text = File.ReadAllText($"/proc/{pid}/stat");
            // The command name (field 2) is in parentheses and may hold spaces: fields count from after it.
            var fields = text[(text.LastIndexOf(')') + 2)..].Split(' ');
            var c = System.Globalization.CultureInfo.InvariantCulture;
            return (int.Parse(fields[1], c), long.Parse(fields[11], c) + long.Parse(fields[12], c), long.Parse(fields[13], c) + long.Parse(fields[14], c));
        }
        // A process that ended meanwhile, or no /proc: nothing to count.
        catch (Exception)
        {
            return null;
        }
    }

    public async ValueTask DisposeAsync() => await _server.DisposeAsync().ConfigureAwait(false);
}
