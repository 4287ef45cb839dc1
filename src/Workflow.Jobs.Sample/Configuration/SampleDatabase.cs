using Npgsql;

namespace Workflow.Jobs.Sample.Configuration;

/// <summary>
/// Creates the configured database when it does not exist yet (only when migrations are applied at
/// start). Needed before the Hangfire dashboard is mapped: mapping it builds the Hangfire storage,
/// whose constructor waits for the database and does not create it.
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
            await using var probe = new NpgsqlConnection(target.ConnectionString);
            await probe.OpenAsync(cancellationToken);
            return;
        }
        catch (PostgresException ex) when (ex.SqlState == InvalidCatalogName)
        {
            // Absent: create it below.
        }

        var maintenance = new NpgsqlConnectionStringBuilder(target.ConnectionString) { Database = "postgres" };
        await using var connection = new NpgsqlConnection(maintenance.ConnectionString);
        await connection.OpenAsync(cancellationToken);
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

    [LoggerMessage(EventId = 2, Level = LogLevel.Information, Message = "Created database {Database}")]
    private static partial void LogCreated(ILogger logger, string database);
}
