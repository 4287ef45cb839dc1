using Hangfire.PostgreSql;
using Npgsql;

namespace Workflow.Jobs.Hangfire;

/// <summary>
/// Gives Hangfire.PostgreSql connections from the workflow tables' data source. Sharing the pool is
/// what lets a run row and its job commit in one transaction: inside a TransactionScope, Npgsql hands
/// the connector already enlisted by the run insert to Hangfire, so no two-phase commit is needed.
/// </summary>
internal sealed class PostgreSqlDataSourceConnectionFactory(NpgsqlDataSource dataSource) : IConnectionFactory
{
    public NpgsqlConnection GetOrCreateConnection() => dataSource.CreateConnection();
}
