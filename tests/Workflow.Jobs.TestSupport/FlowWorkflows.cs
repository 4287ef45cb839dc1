using Newtonsoft.Json;

namespace Workflow.Jobs.TestSupport;

[WorkflowKey("probe_input")]
public sealed class ProbeInput : WorkflowData
{
    /// <summary>The gate the step waits for (opened by the test); empty for none.</summary>
    [JsonProperty("gate")] public string Gate { get; set; } = "";

    /// <summary>How long the step works, in milliseconds (a workload, not a synchronisation).</summary>
    [JsonProperty("work_ms")] public int WorkMs { get; set; }

    /// <summary>The probe group the step counts itself in (a test's own name).</summary>
    [JsonProperty("group")] public string Group { get; set; } = "";
}

[WorkflowKey("probe_output")]
public sealed class ProbeOutput : WorkflowData
{
    [JsonProperty("order")] public int Order { get; set; }
}

/// <summary>
/// What the step bodies of flow-controlled runs saw, shared by every host of a test (register one instance in each):
/// how many ran at once per group (and the most ever), and the order in which runs started.
/// </summary>
public sealed class ConcurrencyProbe
{
    private readonly Lock _lock = new();
    private readonly Dictionary<string, int> _current = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> _max = new(StringComparer.Ordinal);
    private readonly Dictionary<string, List<Guid>> _started = new(StringComparer.Ordinal);

    public int Enter(string group, Guid runId)
    {
        lock (_lock)
        {
            var now = _current.GetValueOrDefault(group) + 1;
            _current[group] = now;
            _max[group] = Math.Max(_max.GetValueOrDefault(group), now);
            if (!_started.TryGetValue(group, out var started))
            {
                _started[group] = started = [];
            }

            started.Add(runId);
            return started.Count;
        }
    }

    public void Exit(string group)
    {
        lock (_lock)
        {
            _current[group] = _current.GetValueOrDefault(group) - 1;
        }
    }

    public int Max(string group)
    {
        lock (_lock)
        {
            return _max.GetValueOrDefault(group);
        }
    }

    public int Current(string group)
    {
        lock (_lock)
        {
            return _current.GetValueOrDefault(group);
        }
    }

    /// <summary>Run ids in the order their step bodies started (a re-run after a lost execution appears again).</summary>
    public IReadOnlyList<Guid> Started(string group)
    {
        lock (_lock)
        {
            return _started.TryGetValue(group, out var started) ? started.ToList() : [];
        }
    }
}

/// <summary>Counts itself in the probe while it works (for <c>work_ms</c>, then until its gate opens).</summary>
public sealed class ProbeStep(ConcurrencyProbe probe, Gates gates) : WorkflowStep<ProbeInput, ProbeOutput>
{
    protected override async Task<ProbeOutput> ProcessInputAsync(ProbeInput input, StepContext context, CancellationToken cancellationToken)
    {
        var order = probe.Enter(input.Group, context.WorkflowId);
        try
        {
            if (input.Gate.Length > 0)
            {
                gates.Entered(input.Gate).TrySetResult();
                await gates.Gate(input.Gate).Task.WaitAsync(cancellationToken);
            }

            if (input.WorkMs > 0)
            {
                await Task.Delay(input.WorkMs, cancellationToken);
            }

            return new ProbeOutput { Order = order };
        }
        finally
        {
            probe.Exit(input.Group);
        }
    }
}

/// <summary>At most two runs per concurrency key at once.</summary>
public sealed class TwoPerKeyWorkflow : WorkflowDefinition
{
    public override IReadOnlyList<Type> Steps { get; } = [typeof(ProbeStep)];

    public override int? MaxConcurrencyPerKey => 2;

    public override WorkflowRetryPolicy? Retry => new() { Attempts = 0 };
}

/// <summary>One run per concurrency key at a time (a strict queue per key).</summary>
public sealed class OnePerKeyWorkflow : WorkflowDefinition
{
    public override IReadOnlyList<Type> Steps { get; } = [typeof(ProbeStep)];

    public override int? MaxConcurrencyPerKey => 1;

    public override WorkflowRetryPolicy? Retry => new() { Attempts = 0 };
}

/// <summary>At most three runs of the workflow at once, and at most one per key.</summary>
public sealed class ThreeAtOnceWorkflow : WorkflowDefinition
{
    public override IReadOnlyList<Type> Steps { get; } = [typeof(ProbeStep)];

    public override int? MaxConcurrency => 3;

    public override int? MaxConcurrencyPerKey => 1;

    public override WorkflowRetryPolicy? Retry => new() { Attempts = 0 };
}
