using System.Globalization;
using Npgsql;
using Workflow.Jobs.Sample.Api;

namespace Workflow.Jobs.Sample.Configuration;

/// <summary>What a sample host process does. The same binary runs in every role; scale out by adding Worker hosts.</summary>
public enum SampleRole
{
    /// <summary>HTTP API, dashboard and a Hangfire server that executes runs (the default).</summary>
    All = 0,

    /// <summary>HTTP API and dashboard only: enqueues runs, never executes them (no Hangfire server).</summary>
    Web = 1,

    /// <summary>A Hangfire server only, plus <c>/health</c>: no API, no dashboard.</summary>
    Worker = 2,
}

/// <summary>Which telemetry exporter the host uses.</summary>
public enum TelemetryExporter
{
    /// <summary>Traces and metrics written to the console.</summary>
    Console = 0,

    /// <summary>Traces, metrics and logs sent over OTLP (endpoint from <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> or configuration).</summary>
    Otlp = 1,

    /// <summary>No exporter (instrumentation stays off).</summary>
    None = 2,
}

/// <summary>
/// The sample host's settings, read once from configuration (section <c>WorkflowJobs</c> and the
/// connection string <c>ConnectionStrings:WorkflowJobs</c>) and checked before anything starts.
/// See docs/sample.md for the reference.
/// </summary>
public sealed class SampleHostSettings
{
    /// <summary>Name of the connection string.</summary>
    public const string ConnectionStringName = "WorkflowJobs";

    /// <summary>Configuration section of the settings.</summary>
    public const string SectionName = "WorkflowJobs";

    /// <summary>Where the Hangfire dashboard is mapped.</summary>
    public const string DashboardPath = "/hangfire";

    /// <summary>The connection string (never logged or shown).</summary>
    public required string ConnectionString { get; init; }

    /// <summary><c>WorkflowJobs:Role</c>: All (default), Web or Worker.</summary>
    public SampleRole Role { get; init; }

    /// <summary><c>WorkflowJobs:ApplyMigrationsOnStartup</c>: create or migrate the workflow tables at start. Default true.</summary>
    public bool ApplyMigrationsOnStartup { get; init; } = true;

    /// <summary><c>WorkflowJobs:Workers:Count</c>: Hangfire workers of this host; null for Hangfire's default.</summary>
    public int? WorkerCount { get; init; }

    /// <summary><c>WorkflowJobs:Workers:Queues</c>: queues this host's server listens to (list or comma-separated). Default <c>default</c>.</summary>
    public IReadOnlyList<string> Queues { get; init; } = ["default"];

    /// <summary><c>WorkflowJobs:Workers:ServerName</c>: the Hangfire server name; default the machine name.</summary>
    public string ServerName { get; init; } = Environment.MachineName;

    /// <summary><c>WorkflowJobs:Workers:QueuePollIntervalMs</c>: how often idle workers poll. Default: the library's (a 5 s fallback with the queue wake-up, 50 ms without).</summary>
    public TimeSpan? QueuePollInterval { get; init; }

    /// <summary><c>WorkflowJobs:Workers:InvisibilityTimeoutSeconds</c>: recovery bound after a worker dies. Default 60 s (the library's default).</summary>
    public TimeSpan? InvisibilityTimeout { get; init; }

    /// <summary><c>WorkflowJobs:Workers:ShutdownTimeoutSeconds</c>: graceful-shutdown wait. Default 15 s (the library's default).</summary>
    public TimeSpan? ShutdownTimeout { get; init; }

    /// <summary><c>WorkflowJobs:Retry</c>: the default retry policy of runs (<c>Attempts</c>, <c>DelaysInSeconds</c>).</summary>
    public WorkflowRetryPolicy Retry { get; init; } = new();

    /// <summary><c>WorkflowJobs:Api:WritePolicy</c>: authorization policy required by the API's write endpoints; null = open.</summary>
    public string? WritePolicy { get; init; }

    /// <summary><c>WorkflowJobs:Api:ReadPolicy</c>: authorization policy required by the API's read endpoints; null = open.</summary>
    public string? ReadPolicy { get; init; }

