using Npgsql;

namespace Workflow.Jobs.TestSupport;

/// <summary>
/// Databases of one test run on the server of WORKFLOW_JOBS_TEST_CONNECTION (set by deploy/test.sh). Every
/// database this process creates is named with the run's prefix, so the end of the run finds and drops
/// exactly those (<see cref="DropAllAsync"/>), with nothing to keep track of in between.
/// </summary>
public static class TestDatabases
{
    public const string ConnectionVariable = "WORKFLOW_JOBS_TEST_CONNECTION";

    /// <summary>Set to 1 to keep the run's databases for a look after the run.</summary>
    public const string KeepVariable = "WORKFLOW_JOBS_KEEP_TEST_DATABASES";

    /// <summary>Prefix of this process's databases: <c>wjt_</c> and eight random hex digits.</summary>
    public static readonly string RunPrefix = $"wjt_{Guid.NewGuid():N}"[..12];

    public static string ServerConnectionString =>
        Environment.GetEnvironmentVariable(ConnectionVariable)
        ?? throw new InvalidOperationException($"{ConnectionVariable} is not set: run the tests with deploy/test.sh, which starts PostgreSQL and sets it.");

    /// <summary>Fails early, with the server's own error, when PostgreSQL cannot be reached.</summary>
    public static async Task CheckServerAsync()
    {
        await using var dataSource = OpenServer();
        await using var connection = await dataSource.OpenConnectionAsync();
    }

    /// <summary>
    /// The connection string of a database of this run that does not exist yet (for code that creates its
    /// own database); it is dropped at the end of the run like the others.
    /// </summary>
    public static string NewConnectionString(string label)
        => new NpgsqlConnectionStringBuilder(ServerConnectionString) { Database = NewName(label) }.ConnectionString;

    /// <summary>Creates an empty database of this run and returns its connection string.</summary>
    public static async Task<string> CreateAsync(string label)
    {
        var name = NewName(label);
        await using (var dataSource = OpenServer())
        {
            await using var create = dataSource.CreateCommand($"CREATE DATABASE \"{name}\"");
            await create.ExecuteNonQueryAsync();
        }

        return new NpgsqlConnectionStringBuilder(ServerConnectionString) { Database = name }.ConnectionString;
    }

    /// <summary>
    /// Drops every database of this run. Call it only when every host of the run is disposed: the drop
    /// terminates whatever is still connected to them (<c>WITH (FORCE)</c>), and says on
    /// <paramref name="progress"/> which sessions those were, so that a host left running shows.
    /// </summary>
    public static async Task<IReadOnlyList<string>> DropAllAsync(TextWriter? progress = null)
    {
        if (Environment.GetEnvironmentVariable(KeepVariable) == "1")
        {
            return [];
        }

        // Idle pooled connections of this process to the run's databases would otherwise be terminated by the drop.
        NpgsqlConnection.ClearAllPools();
        await using var dataSource = OpenServer();
        var names = new List<string>();
        await using (var list = dataSource.CreateCommand("SELECT datname FROM pg_database WHERE starts_with(datname, $1) ORDER BY datname"))
        {
            list.Parameters.Add(new NpgsqlParameter { Value = RunPrefix + "_" });
            await using var reader = await list.ExecuteReaderAsync();
            while (await reader.ReadAsync())
            {
                names.Add(reader.GetString(0));
            }
        }

        if (progress is not null)
        {
            await using var sessions = dataSource.CreateCommand(
                "SELECT datname, coalesce(application_name, ''), coalesce(state, ''), left(query, 80) FROM pg_stat_activity WHERE starts_with(datname, $1) ORDER BY datname");
            sessions.Parameters.Add(new NpgsqlParameter { Value = RunPrefix + "_" });
            await using var reader = await sessions.ExecuteReaderAsync();
            while (await reader.ReadAsync())
            {
                await progress.WriteLineAsync(
                    $"Dropping test database {reader.GetString(0)}, which still has a session ({reader.GetString(2)}): {reader.GetString(3)}");
            }
        }

        foreach (var name in names)
        {
            await using var drop = dataSource.CreateCommand($"DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
            await drop.ExecuteNonQueryAsync();
        }

        return names;
    }

    private static string NewName(string label)
    {
        var suffix = new string(label.ToLowerInvariant().Where(char.IsAsciiLetterOrDigit).Take(40).ToArray());
        return $"{RunPrefix}_{Guid.NewGuid():N}"[..(RunPrefix.Length + 7)] + "_" + suffix;
    }

    /// <summary>
    /// A named, disposable data source on the maintenance database: no process-wide pool is left behind, and
    /// Npgsql's metrics and traces name it, not the connection string.
    /// </summary>
    private static NpgsqlDataSource OpenServer()
        => new NpgsqlDataSourceBuilder(ServerConnectionString) { Name = "Workflow.Jobs.TestSupport" }.Build();
}
