using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Workflow.Jobs;
using Workflow.Jobs.AspNetCore;

namespace Microsoft.AspNetCore.Builder;

/// <summary>Maps the Workflow.Jobs HTTP API.</summary>
public static class WorkflowJobsApiEndpointRouteBuilderExtensions
{
    /// <summary>
    /// Maps the workflow HTTP API under <paramref name="prefix"/>:
    /// <c>POST {prefix}/workflows/{name}</c> (202 with the run id; 400 with field errors; 404 for an unknown workflow),
    /// <c>GET {prefix}/workflows/{id}</c>, <c>GET {prefix}/workflows?status=&amp;name=&amp;limit=&amp;offset=</c>,
    /// <c>POST {prefix}/workflows/{id}/retry</c>, <c>POST {prefix}/workflows/{id}/cancel</c>,
    /// <c>GET {prefix}/workflow-definitions</c> and <c>GET {prefix}/workflow-definitions/{name}</c> (with the JSON
    /// Schema of the composite input). Errors are RFC 9457 problem details (<c>application/problem+json</c>) with
    /// <c>errors: [{path, message}]</c>; request bodies must be strict JSON sent as <c>application/json</c>; a
    /// database outage answers 503 with <c>Retry-After</c>. Needs <c>AddWorkflowJobs(...)</c> and a job adapter
    /// (<c>AddHangfireJobs()</c>) for <see cref="IWorkflowClient"/>.
    /// </summary>
    /// <param name="endpoints">The application's endpoints.</param>
    /// <param name="prefix">The route prefix, for example <c>/api</c>.</param>
    /// <param name="configure">Changes <see cref="WorkflowJobsApiOptions"/>; checked before anything is mapped.</param>
    /// <returns>The group of every endpoint of the API, for conventions such as <c>.RequireAuthorization("ops")</c>, rate limiting or OpenAPI metadata.</returns>
    /// <exception cref="InvalidOperationException">An option is invalid.</exception>
    public static RouteGroupBuilder MapWorkflowJobsApi(this IEndpointRouteBuilder endpoints, string prefix = "/api", Action<WorkflowJobsApiOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        ArgumentNullException.ThrowIfNull(prefix);
        var options = new WorkflowJobsApiOptions();
        configure?.Invoke(options);
        options.Validate();

        var group = endpoints.MapGroup(prefix).WithTags("Workflows");
        var api = new WorkflowApiEndpoints(options, prefix);
        group.AddEndpointFilter(api.AnswerOutagesAsync);

        var read = group.MapGroup("");
        var write = group.MapGroup("");
        options.ConfigureReadEndpoints?.Invoke(read);
        options.ConfigureWriteEndpoints?.Invoke(write);
        api.Map(read, write);
        return group;
    }
}
