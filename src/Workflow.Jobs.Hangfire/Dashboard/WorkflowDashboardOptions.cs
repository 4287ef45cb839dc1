using Hangfire;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Http;

namespace Workflow.Jobs;

/// <summary>
/// Options of the Hangfire dashboard with the Workflows page, mapped by <c>app.MapWorkflowJobsDashboard()</c>.
/// Who may open it:
/// <list type="bullet">
/// <item>without <see cref="AuthorizationPolicy"/> (the default): local requests only — from the loopback address
/// (or the server's own address, as Hangfire's <c>LocalRequestsOnlyAuthorizationFilter</c> decides) and with a
/// loopback <c>Host</c> name (<c>localhost</c>, <c>127.0.0.1</c>, <c>[::1]</c>); anything else gets 403;</item>
/// <item>with <see cref="AuthorizationPolicy"/>: whoever satisfies that ASP.NET Core authorization policy
/// (the endpoint requires it, as <c>RequireAuthorization</c> does); local requests get no exception unless the
/// policy grants one (see <see cref="WorkflowDashboardAuthorization.IsLocalRequest(AuthorizationHandlerContext)"/>).</item>
/// </list>
/// The same rule covers the pages, the dashboard's JSON endpoints and every command (Retry, Cancel, Requeue, Delete).
/// </summary>
/// <remarks>
/// <c>MapWorkflowJobsDashboard</c> first binds these options from the configuration section
/// <see cref="ConfigurationSection"/> (<c>WorkflowJobs:Dashboard</c>, for example the environment variable
/// <c>WorkflowJobs__Dashboard__ReadOnly</c>), then runs the <c>configure</c> callback.
/// </remarks>
public sealed class WorkflowDashboardOptions
{
    /// <summary>The configuration section the options are bound from: <c>WorkflowJobs:Dashboard</c>.</summary>
    public const string ConfigurationSection = "WorkflowJobs:Dashboard";

    /// <summary>
    /// The name of an ASP.NET Core authorization policy (<c>AddAuthorization(o =&gt; o.AddPolicy(name, ...))</c>)
    /// that every dashboard request must satisfy, instead of the local-requests-only default. A request that fails
    /// it is challenged or forbidden by the host's authentication (401 with the scheme's challenge, 403, or a login
    /// redirect with cookie authentication). Default: none (local requests only).
    /// </summary>
    public string? AuthorizationPolicy { get; set; }

    /// <summary>
    /// Read-only dashboard for everyone: pages only, no Retry, Cancel, Requeue or Delete (the buttons are
    /// hidden and the commands refused with 403). Default <c>false</c>.
    /// </summary>
    public bool ReadOnly { get; set; }

    /// <summary>
    /// Decides per request whether the dashboard is read-only (for example by the user's role), in addition to
    /// <see cref="ReadOnly"/>. Default: none.
    /// </summary>
    public Func<HttpContext, bool>? ReadOnlyFunc { get; set; }

    /// <summary>
    /// Adjusts Hangfire's own <see cref="DashboardOptions"/> (title, back link, dark mode, polling interval...).
    /// Authorization filters added here are checked in addition to the rules above; an
    /// <see cref="DashboardOptions.IsReadOnlyFunc"/> set here is combined with <see cref="ReadOnly"/>. Default: none.
    /// </summary>
    public Action<DashboardOptions>? ConfigureDashboard { get; set; }

    internal void Validate()
    {
        if (AuthorizationPolicy is not null && string.IsNullOrWhiteSpace(AuthorizationPolicy))
        {
            throw new InvalidOperationException($"{nameof(WorkflowDashboardOptions)}.{nameof(AuthorizationPolicy)} must not be blank.");
        }
    }
}
