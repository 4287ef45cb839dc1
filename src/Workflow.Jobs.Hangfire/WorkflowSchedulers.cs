using Hangfire;
using Hangfire.Client;
using Hangfire.Common;
using Hangfire.Server;
using Hangfire.States;
using Hangfire.Storage;
using Npgsql;

namespace Workflow.Jobs.Hangfire;

/// <summary>
/// Hangfire's two schedulers (delayed jobs, recurring jobs) for the server the library runs on its own storage, behind
/// one probe: every <see cref="BackgroundJobServerOptions.SchedulePollingInterval"/> a single read asks whether either
/// set has an entry due, and a scheduler makes its pass only then.
/// <para>
/// Each pass of Hangfire's own schedulers takes a distributed lock (a row inserted and deleted) and reads the clock and
/// its set: about four transactions per scheduler and poll, eight a second between them at a 1 s poll, on a server with
/// nothing to schedule. The probe is one read-only statement a poll; when it finds work, the scheduler's pass is
/// Hangfire's own, unchanged (its lock, its state changes and filters), so what it does with a due job is the same.
/// The server then runs as Hangfire's lightweight server (without its own schedulers and storage processes), and the
/// storage's processes (expiration, counters, the invisibility heartbeat) run here as additional processes.
/// </para>
/// </summary>
internal sealed class WorkflowSchedulers : IBackgroundProcess
{
    private readonly NpgsqlDataSource _dataSource;
    private readonly string _probeSql;
    private readonly TimeSpan _interval;
    private readonly DelayedJobScheduler _delayed;
    private readonly RecurringJobScheduler _recurring;

    public WorkflowSchedulers(NpgsqlDataSource dataSource, string schemaName, BackgroundJobServerOptions server, IJobFilterProvider filters)
    {
        _dataSource = dataSource;
        _interval = server.SchedulePollingInterval;
        var set = "\"" + schemaName.Replace("\"", "\"\"", StringComparison.Ordinal) + "\".\"set\"";
        // Hangfire's schedulers read the same sets with the same bound (scores are Unix seconds, due when at most now).
        _probeSql = $"""
            SELECT EXISTS (SELECT 1 FROM {set} WHERE "key" = 'schedule' AND "score" BETWEEN 0 AND $1),
                   EXISTS (SELECT 1 FROM {set} WHERE "key" = 'recurring-jobs' AND "score" BETWEEN 0 AND $1)
            """;
        // No wait of its own: this process waits, between probes.
        _delayed = new DelayedJobScheduler(TimeSpan.Zero, new BackgroundJobStateChanger(filters))
        {
            TaskScheduler = server.TaskScheduler,
            MaxDegreeOfParallelism = server.MaxDegreeOfParallelismForSchedulers,
        };
        // Its own polling delay, as in Hangfire's server: it also sets the precision of missed executions.
        _recurring = new RecurringJobScheduler(new BackgroundJobFactory(filters), server.SchedulePollingInterval,
            server.TimeZoneResolver ?? new DefaultTimeZoneResolver())
        {
            TaskScheduler = server.TaskScheduler,
            MaxDegreeOfParallelism = server.MaxDegreeOfParallelismForSchedulers,
        };
    }

    public void Execute(BackgroundProcessContext context)
    {
        var (scheduleDue, recurringDue) = Probe();
        if (scheduleDue)
        {
            _delayed.Execute(context);
        }

        if (recurringDue)
        {
            // Ends with the scheduler's own wait of one polling interval.
            _recurring.Execute(context);
        }
        else
        {
            context.Wait(_interval);
        }
    }

    public override string ToString() => "WorkflowSchedulers";

    private (bool ScheduleDue, bool RecurringDue) Probe()
    {
        using var connection = _dataSource.OpenConnection();
        using var command = new NpgsqlCommand(_probeSql, connection);
        command.Parameters.Add(new NpgsqlParameter<double> { TypedValue = DateTimeOffset.UtcNow.ToUnixTimeSeconds() });
        using var reader = command.ExecuteReader();
        reader.Read();
        return (reader.GetBoolean(0), reader.GetBoolean(1));
    }

    /// <summary>
    /// The storage's own processes, which Hangfire's lightweight server leaves out: as Hangfire's server runs them, each
    /// on its own thread, its pass repeated until the server stops.
    /// </summary>
    public static IEnumerable<IBackgroundProcess> StorageProcesses(JobStorage storage)
    {
        if (storage.HasFeature(JobStorageFeatures.ProcessesInsteadOfComponents))
        {
            return storage.GetStorageWideProcesses();
        }

#pragma warning disable CS0618 // Hangfire.PostgreSql still hands its processes out as server components, the obsolete interface.
        return storage.GetComponents().Select(component => component as IBackgroundProcess ?? new ComponentProcess(component)).ToList();
    }

    private sealed class ComponentProcess(IServerComponent component) : IBackgroundProcess
    {
        public void Execute(BackgroundProcessContext context) => component.Execute(context.StoppingToken);

        public override string ToString() => component.ToString() ?? nameof(ComponentProcess);
    }
#pragma warning restore CS0618
}
