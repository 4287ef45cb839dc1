using Npgsql;

namespace Workflow.Jobs.Sample.Configuration;

/// <summary>
/// Creates the configured database when it does not exist yet (only when migrations are applied at
/// start). Needed before the Hangfire dashboard is mapped: mapping it builds the Hangfire storage,
/// whose constructor waits for the database and does not create it.
/// Connections come from a named data source disposed after use: a plain <see cref="NpgsqlConnection"/> would
/// leave a process-wide pool behind whose name in Npgsql's metrics is the connection string.
/// </summary>
internal static partial class SampleDatabase
{
    private const string InvalidCatalogName = "3D000";
    private const string DuplicateDatabase = "42P04";

    public static async Task EnsureExistsAsync(string connectionString, ILogger logger, CancellationToken cancellationToken)
    {
        var target = new NpgsqlConnectionStringBuilder(connectionString) { Pooling = false, Enlist = false };
        if (string.IsNullOrEmpty(target.Database))
        {
            return;
        }

        try
        {
            await using var probeSource = Open(target.ConnectionString);
            await using var probe = await probeSource.OpenConnectionAsync(cancellationToken);
            return;
        }
        catch (PostgresException ex) when (ex.SqlState == InvalidCatalogName)
        {
            // Absent: create it below.
        }

        var maintenance = new NpgsqlConnectionStringBuilder(target.ConnectionString) { Database = "postgres" };
        await using var maintenanceSource = Open(maintenance.ConnectionString);
        await using var connection = await maintenanceSource.OpenConnectionAsync(cancellationToken);
        var name = target.Database.Replace("\"", "\"\"", StringComparison.Ordinal);
        await using var create = new NpgsqlCommand($"CREATE DATABASE \"{name}\"", connection);
        try
        {
            await create.ExecuteNonQueryAsync(cancellationToken);
            LogCreated(logger, target.Database);
        }
        catch (PostgresException ex) when (ex.SqlState == DuplicateDatabase)
        {
            // Another host created it at the same moment.
        }
    }

    private static NpgsqlDataSource Open(string connectionString)
        => new NpgsqlDataSourceBuilder(connectionString) { Name = "Workflow.Jobs.Sample.Setup" }.Build();

    [LoggerMessage(EventId = 2, Level = LogLevel.Information, Message = "Created database {Database}")]
    private static partial void LogCreated(ILogger logger, string database);
}
