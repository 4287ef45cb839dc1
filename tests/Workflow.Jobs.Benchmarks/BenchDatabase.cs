using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Npgsql;

namespace Workflow.Jobs.Benchmarks;

/// <summary>
/// A database of the benchmark: its enqueuing host (the library registered without a Hangfire server)
/// and the orchestrator's own connection, whose every statement is one transaction that is counted, so
/// it can be taken out of the commit figures exactly.
/// </summary>
internal sealed class BenchDatabase : IAsyncDisposable
{
    private readonly NpgsqlConnection _own;

    private BenchDatabase(string name, string connectionString, IHost client, NpgsqlConnection own, int ownProcessId)
    {
        Name = name;
        ConnectionString = connectionString;
        Client = client;
        _own = own;
        OwnProcessId = ownProcessId;
    }

    public string Name { get; }

    public string ConnectionString { get; }

    /// <summary>The enqueuing host: <see cref="IWorkflowClient"/> and Hangfire's client, no server.</summary>
    public IHost Client { get; }

    /// <summary>Backend process id of the orchestrator's own connection.</summary>
    public int OwnProcessId { get; }

    /// <summary>Transactions made on the orchestrator's own connection so far.</summary>
    public long OwnTransactions { get; private set; }

    public static async Task<BenchDatabase> CreateAsync(PostgresProbe probe, string serverConnectionString, string name, QueueMode queueMode,
        TimeSpan pollInterval, CancellationToken cancellationToken)
    {
        await probe.ExecuteAsync($"CREATE DATABASE \"{name}\"", cancellationToken).ConfigureAwait(false);
        var connectionString = new NpgsqlConnectionStringBuilder(serverConnectionString) { Database = name }.ConnectionString;
        var client = await BenchmarkHosts.StartClientAsync(connectionString, queueMode, pollInterval, cancellationToken).ConfigureAwait(false);
        var own = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(connectionString)
        {
            ApplicationName = "wjbench-orchestrator",
            Pooling = false,
            CommandTimeout = 0,
        }.ConnectionString);
        await own.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var pid = new NpgsqlCommand("SELECT pg_backend_pid()", own);
        var ownPid = (int)(await pid.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
        return new BenchDatabase(name, connectionString, client, own, ownPid) { OwnTransactions = 1 };
    }

    /// <summary>Runs one statement (one transaction) on the orchestrator's connection and returns its first row.</summary>
    public async Task<object?[]?> QueryRowAsync(string sql, CancellationToken cancellationToken, params (string Name, object Value)[] parameters)
    {
        await using var command = new NpgsqlCommand(sql, _own);
        foreach (var (parameterName, value) in parameters)
        {
            command.Parameters.AddWithValue(parameterName, value);
        }

        OwnTransactions++;
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        if (!await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            return null;
        }

        var row = new object?[reader.FieldCount];
        for (var i = 0; i < row.Length; i++)
        {
            row[i] = await reader.IsDBNullAsync(i, cancellationToken).ConfigureAwait(false) ? null : reader.GetValue(i);
        }

        return row;
    }

    public async Task ExecuteAsync(string sql, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(sql, _own);
        OwnTransactions++;
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Highest Hangfire job id so far (0 when none): the jobs of the next round have greater ids.</summary>
    public async Task<long> MaxJobIdAsync(CancellationToken cancellationToken)
    {
        var row = await QueryRowAsync("SELECT coalesce(max(id), 0) FROM hangfire.job", cancellationToken).ConfigureAwait(false);
        return Convert.ToInt64(row![0], System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>Succeeded and failed jobs with ids above <paramref name="afterJobId"/>.</summary>
    public async Task<(long Succeeded, long Failed)> JobProgressAsync(long afterJobId, CancellationToken cancellationToken)
    {
        var row = await QueryRowAsync(
            "SELECT count(*) FILTER (WHERE statename = 'Succeeded'), count(*) FILTER (WHERE statename = 'Failed') FROM hangfire.job WHERE id > @after",
            cancellationToken, ("after", afterJobId)).ConfigureAwait(false);
        return ((long)row![0]!, (long)row[1]!);
    }

    /// <summary>
    /// From the first job's Processing state to the last job's Succeeded state, for the jobs above
    /// <paramref name="afterJobId"/> (Hangfire stamps both from the worker's clock).
    /// </summary>
    public async Task<TimeSpan> ProcessingWindowAsync(long afterJobId, CancellationToken cancellationToken)
    {
        var row = await QueryRowAsync(
            """
            SELECT min(createdat) FILTER (WHERE name = 'Processing'), max(createdat) FILTER (WHERE name = 'Succeeded')
            FROM hangfire.state WHERE jobid > @after
            """, cancellationToken, ("after", afterJobId)).ConfigureAwait(false);
        if (row?[0] is not DateTime first || row[1] is not DateTime last)
        {
            return TimeSpan.Zero;
        }

        return last - first;
    }

    /// <summary>
    /// Closes the enqueuing host's idle pooled connections (their backends report their counters as they
    /// exit) and makes the orchestrator's own connection report its counters now.
    /// </summary>
    public async Task ReleasePooledConnectionsAsync(CancellationToken cancellationToken)
    {
        Client.Services.GetRequiredKeyedService<NpgsqlDataSource>(WorkflowStorageKeys.DataSource).Clear();
        // Long polling's LISTEN connections (the stranded-dequeue count) come from Npgsql's global pools.
        NpgsqlConnection.ClearAllPools();
        await ExecuteAsync("SELECT pg_stat_force_next_flush()", cancellationToken).ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        await _own.DisposeAsync().ConfigureAwait(false);
        await Client.StopAsync(CancellationToken.None).ConfigureAwait(false);
        Client.Dispose();
    }
}
