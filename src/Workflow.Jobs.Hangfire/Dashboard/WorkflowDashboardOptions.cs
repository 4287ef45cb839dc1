using Hangfire;
using Microsoft.AspNetCore.Http;

namespace Workflow.Jobs;

/// <summary>
/// Options of the Hangfire dashboard with the Workflows page, mapped by
/// <c>app.UseWorkflowJobsDashboard()</c>. Who may open it:
/// <list type="bullet">
/// <item>local requests (from the loopback address, or from the server's own address) when
/// <see cref="AllowLocalRequests"/> is on (the default), without credentials;</item>
/// <item>remote requests that satisfy the ASP.NET Core authorization policy <see cref="AuthorizationPolicy"/>;</item>
/// <item>remote requests with HTTP basic credentials matching <see cref="BasicAuthUserName"/> and
/// <see cref="BasicAuthPassword"/>.</item>
/// </list>
/// With neither a policy nor basic credentials configured, remote requests are refused (403). The same
/// rules cover the pages, the dashboard's JSON endpoints and every command (Retry, Cancel, Requeue, Delete).
/// </summary>
/// <remarks>
/// <c>UseWorkflowJobsDashboard</c> first binds these options from the configuration section
/// <see cref="ConfigurationSection"/> (<c>WorkflowJobs:Dashboard</c>; for example the environment variable
/// <c>WorkflowJobs__Dashboard__BasicAuthPassword</c>), then runs the <c>configure</c> callback.
/// Behind a reverse proxy every request comes from the proxy's address, which may be local: use
/// <c>app.UseForwardedHeaders()</c> before the dashboard so the client's address is the one checked.
/// </remarks>
public sealed class WorkflowDashboardOptions
{
    /// <summary>The configuration section the options are bound from: <c>WorkflowJobs:Dashboard</c>.</summary>
    public const string ConfigurationSection = "WorkflowJobs:Dashboard";

    /// <summary>Let local requests in without credentials. Default <c>true</c>.</summary>
    public bool AllowLocalRequests { get; set; } = true;

    /// <summary>
    /// The name of an ASP.NET Core authorization policy (<c>AddAuthorization(o =&gt; o.AddPolicy(name, ...))</c>)
    /// that lets remote requests in. The policy's authentication schemes are used, or the user set by
    /// <c>UseAuthentication()</c>. A request that fails it is challenged or forbidden through the host's
    /// authentication (401/403, or a login redirect with cookie authentication). Default: none.
    /// </summary>
    public string? AuthorizationPolicy { get; set; }

    /// <summary>
    /// The user name of HTTP basic authentication for remote requests; basic authentication is on when
    /// both this and <see cref="BasicAuthPassword"/> are set. Meant for simple setups, and only over HTTPS
    /// (basic credentials are sent in clear). Default: none.
    /// </summary>
    public string? BasicAuthUserName { get; set; }

    /// <summary>The password of HTTP basic authentication (compared in constant time). Keep it in configuration or a secret store, not in code. Default: none.</summary>
    public string? BasicAuthPassword { get; set; }

    /// <summary>The realm the browser shows when it asks for basic credentials. Default <c>Workflow.Jobs dashboard</c>.</summary>
    public string BasicAuthRealm { get; set; } = "Workflow.Jobs dashboard";

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

    internal bool BasicAuthEnabled => !string.IsNullOrEmpty(BasicAuthUserName) && !string.IsNullOrEmpty(BasicAuthPassword);

    internal void Validate()
    {
        if (string.IsNullOrEmpty(BasicAuthUserName) != string.IsNullOrEmpty(BasicAuthPassword))
        {
            throw new InvalidOperationException(
                $"{nameof(WorkflowDashboardOptions)}: set both {nameof(BasicAuthUserName)} and {nameof(BasicAuthPassword)} to use basic authentication, or neither.");
        }

        if (BasicAuthUserName?.Contains(':', StringComparison.Ordinal) == true)
        {
            throw new InvalidOperationException($"{nameof(WorkflowDashboardOptions)}.{nameof(BasicAuthUserName)} must not contain ':'.");
        }

        if (AuthorizationPolicy is not null && string.IsNullOrWhiteSpace(AuthorizationPolicy))
        {
            throw new InvalidOperationException($"{nameof(WorkflowDashboardOptions)}.{nameof(AuthorizationPolicy)} must not be blank.");
        }

        if (string.IsNullOrWhiteSpace(BasicAuthRealm) || BasicAuthRealm.Contains('"', StringComparison.Ordinal))
        {
            throw new InvalidOperationException($"{nameof(WorkflowDashboardOptions)}.{nameof(BasicAuthRealm)} must be non-empty and contain no '\"'.");
        }
    }
}
