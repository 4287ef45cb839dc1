using Newtonsoft.Json.Linq;

namespace Workflow.Jobs;

/// <summary>The kinds of durable wait, as stored (<c>kind</c> of a step's wait, and <c>waiting_for</c> of a sleeping run).</summary>
internal static class WaitKinds
{
    /// <summary>A sleep until a time (<c>waiting_for</c> = <c>sleep</c>).</summary>
    public const string Sleep = "sleep";

    /// <summary>A wait for a named event (<c>waiting_for</c> = the event's name).</summary>
    public const string Event = "event";

    /// <summary>A wait for the step's child runs to finish (<c>waiting_for</c> = <c>children</c>).</summary>
    public const string Children = "children";
}

/// <summary>A wait a step has recorded: the same on every re-run of the step.</summary>
/// <param name="Number">The wait's number within the step body (0 for its first wait call, and so on).</param>
/// <param name="Kind">A <see cref="WaitKinds"/> value.</param>
/// <param name="Name">The event's name (null for a sleep).</param>
/// <param name="Deadline">The sleep's end or the event's deadline, fixed when the wait was first reached; null for none.</param>
/// <param name="Woken">Whether the run was woken while parked on this wait (its time came, an operator enqueued its job).</param>
internal sealed record StepWaitRecord(int Number, string Kind, string? Name, DateTimeOffset? Deadline, bool Woken);

/// <summary>A step's recorded waits and the payloads of the events its waits consumed, by wait number.</summary>
internal sealed record StepWaitState(IReadOnlyDictionary<int, StepWaitRecord> Waits, IReadOnlyDictionary<int, JObject> Consumed)
{
    /// <summary>A step that has not waited yet.</summary>
    public static StepWaitState Empty { get; } = new(new Dictionary<int, StepWaitRecord>(), new Dictionary<int, JObject>());
}

/// <summary>A wait that must park its run.</summary>
/// <param name="StepId">The waiting step.</param>
/// <param name="Number">The wait's number within the step body.</param>
/// <param name="Kind">A <see cref="WaitKinds"/> value.</param>
/// <param name="Name">The event's name (null for a sleep).</param>
/// <param name="Deadline">When the wait ends by itself (null: only an event or an operator ends it).</param>
/// <param name="EventType">The data type an event wait expects (assembly-qualified name), so a signal can be validated against it.</param>
internal sealed record ParkRequest(Guid StepId, int Number, string Kind, string? Name, DateTimeOffset? Deadline, string? EventType)
{
    /// <summary>The run's <c>waiting_for</c> while parked on this wait.</summary>
    public string WaitingFor => Kind is WaitKinds.Sleep or WaitKinds.Children ? Kind : Name!;
}

/// <summary>What parking did.</summary>
internal enum ParkResult
{
    /// <summary>The run is Waiting; the execution ends and its job is scheduled for the wake time.</summary>
    Parked,

    /// <summary>The event the wait needs arrived meanwhile: the run stays Running and the step runs again at once.</summary>
    EventArrived,

    /// <summary>The run is no longer Running (cancelled meanwhile).</summary>
    NotRunning,
}

/// <summary>
/// Unwinds a step body that must wait (thrown by <see cref="StepContext"/>'s wait methods, caught by the engine).
/// A step must not swallow it: catch specific exceptions around code that waits.
/// </summary>
internal sealed class StepWaitUnwind : Exception
{
    public StepWaitUnwind() : this(new ParkRequest(Guid.Empty, 0, WaitKinds.Sleep, null, null, null)) { }

    public StepWaitUnwind(string message) : base(message) => Park = new ParkRequest(Guid.Empty, 0, WaitKinds.Sleep, null, null, null);

    public StepWaitUnwind(string message, Exception innerException) : base(message, innerException) => Park = new ParkRequest(Guid.Empty, 0, WaitKinds.Sleep, null, null, null);

    public StepWaitUnwind(ParkRequest park) : base($"The step waits for {park.WaitingFor}; it runs again from its start when the wait is over.") => Park = park;

    public ParkRequest Park { get; }
}

/// <summary>
/// Ends an execution whose run is (still) waiting: the job is not failed but scheduled again for
/// <see cref="WakeAt"/> (far in the future when null) by the job scheduler's state election, which re-checks the
/// run under the job's state lock and enqueues the job instead when the run was woken meanwhile.
/// </summary>
internal sealed class WorkflowParkedException : Exception
{
    public WorkflowParkedException() : this(Guid.Empty, "", null) { }

    public WorkflowParkedException(string message) : base(message) { }

    public WorkflowParkedException(string message, Exception innerException) : base(message, innerException) { }

    public WorkflowParkedException(Guid workflowId, string waitingFor, DateTimeOffset? wakeAt)
        : base($"Workflow run {workflowId} is waiting for {waitingFor} " + (wakeAt is { } at ? $"until {at:O}" : "without a deadline") + "; its job resumes it.")
    {
        WorkflowId = workflowId;
        WaitingFor = waitingFor;
        WakeAt = wakeAt;
    }

