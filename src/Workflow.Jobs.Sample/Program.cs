// Workflow.Jobs sample host: example workflows, a JSON HTTP API, the Hangfire dashboard, health
// checks and OpenTelemetry, all in one binary whose role (All, Web, Worker) comes from configuration.
// docs/sample.md is the reference of its settings and endpoints.
using System.Globalization;
using Hangfire;
using Microsoft.AspNetCore.Authorization;
using Microsoft.Extensions.Logging.Console;
using Workflow.Jobs;
using Workflow.Jobs.Sample.Api;
using Workflow.Jobs.Sample.Configuration;
using Workflow.Jobs.Sample.Dashboard;
using Workflow.Jobs.Sample.FakeApi;
using Workflow.Jobs.Sample.Observability;
using Workflow.Jobs.Sample.Workflows;

var builder = WebApplication.CreateBuilder(args);

// Settings: read and checked once; a missing or invalid value stops the host with every problem listed.
var settings = SampleHostSettings.Load(builder.Configuration);
builder.Services.AddSingleton(settings);

// Logs carry the trace and span ids; structured JSON with Logging:Console:FormatterName=json.
builder.Logging.Configure(options => options.ActivityTrackingOptions =
    ActivityTrackingOptions.TraceId | ActivityTrackingOptions.SpanId | ActivityTrackingOptions.ParentId);
builder.Services.PostConfigure<JsonConsoleFormatterOptions>(options =>
{
    // The console's short "HH:mm:ss.fff " stamp suits people; JSON gets a full UTC timestamp.
    if (string.IsNullOrWhiteSpace(options.TimestampFormat) || options.TimestampFormat.EndsWith(' '))
    {
        options.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ";
        options.UseUtcTimestamp = true;
    }
});

// Workflows on PostgreSQL, run as Hangfire jobs. Web hosts enqueue only (no Hangfire server).
builder.Services.AddSingleton<FakeExternalApi>();
builder.Services.AddWorkflowJobs(options =>
    {
        options.UseNpgsql(settings.ConnectionString);
        options.ApplyMigrationsOnStartup = settings.ApplyMigrationsOnStartup;
        options.DefaultRetry = settings.Retry;
    })
    .AddWorkflow<CustomerProvisioningWorkflow>()
    .AddWorkflow<CompensatedCustomerProvisioningWorkflow>()
    .AddWorkflow<UsageReportWorkflow>()
    .AddWorkflow<ProvisionSubsidiariesWorkflow>()
    .AddHangfireJobs(options =>
    {
        options.RunServer = settings.RunsServer;
        options.WorkerCount = settings.WorkerCount;
        options.Queues = settings.Queues;
        options.ServerName = settings.ServerName;
        options.QueuePollInterval = settings.QueuePollInterval ?? options.QueuePollInterval;
        options.InvisibilityTimeout = settings.InvisibilityTimeout ?? options.InvisibilityTimeout;
        options.ShutdownTimeout = settings.ShutdownTimeout ?? options.ShutdownTimeout;
    });
builder.Services.AddHostedService<RecurringWorkflowRegistration>();

builder.Services.AddSampleTelemetry(settings, builder.Configuration);
builder.Services.AddSampleHealthChecks();

if (settings.ServesHttpApi)
{
    // The OpenAPI document (GET /openapi/v1.json) lists the workflow API's endpoints.
    builder.Services.AddOpenApi();
    builder.Services.AddAntiforgery();
    var authentication = builder.Services.AddAuthentication();
    builder.Services.AddAuthorization();
    if (settings.ApiKey is { } apiKey)
    {
        authentication.AddScheme<ApiKeyAuthenticationOptions, ApiKeyAuthenticationHandler>(ApiKeyDefaults.PolicyName, o => o.ApiKey = apiKey);
        builder.Services.AddAuthorizationBuilder().AddPolicy(ApiKeyDefaults.PolicyName, policy => policy
            .AddAuthenticationSchemes(ApiKeyDefaults.PolicyName)
            .RequireAuthenticatedUser());
    }

    if (settings.DashboardBasicAuth)
    {
        // Remote dashboard access with basic credentials (an authentication handler of the sample); local
        // requests keep working without them.
        authentication.AddScheme<BasicAuthenticationOptions, BasicAuthenticationHandler>(DashboardBasicDefaults.SchemeName, o =>
        {
            o.UserName = settings.DashboardUserName;
            o.Password = settings.DashboardPassword;
        });
        builder.Services.AddAuthorizationBuilder().AddPolicy(DashboardBasicDefaults.PolicyName, policy => policy
            .AddAuthenticationSchemes(DashboardBasicDefaults.SchemeName)
            .RequireAssertion(context => WorkflowDashboardAuthorization.IsLocalRequest(context) || context.User.Identity?.IsAuthenticated == true));
    }
}

