using Hangfire.Dashboard;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Workflow.Jobs.Hangfire.Dashboard;

/// <summary>
/// Renders a Workflows page: loads its data asynchronously from the request's own services, then renders
/// the page (a <see cref="RazorPage"/> inside Hangfire's layout) through Hangfire's page dispatcher.
/// When the database cannot be reached, answers 503 with a plain page of its own (Hangfire's layout reads the
/// database too).
/// </summary>
/// <remarks>
/// <see cref="RazorPage.Execute"/> is synchronous and a page can only be bound to its context by Hangfire's
/// own dispatcher, so the I/O happens here first and the page only writes HTML.
/// </remarks>
internal sealed partial class WorkflowPageDispatcher(Func<WorkflowPageRequest, Task<WorkflowDashboardPage>> load) : IDashboardDispatcher
{
    public async Task Dispatch(DashboardContext context)
    {
        if (WorkflowPageRequest.From(context) is not { } request)
        {
            context.Response.StatusCode = StatusCodes.Status404NotFound;
            return;
        }

        WorkflowDashboardPage page;
        try
        {
            page = await load(request).ConfigureAwait(false);
        }
        catch (Exception ex) when (DatabaseUnavailable.Is(ex) && !request.Http.RequestAborted.IsCancellationRequested)
        {
            if (request.Http.RequestServices.GetService<ILoggerFactory>() is { } loggers)
            {
                LogUnavailable(loggers.CreateLogger("Workflow.Jobs.Dashboard"), ex, request.Http.Request.Path.Value);
            }

            await DatabaseUnavailable.RespondAsync(request.Http).ConfigureAwait(false);
            return;
        }

        if (page.StatusCode is { } status)
        {
            context.Response.StatusCode = status;
        }

        var renderer = new RouteCollection();
        renderer.AddRazorPage("/", _ => page);
        await renderer.FindDispatcher("/").Item1.Dispatch(context).ConfigureAwait(false);
    }

    [LoggerMessage(EventId = 311, Level = LogLevel.Warning, Message = "Dashboard page {Path} answered 503: the workflow database is unavailable")]
    private static partial void LogUnavailable(ILogger logger, Exception exception, string? path);
}
