using System.Diagnostics;
using System.Globalization;
using Hangfire;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Newtonsoft.Json;
using Newtonsoft.Json.Linq;
using Npgsql;
using Workflow.Jobs.Sample.Configuration;

namespace Workflow.Jobs.Sample.Observability;

/// <summary>
/// <c>/health</c>: PostgreSQL answers <c>SELECT 1</c> through the workflow data source, and a Hangfire
/// server is alive (a recent heartbeat in the job storage). <c>/health/live</c>: the process answers.
/// </summary>
internal static class SampleHealthChecks
{
    public const string Path = "/health";
    public const string LivePath = "/health/live";
    private const string ReadyTag = "ready";

    public static IServiceCollection AddSampleHealthChecks(this IServiceCollection services)
    {
        services.AddHealthChecks()
            .AddCheck<PostgreSqlHealthCheck>("postgresql", HealthStatus.Unhealthy, [ReadyTag], TimeSpan.FromSeconds(5))
            .AddCheck<HangfireServerHealthCheck>("hangfire-server", HealthStatus.Unhealthy, [ReadyTag], TimeSpan.FromSeconds(5));
        return services;
    }

    public static IEndpointRouteBuilder MapSampleHealthChecks(this IEndpointRouteBuilder app, SampleHostSettings settings)
    {
        app.MapHealthChecks(Path, new HealthCheckOptions
        {
            Predicate = check => check.Tags.Contains(ReadyTag),
            ResponseWriter = (context, report) => WriteAsync(context, report, settings),
        });
        app.MapHealthChecks(LivePath, new HealthCheckOptions
        {
            Predicate = _ => false,
            ResponseWriter = (context, report) => WriteAsync(context, report, settings),
        });
        return app;
    }

    private static Task WriteAsync(HttpContext context, HealthReport report, SampleHostSettings settings)
    {
        var checks = new JObject();
        foreach (var (name, entry) in report.Entries)
        {
            var check = new JObject
            {
                ["status"] = entry.Status.ToString(),
                ["description"] = entry.Description,
                ["durationMs"] = Math.Round(entry.Duration.TotalMilliseconds, 1),
            };
            if (entry.Data.Count > 0)
            {
                check["data"] = JObject.FromObject(entry.Data);
            }

            checks[name] = check;
        }

        var body = new JObject
        {
            ["status"] = report.Status.ToString(),
            ["role"] = settings.Role.ToString(),
            ["durationMs"] = Math.Round(report.TotalDuration.TotalMilliseconds, 1),
            ["checks"] = checks,
        };
        context.Response.ContentType = "application/json; charset=utf-8";
        context.Response.Headers.CacheControl = "no-store";
        return context.Response.WriteAsync(body.ToString(Formatting.None), context.RequestAborted);
    }
}

/// <summary>PostgreSQL answers <c>SELECT 1</c> through the keyed workflow <see cref="NpgsqlDataSource"/>.</summary>
internal sealed class PostgreSqlHealthCheck([FromKeyedServices(WorkflowStorageKeys.DataSource)] NpgsqlDataSource dataSource) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var watch = Stopwatch.StartNew();
        try
        {
            await using var command = dataSource.CreateCommand("SELECT 1");
            await command.ExecuteScalarAsync(cancellationToken);
            return HealthCheckResult.Healthy(string.Create(CultureInfo.InvariantCulture, $"SELECT 1 answered in {watch.Elapsed.TotalMilliseconds:0.#} ms"));
        }
        catch (Exception ex) when (ex is NpgsqlException or InvalidOperationException or TimeoutException)
        {
            // The message names the failure (refused, timeout, authentication); it never holds the connection string.
            return HealthCheckResult.Unhealthy($"PostgreSQL did not answer: {ex.Message}");
        }
    }
}

/// <summary>
/// A Hangfire server is alive: in roles that run one, this host's own server (by name and process id)
/// has a recent heartbeat; in the Web role, any server has (none is Degraded: runs wait for a worker).
/// </summary>
internal sealed class HangfireServerHealthCheck(JobStorage storage, SampleHostSettings settings, TimeProvider time) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        IList<global::Hangfire.Storage.Monitoring.ServerDto> servers;
        try
        {
            servers = storage.GetMonitoringApi().Servers();
        }
        catch (Exception ex) when (ex is NpgsqlException or InvalidOperationException or TimeoutException)
        {
            return Task.FromResult(HealthCheckResult.Unhealthy($"Could not read the Hangfire servers: {ex.Message}"));
        }

        var now = time.GetUtcNow().UtcDateTime;
        var alive = servers.Where(s => s.Heartbeat is { } beat && now - DateTime.SpecifyKind(beat, DateTimeKind.Utc) <= settings.ServerHeartbeatTimeout).ToList();
        var data = new Dictionary<string, object>
        {
            ["serversAlive"] = alive.Count,
            ["workersAlive"] = alive.Sum(s => s.WorkersCount),
        };

        if (!settings.RunsServer)
        {
            return Task.FromResult(alive.Count > 0
                ? HealthCheckResult.Healthy($"{alive.Count} Hangfire server(s) alive elsewhere; this Web host runs none.", data)
                : HealthCheckResult.Degraded("No Hangfire server is alive: runs are accepted but wait until a Worker host starts.", data: data));
        }

        var prefix = $"{settings.ServerName}:{Environment.ProcessId}:".ToLowerInvariant();
        var own = alive.FirstOrDefault(s => s.Name.StartsWith(prefix, StringComparison.Ordinal));
        if (own is null)
        {
            return Task.FromResult(HealthCheckResult.Unhealthy(
                $"This host's Hangfire server has no heartbeat in the last {settings.ServerHeartbeatTimeout.TotalSeconds:0} s (starting, stopping or stuck).", data: data));
        }

        data["server"] = own.Name;
        data["workers"] = own.WorkersCount;
        data["queues"] = string.Join(",", own.Queues);
        var age = now - DateTime.SpecifyKind(own.Heartbeat!.Value, DateTimeKind.Utc);
        return Task.FromResult(HealthCheckResult.Healthy(
            string.Create(CultureInfo.InvariantCulture, $"This host's Hangfire server is alive (heartbeat {Math.Max(0, age.TotalSeconds):0} s ago)."), data));
    }
}
