using Npgsql;

namespace Workflow.Jobs.Benchmarks;

/// <summary>One statement on its own connection (creating and dropping a mode's database), without a time limit.</summary>
internal static class BenchSql
{
    public static async Task ExecuteAsync(string connectionString, string sql, CancellationToken cancellationToken)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(sql, connection) { CommandTimeout = 0 };
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }
}
