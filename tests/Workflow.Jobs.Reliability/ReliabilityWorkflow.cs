using System.Security.Cryptography;
using Newtonsoft.Json;

namespace Workflow.Jobs.Reliability;

/// <summary>Settings every step input carries (each step reads its own copy under its own key).</summary>
public abstract class ReliabilityStepInput : WorkflowData
{
    /// <summary>Longest random work of one step body, in milliseconds (the shortest is a tenth of it).</summary>
    [JsonProperty("max_work_ms"), System.ComponentModel.DataAnnotations.Range(1, 60_000)]
    public int MaxWorkMilliseconds { get; set; } = 200;

    /// <summary>Chance, in percent, that one of the first two attempts of the step fails on purpose (so it is retried).</summary>
    [JsonProperty("failure_percent"), System.ComponentModel.DataAnnotations.Range(0, 100)]
    public int FailurePercent { get; set; } = 8;

    /// <summary>Start of the value chain (used by the first step only).</summary>
    [JsonProperty("seed")]
    public long Seed { get; set; }

    /// <summary>When positive, the sleeping step (<see cref="ReliabilityWorkflow.SleepingStep"/>) first sleeps this long, durably.</summary>
    [JsonProperty("sleep_ms"), System.ComponentModel.DataAnnotations.Range(0, 600_000)]
    public int SleepMilliseconds { get; set; }

    /// <summary>When true, the waiting step (<see cref="ReliabilityWorkflow.EventStep"/>) first waits for the event <see cref="ReliabilityWorkflow.EventName"/>.</summary>
    [JsonProperty("wait_event")]
    public bool WaitForEvent { get; set; }
}

/// <summary>The event a waiting run waits for; its nonce identifies the one signal the driver sent.</summary>
public sealed class ReliabilityEvent : WorkflowData
{
    /// <summary>Unique per signal.</summary>
    [JsonProperty("nonce"), System.ComponentModel.DataAnnotations.Required]
    public string Nonce { get; set; } = "";
}

/// <summary>What every step outputs: the next link of the value chain and who computed it.</summary>
public abstract class ReliabilityStepOutput : WorkflowData
{
    /// <summary>The chain value after this step.</summary>
    [JsonProperty("value")]
    public long Value { get; set; }

    /// <summary>The worker process that ran the body whose result was checkpointed.</summary>
    [JsonProperty("worker")]
    public string Worker { get; set; } = "";
}

[WorkflowKey("r1_input")] public sealed class R1Input : ReliabilityStepInput;
[WorkflowKey("r2_input")] public sealed class R2Input : ReliabilityStepInput;
[WorkflowKey("r3_input")] public sealed class R3Input : ReliabilityStepInput;
[WorkflowKey("r4_input")] public sealed class R4Input : ReliabilityStepInput;
[WorkflowKey("r5_input")] public sealed class R5Input : ReliabilityStepInput;
[WorkflowKey("r1_output")] public sealed class R1Output : ReliabilityStepOutput;
[WorkflowKey("r2_output")] public sealed class R2Output : ReliabilityStepOutput;
[WorkflowKey("r3_output")] public sealed class R3Output : ReliabilityStepOutput;
[WorkflowKey("r4_output")] public sealed class R4Output : ReliabilityStepOutput;
[WorkflowKey("r5_output")] public sealed class R5Output : ReliabilityStepOutput;

/// <summary>The step failed on purpose (the reliability workflow's random failures).</summary>
public sealed class InjectedFailureException : Exception
{
    public InjectedFailureException() { }

    public InjectedFailureException(string message) : base(message) { }

    public InjectedFailureException(string message, Exception innerException) : base(message, innerException) { }
}

/// <summary>
/// A step of the reliability workflow. Its body is the side effect being measured: it writes a ledger
/// row when it starts and closes it when it ends, does a little random work (a wait and some hashing),
/// sometimes fails on purpose, and extends the value chain of the previous step.
/// </summary>
public abstract class ReliabilityStep<TInput, TPrevious, TOutput>(Ledger ledger) : WorkflowStep<TInput, TOutput>
    where TInput : ReliabilityStepInput
    where TPrevious : ReliabilityStepOutput
    where TOutput : ReliabilityStepOutput, new()
{
    /// <summary>Position of the step (1-based), mixed into the chain.</summary>
    protected abstract int Index { get; }

    protected override async Task<TOutput> ProcessInputAsync(TInput input, StepContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(context);
        // Waits come before the ledger row: a parked step leaves no open row, and its body (the row) runs once the wait is over.
        if (Index == ReliabilityWorkflow.SleepingStep && input.SleepMilliseconds > 0)
        {
            await context.SleepAsync(TimeSpan.FromMilliseconds(input.SleepMilliseconds), cancellationToken);
        }

        if (Index == ReliabilityWorkflow.EventStep && input.WaitForEvent)
        {
            var received = await context.WaitForEventAsync<ReliabilityEvent>(ReliabilityWorkflow.EventName, ReliabilityWorkflow.EventTimeout, cancellationToken);
            await ledger.RecordEventAsync(context, received.Nonce, cancellationToken);
        }

        var previous = Index == 1 ? input.Seed : context.AccumulatedOutput.Get<TPrevious>()!.Value;
        var entry = await ledger.StartAsync(context, cancellationToken);
        try
        {
            // Deterministic per (step record, attempt).
            var random = new Random(StableSeed(context.StepId, context.Attempt));
            var work = random.Next(Math.Max(1, input.MaxWorkMilliseconds / 10), input.MaxWorkMilliseconds + 1);
            await Task.Delay(work / 2, cancellationToken);
            var digest = BitConverter.GetBytes(previous);
            for (var i = 0; i < 200; i++)
            {
                digest = SHA256.HashData(digest);
            }

            await Task.Delay(work - (work / 2), cancellationToken);
            if (context.Attempt <= 2 && random.Next(100) < input.FailurePercent)
            {
                await ledger.EndAsync(entry, LedgerOutcome.Failed);
                throw new InjectedFailureException($"Injected failure of {context.StepName} on attempt {context.Attempt}.");
            }

            await ledger.EndAsync(entry, LedgerOutcome.Succeeded);
            return new TOutput { Value = ValueChain.Next(previous, Index), Worker = ledger.Worker };
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            await ledger.EndAsync(entry, LedgerOutcome.Cancelled);
            throw;
        }
    }

    private static int StableSeed(Guid stepId, int attempt)
    {
        Span<byte> bytes = stackalloc byte[16];
        stepId.TryWriteBytes(bytes);
        return BitConverter.ToInt32(bytes[..4]) ^ BitConverter.ToInt32(bytes[12..]) ^ (attempt * 7919);
    }
}