    /// <summary><c>WorkflowJobs:Api:ApiKey</c>: enables the built-in <c>ApiKey</c> policy (header <c>X-Api-Key</c>). Never logged.</summary>
    public string? ApiKey { get; init; }

    /// <summary>
    /// <c>WorkflowJobs:Dashboard:BasicAuthUserName</c>: with <see cref="DashboardPassword"/>, lets remote requests into
    /// the dashboard with these HTTP basic credentials (local requests need none). Default none: local requests only.
    /// </summary>
    public string? DashboardUserName { get; init; }

    /// <summary><c>WorkflowJobs:Dashboard:BasicAuthPassword</c>: the dashboard's basic password. Never logged.</summary>
    public string? DashboardPassword { get; init; }

    /// <summary>Whether remote requests may enter the dashboard with basic credentials.</summary>
    public bool DashboardBasicAuth => DashboardUserName is not null && DashboardPassword is not null;

    /// <summary><c>WorkflowJobs:Api:MaxRequestBodyBytes</c>: largest accepted request body. Default 256 KiB; larger bodies get 413.</summary>
    public int MaxRequestBodyBytes { get; init; } = 256 * 1024;

    /// <summary>
    /// <c>WorkflowJobs:Telemetry:Exporter</c>: Console, Otlp or None. Default Console, or Otlp when an OTLP
    /// endpoint is configured.
    /// </summary>
    public TelemetryExporter Exporter { get; init; }

    /// <summary><c>WorkflowJobs:Telemetry:OtlpEndpoint</c> or <c>OTEL_EXPORTER_OTLP_ENDPOINT</c>.</summary>
    public Uri? OtlpEndpoint { get; init; }

    /// <summary><c>WorkflowJobs:Telemetry:ServiceName</c>: the OpenTelemetry service name. Default <c>workflow-jobs-sample</c>.</summary>
    public string ServiceName { get; init; } = "workflow-jobs-sample";

    /// <summary><c>WorkflowJobs:Health:ServerHeartbeatTimeoutSeconds</c>: a Hangfire server is alive if its heartbeat is this recent. Default 90 s.</summary>
    public TimeSpan ServerHeartbeatTimeout { get; init; } = TimeSpan.FromSeconds(90);

    /// <summary><c>WorkflowJobs:Sample:UsageReportCron</c>: schedule of the recurring usage report; empty turns it off. Default every 5 minutes.</summary>
    public string? UsageReportCron { get; init; } = "*/5 * * * *";

    /// <summary><c>WorkflowJobs:Sample:FakeApiLatencyMs</c>: simulated latency of each fake API call. Default 150 ms.</summary>
    public TimeSpan FakeApiLatency { get; init; } = TimeSpan.FromMilliseconds(150);

    /// <summary>Whether this host runs the HTTP API and the dashboard.</summary>
    public bool ServesHttpApi => Role != SampleRole.Worker;

    /// <summary>Whether this host runs a Hangfire server.</summary>
    public bool RunsServer => Role != SampleRole.Web;

    /// <summary>Where the database is, without credentials: <c>host:port/database</c>.</summary>
    public string DescribeDatabase()
    {
        var builder = new NpgsqlConnectionStringBuilder(ConnectionString);
        return $"{builder.Host}:{builder.Port}/{builder.Database}";
    }