var app = builder.Build();

var startupLogger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Workflow.Jobs.Sample");
if (startupLogger.IsEnabled(LogLevel.Information))
{
    var database = settings.DescribeDatabase();
    var workers = settings.RunsServer ? settings.WorkerCount?.ToString(CultureInfo.InvariantCulture) ?? "default" : "none";
    var queues = string.Join(",", settings.Queues);
    SampleLog.Starting(startupLogger, settings.Role, database, workers, queues, settings.Exporter);
}

if (settings.ApplyMigrationsOnStartup)
{
    await SampleDatabase.EnsureExistsAsync(settings.ConnectionString, startupLogger, app.Lifetime.ApplicationStopping);
}

app.MapSampleHealthChecks(settings);

if (settings.ServesHttpApi)
{
    // A policy named in configuration must exist: fail at start, not at the first request.
    var policies = app.Services.GetRequiredService<IAuthorizationPolicyProvider>();
    foreach (var policy in new[] { settings.WritePolicy, settings.ReadPolicy }.OfType<string>())
    {
        if (await policies.GetPolicyAsync(policy) is null)
        {
            throw new InvalidOperationException($"WorkflowJobs:Api names the authorization policy '{policy}', which is not registered.");
        }
    }

    app.UseAuthentication();
    app.UseAuthorization();
    // The workflow HTTP API (package Workflow.Jobs.AspNetCore). Reads and commands each get the policy
    // configured for them; conventions for every endpoint would go on the returned group.
    app.MapWorkflowJobsApi("/api", api =>
    {
        api.MaxRequestBodyBytes = settings.MaxRequestBodyBytes;
        api.DashboardPath = SampleHostSettings.DashboardPath;
        if (settings.ReadPolicy is { } readPolicy)
        {
            api.ConfigureReadEndpoints = endpoints => endpoints.RequireAuthorization(readPolicy);
        }

        if (settings.WritePolicy is { } writePolicy)
        {
            api.ConfigureWriteEndpoints = endpoints => endpoints.RequireAuthorization(writePolicy);
        }
    });
    var openApi = app.MapOpenApi();
    if (settings.ReadPolicy is { } documentPolicy)
    {
        openApi.RequireAuthorization(documentPolicy);
    }

    app.MapFakeApi(settings);

    // ---------------------------------------------------------------------------------------------
    // The Hangfire dashboard with the Workflows page (/hangfire/workflows). Local requests only unless
    // WorkflowJobs:Dashboard configures basic credentials or names a policy (docs/dashboard.md).
    app.MapWorkflowJobsDashboard(SampleHostSettings.DashboardPath, dashboard =>
    {
        if (settings.DashboardBasicAuth)
        {
            dashboard.AuthorizationPolicy = DashboardBasicDefaults.PolicyName;
        }

        dashboard.ConfigureDashboard = options => options.DashboardTitle = "Workflow.Jobs";
    });
    // ---------------------------------------------------------------------------------------------
}

await app.RunAsync();

/// <summary>Entry point (visible to WebApplicationFactory in tests).</summary>
public partial class Program;

/// <summary>Start-up log messages of the sample host.</summary>
internal static partial class SampleLog
{
    [LoggerMessage(EventId = 1, Level = LogLevel.Information,
        Message = "Workflow.Jobs sample host: role {Role}, database {Database}, workers {Workers}, queues {Queues}, telemetry {Exporter}")]
    public static partial void Starting(ILogger logger, SampleRole role, string database, string workers, string queues, TelemetryExporter exporter);
}
