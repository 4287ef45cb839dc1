using System.Globalization;
using System.Text.RegularExpressions;
using Hangfire;
using Hangfire.Common;
using Hangfire.Logging;
using Hangfire.PostgreSql;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using HangfireLogLevel = Hangfire.Logging.LogLevel;
using LogLevel = Microsoft.Extensions.Logging.LogLevel;

namespace Workflow.Jobs.Hangfire;

/// <summary>
/// Says at start-up how workflows run on Hangfire in this host, and checks the Hangfire settings that workflows
/// depend on when the application configured Hangfire itself: a warning names a setting that costs latency, an
/// error one that breaks a guarantee. Runs before any server starts (<see cref="IHostedLifecycleService.StartingAsync"/>).
/// </summary>
internal sealed partial class WorkflowHangfireStartup(IServiceProvider services, ILogger<WorkflowHangfireStartup> logger) : IHostedLifecycleService
{
    /// <summary>Above this, a queue or schedule poll shows in every run's latency.</summary>
    internal static readonly TimeSpan SlowPoll = TimeSpan.FromSeconds(1);

    public Task StartingAsync(CancellationToken cancellationToken)
    {
        var hosting = services.GetRequiredService<WorkflowHangfireStorage>();
        var server = hosting.LibraryOwnsServer ? "the library's" : hosting.ServerInThisHost ? "the application's" : "none in this host";
        if (hosting.JoinsRunTransaction)
        {
            LogLibraryStorage(hosting.Storage.ToString() ?? hosting.Storage.GetType().Name, server);
        }
        else
        {
            LogApplicationStorage(hosting.Storage.ToString() ?? hosting.Storage.GetType().Name, server);
        }

        if (services.GetService<IJobFilterProvider>() is not WorkflowHostFilterProvider)
        {
            LogFiltersReplaced(services.GetService<IJobFilterProvider>()?.GetType().FullName ?? "none");
        }

        if (hosting.ApplicationConfigured && !hosting.ServerInThisHost)
        {
            LogNoServer();
        }

        if (!hosting.JoinsRunTransaction)
        {
            CheckStorage(hosting.Storage);
        }

        if (hosting.ServerInThisHost && !hosting.LibraryOwnsServer)
        {
            CheckServer(services.GetService<BackgroundJobServerOptions>());
            CheckActivator(hosting.Storage, services.GetService<JobActivator>());
        }

        return Task.CompletedTask;
    }

    private void CheckStorage(JobStorage storage)
    {
        if (storage is not PostgreSqlStorage postgres)
        {
            LogStorageNotChecked(storage.GetType().FullName ?? storage.GetType().Name);
            return;
        }

        // PostgreSqlStorage keeps its options private; it writes the ones that matter here to a log on request.
        var settings = PostgreSqlSettings.Read(postgres);
        if (settings.QueuePollInterval is not { } poll || settings.InvisibilityTimeout is not { } invisibility || settings.SlidingInvisibilityTimeout is not { } sliding)
        {
            LogStorageNotReadable();
            return;
        }

        if (poll > SlowPoll)
        {
            LogSlowQueuePoll(poll.TotalSeconds);
        }

        if (!sliding)
        {
            LogFixedInvisibilityTimeout(invisibility.TotalMinutes);
        }
    }

    private void CheckServer(BackgroundJobServerOptions? options)
    {
        if (options is null)
        {
            LogServerNotChecked();
            return;
        }

        if (options.SchedulePollingInterval > SlowPoll)
        {
            LogSlowSchedulePoll(options.SchedulePollingInterval.TotalSeconds);
        }
    }

