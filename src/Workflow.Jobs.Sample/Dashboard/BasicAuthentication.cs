using System.Net.Http.Headers;
using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;

namespace Workflow.Jobs.Sample.Dashboard;

/// <summary>Names of the sample's dashboard protection by HTTP basic authentication.</summary>
public static class DashboardBasicDefaults
{
    /// <summary>The authentication scheme.</summary>
    public const string SchemeName = "DashboardBasic";

    /// <summary>The authorization policy of the dashboard: a local request, or valid basic credentials.</summary>
    public const string PolicyName = "Dashboard";
}

/// <summary>Options of <see cref="BasicAuthenticationHandler"/>.</summary>
public sealed class BasicAuthenticationOptions : AuthenticationSchemeOptions
{
    /// <summary>The accepted user name.</summary>
    public string? UserName { get; set; }

    /// <summary>The accepted password (compared in constant time; never logged).</summary>
    public string? Password { get; set; }

    /// <summary>The realm the browser shows when it asks for credentials.</summary>
    public string Realm { get; set; } = "Workflow.Jobs dashboard";
}

/// <summary>
/// HTTP basic authentication with one user from configuration (<c>WorkflowJobs:Dashboard:BasicAuthUserName</c> and
/// <c>BasicAuthPassword</c>), for the sample's dashboard: the simplest remote access for a small setup, over HTTPS
/// only (basic credentials travel in clear). A real deployment signs its operators in with its own scheme (cookies
/// with single sign-on, for example) and names its policy in <c>WorkflowDashboardOptions.AuthorizationPolicy</c>.
/// </summary>
/// <remarks>
/// An ASP.NET Core authentication handler, so the user it signs in is the request's <c>HttpContext.User</c>: the
/// dashboard's command log names them.
/// </remarks>
public sealed class BasicAuthenticationHandler(IOptionsMonitor<BasicAuthenticationOptions> options, ILoggerFactory logger, UrlEncoder encoder)
    : AuthenticationHandler<BasicAuthenticationOptions>(options, logger, encoder)
{
    /// <inheritdoc />
    protected override Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var header = Request.Headers.Authorization.ToString();
        if (string.IsNullOrEmpty(header) || !AuthenticationHeaderValue.TryParse(header, out var value)
            || !"Basic".Equals(value.Scheme, StringComparison.OrdinalIgnoreCase))
        {
            return Task.FromResult(AuthenticateResult.NoResult());
        }

        var credentials = Decode(value.Parameter);
        var separator = credentials?.IndexOf(':', StringComparison.Ordinal) ?? -1;
        if (credentials is null || separator < 0 || string.IsNullOrEmpty(Options.UserName) || string.IsNullOrEmpty(Options.Password))
        {
            return Task.FromResult(AuthenticateResult.Fail("Malformed basic credentials."));
        }

        var user = credentials[..separator];
        // Both sides hashed: equal lengths, so the comparison time does not depend on where they differ.
        var matches = CryptographicOperations.FixedTimeEquals(Hash(credentials), Hash(Options.UserName + ":" + Options.Password));
        if (!matches)
        {
            return Task.FromResult(AuthenticateResult.Fail("Invalid basic credentials."));
        }

        var identity = new ClaimsIdentity([new Claim(ClaimTypes.Name, user)], Scheme.Name);
        return Task.FromResult(AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), Scheme.Name)));
    }

    /// <inheritdoc />
    protected override Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        Response.StatusCode = StatusCodes.Status401Unauthorized;
        Response.Headers.WWWAuthenticate = $"Basic realm=\"{Options.Realm}\", charset=\"UTF-8\"";
        return Task.CompletedTask;
    }

    private static string? Decode(string? parameter)
    {
        if (string.IsNullOrEmpty(parameter))
        {
            return null;
        }

        try
        {
            return Encoding.UTF8.GetString(Convert.FromBase64String(parameter));
        }
        catch (FormatException)
        {
            return null;
        }
    }

    private static byte[] Hash(string text) => SHA256.HashData(Encoding.UTF8.GetBytes(text));
}