    /// <summary>Reads and checks the settings; throws with every problem found (never echoing the connection string).</summary>
    /// <exception cref="InvalidOperationException">A setting is missing or invalid.</exception>
    public static SampleHostSettings Load(IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var errors = new List<string>();
        var section = configuration.GetSection(SectionName);

        var connectionString = configuration.GetConnectionString(ConnectionStringName);
        if (string.IsNullOrWhiteSpace(connectionString))
        {
            errors.Add($"ConnectionStrings:{ConnectionStringName} is not set (environment variable ConnectionStrings__{ConnectionStringName}).");
        }
        else
        {
            try
            {
                _ = new NpgsqlConnectionStringBuilder(connectionString);
            }
            catch (ArgumentException)
            {
                errors.Add($"ConnectionStrings:{ConnectionStringName} is not a valid Npgsql connection string.");
            }
        }

        var role = ReadEnum(section, "Role", SampleRole.All, errors);
        var retry = new WorkflowRetryPolicy();
        var retrySection = section.GetSection("Retry");
        var attempts = ReadInt(retrySection, "Attempts", 0, 100, errors, "WorkflowJobs:Retry:");
        var delays = ReadList(retrySection.GetSection("DelaysInSeconds"));
        var delayValues = new List<int>();
        foreach (var delay in delays)
        {
            if (int.TryParse(delay, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) && value >= 0)
            {
                delayValues.Add(value);
            }
            else
            {
                errors.Add($"WorkflowJobs:Retry:DelaysInSeconds has '{delay}', which is not a non-negative whole number.");
            }
        }

        if (attempts is not null || delays.Count > 0)
        {
            retry = new WorkflowRetryPolicy
            {
                Attempts = attempts ?? retry.Attempts,
                DelaysInSeconds = delays.Count > 0 ? delayValues : retry.DelaysInSeconds,
            };
        }

        var workers = section.GetSection("Workers");
        var queues = ReadList(workers.GetSection("Queues"));
        foreach (var queue in queues)
        {
            // Hangfire queue names: lower-case letters, digits, underscores and dashes.
            if (queue.Length == 0 || queue.Any(c => !(char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c is '_' or '-')))
            {
                errors.Add($"WorkflowJobs:Workers:Queues has '{queue}'; queue names use lower-case letters, digits, '_' and '-'.");
            }
        }

        var telemetry = section.GetSection("Telemetry");
        var otlpText = telemetry["OtlpEndpoint"] is { Length: > 0 } configured ? configured : configuration["OTEL_EXPORTER_OTLP_ENDPOINT"];
        Uri? otlp = null;
        if (!string.IsNullOrWhiteSpace(otlpText) && !Uri.TryCreate(otlpText, UriKind.Absolute, out otlp))
        {
            errors.Add("The OTLP endpoint (WorkflowJobs:Telemetry:OtlpEndpoint or OTEL_EXPORTER_OTLP_ENDPOINT) is not an absolute URI.");
        }

        var exporter = ReadEnum(telemetry, "Exporter", otlp is null ? TelemetryExporter.Console : TelemetryExporter.Otlp, errors, "WorkflowJobs:Telemetry:");

        var api = section.GetSection("Api");
        var apiKey = api["ApiKey"];
        var writePolicy = Blank(api["WritePolicy"]);
        var readPolicy = Blank(api["ReadPolicy"]);
        if ((writePolicy == ApiKeyDefaults.PolicyName || readPolicy == ApiKeyDefaults.PolicyName) && string.IsNullOrEmpty(apiKey))
        {
            errors.Add($"WorkflowJobs:Api uses the '{ApiKeyDefaults.PolicyName}' policy but WorkflowJobs:Api:ApiKey is not set.");
        }

        var dashboard = section.GetSection("Dashboard");
        var dashboardUser = Blank(dashboard["BasicAuthUserName"]);
        var dashboardPassword = string.IsNullOrEmpty(dashboard["BasicAuthPassword"]) ? null : dashboard["BasicAuthPassword"];
        if ((dashboardUser is null) != (dashboardPassword is null))
        {
            errors.Add("WorkflowJobs:Dashboard: set both BasicAuthUserName and BasicAuthPassword to use basic authentication, or neither.");
        }

        if (dashboardUser?.Contains(':', StringComparison.Ordinal) == true)
        {
            errors.Add("WorkflowJobs:Dashboard:BasicAuthUserName must not contain ':'.");
        }

        var settings = new SampleHostSettings
        {
            ConnectionString = connectionString ?? "",
            Role = role,
            ApplyMigrationsOnStartup = ReadBool(section, "ApplyMigrationsOnStartup", true, errors),
            WorkerCount = ReadInt(workers, "Count", 1, 1000, errors, "WorkflowJobs:Workers:"),
            Queues = queues.Count > 0 ? queues : ["default"],
            ServerName = Blank(workers["ServerName"]) ?? Environment.MachineName,
            QueuePollInterval = Milliseconds(ReadInt(workers, "QueuePollIntervalMs", 10, 60_000, errors, "WorkflowJobs:Workers:")),
            InvisibilityTimeout = Seconds(ReadInt(workers, "InvisibilityTimeoutSeconds", 10, 86_400, errors, "WorkflowJobs:Workers:")),
            ShutdownTimeout = Seconds(ReadInt(workers, "ShutdownTimeoutSeconds", 0, 3_600, errors, "WorkflowJobs:Workers:")),
            Retry = retry,
            WritePolicy = writePolicy,
            ReadPolicy = readPolicy,
            ApiKey = Blank(apiKey),
            DashboardUserName = dashboardUser,
            DashboardPassword = dashboardPassword,
            MaxRequestBodyBytes = ReadInt(api, "MaxRequestBodyBytes", 1024, 64 * 1024 * 1024, errors, "WorkflowJobs:Api:") ?? 256 * 1024,
            Exporter = exporter,
            OtlpEndpoint = otlp,
            ServiceName = Blank(telemetry["ServiceName"]) ?? "workflow-jobs-sample",
            ServerHeartbeatTimeout = Seconds(ReadInt(section.GetSection("Health"), "ServerHeartbeatTimeoutSeconds", 5, 3_600, errors, "WorkflowJobs:Health:"))
                                     ?? TimeSpan.FromSeconds(90),
            UsageReportCron = section.GetSection("Sample")["UsageReportCron"] is { } cron ? Blank(cron) : "*/5 * * * *",
            FakeApiLatency = Milliseconds(ReadInt(section.GetSection("Sample"), "FakeApiLatencyMs", 0, 60_000, errors, "WorkflowJobs:Sample:"))
                             ?? TimeSpan.FromMilliseconds(150),
        };

        if (errors.Count > 0)
        {
            throw new InvalidOperationException("Invalid sample host configuration: " + string.Join(" ", errors));
        }

        return settings;
    }