    /// <summary>The application's server activates jobs with the application's activator: it must be able to build a workflow job.</summary>
    private void CheckActivator(JobStorage storage, JobActivator? activator)
    {
        if (activator is null)
        {
            return;
        }

        try
        {
            using var connection = storage.GetConnection();
            var job = new BackgroundJob("0", Job.FromExpression<WorkflowJob>(j => j.ExecuteAsync(Guid.Empty, CancellationToken.None)), DateTime.UtcNow);
            using var scope = activator.BeginScope(new JobActivatorContext(connection, job, new JobCancellationToken(false)));
            _ = scope.Resolve(typeof(WorkflowJob)) ?? throw new InvalidOperationException("The activator returned no instance.");
        }
#pragma warning disable CA1031 // Any failure means the same for the operator: workflow jobs cannot run on this server.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            LogActivatorCannotCreateJobs(ex, activator.GetType().FullName ?? activator.GetType().Name);
        }
    }

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    [LoggerMessage(EventId = 220, Level = LogLevel.Information,
        Message = "Workflow.Jobs runs on its own Hangfire storage ({Storage}) on the workflow data source: a run and its job commit in one transaction. Hangfire server: {Server}")]
    private partial void LogLibraryStorage(string storage, string server);

    [LoggerMessage(EventId = 221, Level = LogLevel.Information,
        Message = "Workflow.Jobs runs on the application's Hangfire storage ({Storage}): a run is paired with its job through the outbox. Hangfire server: {Server}")]
    private partial void LogApplicationStorage(string storage, string server);

    [LoggerMessage(EventId = 222, Level = LogLevel.Error,
        Message = "The IJobFilterProvider of this host ({Provider}) was registered after AddHangfireJobs() and replaces the workflow filters: "
            + "workflow retries, and the run status following its job (a deleted job cancels its run), do not work. Register it before AddHangfireJobs(), which then adds the workflow filters to it")]
    private partial void LogFiltersReplaced(string provider);

    [LoggerMessage(EventId = 223, Level = LogLevel.Information,
        Message = "The application configured Hangfire without a server in this host: workflow jobs run on its servers elsewhere, which must call AddHangfireJobs() too")]
    private partial void LogNoServer();

    [LoggerMessage(EventId = 224, Level = LogLevel.Warning,
        Message = "The application's Hangfire storage polls its queues every {Seconds} s (PostgreSqlStorageOptions.QueuePollInterval): a run may wait that long before it starts. "
            + "Set QueuePollInterval to 100-200 ms for workflows to start promptly (without EnableLongPolling, which can strand a fetched job)")]
    private partial void LogSlowQueuePoll(double seconds);

    [LoggerMessage(EventId = 225, Level = LogLevel.Warning,
        Message = "The application's Hangfire storage uses a fixed InvisibilityTimeout of {Minutes} min (PostgreSqlStorageOptions.UseSlidingInvisibilityTimeout is off): "
            + "a run whose worker died waits that long before another server resumes it, and a step running longer is fetched again by another worker, which waits for it. "
            + "Set UseSlidingInvisibilityTimeout = true and a shorter InvisibilityTimeout (for example 1 minute)")]
    private partial void LogFixedInvisibilityTimeout(double minutes);

    [LoggerMessage(EventId = 226, Level = LogLevel.Warning,
        Message = "The application's Hangfire storage is a {StorageType}: Workflow.Jobs cannot check its queue poll interval (how long a run waits to start) "
            + "or its invisibility timeout (how long a run of a dead worker waits to resume)")]
    private partial void LogStorageNotChecked(string storageType);

    [LoggerMessage(EventId = 227, Level = LogLevel.Warning,
        Message = "Workflow.Jobs could not read the options of the application's PostgreSqlStorage: check that QueuePollInterval is short (100-200 ms) "
            + "and UseSlidingInvisibilityTimeout is on, or runs start late and runs of a dead worker wait the InvisibilityTimeout (30 min by default) to resume")]
    private partial void LogStorageNotReadable();

    [LoggerMessage(EventId = 228, Level = LogLevel.Warning,
        Message = "The application's Hangfire server options are not visible to Workflow.Jobs (they are not registered as a BackgroundJobServerOptions service): "
            + "check BackgroundJobServerOptions.SchedulePollingInterval, whose default of 15 s delays every retry and delayed run by up to 15 s (1 s is recommended)")]
    private partial void LogServerNotChecked();

    [LoggerMessage(EventId = 230, Level = LogLevel.Error,
        Message = "The application's Hangfire JobActivator ({Activator}) cannot create a workflow job from this host's services: every workflow job would fail on its server. "
            + "Use Hangfire's default activator of AddHangfire (it resolves jobs from dependency injection) or make yours resolve from this host's IServiceProvider")]
    private partial void LogActivatorCannotCreateJobs(Exception exception, string activator);

    [LoggerMessage(EventId = 229, Level = LogLevel.Warning,
        Message = "The application's Hangfire server moves due scheduled jobs every {Seconds} s (BackgroundJobServerOptions.SchedulePollingInterval): "
            + "retries and delayed runs start up to that much late. 1 s is recommended")]
    private partial void LogSlowSchedulePoll(double seconds);
}

/// <summary>The settings of a <see cref="PostgreSqlStorage"/> that it reports through its public <see cref="JobStorage.WriteOptionsToLog"/>.</summary>
internal sealed partial record PostgreSqlSettings(TimeSpan? QueuePollInterval, TimeSpan? InvisibilityTimeout, bool? SlidingInvisibilityTimeout)
{
    public static PostgreSqlSettings Read(PostgreSqlStorage storage)
    {
        var log = new CapturingLog();
        try
        {
            storage.WriteOptionsToLog(log);
        }
#pragma warning disable CA1031 // Unreadable settings are reported as such, never fatal.
        catch (Exception)
#pragma warning restore CA1031
        {
            return new PostgreSqlSettings(null, null, null);
        }

        return new PostgreSqlSettings(
            Find(log.Lines, QueuePollPattern(), TimeSpanValue),
            Find(log.Lines, InvisibilityPattern(), TimeSpanValue),
            Find(log.Lines, SlidingPattern(), text => bool.TryParse(text, out var b) ? b : (bool?)null));
    }

    private static TimeSpan? TimeSpanValue(string text)
        => TimeSpan.TryParse(text, CultureInfo.InvariantCulture, out var value) ? value : null;

    private static T? Find<T>(IEnumerable<string> lines, Regex pattern, Func<string, T?> parse)
    {
        foreach (var line in lines)
        {
            if (pattern.Match(line) is { Success: true } match && parse(match.Groups[1].Value) is { } value)
            {
                return value;
            }
        }

        return default;
    }

    [GeneratedRegex(@"Queue poll interval:\s*(\S+?)\.?\s*$")]
    private static partial Regex QueuePollPattern();

    [GeneratedRegex(@"Invisibility timeout:\s*(\S+?)\.?\s*$")]
    private static partial Regex InvisibilityPattern();

    [GeneratedRegex(@"Use sliding invisibility timeout:\s*(\S+?)\.?\s*$")]
    private static partial Regex SlidingPattern();

    private sealed class CapturingLog : ILog
    {
        public List<string> Lines { get; } = [];

        public bool Log(HangfireLogLevel logLevel, Func<string>? messageFunc, Exception? exception = null)
        {
            if (messageFunc is not null)
            {
                Lines.Add(messageFunc());
            }

            return true;
        }
    }
}
