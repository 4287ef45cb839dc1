using System.Globalization;
using Newtonsoft.Json.Linq;

namespace Workflow.Jobs.AspNetCore;

/// <summary>The JSON shapes of runs and workflow definitions in the API's answers.</summary>
internal sealed class RunJson(string runsPath, string? dashboardPath)
{
    public string RunPath(Guid id) => $"{runsPath}/{id}";

    public JObject Summary(WorkflowRun run)
    {
        var json = new JObject
        {
            ["id"] = run.Id.ToString(),
            ["workflowName"] = run.WorkflowName,
            ["status"] = run.Status.ToString(),
            ["completedSteps"] = run.CompletedSteps,
            ["stepCount"] = run.StepNames.Count,
            ["attempts"] = run.Attempts,
            ["created"] = Time(run.Created),
            ["modified"] = Time(run.Modified),
            ["succeededAt"] = Time(run.SucceededAt),
            ["failedAt"] = Time(run.FailedAt),
            ["exceptionMessage"] = run.ExceptionMessage,
            ["waitingFor"] = run.WaitingFor,
            ["wakeAt"] = Time(run.WakeAt),
            ["compensationRequestedAt"] = Time(run.CompensationRequestedAt),
            ["compensationError"] = run.CompensationError,
            ["jobId"] = run.JobId,
            ["recurringId"] = run.RecurringId,
            ["idempotencyKey"] = run.IdempotencyKey,
            ["concurrencyKey"] = run.ConcurrencyKey,
            ["forkedFrom"] = run.ForkedFrom?.ToString(),
            ["parentId"] = run.ParentId?.ToString(),
            ["childIndex"] = run.ChildIndex is { } index ? new JValue(index) : JValue.CreateNull(),
            ["tags"] = new JObject(run.Tags.Select(t => new JProperty(t.Key, t.Value))),
        };
        json["links"] = Links(run);
        return json;
    }

    public JObject Detail(WorkflowRun run)
    {
        var json = Summary(run);
        json["input"] = run.Input.DeepClone();
        json["output"] = run.Output?.DeepClone() ?? JValue.CreateNull();
        json["steps"] = new JArray(run.Steps.Select(Step));
        json["children"] = run.Children is { } children ? Children(children) : JValue.CreateNull();
        return json;
    }

    public static JObject Definition(WorkflowDefinitionInfo workflow, WorkflowRetryPolicy defaultRetry, bool withSchema)
    {
        var retry = workflow.Retry ?? defaultRetry;
        var json = new JObject
        {
            ["name"] = workflow.Name,
            ["steps"] = new JArray(workflow.Steps.Select(s => new JObject
            {
                ["name"] = s.Name,
                ["inputKey"] = s.InputKey,
                ["outputKey"] = s.OutputKey,
            })),
            ["retry"] = new JObject
            {
                ["attempts"] = retry.Attempts,
                ["delaysInSeconds"] = new JArray(retry.DelaysInSeconds),
                ["source"] = workflow.Retry is null ? "host default" : "workflow definition",
            },
        };
        if (withSchema)
        {
            json["inputSchema"] = workflow.InputSchema;
        }

        return json;
    }

    private static JObject Step(WorkflowStepRun step) => new()
    {
        ["id"] = step.Id.ToString(),
        ["name"] = step.StepName,
        ["status"] = step.Status.ToString(),
        ["attempts"] = step.Attempts,
        ["precedingStepId"] = step.PrecedingStepId?.ToString(),
        ["created"] = Time(step.Created),
        ["modified"] = Time(step.Modified),
        ["startedAt"] = Time(step.StartedAt),
        ["succeededAt"] = Time(step.SucceededAt),
        ["failedAt"] = Time(step.FailedAt),
        ["durationMs"] = step.StartedAt is { } started && (step.SucceededAt ?? step.FailedAt) is { } ended
            ? new JValue(Math.Round((ended - started).TotalMilliseconds, 1))
            : JValue.CreateNull(),
        ["exceptionMessage"] = step.ExceptionMessage,
        ["compensatedAt"] = Time(step.CompensatedAt),
        ["compensationError"] = step.CompensationError,
        ["input"] = step.Input.DeepClone(),
        ["output"] = step.Output?.DeepClone() ?? JValue.CreateNull(),
        ["history"] = new JArray(step.History.Select(Attempt)),
        ["items"] = step.Items is { } items
            ? new JObject
            {
                ["total"] = items.Total,
                ["succeeded"] = items.Succeeded,
                ["failed"] = items.Failed,
                ["pending"] = items.Pending,
                ["calls"] = items.Calls,
            }
            : JValue.CreateNull(),
    };

    /// <summary>One attempt of a step (oldest first in <c>history</c>).</summary>
    private static JObject Attempt(WorkflowStepAttempt attempt) => new()
    {
        ["attempt"] = attempt.Attempt,
        ["status"] = attempt.Status.ToString(),
        ["startedAt"] = Time(attempt.StartedAt),
        ["finishedAt"] = Time(attempt.FinishedAt),
        ["durationMs"] = attempt.Duration is { } duration ? new JValue(Math.Round(duration.TotalMilliseconds, 1)) : JValue.CreateNull(),
        ["exceptionMessage"] = attempt.ExceptionMessage,
        ["exceptionType"] = attempt.ExceptionType,
        ["stackTrace"] = attempt.StackTrace,
        ["jobId"] = attempt.JobId,
        ["serverName"] = attempt.ServerName,
    };

    private JObject Children(WorkflowChildrenSummary children) => new()
    {
        ["total"] = children.Total,
        ["succeeded"] = children.Succeeded,
        ["finished"] = children.Finished,
        ["failed"] = new JArray(children.Failed.Select(f => new JObject
        {
            ["id"] = f.Id.ToString(),
            ["childIndex"] = f.ChildIndex,
            ["status"] = f.Status.ToString(),
            ["exceptionMessage"] = f.ExceptionMessage,
            ["self"] = RunPath(f.Id),
        })),
    };

    private JObject Links(WorkflowRun run)
    {
        var self = RunPath(run.Id);
        var links = new JObject { ["self"] = self };
        if (run.ParentId is { } parent)
        {
            links["parent"] = RunPath(parent);
        }

        if (run.Status is WorkflowStatus.Failed or WorkflowStatus.Cancelled)
        {
            links["retry"] = self + "/retry";
        }

        if (run.Status is WorkflowStatus.Pending or WorkflowStatus.Running or WorkflowStatus.Waiting or WorkflowStatus.Failed)
        {
            links["cancel"] = self + "/cancel";
        }

        if (run.JobId is not null && dashboardPath is not null)
        {
            links["job"] = $"{dashboardPath.TrimEnd('/')}/jobs/details/{Uri.EscapeDataString(run.JobId)}";
        }

        return links;
    }

    /// <summary>UTC ISO 8601 with milliseconds, or null.</summary>
    private static JValue Time(DateTimeOffset? value)
        => value is { } v ? new JValue(v.ToUniversalTime().ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture)) : JValue.CreateNull();
}
