using Hangfire;
using Hangfire.Dashboard;
using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Workflow.Jobs;
using Workflow.Jobs.Hangfire.Dashboard;

namespace Microsoft.AspNetCore.Builder;

/// <summary>Maps the Hangfire dashboard with the Workflows page.</summary>
public static partial class WorkflowDashboardEndpointRouteBuilderExtensions
{
    /// <summary>
    /// Maps Hangfire's dashboard (Hangfire's own <c>MapHangfireDashboard</c>) at <paramref name="pattern"/>, on this
    /// host's <see cref="JobStorage"/> (from dependency injection, as registered by <c>AddHangfireJobs</c>), with the
    /// <b>Workflows</b> page (<c>{pattern}/workflows</c>) in its menu. Local requests only, unless
    /// <see cref="WorkflowDashboardOptions.AuthorizationPolicy"/> names the policy that decides instead.
    /// </summary>
    /// <param name="endpoints">The application's endpoints (a <c>WebApplication</c>).</param>
    /// <param name="pattern">Where the dashboard is served. Default <c>/hangfire</c>.</param>
    /// <param name="configure">
    /// Adjusts the options after they are bound from the configuration section <c>WorkflowJobs:Dashboard</c>.
    /// </param>
    /// <returns>The dashboard endpoint's convention builder (for further conventions such as <c>RequireHost</c>).</returns>
    /// <remarks>
    /// Commands (Retry, Cancel and Hangfire's own) check the antiforgery token when the host registers
    /// antiforgery (<c>builder.Services.AddAntiforgery()</c>, recommended; with several web hosts, share their
    /// data-protection keys); browsers' cross-site requests are refused in any case. With a policy, the host needs
    /// <c>AddAuthorization()</c> and the authorization middleware; call <c>UseForwardedHeaders</c> (behind a
    /// reverse proxy) before <c>UseAuthentication</c> and <c>UseAuthorization</c>.
    /// </remarks>
    /// <exception cref="InvalidOperationException">
    /// Hangfire or Workflow.Jobs are not registered, or the authorization policy does not exist.
    /// </exception>
    public static IEndpointConventionBuilder MapWorkflowJobsDashboard(this IEndpointRouteBuilder endpoints, string pattern = "/hangfire",
        Action<WorkflowDashboardOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        ArgumentException.ThrowIfNullOrEmpty(pattern);
        if (!pattern.StartsWith('/') || (pattern.Length > 1 && pattern.EndsWith('/')))
        {
            throw new ArgumentException("The dashboard path must start with '/' and not end with '/', for example \"/hangfire\".", nameof(pattern));
        }

        var services = endpoints.ServiceProvider;
        var storage = services.GetService<JobStorage>() ?? throw new InvalidOperationException(
            "No Hangfire JobStorage is registered: call services.AddWorkflowJobs(...).AddHangfireJobs() before MapWorkflowJobsDashboard.");
        if (services.GetService<IWorkflowClient>() is null)
        {
            throw new InvalidOperationException("Workflow.Jobs is not registered: call services.AddWorkflowJobs(...).AddHangfireJobs() before MapWorkflowJobsDashboard.");
        }

        var options = new WorkflowDashboardOptions();
        services.GetService<IConfiguration>()?.GetSection(WorkflowDashboardOptions.ConfigurationSection).Bind(options);
        configure?.Invoke(options);
        options.Validate();
        if (options.AuthorizationPolicy is { } policy)
        {
            EnsurePolicyExists(services, policy);
        }

        WorkflowDashboardRoutes.EnsureRegistered();
        var dashboard = new DashboardOptions
        {
            Authorization = [],
            AsyncAuthorization = [],
            TimeZoneResolver = services.GetService<ITimeZoneResolver>(),
        };
        options.ConfigureDashboard?.Invoke(dashboard);
        if (options.AuthorizationPolicy is null)
        {
            // Without a policy, the local-requests-only filter, whatever ConfigureDashboard did with the lists: its
            // filters are checked in addition. With a policy, the endpoint's authorization decides first.
            dashboard.AsyncAuthorization = [new LocalRequestsOnlyDashboardFilter(), .. dashboard.AsyncAuthorization ?? []];
        }

        var configuredReadOnly = dashboard.IsReadOnlyFunc;
        var readOnly = options.ReadOnly;
        var readOnlyFunc = options.ReadOnlyFunc;
        dashboard.IsReadOnlyFunc = context => readOnly
            || (readOnlyFunc is not null && context is AspNetCoreDashboardContext aspNetCore && readOnlyFunc(aspNetCore.HttpContext))
            || (configuredReadOnly?.Invoke(context) ?? false);

        if (services.GetService<IAntiforgery>() is null && !dashboard.IgnoreAntiforgeryToken)
        {
            LogNoAntiforgery(services.GetRequiredService<ILoggerFactory>().CreateLogger("Workflow.Jobs.Dashboard"), pattern);
        }

        var endpoint = endpoints.MapHangfireDashboard(pattern, dashboard, storage);
        return options.AuthorizationPolicy is { } name ? endpoint.RequireAuthorization(name) : endpoint;
    }

    private static void EnsurePolicyExists(IServiceProvider services, string name)
    {
        var provider = services.GetService<IAuthorizationPolicyProvider>() ?? throw new InvalidOperationException(
            $"WorkflowDashboardOptions.AuthorizationPolicy is '{name}' but authorization is not configured: call services.AddAuthorization(o => o.AddPolicy(\"{name}\", ...)).");
        // Policies added with AddPolicy are checked now, so a typo stops the start; a custom provider answers per request.
        if (provider is DefaultAuthorizationPolicyProvider && services.GetRequiredService<IOptions<AuthorizationOptions>>().Value.GetPolicy(name) is null)
        {
            throw new InvalidOperationException(
                $"WorkflowDashboardOptions.AuthorizationPolicy '{name}' is not defined: add it with services.AddAuthorization(o => o.AddPolicy(\"{name}\", ...)).");
        }
    }

    [LoggerMessage(EventId = 310, Level = LogLevel.Warning,
        Message = "The dashboard at {Path} runs without antiforgery tokens (no IAntiforgery service); call builder.Services.AddAntiforgery() so its commands are protected by one")]
    private static partial void LogNoAntiforgery(ILogger logger, string path);
}
