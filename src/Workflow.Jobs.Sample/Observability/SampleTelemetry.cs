using System.Diagnostics;
using Npgsql;
using OpenTelemetry;
using OpenTelemetry.Exporter;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;
using Workflow.Jobs.Sample.Configuration;

namespace Workflow.Jobs.Sample.Observability;

/// <summary>
/// OpenTelemetry for the sample: traces (Workflow.Jobs runs and steps, ASP.NET Core requests, Npgsql
/// commands) and metrics (Workflow.Jobs, ASP.NET Core, Npgsql, .NET runtime), exported to the console
/// by default or over OTLP when an endpoint is configured.
/// </summary>
internal static class SampleTelemetry
{
    public static IServiceCollection AddSampleTelemetry(this IServiceCollection services, SampleHostSettings settings, IConfiguration configuration)
    {
        if (settings.Exporter == TelemetryExporter.None)
        {
            return services;
        }

        var otel = services.AddOpenTelemetry()
            .ConfigureResource(resource => resource
                .AddService(settings.ServiceName, serviceInstanceId: $"{settings.ServerName}:{Environment.ProcessId}")
                .AddAttributes([new KeyValuePair<string, object>("workflow_jobs.role", settings.Role.ToString())]))
            .WithTracing(tracing =>
            {
                tracing
                    .SetSampler(new ParentBasedSampler(new SkipUnparentedClientSpansSampler()))
                    .AddSource(WorkflowTelemetry.SourceName)
                    .AddAspNetCoreInstrumentation(options => options.Filter = context => !IsNoise(context.Request.Path))
                    .AddNpgsql();
                if (settings.Exporter == TelemetryExporter.Console)
                {
                    tracing.AddConsoleExporter();
                }
            })
            .WithMetrics(metrics =>
            {
                metrics
                    .AddMeter(WorkflowTelemetry.MeterName)
                    .AddAspNetCoreInstrumentation()
                    .AddNpgsqlInstrumentation()
                    .AddRuntimeInstrumentation();
                if (settings.Exporter == TelemetryExporter.Console)
                {
                    metrics.AddConsoleExporter();
                }
            });

        if (settings.Exporter == TelemetryExporter.Otlp)
        {
            // Logs go over OTLP too; the console logger stays.
            otel.WithLogging();
            if (configuration["WorkflowJobs:Telemetry:OtlpEndpoint"] is { Length: > 0 } && settings.OtlpEndpoint is { } endpoint)
            {
                var protocol = string.Equals(configuration["WorkflowJobs:Telemetry:OtlpProtocol"], "http", StringComparison.OrdinalIgnoreCase)
                    ? OtlpExportProtocol.HttpProtobuf
                    : OtlpExportProtocol.Grpc;
                otel.UseOtlpExporter(protocol, endpoint);
            }
            else
            {
                // OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_PROTOCOL, OTEL_EXPORTER_OTLP_HEADERS are read by the exporter.
                otel.UseOtlpExporter();
            }
        }

        return services;
    }

    /// <summary>Health probes and the dashboard's stats polling would drown the traces that matter.</summary>
    private static bool IsNoise(PathString path)
        => path.StartsWithSegments("/health", StringComparison.OrdinalIgnoreCase)
           || path.StartsWithSegments(SampleHostSettings.DashboardPath + "/stats", StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// Drops client spans that have no parent — above all Hangfire's queue polling, a database query
    /// every 50 ms per idle worker — and samples everything else. Queries made by a request or a workflow run
    /// are children of its span and are kept (the parent-based sampler follows the parent's decision).
    /// </summary>
    private sealed class SkipUnparentedClientSpansSampler : Sampler
    {
        public override SamplingResult ShouldSample(in SamplingParameters samplingParameters)
            => new(samplingParameters.Kind == ActivityKind.Client ? SamplingDecision.Drop : SamplingDecision.RecordAndSample);
    }
}
