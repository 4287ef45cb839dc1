using Hangfire.Dashboard;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace Workflow.Jobs.Hangfire.Dashboard;

/// <summary>What a page loader needs: the dashboard context, the request and the host's workflow services.</summary>
internal sealed record WorkflowPageRequest(DashboardContext Dashboard, HttpContext Http, IWorkflowClient Client)
{
    public static WorkflowPageRequest? From(DashboardContext context)
    {
        // Only ASP.NET Core hosts; a host without workflow services does not have the pages.
        if (context is not AspNetCoreDashboardContext aspNetCore
            || aspNetCore.HttpContext.RequestServices.GetService<IWorkflowClient>() is not { } client)
        {
            return null;
        }

        return new WorkflowPageRequest(context, aspNetCore.HttpContext, client);
    }

    public Guid RouteId => Guid.Parse(Dashboard.UriMatch.Groups["Id"].Value);
}
