using Npgsql;

[assembly: Parallelizable(ParallelScope.Fixtures)]
[assembly: LevelOfParallelism(3)]

namespace Workflow.Jobs.Sample.Tests;

/// <summary>
/// Reads the server connection from WORKFLOW_JOBS_TEST_CONNECTION (set by deploy/test.sh) and gives each
/// fixture a database of its own, so fixtures run in parallel.
/// </summary>
[SetUpFixture]
public sealed class TestEnvironment
{
    public const string ConnectionVariable = "WORKFLOW_JOBS_TEST_CONNECTION";

    public static string ServerConnectionString =>
        Environment.GetEnvironmentVariable(ConnectionVariable)
        ?? throw new InvalidOperationException($"{ConnectionVariable} is not set: run the tests with deploy/test.sh, which starts PostgreSQL and sets it.");

    [OneTimeSetUp]
    public async Task CheckServerAsync()
    {
        await using var connection = new NpgsqlConnection(ServerConnectionString);
        await connection.OpenAsync();
    }

    /// <summary>Creates an empty database and returns its connection string.</summary>
    public static async Task<string> CreateDatabaseAsync(string prefix)
    {
        var name = $"wjs_{Guid.NewGuid():N}"[..16] + "_" + new string(prefix.ToLowerInvariant().Where(char.IsAsciiLetterOrDigit).Take(40).ToArray());
        await using (var connection = new NpgsqlConnection(ServerConnectionString))
        {
            await connection.OpenAsync();
            await using var create = new NpgsqlCommand($"CREATE DATABASE \"{name}\"", connection);
            await create.ExecuteNonQueryAsync();
        }

        return new NpgsqlConnectionStringBuilder(ServerConnectionString) { Database = name }.ConnectionString;
    }
}
