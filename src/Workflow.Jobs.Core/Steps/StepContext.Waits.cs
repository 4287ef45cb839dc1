namespace Workflow.Jobs;

/// <summary>Durable waits of a step: sleeps and external events.</summary>
/// <remarks>
/// A wait that is not over ends the step body at once (an internal exception the engine catches: do not catch all
/// exceptions around a wait), parks the run as <see cref="WorkflowStatus.Waiting"/> without holding a worker, and
/// runs the step again from its start when the wait is over; this time the wait returns. Code before a wait therefore
/// runs at least once more, like any step body. Waits are numbered in the order the body reaches them, so a step
/// must reach its waits in the same order on every run.
/// </remarks>
public sealed partial class StepContext
{
    /// <summary>The engine's waits of this step execution; null for a context built outside the engine.</summary>
    internal StepWaits? Waits { get; init; }

    /// <summary>
    /// Sleeps durably for <paramref name="delay"/> (from when this wait was first reached: re-runs do not extend it).
    /// The run is Waiting (<c>WaitingFor = "sleep"</c>) and its job Scheduled for the wake time; "Enqueue now" on the
    /// job wakes it early.
    /// </summary>
    /// <param name="delay">How long to sleep; zero or less returns at once.</param>
    /// <param name="cancellationToken">The step's token.</param>
    public Task SleepAsync(TimeSpan delay, CancellationToken cancellationToken = default)
        => RequireWaits().SleepAsync(delay, cancellationToken);

    /// <summary>Sleeps durably until <paramref name="wakeAt"/> (as recorded when this wait was first reached); a time past returns at once.</summary>
    /// <param name="wakeAt">When to wake.</param>
    /// <param name="cancellationToken">The step's token.</param>
    public Task SleepUntilAsync(DateTimeOffset wakeAt, CancellationToken cancellationToken = default)
        => RequireWaits().SleepUntilAsync(wakeAt, cancellationToken);

    /// <summary>
    /// Waits durably for the event <paramref name="eventName"/> sent to this run (<c>IWorkflowClient.SignalAsync</c>) and
    /// returns its payload. An event sent before the wait is kept and consumed by the first wait for its name; each event
    /// is consumed by exactly one wait, and a re-run of the step gets the same payload.
    /// </summary>
    /// <typeparam name="T">The payload's type; signals are validated against it.</typeparam>
    /// <param name="eventName">The event's name (1–200 characters, not <c>sleep</c>).</param>
    /// <param name="timeout">
    /// How long to wait, from when this wait was first reached (re-runs do not extend it); null for no limit. When it passes,
    /// <see cref="WorkflowEventTimeoutException"/> is thrown in the step.
    /// </param>
    /// <param name="cancellationToken">The step's token.</param>
    public Task<T> WaitForEventAsync<T>(string eventName, TimeSpan? timeout = null, CancellationToken cancellationToken = default) where T : WorkflowData
        => RequireWaits().WaitForEventAsync<T>(eventName, timeout, cancellationToken);

    private StepWaits RequireWaits([System.Runtime.CompilerServices.CallerMemberName] string operation = "")
    {
        ThrowIfInsideForEach(operation);
        return Waits ?? throw new InvalidOperationException("Durable waits need a step run by the workflow engine (this StepContext was created outside it).");
    }
}
