using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Globalization;

namespace Workflow.Jobs.TestSupport;

/// <summary>
/// Records what Npgsql reports while it is alive: the tags of every measurement of the <c>Npgsql</c> meter and
/// of every span of the <c>Npgsql</c> activity source, in this process (other fixtures' included).
/// </summary>
public sealed class NpgsqlTelemetryCapture : IDisposable
{
    private const string SourceName = "Npgsql";

    private readonly MeterListener _meters = new();
    private readonly ActivityListener _activities;
    private readonly ConcurrentQueue<(string Instrument, string Key, string Value)> _metricTags = new();
    private readonly ConcurrentQueue<IReadOnlyDictionary<string, string>> _spans = new();

    public NpgsqlTelemetryCapture()
    {
        _meters.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == SourceName)
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _meters.SetMeasurementEventCallback<int>((instrument, _, tags, _) => Record(instrument, tags));
        _meters.SetMeasurementEventCallback<long>((instrument, _, tags, _) => Record(instrument, tags));
        _meters.SetMeasurementEventCallback<double>((instrument, _, tags, _) => Record(instrument, tags));
        _meters.Start();
        _activities = new ActivityListener
        {
            ShouldListenTo = source => source.Name == SourceName,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = activity => _spans.Enqueue(activity.TagObjects.ToDictionary(t => t.Key, t => Text(t.Value))),
        };
        ActivitySource.AddActivityListener(_activities);
    }

    /// <summary>Every tag of every measurement so far.</summary>
    public IReadOnlyList<(string Instrument, string Key, string Value)> MetricTags => [.. _metricTags];

    /// <summary>The tags of every finished span so far.</summary>
    public IReadOnlyList<IReadOnlyDictionary<string, string>> Spans => [.. _spans];

    /// <summary>Every <c>db.client.connection.pool.name</c> seen in a measurement so far.</summary>
    public IEnumerable<string> PoolNames => MetricTags.Where(t => t.Key == "db.client.connection.pool.name").Select(t => t.Value);

    /// <summary>Takes a measurement of the observable instruments (connection counts, pool limits) now.</summary>
    public void RecordObservableInstruments() => _meters.RecordObservableInstruments();

    public void Dispose()
    {
        _meters.Dispose();
        _activities.Dispose();
    }

    private void Record(Instrument instrument, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        foreach (var (key, value) in tags)
        {
            _metricTags.Enqueue((instrument.Name, key, Text(value)));
        }
    }

    private static string Text(object? value) => Convert.ToString(value, CultureInfo.InvariantCulture) ?? "";
}