public sealed class R1Step(Ledger ledger) : ReliabilityStep<R1Input, R1Output, R1Output>(ledger)
{
    protected override int Index => 1;
}

public sealed class R2Step(Ledger ledger) : ReliabilityStep<R2Input, R1Output, R2Output>(ledger)
{
    protected override int Index => 2;
}

public sealed class R3Step(Ledger ledger) : ReliabilityStep<R3Input, R2Output, R3Output>(ledger)
{
    protected override int Index => 3;
}

public sealed class R4Step(Ledger ledger) : ReliabilityStep<R4Input, R3Output, R4Output>(ledger)
{
    protected override int Index => 4;
}

public sealed class R5Step(Ledger ledger) : ReliabilityStep<R5Input, R4Output, R5Output>(ledger)
{
    protected override int Index => 5;
}

/// <summary>
/// Five steps with random work and random (retried) failures; some runs sleep durably in step 2, some wait in
/// step 4 for an event that the driver process signals. Retries are immediate and generous: a
/// step fails on purpose at most twice, so every run can finish; what is measured is the machinery.
/// </summary>
[WorkflowName("reliability")]
public sealed class ReliabilityWorkflow : WorkflowDefinition
{
    public const int StepCount = 5;

    /// <summary>The step (1-based) that sleeps when its input says so.</summary>
    public const int SleepingStep = 2;

    /// <summary>The step (1-based) that waits for <see cref="EventName"/> when its input says so.</summary>
    public const int EventStep = 4;

    /// <summary>The event a waiting run waits for.</summary>
    public const string EventName = "go";

    /// <summary>Long enough never to expire in a run: a timeout would be a lost event.</summary>
    public static readonly TimeSpan EventTimeout = TimeSpan.FromMinutes(30);

    public override IReadOnlyList<Type> Steps { get; } = [typeof(R1Step), typeof(R2Step), typeof(R3Step), typeof(R4Step), typeof(R5Step)];

    public override WorkflowRetryPolicy? Retry { get; } = new() { Attempts = 20, DelaysInSeconds = [0] };

    /// <inheritdoc />
    public override IReadOnlyDictionary<string, Type> Events { get; } = new Dictionary<string, Type> { [EventName] = typeof(ReliabilityEvent) };

    /// <summary>The composite input of one run; <paramref name="sleepMilliseconds"/> &gt; 0 makes it sleep, <paramref name="waitForEvent"/> wait for an event.</summary>
    public static WorkflowInput Input(long seed, int maxWorkMilliseconds, int failurePercent, int sleepMilliseconds = 0, bool waitForEvent = false)
    {
        T Part<T>() where T : ReliabilityStepInput, new() => new()
        {
            MaxWorkMilliseconds = maxWorkMilliseconds, FailurePercent = failurePercent, Seed = seed, SleepMilliseconds = sleepMilliseconds, WaitForEvent = waitForEvent,
        };
        return new WorkflowInput(Part<R1Input>(), Part<R2Input>(), Part<R3Input>(), Part<R4Input>(), Part<R5Input>());
    }

    /// <summary>The value the last step of a run with this seed must output.</summary>
    public static long ExpectedValue(long seed)
    {
        var value = seed;
        for (var i = 1; i <= StepCount; i++)
        {
            value = ValueChain.Next(value, i);
        }

        return value;
    }
}

/// <summary>The chain function: what step <c>index</c> makes of the previous value (a 64-bit mix).</summary>
public static class ValueChain
{
    public static long Next(long previous, int index)
    {
        unchecked
        {
            var x = (ulong)previous + ((ulong)index * 0x9E3779B97F4A7C15UL);
            x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9UL;
            x = (x ^ (x >> 27)) * 0x94D049BB133111EBUL;
            return (long)(x ^ (x >> 31));
        }
    }
}
