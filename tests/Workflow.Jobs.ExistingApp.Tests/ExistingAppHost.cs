using System.Collections.Concurrent;
using Hangfire;
using Hangfire.Dashboard;
using Hangfire.PostgreSql;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Workflow.Jobs.IntegrationTests;

namespace Workflow.Jobs.ExistingApp.Tests;

/// <summary>Which is registered first: the application's Hangfire or Workflow.Jobs.</summary>
public enum RegistrationOrder
{
    HangfireFirst,
    WorkflowsFirst,
}

/// <summary>How the application configured Hangfire (defaults: as a tuned application would).</summary>
public sealed record AppHangfireSettings
{
    public TimeSpan? QueuePollInterval { get; init; } = TimeSpan.FromMilliseconds(100);

    public bool SlidingInvisibilityTimeout { get; init; } = true;

    /// <summary>Null: <c>AddHangfireServer()</c> with Hangfire's defaults.</summary>
    public TimeSpan? SchedulePollingInterval { get; init; } = TimeSpan.FromSeconds(1);

    public bool RunServer { get; init; } = true;

    public bool AddWorkflowJobs { get; init; } = true;

    public bool AddHangfireJobs { get; init; } = true;
}

/// <summary>
/// An ASP.NET Core application configured the ordinary Hangfire way — its own schema (<c>app_jobs</c>), its own server,
/// its own dashboard at <c>/ops/jobs</c> behind its own authorization — that then adds Workflow.Jobs.
/// Hangfire's AddHangfire keeps process-wide state (JobStorage.Current), so these hosts run one at a time.
/// </summary>
public sealed class ExistingAppHost : IAsyncDisposable
{
    public const string Schema = "app_jobs";
    public const string DashboardPath = "/ops/jobs";
    public const string KeyHeader = "X-Ops-Key";
    public const string Key = "let-me-in";

    private ExistingAppHost(WebApplication app, string connectionString, LogCapture logs)
    {
        App = app;
        ConnectionString = connectionString;
        Logs = logs;
        BaseAddress = new Uri(app.Urls.Single().TrimEnd('/') + "/");
    }

    public WebApplication App { get; }

    public string ConnectionString { get; }

    public LogCapture Logs { get; }

    public Uri BaseAddress { get; }

    public IServiceProvider Services => App.Services;

    public static async Task<ExistingAppHost> StartAsync(string connectionString, RegistrationOrder order, AppHangfireSettings? settings = null,
        Action<IServiceCollection>? configure = null)
    {
        settings ??= new AppHangfireSettings();
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = "Production" });
        builder.WebHost.UseKestrel().UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var logs = new LogCapture();
        // An instance the host does not own: Hangfire's process-wide log provider may outlive the host.
        builder.Services.AddSingleton<ILoggerFactory>(LoggerFactory.Create(b => b.AddProvider(logs).SetMinimumLevel(LogLevel.Information)));
        builder.Services.AddSingleton<LegacyLog>();
        builder.Services.AddSingleton<ExecutionLog>();
        builder.Services.AddSingleton<Gates>();
        var services = builder.Services;

        void AddApplicationHangfire()
        {
            var storage = new PostgreSqlStorageOptions { SchemaName = Schema, UseSlidingInvisibilityTimeout = settings.SlidingInvisibilityTimeout };
            if (settings.QueuePollInterval is { } poll)
            {
                storage.QueuePollInterval = poll;
            }

            services.AddHangfire(c => c.UsePostgreSqlStorage(o => o.UseNpgsqlConnection(connectionString), storage));
            if (!settings.RunServer)
            {
                return;
            }

            if (settings.SchedulePollingInterval is { } schedule)
            {
                services.AddHangfireServer(o =>
                {
                    o.WorkerCount = 4;
                    o.SchedulePollingInterval = schedule;
                    o.ShutdownTimeout = TimeSpan.FromSeconds(2);
                });
            }
            else
            {
                services.AddHangfireServer();
            }
        }

        void AddWorkflows()
        {
            if (!settings.AddWorkflowJobs)
            {
                return;
            }

            var workflows = services.AddWorkflowJobs(o => o.UseNpgsql(connectionString))
                .AddWorkflow<AddWorkflow>()
                .AddWorkflow<AddThenSquareWorkflow>()
                .AddWorkflow<AddWaitSquareWorkflow>();
            if (settings.AddHangfireJobs)
            {
                workflows.AddHangfireJobs();
            }
        }

        if (order == RegistrationOrder.HangfireFirst)
        {
            AddApplicationHangfire();
            AddWorkflows();
        }
        else
        {
            AddWorkflows();
            AddApplicationHangfire();
        }

        configure?.Invoke(services);
        var app = builder.Build();
        app.UseHangfireDashboard(DashboardPath, new DashboardOptions { Authorization = [new OpsKeyAuthorization()] });
        await app.StartAsync();
        return new ExistingAppHost(app, connectionString, logs);
    }

    public HttpClient CreateClient(bool withKey)
    {
        var client = new HttpClient { BaseAddress = BaseAddress };
        if (withKey)
        {
            client.DefaultRequestHeaders.Add(KeyHeader, Key);
        }

        return client;
    }

    public async ValueTask DisposeAsync()
    {
        await App.StopAsync();
        await App.DisposeAsync();
    }

    /// <summary>The application's own dashboard authorization: a shared key in a header.</summary>
    private sealed class OpsKeyAuthorization : IDashboardAuthorizationFilter
    {
        public bool Authorize(DashboardContext context)
            => context is AspNetCoreDashboardContext aspNetCore && aspNetCore.HttpContext.Request.Headers[KeyHeader] == Key;
    }
}

/// <summary>What the application's own (pre-workflow) jobs did.</summary>
public sealed class LegacyLog
{
    private readonly ConcurrentDictionary<string, bool> _seen = new();

    public void Add(string marker) => _seen[marker] = true;

    public bool Contains(string marker) => _seen.ContainsKey(marker);
}

/// <summary>A job of the application, from before it used workflows.</summary>
public sealed class LegacyJobs(LegacyLog log)
{
    public void Record(string marker) => log.Add(marker);
}

/// <summary>Log records of one host.</summary>
public sealed class LogCapture : ILoggerProvider
{
    private readonly ConcurrentQueue<(LogLevel Level, string Category, EventId EventId, string Message)> _entries = new();

    public IReadOnlyList<(LogLevel Level, string Category, EventId EventId, string Message)> Entries => _entries.ToList();

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void Dispose()
    {
    }

    private sealed class Logger(LogCapture owner, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            => owner._entries.Enqueue((logLevel, category, eventId, formatter(state, exception)));
    }
}
