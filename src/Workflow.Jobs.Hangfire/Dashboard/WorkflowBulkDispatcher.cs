using System.Globalization;
using Hangfire;
using Hangfire.Common;
using Hangfire.Dashboard;
using Hangfire.States;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Newtonsoft.Json;
using Newtonsoft.Json.Linq;

namespace Workflow.Jobs.Hangfire.Dashboard;

/// <summary>
/// The bulk actions of the Workflows list page:
/// <list type="bullet">
/// <item><c>GET workflows/bulk/count?{filter}</c>: how many runs the filter selects (<c>{"count"}</c>), shown before confirming;</item>
/// <item><c>POST workflows/bulk/{retry|cancel|purge}?{filter}</c>: starts the action as a Hangfire job, enqueued through the
/// host's own <see cref="IBackgroundJobClient"/> (a filter that selects every run also needs <c>all=true</c>); answers 202 with
/// <c>{"jobId", "statusUrl", "listUrl"}</c>. A command as Retry and Cancel are (POST, antiforgery, refused when read-only);</item>
/// <item><c>GET workflows/bulk/{jobId}</c>: the job's progress (<c>{"action", "state", "total", "done", "finished", "error"}</c>).</item>
/// </list>
/// </summary>
internal sealed partial class WorkflowBulkDispatcher : IDashboardDispatcher
{
    public const string CountPath = WorkflowDashboardRoutes.ListPath + "/bulk/count";

    public static string StartPath(string action) => WorkflowDashboardRoutes.ListPath + "/bulk/" + action;

    public static string StatusPath(string jobId) => WorkflowDashboardRoutes.ListPath + "/bulk/" + jobId;

    public async Task Dispatch(DashboardContext context)
    {
        var groups = context.UriMatch.Groups;
        if (groups["Action"].Success)
        {
            await StartAsync(context, groups["Action"].Value.ToLowerInvariant()).ConfigureAwait(false);
        }
        else if (groups["JobId"].Success)
        {
            await StatusAsync(context, groups["JobId"].Value).ConfigureAwait(false);
        }
        else
        {
            await CountAsync(context).ConfigureAwait(false);
        }
    }

    private static async Task CountAsync(DashboardContext context)
    {
        if (WorkflowPageRequest.From(context) is not { } request)
        {
            context.Response.StatusCode = StatusCodes.Status404NotFound;
            return;
        }

        var filter = WorkflowListFilter.Parse(request.Http.Request.Query);
        if (filter.Errors.Count > 0)
        {
            await WorkflowCommandDispatcher.RespondAsync(request.Http, StatusCodes.Status400BadRequest, string.Join(" ", filter.Errors)).ConfigureAwait(false);
            return;
        }

        try
        {
            var count = await request.Client.CountAsync(filter.ToWorkflowQuery(limit: 1) with { Offset = 0 }, request.Http.RequestAborted).ConfigureAwait(false);
            await WriteJsonAsync(request.Http, StatusCodes.Status200OK, new JObject { ["count"] = count, ["everything"] = !filter.IsFiltered }).ConfigureAwait(false);
        }
        catch (Exception ex) when (DatabaseUnavailable.Is(ex) && !request.Http.RequestAborted.IsCancellationRequested)
        {
            await WorkflowCommandDispatcher.RespondAsync(request.Http, StatusCodes.Status503ServiceUnavailable,
                "The workflow database is unavailable. Try again in a few seconds.").ConfigureAwait(false);
        }
    }

