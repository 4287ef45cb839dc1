using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Workflow.Jobs;

/// <summary>
/// The library's OpenTelemetry sources: add <see cref="SourceName"/> to tracing and <see cref="MeterName"/> to metrics.
/// </summary>
public static class WorkflowTelemetry
{
    /// <summary>Name of the <see cref="ActivitySource"/> (a span per run execution and per step).</summary>
    public const string SourceName = "Workflow.Jobs";

    /// <summary>Name of the <see cref="Meter"/>.</summary>
    public const string MeterName = "Workflow.Jobs";

    internal static readonly ActivitySource Source = new(SourceName, "1.0.0");
}

/// <summary>The library's instruments, created per host from its <see cref="IMeterFactory"/>.</summary>
internal sealed class WorkflowMetrics : IDisposable
{
    private readonly Meter _meter;
    private readonly bool _ownsMeter;

    public WorkflowMetrics(IMeterFactory? meterFactory = null)
    {
        _ownsMeter = meterFactory is null;
        _meter = meterFactory?.Create(WorkflowTelemetry.MeterName, "1.0.0") ?? new Meter(WorkflowTelemetry.MeterName, "1.0.0");
        RunsCreated = _meter.CreateCounter<long>("workflow.runs.created", "{run}", "Runs created.");
        RunsSucceeded = _meter.CreateCounter<long>("workflow.runs.succeeded", "{run}", "Runs that succeeded.");
        RunsFailed = _meter.CreateCounter<long>("workflow.runs.failed", "{run}", "Run executions that failed.");
        RunsRetried = _meter.CreateCounter<long>("workflow.runs.retried", "{run}", "Runs enqueued again after a failure.");
        RunsCompensated = _meter.CreateCounter<long>("workflow.runs.compensated", "{run}", "Runs whose compensations all ran.");
        RunsInFlight = _meter.CreateUpDownCounter<long>("workflow.runs.in_flight", "{run}", "Runs executing in this process.");
        StepDuration = _meter.CreateHistogram<double>("workflow.step.duration", "s", "Duration of step bodies.");
        RunsParked = _meter.CreateCounter<long>("workflow.runs.parked", "{run}", "Times a run started waiting (a sleep, an event) and released its worker.");
        _meter.CreateObservableGauge("workflow.runs.waiting", ObserveWaiting, "{run}",
            "Runs Waiting, by workflow (counted by the leader host about every 15 s; other hosts report nothing).");
    }

    private volatile IReadOnlyDictionary<string, long>? _waiting;

    public Counter<long> RunsParked { get; }

    /// <summary>Sets the counts the waiting-runs gauge reports (by workflow name); null to report nothing.</summary>
    public void SetWaiting(IReadOnlyDictionary<string, long>? counts) => _waiting = counts;

    private IEnumerable<Measurement<long>> ObserveWaiting()
        => _waiting is { } counts
            ? counts.Select(c => new Measurement<long>(c.Value, new KeyValuePair<string, object?>("workflow.name", c.Key)))
            : [];

    public Counter<long> RunsCreated { get; }
    public Counter<long> RunsSucceeded { get; }
    public Counter<long> RunsFailed { get; }
    public Counter<long> RunsRetried { get; }
    public Counter<long> RunsCompensated { get; }
    public UpDownCounter<long> RunsInFlight { get; }
    public Histogram<double> StepDuration { get; }

    public void Dispose()
    {
        if (_ownsMeter)
        {
            _meter.Dispose();
        }
    }
}