    private static string? Blank(string? value) => string.IsNullOrWhiteSpace(value) ? null : value.Trim();

    private static TimeSpan? Seconds(int? value) => value is { } v ? TimeSpan.FromSeconds(v) : null;

    private static TimeSpan? Milliseconds(int? value) => value is { } v ? TimeSpan.FromMilliseconds(v) : null;

    /// <summary>A list given either as array entries (<c>Queues:0</c>, <c>Queues:1</c>) or as one comma-separated value.</summary>
    private static List<string> ReadList(IConfigurationSection section)
    {
        var children = section.GetChildren().Where(c => c.Value is not null).Select(c => c.Value!).ToList();
        var source = children.Count > 0 ? children : section.Value is { } single ? [single] : [];
        return source.SelectMany(v => v.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)).ToList();
    }

    private static int? ReadInt(IConfigurationSection section, string key, int min, int max, List<string> errors, string prefix)
    {
        var text = section[key];
        if (string.IsNullOrWhiteSpace(text))
        {
            return null;
        }

        if (int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) && value >= min && value <= max)
        {
            return value;
        }

        errors.Add($"{prefix}{key} must be a whole number from {min} to {max}.");
        return null;
    }

    private static bool ReadBool(IConfigurationSection section, string key, bool fallback, List<string> errors)
    {
        var text = section[key];
        if (string.IsNullOrWhiteSpace(text))
        {
            return fallback;
        }

        if (bool.TryParse(text, out var value))
        {
            return value;
        }

        errors.Add($"WorkflowJobs:{key} must be true or false.");
        return fallback;
    }

    private static T ReadEnum<T>(IConfigurationSection section, string key, T fallback, List<string> errors, string prefix = "WorkflowJobs:")
        where T : struct, Enum
    {
        var text = section[key];
        if (string.IsNullOrWhiteSpace(text))
        {
            return fallback;
        }

        if (!char.IsAsciiDigit(text.Trim()[0]) && Enum.TryParse<T>(text.Trim(), ignoreCase: true, out var value))
        {
            return value;
        }

        errors.Add($"{prefix}{key} must be one of: {string.Join(", ", Enum.GetNames<T>())}.");
        return fallback;
    }
}