    private static async Task StartAsync(DashboardContext context, string action)
    {
        if (await WorkflowCommandDispatcher.AcceptAsync(context).ConfigureAwait(false) is not { } request)
        {
            return;
        }

        var http = request.Http;
        var filter = WorkflowListFilter.Parse(http.Request.Query);
        if (filter.Errors.Count > 0)
        {
            await WorkflowCommandDispatcher.RespondAsync(http, StatusCodes.Status400BadRequest, string.Join(" ", filter.Errors)).ConfigureAwait(false);
            return;
        }

        if (!filter.IsFiltered && http.Request.Query["all"].ToString() != "true")
        {
            await WorkflowCommandDispatcher.RespondAsync(http, StatusCodes.Status400BadRequest,
                "No filter is set, so every run would be selected: confirm that every run is meant (all=true), or set a filter.").ConfigureAwait(false);
            return;
        }

        if (http.RequestServices.GetService<IBackgroundJobClient>() is not { } jobs)
        {
            await WorkflowCommandDispatcher.RespondAsync(http, StatusCodes.Status503ServiceUnavailable,
                "This host has no Hangfire client to run the bulk action.").ConfigureAwait(false);
            return;
        }

        // The filter travels as the list page's own query string (readable on the job's page), without paging.
        var query = filter.ToQuery(from: 0, count: WorkflowListFilter.DefaultCount).TrimStart('?');
        var user = WorkflowCommandDispatcher.UserName(http);
        var queue = http.RequestServices.GetService<WorkflowHangfireOptions>()?.Queues[0] ?? EnqueuedState.DefaultQueue;
        string jobId;
        try
        {
            jobId = jobs.Create(Job.FromExpression<WorkflowBulkJob>(j => j.RunAsync(action, query, user, null, CancellationToken.None), queue),
                new EnqueuedState(queue) { Reason = "Started from the Workflows page by " + user });
        }
        catch (Exception ex) when (DatabaseUnavailable.Is(ex) || ex is BackgroundJobClientException)
        {
            await WorkflowCommandDispatcher.RespondAsync(http, StatusCodes.Status503ServiceUnavailable,
                "The job storage is unavailable; nothing was started. Try again in a few seconds.").ConfigureAwait(false);
            return;
        }

        if (http.RequestServices.GetService<ILoggerFactory>()?.CreateLogger("Workflow.Jobs.Dashboard") is { } logger)
        {
            LogBulkStarted(logger, action, query, jobId, user, http.Connection.RemoteIpAddress);
        }

        var url = new UrlHelper(context);
        await WriteJsonAsync(http, StatusCodes.Status202Accepted, new JObject
        {
            ["jobId"] = jobId,
            ["statusUrl"] = url.To(StatusPath(jobId)),
            ["listUrl"] = url.To(WorkflowDashboardRoutes.ListPath + "?" + (query.Length == 0 ? string.Empty : query + "&") + "bulk=" + Uri.EscapeDataString(jobId)),
        }).ConfigureAwait(false);
    }

    private static async Task StatusAsync(DashboardContext context, string jobId)
    {
        if (WorkflowPageRequest.From(context) is not { } request)
        {
            context.Response.StatusCode = StatusCodes.Status404NotFound;
            return;
        }

        var progress = WorkflowBulkProgress.Read(context.Storage, jobId);
        if (progress is null)
        {
            await WorkflowCommandDispatcher.RespondAsync(request.Http, StatusCodes.Status404NotFound, $"There is no bulk action with the job id {jobId}.").ConfigureAwait(false);
            return;
        }

        await WriteJsonAsync(request.Http, StatusCodes.Status200OK, new JObject
        {
            ["jobId"] = jobId,
            ["action"] = progress.Action,
            ["state"] = progress.State,
            ["total"] = progress.Total,
            ["done"] = progress.Done,
            ["finished"] = progress.Finished,
            ["error"] = progress.Error,
        }).ConfigureAwait(false);
    }

    private static async Task WriteJsonAsync(HttpContext http, int status, JObject body)
    {
        http.Response.StatusCode = status;
        http.Response.ContentType = "application/json; charset=utf-8";
        http.Response.Headers.CacheControl = "no-store";
        await http.Response.WriteAsync(body.ToString(Formatting.None), http.RequestAborted).ConfigureAwait(false);
    }

    [LoggerMessage(EventId = 302, Level = LogLevel.Warning,
        Message = "Dashboard bulk {Action} of the runs [{Filter}] started as job {JobId} by {User} from {RemoteAddress}")]
    private static partial void LogBulkStarted(ILogger logger, string action, string filter, string jobId, string user, System.Net.IPAddress? remoteAddress);
}

/// <summary>The progress of a bulk action's job, read from Hangfire's storage.</summary>
internal sealed record WorkflowBulkProgress(string Action, string State, long? Total, long Done, bool Finished, string? Error)
{
    public static WorkflowBulkProgress? Read(JobStorage storage, string jobId)
    {
        using var connection = storage.GetConnection();
        var data = connection.GetJobData(jobId);
        if (data?.Job is not { } job || job.Type != typeof(WorkflowBulkJob) || job.Args.Count == 0 || job.Args[0] is not string action)
        {
            return null;
        }

        var total = long.TryParse(connection.GetJobParameter(jobId, WorkflowBulkJob.TotalParameter), NumberStyles.None, CultureInfo.InvariantCulture, out var t) ? t : (long?)null;
        var done = long.TryParse(connection.GetJobParameter(jobId, WorkflowBulkJob.DoneParameter), NumberStyles.None, CultureInfo.InvariantCulture, out var d) ? d : 0;
        var state = data.State ?? "Unknown";
        string? error = null;
        if (state == FailedState.StateName && connection.GetStateData(jobId) is { } failed && failed.Data.TryGetValue("ExceptionMessage", out var message))
        {
            error = message;
        }

        var finished = state == SucceededState.StateName || state == FailedState.StateName || state == DeletedState.StateName;
        return new WorkflowBulkProgress(action, state, total, done, finished, error);
    }
}
