using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Authorization.Policy;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace Workflow.Jobs.Hangfire.Dashboard;

/// <summary>
/// Guards every request of the dashboard branch (pages, stats, commands) before Hangfire sees it:
/// local requests, then basic credentials, then the authorization policy (see <see cref="WorkflowDashboardOptions"/>).
/// </summary>
/// <remarks>
/// A middleware rather than a Hangfire authorization filter, so that a policy's challenge (a login redirect,
/// a <c>WWW-Authenticate</c> header) reaches the client: Hangfire overwrites the status code of a refused request.
/// </remarks>
internal sealed class WorkflowDashboardAuthorization
{
    private readonly WorkflowDashboardOptions _options;
    private readonly AuthorizationPolicy? _policy;
    private readonly byte[]? _expectedCredentialsHash;

    public WorkflowDashboardAuthorization(WorkflowDashboardOptions options, AuthorizationPolicy? policy)
    {
        _options = options;
        _policy = policy;
        if (options.BasicAuthEnabled)
        {
            _expectedCredentialsHash = Hash(options.BasicAuthUserName + ":" + options.BasicAuthPassword);
        }
    }

    public async Task InvokeAsync(HttpContext context, RequestDelegate next)
    {
        if (_options.AllowLocalRequests && IsLocal(context.Connection))
        {
            await next(context).ConfigureAwait(false);
            return;
        }

        var basic = ReadBasicCredentials(context.Request);
        if (_expectedCredentialsHash is not null && basic is not null)
        {
            // Hashing both sides gives equal lengths, so the comparison time does not depend on where they differ.
            if (CryptographicOperations.FixedTimeEquals(Hash(basic), _expectedCredentialsHash))
            {
                await next(context).ConfigureAwait(false);
                return;
            }

            ChallengeBasic(context);
            return;
        }

        if (_policy is not null)
        {
            var evaluator = context.RequestServices.GetService<IPolicyEvaluator>()
                ?? ActivatorUtilities.CreateInstance<PolicyEvaluator>(context.RequestServices);
            var authentication = await evaluator.AuthenticateAsync(_policy, context).ConfigureAwait(false);
            var authorization = await evaluator.AuthorizeAsync(_policy, authentication, context, resource: null).ConfigureAwait(false);
            if (authorization.Succeeded)
            {
                await next(context).ConfigureAwait(false);
                return;
            }

            if (_expectedCredentialsHash is not null && !authentication.Succeeded)
            {
                ChallengeBasic(context);
                return;
            }

            await RefuseThroughAuthenticationAsync(context, authorization.Challenged).ConfigureAwait(false);
            return;
        }

        if (_expectedCredentialsHash is not null)
        {
            ChallengeBasic(context);
            return;
        }

        context.Response.StatusCode = StatusCodes.Status403Forbidden;
        context.Response.ContentType = "text/plain; charset=utf-8";
        await context.Response.WriteAsync(
            "The dashboard accepts local requests only. Configure WorkflowDashboardOptions.AuthorizationPolicy or basic authentication for remote access.",
            context.RequestAborted).ConfigureAwait(false);
    }

    /// <summary>Loopback, or the server's own address (a browser on the same machine), as Hangfire's local-requests filter decides.</summary>
    internal static bool IsLocal(ConnectionInfo connection)
    {
        var remote = connection.RemoteIpAddress;
        if (remote is null)
        {
            return false;
        }

        if (IPAddress.IsLoopback(remote))
        {
            return true;
        }

        return connection.LocalIpAddress is { } local && remote.Equals(local);
    }

    private void ChallengeBasic(HttpContext context)
    {
        context.Response.StatusCode = StatusCodes.Status401Unauthorized;
        context.Response.Headers.WWWAuthenticate = $"Basic realm=\"{_options.BasicAuthRealm}\", charset=\"UTF-8\"";
    }

    private async Task RefuseThroughAuthenticationAsync(HttpContext context, bool challenge)
    {
        var schemes = _policy!.AuthenticationSchemes;
        var provider = context.RequestServices.GetService<IAuthenticationSchemeProvider>();
        var hasDefault = provider is not null
            && (challenge ? await provider.GetDefaultChallengeSchemeAsync().ConfigureAwait(false) : await provider.GetDefaultForbidSchemeAsync().ConfigureAwait(false)) is not null;
        if (provider is null || (schemes.Count == 0 && !hasDefault))
        {
            // No authentication is configured to challenge with: a plain refusal.
            context.Response.StatusCode = challenge ? StatusCodes.Status401Unauthorized : StatusCodes.Status403Forbidden;
            return;
        }

        if (schemes.Count == 0)
        {
            await (challenge ? context.ChallengeAsync() : context.ForbidAsync()).ConfigureAwait(false);
            return;
        }

        foreach (var scheme in schemes)
        {
            await (challenge ? context.ChallengeAsync(scheme) : context.ForbidAsync(scheme)).ConfigureAwait(false);
        }
    }

    private static string? ReadBasicCredentials(HttpRequest request)
    {
        var header = request.Headers.Authorization.ToString();
        if (string.IsNullOrEmpty(header) || !AuthenticationHeaderValue.TryParse(header, out var value)
            || !"Basic".Equals(value.Scheme, StringComparison.OrdinalIgnoreCase) || string.IsNullOrEmpty(value.Parameter))
        {
            return null;
        }

        try
        {
            return Encoding.UTF8.GetString(Convert.FromBase64String(value.Parameter));
        }
        catch (FormatException)
        {
            return string.Empty;
        }
    }

    private static byte[] Hash(string text) => SHA256.HashData(Encoding.UTF8.GetBytes(text));
}
