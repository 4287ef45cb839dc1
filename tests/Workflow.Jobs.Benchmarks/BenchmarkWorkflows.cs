using Newtonsoft.Json;

namespace Workflow.Jobs.Benchmarks;

// No-op workflows for the benchmark. Each step needs its own input and output keys, hence ten of each.
// The steps carry a small payload so that checkpoints write something, like a real step would.

[WorkflowKey("bench_input_01")]
public sealed class BenchInput01 : WorkflowData
{
    [JsonProperty("value")] public int Value { get; set; }
}

[WorkflowKey("bench_output_01")]
public sealed class BenchOutput01 : WorkflowData
{
    [JsonProperty("value")] public int Value { get; set; }
}

public sealed class BenchStep01 : WorkflowStep<BenchInput01, BenchOutput01>
{
    protected override Task<BenchOutput01> ProcessInputAsync(BenchInput01 input, StepContext context, CancellationToken cancellationToken)
        => Task.FromResult(new BenchOutput01 { Value = input.Value + 1 });
}

[WorkflowKey("bench_input_02")]
public sealed class BenchInput02 : WorkflowData
{
    [JsonProperty("value")] public int Value { get; set; }
}

[WorkflowKey("bench_output_02")]
public sealed class BenchOutput02 : WorkflowData
{
    [JsonProperty("value")] public int Value { get; set; }
}

public sealed class BenchStep02 : WorkflowStep<BenchInput02, BenchOutput02>
{
    protected override Task<BenchOutput02> ProcessInputAsync(BenchInput02 input, StepContext context, CancellationToken cancellationToken)
        => Task.FromResult(new BenchOutput02 { Value = input.Value + 2 });
}

[WorkflowKey("bench_input_03")]
public sealed class BenchInput03 : WorkflowData
{
    [JsonProperty("value")] public int Value { get; set; }
}

[WorkflowKey("bench_output_03")]
public sealed class BenchOutput03 : WorkflowData
{
    [JsonProperty("value")] public int Value { get; set; }
}

public sealed class BenchStep03 : WorkflowStep<BenchInput03, BenchOutput03>
{
    protected override Task<BenchOutput03> ProcessInputAsync(BenchInput03 input, StepContext context, CancellationToken cancellationToken)
        => Task.FromResult(new BenchOutput03 { Value = input.Value + 3 });
}

[WorkflowKey("bench_input_04")]
public sealed class BenchInput04 : WorkflowData
{
    [JsonProperty("value")] public int Value { get; set; }
}

[WorkflowKey("bench_output_04")]
public sealed class BenchOutput04 : WorkflowData
{
    [JsonProperty("value")] public int Value { get; set; }
}

public sealed class BenchStep04 : WorkflowStep<BenchInput04, BenchOutput04>
{
    protected override Task<BenchOutput04> ProcessInputAsync(BenchInput04 input, StepContext context, CancellationToken cancellationToken)
        => Task.FromResult(new BenchOutput04 { Value = input.Value + 4 });
}

[WorkflowKey("bench_input_05")]
public sealed class BenchInput05 : WorkflowData
{
    [JsonProperty("value")] public int Value { get; set; }
}

[WorkflowKey("bench_output_05")]
public sealed class BenchOutput05 : WorkflowData
{
    [JsonProperty("value")] public int Value { get; set; }
}

public sealed class BenchStep05 : WorkflowStep<BenchInput05, BenchOutput05>
{
    protected override Task<BenchOutput05> ProcessInputAsync(BenchInput05 input, StepContext context, CancellationToken cancellationToken)
        => Task.FromResult(new BenchOutput05 { Value = input.Value + 5 });
}

[WorkflowKey("bench_input_06")]
public sealed class BenchInput06 : WorkflowData
{
    [JsonProperty("value")] public int Value { get; set; }
}

[WorkflowKey("bench_output_06")]
public sealed class BenchOutput06 : WorkflowData
{
    [JsonProperty("value")] public int Value { get; set; }
}

public sealed class BenchStep06 : WorkflowStep<BenchInput06, BenchOutput06>
{
    protected override Task<BenchOutput06> ProcessInputAsync(BenchInput06 input, StepContext context, CancellationToken cancellationToken)
        => Task.FromResult(new BenchOutput06 { Value = input.Value + 6 });
}

[WorkflowKey("bench_input_07")]
public sealed class BenchInput07 : WorkflowData
{
    [JsonProperty("value")] public int Value { get; set; }
}

[WorkflowKey("bench_output_07")]
public sealed class BenchOutput07 : WorkflowData
{
    [JsonProperty("value")] public int Value { get; set; }
}

public sealed class BenchStep07 : WorkflowStep<BenchInput07, BenchOutput07>
{
    protected override Task<BenchOutput07> ProcessInputAsync(BenchInput07 input, StepContext context, CancellationToken cancellationToken)
        => Task.FromResult(new BenchOutput07 { Value = input.Value + 7 });
}

[WorkflowKey("bench_input_08")]
public sealed class BenchInput08 : WorkflowData
{
    [JsonProperty("value")] public int Value { get; set; }
}

[WorkflowKey("bench_output_08")]
public sealed class BenchOutput08 : WorkflowData
{
    [JsonProperty("value")] public int Value { get; set; }
}

public sealed class BenchStep08 : WorkflowStep<BenchInput08, BenchOutput08>
{
    protected override Task<BenchOutput08> ProcessInputAsync(BenchInput08 input, StepContext context, CancellationToken cancellationToken)
        => Task.FromResult(new BenchOutput08 { Value = input.Value + 8 });
}