    public Guid WorkflowId { get; }

    public string WaitingFor { get; } = "";

    public DateTimeOffset? WakeAt { get; }
}

/// <summary>
/// The waits of one step execution: numbers each wait call, replays the waits the step recorded on earlier runs
/// (same deadline, same consumed event) and asks the engine to park when a wait is not over.
/// </summary>
internal sealed partial class StepWaits
{
    private readonly IWorkflowStore _store;
    private readonly TimeProvider _time;
    private readonly Guid _runId;
    private readonly Guid _stepId;
    private StepWaitState? _state;
    private int _next;

    public StepWaits(IWorkflowStore store, TimeProvider time, Guid runId, Guid stepId)
    {
        _store = store;
        _time = time;
        _runId = runId;
        _stepId = stepId;
    }

    public Task SleepAsync(TimeSpan delay, CancellationToken cancellationToken)
        => SleepUntilAsync(_time.GetUtcNow() + (delay > TimeSpan.Zero ? delay : TimeSpan.Zero), cancellationToken);

    public async Task SleepUntilAsync(DateTimeOffset wakeAt, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var number = _next++;
        var state = await LoadAsync(cancellationToken).ConfigureAwait(false);
        if (state.Waits.TryGetValue(number, out var recorded))
        {
            // The deadline recorded the first time counts, whatever this run of the step asks.
            if (recorded.Woken || recorded.Deadline is not { } deadline || deadline <= _time.GetUtcNow())
            {
                return;
            }

            throw new StepWaitUnwind(new ParkRequest(_stepId, number, WaitKinds.Sleep, null, deadline, null));
        }

        if (wakeAt <= _time.GetUtcNow())
        {
            return;
        }

        throw new StepWaitUnwind(new ParkRequest(_stepId, number, WaitKinds.Sleep, null, wakeAt, null));
    }

    public async Task<T> WaitForEventAsync<T>(string eventName, TimeSpan? timeout, CancellationToken cancellationToken) where T : WorkflowData
    {
        WorkflowEvents.ValidateName(eventName, nameof(eventName));
        if (timeout is { } t && t < TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(timeout), timeout, "The timeout must not be negative.");
        }

        cancellationToken.ThrowIfCancellationRequested();
        var number = _next++;
        var state = await LoadAsync(cancellationToken).ConfigureAwait(false);
        var payload = state.Consumed.GetValueOrDefault(number)
                      ?? await _store.ConsumeEventAsync(_runId, _stepId, number, eventName, _time.GetUtcNow(), cancellationToken).ConfigureAwait(false);
        if (payload is not null)
        {
            return (T)WorkflowDataReader.Read(typeof(T), payload, "", WorkflowDataReadMode.Lenient);
        }

        var deadline = state.Waits.TryGetValue(number, out var recorded)
            ? recorded.Deadline
            : timeout is { } limit ? _time.GetUtcNow() + limit : null;
        if (deadline is { } end && end <= _time.GetUtcNow())
        {
            throw new WorkflowEventTimeoutException(eventName, end) { WorkflowId = _runId };
        }

        throw new StepWaitUnwind(new ParkRequest(_stepId, number, WaitKinds.Event, eventName, deadline, WorkflowEvents.TypeName(typeof(T))));
    }

    private async Task<StepWaitState> LoadAsync(CancellationToken cancellationToken)
        => _state ??= await _store.LoadStepWaitsAsync(_stepId, cancellationToken).ConfigureAwait(false);
}

/// <summary>Event names and payload types.</summary>
internal static class WorkflowEvents
{
    /// <summary>The longest event name.</summary>
    public const int MaxNameLength = 200;

    /// <summary>
    /// Checks an event name: 1–200 characters, not <c>sleep</c> nor <c>children</c> (what a sleeping run, and a run waiting
    /// for its child runs, wait for).
    /// </summary>
    public static void ValidateName(string? name, string parameterName)
    {
        if (string.IsNullOrWhiteSpace(name) || name.Length > MaxNameLength || name == WaitKinds.Sleep || name == WaitKinds.Children || name == FlowControl.WaitingFor)
        {
            throw new ArgumentException($"An event name is 1 to {MaxNameLength} characters and not '{WaitKinds.Sleep}', '{WaitKinds.Children}' or '{FlowControl.WaitingFor}'.", parameterName);
        }
    }

    /// <summary>The stored name of an event's data type (resolvable by any process that has the workflow's assembly).</summary>
    public static string TypeName(Type type) => type.AssemblyQualifiedName ?? type.FullName ?? type.Name;

    /// <summary>The data type of a stored name, or null when this process cannot resolve it.</summary>
    public static Type? ResolveType(string? name)
    {
        if (string.IsNullOrEmpty(name))
        {
            return null;
        }

        var type = Type.GetType(name, throwOnError: false);
        return type is not null && typeof(WorkflowData).IsAssignableFrom(type) ? type : null;
    }
}
