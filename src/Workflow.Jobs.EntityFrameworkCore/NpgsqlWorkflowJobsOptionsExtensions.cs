using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Migrations;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Npgsql;
using Workflow.Jobs.EntityFrameworkCore;

namespace Workflow.Jobs;

/// <summary>Options of the PostgreSQL storage.</summary>
public sealed class WorkflowNpgsqlOptions
{
    /// <summary>Timeout of one storage command, in seconds. Default 30.</summary>
    public int CommandTimeoutSeconds { get; set; } = 30;

    /// <summary>Statements Npgsql prepares automatically per connection (the checkpoint statements). Default 32; 0 turns it off.</summary>
    public int MaxAutoPrepare { get; set; } = 32;

    /// <summary>
    /// Run creations (each one transaction holding a pooled connection) in flight at once per host;
    /// more wait their turn. Capped at half the connection pool. Default 16.
    /// </summary>
    public int MaxConcurrentEnqueues { get; set; } = 16;

    /// <summary>
    /// Reset session state (Npgsql's <c>DISCARD ALL</c> or equivalent) each time a pooled connection is
    /// reused. Default <c>false</c>: the reset is one more transaction per connection use (about 7 per
    /// Hangfire job), and neither Workflow.Jobs nor Hangfire.PostgreSql leaves session state behind (the
    /// execution guard's advisory lock is released explicitly, or its connection is closed). Turn it on
    /// if your own code uses the shared data source and changes session settings.
    /// </summary>
    public bool ResetSessionOnClose { get; set; }

    /// <summary>
    /// While a step body runs, how often its execution checks that its guard connection (which holds the
    /// run's advisory lock) is still alive; when it is not, the step body is cancelled, because the guard is
    /// gone and another execution may take the run. One read-only query per interval per running step.
    /// Default 1 s; <see cref="TimeSpan.Zero"/> turns the check off.
    /// </summary>
    public TimeSpan GuardCheckInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Name of the data source in Npgsql's metrics (<c>db.client.connection.pool.name</c>), traces
    /// (<c>db.npgsql.data_source</c>) and logs. Default: the connection string's <c>Application Name</c> when
    /// it has one, else <c>Workflow.Jobs</c>. (Npgsql's own default is the connection string, which names
    /// the server, database and user.)
    /// </summary>
    public string? DataSourceName { get; set; }
}

/// <summary>Selects PostgreSQL (EF Core + Npgsql) as the storage of Workflow.Jobs.</summary>
public static class NpgsqlWorkflowJobsOptionsExtensions
{
    /// <summary>
    /// Stores runs and steps in PostgreSQL. Registers one <see cref="NpgsqlDataSource"/> (shared with the
    /// Hangfire storage when the Hangfire package is used, so a run and its job commit in one transaction).
    /// </summary>
    public static WorkflowJobsOptions UseNpgsql(this WorkflowJobsOptions options, string connectionString, Action<WorkflowNpgsqlOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentException.ThrowIfNullOrWhiteSpace(connectionString);
        var npgsql = new WorkflowNpgsqlOptions();
        configure?.Invoke(npgsql);
        NpgsqlConnectionStringBuilder builder;
        try
        {
            builder = new NpgsqlConnectionStringBuilder(connectionString);
        }
        catch (ArgumentException ex)
        {
            // Never echo the connection string: it may hold a password.
            throw new ArgumentException("The Workflow.Jobs connection string is not a valid Npgsql connection string: " + ex.Message, nameof(connectionString));
        }

        if (npgsql.MaxAutoPrepare > 0 && builder.MaxAutoPrepare == 0)
        {
            builder.MaxAutoPrepare = npgsql.MaxAutoPrepare;
        }

        if (!npgsql.ResetSessionOnClose)
        {
            builder.NoResetOnClose = true;
        }

        builder.Enlist = true;
        var finalConnectionString = builder.ConnectionString;
        var dataSourceName = npgsql.DataSourceName is { Length: > 0 } name ? name
            : builder.ApplicationName is { Length: > 0 } application ? application
            : "Workflow.Jobs";
        options.AddExtension(services =>
        {
            services.TryAddSingleton(npgsql);
            services.TryAddKeyedSingleton(WorkflowStorageKeys.DataSource, (_, _) => new NpgsqlDataSourceBuilder(finalConnectionString) { Name = dataSourceName }.Build());
            services.AddDbContextFactory<WorkflowDbContext>((sp, db) =>
                db.UseNpgsql(sp.GetRequiredKeyedService<NpgsqlDataSource>(WorkflowStorageKeys.DataSource), o =>
                {
                    o.MigrationsHistoryTable(NpgsqlWorkflowStorageInitializer.HistoryTable, WorkflowDbContext.Schema);
                    o.CommandTimeout(npgsql.CommandTimeoutSeconds);
                }));
            services.TryAddSingleton<NpgsqlWorkflowStore>();
            services.TryAddSingleton<IWorkflowStore>(sp => sp.GetRequiredService<NpgsqlWorkflowStore>());
            services.TryAddEnumerable(ServiceDescriptor.Singleton<IWorkflowStorageInitializer, NpgsqlWorkflowStorageInitializer>());
        });
        return options;
    }
}

