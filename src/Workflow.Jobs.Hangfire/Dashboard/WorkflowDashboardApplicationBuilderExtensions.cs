using Hangfire;
using Hangfire.Dashboard;
using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.Authorization;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Workflow.Jobs;
using Workflow.Jobs.Hangfire.Dashboard;

namespace Microsoft.AspNetCore.Builder;

/// <summary>Maps the Hangfire dashboard with the Workflows page.</summary>
public static partial class WorkflowDashboardApplicationBuilderExtensions
{
    /// <summary>
    /// Maps Hangfire's dashboard at <paramref name="pathMatch"/>, on this host's <see cref="JobStorage"/> (from
    /// dependency injection, as registered by <c>AddHangfireJobs</c>), with the <b>Workflows</b> page
    /// (<c>{pathMatch}/workflows</c>) in its menu. Only local requests are let in unless
    /// <see cref="WorkflowDashboardOptions.AuthorizationPolicy"/> or basic authentication allows remote ones;
    /// see <see cref="WorkflowDashboardOptions"/>.
    /// </summary>
    /// <param name="app">The application.</param>
    /// <param name="pathMatch">Where the dashboard is served. Default <c>/hangfire</c>.</param>
    /// <param name="configure">
    /// Adjusts the options after they are bound from the configuration section <c>WorkflowJobs:Dashboard</c>.
    /// </param>
    /// <returns>The application.</returns>
    /// <remarks>
    /// Commands (Retry, Cancel and Hangfire's own) check the antiforgery token when the host registers
    /// antiforgery (<c>builder.Services.AddAntiforgery()</c>, recommended; with several web hosts, share their
    /// data-protection keys); browsers' cross-site requests are refused in any case. Call it after
    /// <c>UseForwardedHeaders</c> and <c>UseAuthentication</c> when those are used.
    /// </remarks>
    /// <exception cref="InvalidOperationException">
    /// Hangfire or Workflow.Jobs are not registered, the options are inconsistent, or the authorization policy does not exist.
    /// </exception>
    public static IApplicationBuilder UseWorkflowJobsDashboard(this IApplicationBuilder app, string pathMatch = "/hangfire",
        Action<WorkflowDashboardOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(app);
        ArgumentException.ThrowIfNullOrEmpty(pathMatch);
        if (!pathMatch.StartsWith('/') || (pathMatch.Length > 1 && pathMatch.EndsWith('/')))
        {
            throw new ArgumentException("The dashboard path must start with '/' and not end with '/', for example \"/hangfire\".", nameof(pathMatch));
        }

        var services = app.ApplicationServices;
        var storage = services.GetService<JobStorage>() ?? throw new InvalidOperationException(
            "No Hangfire JobStorage is registered: call services.AddWorkflowJobs(...).AddHangfireJobs() before UseWorkflowJobsDashboard.");
        if (services.GetService<IWorkflowClient>() is null)
        {
            throw new InvalidOperationException("Workflow.Jobs is not registered: call services.AddWorkflowJobs(...).AddHangfireJobs() before UseWorkflowJobsDashboard.");
        }

        var options = new WorkflowDashboardOptions();
        services.GetService<IConfiguration>()?.GetSection(WorkflowDashboardOptions.ConfigurationSection).Bind(options);
        configure?.Invoke(options);
        options.Validate();
        var policy = FindPolicy(services, options.AuthorizationPolicy);

        WorkflowDashboardRoutes.EnsureRegistered();
        var dashboard = new DashboardOptions
        {
            // Authorization happens before Hangfire's middleware (WorkflowDashboardAuthorization); filters added
            // in ConfigureDashboard are checked in addition.
            Authorization = [],
            AsyncAuthorization = [],
            TimeZoneResolver = services.GetService<ITimeZoneResolver>(),
        };
        options.ConfigureDashboard?.Invoke(dashboard);
        var configuredReadOnly = dashboard.IsReadOnlyFunc;
        var readOnly = options.ReadOnly;
        var readOnlyFunc = options.ReadOnlyFunc;
        dashboard.IsReadOnlyFunc = context => readOnly
            || (readOnlyFunc is not null && context is AspNetCoreDashboardContext aspNetCore && readOnlyFunc(aspNetCore.HttpContext))
            || (configuredReadOnly?.Invoke(context) ?? false);

        if (services.GetService<IAntiforgery>() is null && !dashboard.IgnoreAntiforgeryToken)
        {
            LogNoAntiforgery(services.GetRequiredService<ILoggerFactory>().CreateLogger("Workflow.Jobs.Dashboard"), pathMatch);
        }

        var routes = services.GetService<RouteCollection>() ?? DashboardRoutes.Routes;
        var guard = new WorkflowDashboardAuthorization(options, policy);
        app.Map(pathMatch, branch =>
        {
            branch.Use(guard.InvokeAsync);
            branch.UseMiddleware<AspNetCoreDashboardMiddleware>(storage, dashboard, routes);
        });
        return app;
    }

    private static AuthorizationPolicy? FindPolicy(IServiceProvider services, string? name)
    {
        if (name is null)
        {
            return null;
        }

        var provider = services.GetService<IAuthorizationPolicyProvider>() ?? throw new InvalidOperationException(
            $"WorkflowDashboardOptions.AuthorizationPolicy is '{name}' but authorization is not configured: call services.AddAuthorization(o => o.AddPolicy(\"{name}\", ...)).");
        // The default provider answers synchronously; a custom one is asked once, at start-up.
        var policy = provider.GetPolicyAsync(name).GetAwaiter().GetResult();
        return policy ?? throw new InvalidOperationException(
            $"WorkflowDashboardOptions.AuthorizationPolicy '{name}' is not defined: add it with services.AddAuthorization(o => o.AddPolicy(\"{name}\", ...)).");
    }

    [LoggerMessage(EventId = 310, Level = LogLevel.Warning,
        Message = "The dashboard at {Path} runs without antiforgery tokens (no IAntiforgery service); call builder.Services.AddAntiforgery() so its commands are protected by one")]
    private static partial void LogNoAntiforgery(ILogger logger, string path);
}
