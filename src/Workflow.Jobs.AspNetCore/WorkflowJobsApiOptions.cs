using Microsoft.AspNetCore.Builder;

namespace Workflow.Jobs;

/// <summary>
/// Options of the HTTP API mapped by
/// <see cref="WorkflowJobsApiEndpointRouteBuilderExtensions.MapWorkflowJobsApi(Microsoft.AspNetCore.Routing.IEndpointRouteBuilder, string, Action{WorkflowJobsApiOptions}?)"/>.
/// Checked when the API is mapped: an invalid value stops the host at start-up.
/// </summary>
public sealed class WorkflowJobsApiOptions
{
    /// <summary>Default of <see cref="MaxRequestBodyBytes"/>: 256 KiB.</summary>
    public const int DefaultMaxRequestBodyBytes = 256 * 1024;

    /// <summary>
    /// The largest request body read, in bytes; a larger one answers 413 without being read further (also when it is
    /// sent chunked, without a Content-Length). Default <see cref="DefaultMaxRequestBodyBytes"/> (262144); at least 2.
    /// </summary>
    public int MaxRequestBodyBytes { get; set; } = DefaultMaxRequestBodyBytes;

    /// <summary>The page size of <c>GET /workflows</c> when the request names no <c>limit</c>. Default 50.</summary>
    public int DefaultPageSize { get; set; } = 50;

    /// <summary>The largest <c>limit</c> of <c>GET /workflows</c>; more answers 400. Default 1000.</summary>
    public int MaxPageSize { get; set; } = 1000;

    /// <summary>
    /// The <c>Retry-After</c> of a 503 answered while the workflow database cannot be reached. Default 5 seconds;
    /// whole seconds, at least 1.
    /// </summary>
    public TimeSpan RetryAfter { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// The path of the Hangfire dashboard, for the <c>links.job</c> of a run (<c>{DashboardPath}/jobs/details/{jobId}</c>).
    /// Default <c>/hangfire</c>, Hangfire's own default; <c>null</c> leaves the link out.
    /// </summary>
    public string? DashboardPath { get; set; } = "/hangfire";

    /// <summary>
    /// Conventions for the read endpoints only (<c>GET</c>: runs, list, definitions), for example
    /// <c>e =&gt; e.RequireAuthorization("ops-read")</c>. Conventions for every endpoint go on the
    /// <see cref="Microsoft.AspNetCore.Routing.RouteGroupBuilder"/> that <c>MapWorkflowJobsApi</c> returns. Default none.
    /// </summary>
    public Action<IEndpointConventionBuilder>? ConfigureReadEndpoints { get; set; }

    /// <summary>
    /// Conventions for the command endpoints only (<c>POST</c>: enqueue, retry, cancel), for example
    /// <c>e =&gt; e.RequireAuthorization("ops-write").RequireRateLimiting("writes")</c>. Default none.
    /// </summary>
    public Action<IEndpointConventionBuilder>? ConfigureWriteEndpoints { get; set; }

    internal void Validate()
    {
        var errors = new List<string>();
        if (MaxRequestBodyBytes < 2)
        {
            errors.Add($"{nameof(MaxRequestBodyBytes)} must be at least 2 (got {MaxRequestBodyBytes}).");
        }

        if (MaxPageSize < 1)
        {
            errors.Add($"{nameof(MaxPageSize)} must be at least 1 (got {MaxPageSize}).");
        }

        if (DefaultPageSize < 1 || DefaultPageSize > MaxPageSize)
        {
            errors.Add($"{nameof(DefaultPageSize)} must be from 1 to {nameof(MaxPageSize)} ({MaxPageSize}) (got {DefaultPageSize}).");
        }

        if (RetryAfter < TimeSpan.FromSeconds(1))
        {
            errors.Add($"{nameof(RetryAfter)} must be at least 1 second (got {RetryAfter}).");
        }

        if (DashboardPath is { } path && (path.Length == 0 || path[0] != '/'))
        {
            errors.Add($"{nameof(DashboardPath)} must start with '/' (got '{path}'), or be null.");
        }

        if (errors.Count > 0)
        {
            throw new InvalidOperationException("Invalid WorkflowJobsApiOptions: " + string.Join(" ", errors));
        }
    }
}