/// <summary>Keys of keyed services registered by the storage.</summary>
public static class WorkflowStorageKeys
{
    /// <summary>The <see cref="NpgsqlDataSource"/> of the workflow tables (keyed service).</summary>
    public const string DataSource = "Workflow.Jobs";
}

/// <summary>
/// Applies the EF Core migrations of the workflow tables. Hosts starting together take turns (an advisory
/// lock), and the migrations history table is created before EF Core reads it: EF Core's migrator reads the
/// history first and logs the failed read of a missing table as an error, which a first start must not show.
/// </summary>
internal sealed class NpgsqlWorkflowStorageInitializer(
    IDbContextFactory<WorkflowDbContext> factory,
    [FromKeyedServices(WorkflowStorageKeys.DataSource)] NpgsqlDataSource dataSource) : IWorkflowStorageInitializer
{
    public const string HistoryTable = "__workflow_migrations";

    // The two-key form of advisory locks: a key space apart from the runs' single-key execution guards.
    private const int LockClass = 0x574A_4F42;
    private const int LockObject = 1;

    public async Task InitializeAsync(CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await ExecuteAsync(connection, "SELECT pg_advisory_lock($1, $2)", cancellationToken).ConfigureAwait(false);
        try
        {
            await using var db = await factory.CreateDbContextAsync(cancellationToken).ConfigureAwait(false);
            if (!await HistoryTableExistsAsync(connection, cancellationToken).ConfigureAwait(false))
            {
                await db.GetService<IHistoryRepository>().CreateIfNotExistsAsync(cancellationToken).ConfigureAwait(false);
            }

            await db.Database.MigrateAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            // The pooled session is not reset on close: release the lock explicitly.
            await ExecuteAsync(connection, "SELECT pg_advisory_unlock($1, $2)", CancellationToken.None).ConfigureAwait(false);
        }
    }

    private static async Task ExecuteAsync(NpgsqlConnection connection, string sql, CancellationToken cancellationToken)
    {
        // No command timeout: another host may be migrating; the start-up's cancellation ends the wait.
        await using var command = new NpgsqlCommand(sql, connection) { CommandTimeout = 0 };
        command.Parameters.Add(new NpgsqlParameter { Value = LockClass });
        command.Parameters.Add(new NpgsqlParameter { Value = LockObject });
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    private static async Task<bool> HistoryTableExistsAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand("SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_tables WHERE schemaname = $1 AND tablename = $2)", connection);
        command.Parameters.Add(new NpgsqlParameter { Value = WorkflowDbContext.Schema });
        command.Parameters.Add(new NpgsqlParameter { Value = HistoryTable });
        return (bool)(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
    }
}