[WorkflowKey("bench_input_09")]
public sealed class BenchInput09 : WorkflowData
{
    [JsonProperty("value")] public int Value { get; set; }
}

[WorkflowKey("bench_output_09")]
public sealed class BenchOutput09 : WorkflowData
{
    [JsonProperty("value")] public int Value { get; set; }
}

public sealed class BenchStep09 : WorkflowStep<BenchInput09, BenchOutput09>
{
    protected override Task<BenchOutput09> ProcessInputAsync(BenchInput09 input, StepContext context, CancellationToken cancellationToken)
        => Task.FromResult(new BenchOutput09 { Value = input.Value + 9 });
}

[WorkflowKey("bench_input_10")]
public sealed class BenchInput10 : WorkflowData
{
    [JsonProperty("value")] public int Value { get; set; }
}

[WorkflowKey("bench_output_10")]
public sealed class BenchOutput10 : WorkflowData
{
    [JsonProperty("value")] public int Value { get; set; }
}

public sealed class BenchStep10 : WorkflowStep<BenchInput10, BenchOutput10>
{
    protected override Task<BenchOutput10> ProcessInputAsync(BenchInput10 input, StepContext context, CancellationToken cancellationToken)
        => Task.FromResult(new BenchOutput10 { Value = input.Value + 10 });
}

/// <summary>A run of one no-op step.</summary>
[WorkflowName("bench-1-step")]
public sealed class OneStepWorkflow : WorkflowDefinition
{
    public override IReadOnlyList<Type> Steps { get; } = [typeof(BenchStep01)];
}

/// <summary>A run of ten no-op steps.</summary>
[WorkflowName("bench-10-steps")]
public sealed class TenStepWorkflow : WorkflowDefinition
{
    public override IReadOnlyList<Type> Steps { get; } = [typeof(BenchStep01), typeof(BenchStep02), typeof(BenchStep03), typeof(BenchStep04), typeof(BenchStep05), typeof(BenchStep06), typeof(BenchStep07), typeof(BenchStep08), typeof(BenchStep09), typeof(BenchStep10)];
}

/// <summary>The naive baseline: what a Hangfire user writes without the library. One job per step.</summary>
public sealed class NaiveStepJob
{
    /// <summary>A no-op step of chain <paramref name="chain"/>; the next step is a continuation of this job.</summary>
#pragma warning disable CA1822 // A Hangfire job method: run on an instance the job activator creates, as an application's job is (activation is part of the measured cost).
    public void Run(int chain, int step)
#pragma warning restore CA1822
    {
        _ = chain;
        _ = step;
    }
}

/// <summary>
/// A job that keeps its worker busy without touching the database, with a cancellation token like a
/// workflow job (so Hangfire's ownership check watches it): what a busy server costs per second.
/// </summary>
public sealed class BusyJob
{
    /// <summary>Waits <paramref name="milliseconds"/>.</summary>
#pragma warning disable CA1822 // A Hangfire job method: run on an instance the job activator creates, as an application's job is (activation is part of the measured cost).
    public async Task RunAsync(int milliseconds, CancellationToken cancellationToken)
#pragma warning restore CA1822
        => await Task.Delay(milliseconds, cancellationToken).ConfigureAwait(false);
}

/// <summary>An empty Hangfire job: the fixed cost of one job.</summary>
public sealed class EmptyJob
{
    /// <summary>Does nothing.</summary>
#pragma warning disable CA1822 // A Hangfire job method: run on an instance the job activator creates, as an application's job is (activation is part of the measured cost).
    public void Run()
#pragma warning restore CA1822
    {
    }
}

[WorkflowKey("bench_children_input")]
public sealed class BenchChildrenInput : WorkflowData
{
    [JsonProperty("children")] public int Children { get; set; }
}

[WorkflowKey("bench_children_output")]
public sealed class BenchChildrenOutput : WorkflowData
{
    [JsonProperty("sum")] public long Sum { get; set; }
}

/// <summary>Runs one <see cref="OneStepWorkflow"/> child per index and sums their outputs.</summary>
public sealed class BenchChildrenStep : WorkflowStep<BenchChildrenInput, BenchChildrenOutput>
{
    protected override async Task<BenchChildrenOutput> ProcessInputAsync(BenchChildrenInput input, StepContext context, CancellationToken cancellationToken)
    {
        var inputs = Enumerable.Range(0, input.Children).Select(i => new WorkflowInput(new BenchInput01 { Value = i })).ToList();
        var outputs = await context.RunChildrenAsync<OneStepWorkflow>(inputs, cancellationToken).ConfigureAwait(false);
        return new BenchChildrenOutput { Sum = outputs.Sum(o => (long)o.Get<BenchOutput01>()!.Value) };
    }
}

[WorkflowName("bench-children")]
public sealed class ChildrenBenchWorkflow : WorkflowDefinition
{
    public override IReadOnlyList<Type> Steps { get; } = [typeof(BenchChildrenStep)];
}

/// <summary>
/// The ten no-op steps under flow control whose limits do not bind in the benchmark (more slots than workers, one key
/// per few runs): what admission itself costs.
/// </summary>
[WorkflowName("bench-10-steps-limited")]
public sealed class TenStepLimitedWorkflow : WorkflowDefinition
{
    public override IReadOnlyList<Type> Steps { get; } = new TenStepWorkflow().Steps;

    public override int? MaxConcurrency => 64;

    public override int? MaxConcurrencyPerKey => 4;
}
