using System.Globalization;
using Hangfire;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Npgsql;

namespace Workflow.Jobs.IntegrationTests;

/// <summary>
/// The library's server on its own storage runs Hangfire's schedulers behind one probe and the storage's processes
/// itself (Hangfire's lightweight server leaves both out): what they do must still happen, on a real server.
/// Delayed jobs through the probe are covered by every retry with a delay and every durable sleep.
/// </summary>
public class SchedulerProbeTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    [Test]
    public async Task DueRecurringWorkflow_IsTriggered_ByTheSchedulerBehindTheProbe()
    {
        var connectionString = await TestDatabases.CreateAsync("sched_recurring");
        var host = await TestHosts.StartHangfireHostAsync(connectionString);
        try
        {
            var scheduler = host.Services.GetRequiredService<IWorkflowScheduler>();
            var client = host.Services.GetRequiredService<IWorkflowClient>();
            const string recurringId = "probe-minutely";
            await scheduler.AddOrUpdateRecurringAsync<AddWorkflow>(recurringId, Cron.Minutely(), new WorkflowInput(new AddInput { Argument1 = 2, Argument2 = 3 }));

            // Due now, with a missed execution a minute ago: what the set and hash hold once a minute has passed.
            await using (var connection = new NpgsqlConnection(connectionString))
            {
                await connection.OpenAsync();
                await using var due = new NpgsqlCommand("""
                    UPDATE hangfire.hash SET value = @created WHERE key = @key AND field = 'CreatedAt';
                    DELETE FROM hangfire.hash WHERE key = @key AND field = 'LastExecution';
                    UPDATE hangfire.set SET score = @score WHERE key = 'recurring-jobs' AND value = @id;
                    """, connection);
                due.Parameters.AddWithValue("created", DateTime.UtcNow.AddMinutes(-2).ToString("O", CultureInfo.InvariantCulture));
                due.Parameters.AddWithValue("key", "recurring-job:" + recurringId);
                due.Parameters.AddWithValue("score", (double)DateTimeOffset.UtcNow.AddSeconds(-1).ToUnixTimeSeconds());
                due.Parameters.AddWithValue("id", recurringId);
                await due.ExecuteNonQueryAsync();
            }

            await Eventually.UntilAsync(async () => (await client.ListAsync(new WorkflowQuery { RecurringId = recurringId }))
                    .Any(r => r.Status == WorkflowStatus.Succeeded),
                Deadline, "the due recurring workflow to be triggered and succeed");
        }
        finally
        {
            await host.StopAsync();
            host.Dispose();
        }
    }

    [Test]
    public async Task StoragesExpirationManager_RunsOnTheLibrarysServer()
    {
        var connectionString = await TestDatabases.CreateAsync("sched_expiry");
        // A host without a server creates Hangfire's schema; the expired row is there before any server starts.
        var client = await TestHosts.StartHangfireHostAsync(connectionString, o => o.RunServer = false);
        IHost? server = null;
        try
        {
            await ExecuteAsync(connectionString,
                "INSERT INTO hangfire.hash (key, field, value, expireat) VALUES ('probe-test:expired', 'field', 'value', now() - interval '1 hour')");
            server = await TestHosts.StartHangfireHostAsync(connectionString);
            await Eventually.UntilAsync(
                async () => await ScalarAsync(connectionString, "SELECT count(*) FROM hangfire.hash WHERE key = 'probe-test:expired'") == 0,
                Deadline, "the storage's expiration manager to delete the expired row");
        }
        finally
        {
            if (server is not null)
            {
                await server.StopAsync();
                server.Dispose();
            }

            await client.StopAsync();
            client.Dispose();
        }
    }

    private static async Task ExecuteAsync(string connectionString, string sql)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    private static async Task<long> ScalarAsync(string connectionString, string sql)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        return (long)(await command.ExecuteScalarAsync())!;
    }
}
