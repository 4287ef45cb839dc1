using Microsoft.Extensions.Logging;
using Newtonsoft.Json.Linq;

namespace Workflow.Jobs;

/// <summary>Signals: events sent to runs.</summary>
internal sealed partial class WorkflowClient
{
    public Task SignalAsync(Guid workflowId, string eventName, WorkflowData payload, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(payload);
        return SignalAsync(workflowId, eventName, payload.ToJson(), cancellationToken);
    }

    public async Task SignalAsync(Guid workflowId, string eventName, JObject payload, CancellationToken cancellationToken = default)
    {
        if (string.IsNullOrWhiteSpace(eventName) || eventName.Length > WorkflowEvents.MaxNameLength || eventName == WaitKinds.Sleep || eventName == WaitKinds.Children
            || eventName == FlowControl.WaitingFor)
        {
            throw new WorkflowDataValidationException([new WorkflowDataError("event_name",
                $"An event name is 1 to {WorkflowEvents.MaxNameLength} characters and not '{WaitKinds.Sleep}', '{WaitKinds.Children}' or '{FlowControl.WaitingFor}'.")]);
        }

        if (payload is null)
        {
            throw new WorkflowDataValidationException([new WorkflowDataError("", "The payload is required (a JSON object).")]);
        }

        var info = await _store.GetWaitInfoAsync(workflowId, cancellationToken).ConfigureAwait(false)
            ?? throw new WorkflowRunNotFoundException(workflowId);
        if (WorkflowTransitions.IsFinished(info.Status))
        {
            throw RunFinished(workflowId, info.Status, eventName);
        }

        // The type the run's current wait for this event expects, else the one the definition declares.
        var type = (info.WaitingFor == eventName ? WorkflowEvents.ResolveType(info.EventType) : null)
                   ?? _registry.Find(info.WorkflowName)?.Events.GetValueOrDefault(eventName);
        var validated = type is null
            ? (JObject)payload.DeepClone()
            : WorkflowDataReader.Read(type, payload, "", WorkflowDataReadMode.Strict).ToJson();

        var result = await _store.SignalAsync(workflowId, eventName, validated, _time.GetUtcNow(), cancellationToken).ConfigureAwait(false)
            ?? throw new WorkflowRunNotFoundException(workflowId);
        if (!result.Stored)
        {
            throw RunFinished(workflowId, result.Status, eventName);
        }

        LogSignalled(workflowId, eventName, result.Wake is not null);
        if (result.Wake is { } wake)
        {
            await _jobs.AfterCommitAsync(wake, cancellationToken).ConfigureAwait(false);
        }
    }

    private static UnitOfWorkException RunFinished(Guid workflowId, WorkflowStatus status, string eventName)
        => new($"Workflow run {workflowId} is {status}: the event '{WorkflowDataError.Shorten(eventName, 200)}' was not stored.", UnitOfWorkException.RunFinishedCode)
        {
            WorkflowId = workflowId,
        };

    [LoggerMessage(EventId = 25, Level = LogLevel.Information, Message = "Event {EventName} sent to workflow run {WorkflowId} (woke it: {Woke})")]
    private partial void LogSignalled(Guid workflowId, string eventName, bool woke);
}
