using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;

namespace Workflow.Jobs.Sample.Api;

/// <summary>Names of the sample's built-in API-key protection.</summary>
public static class ApiKeyDefaults
{
    /// <summary>The authentication scheme and the authorization policy name (<c>WorkflowJobs:Api:WritePolicy=ApiKey</c>).</summary>
    public const string PolicyName = "ApiKey";

    /// <summary>The request header that carries the key.</summary>
    public const string HeaderName = "X-Api-Key";
}

/// <summary>Options of <see cref="ApiKeyAuthenticationHandler"/>.</summary>
public sealed class ApiKeyAuthenticationOptions : AuthenticationSchemeOptions
{
    /// <summary>The accepted key.</summary>
    public string? ApiKey { get; set; }
}

/// <summary>
/// The simplest protection of the API for the sample: one shared key in the <c>X-Api-Key</c> header,
/// compared in constant time. Real deployments plug their own scheme (JWT bearer, cookies) and name
/// their policy in <c>WorkflowJobs:Api:WritePolicy</c>.
/// </summary>
public sealed class ApiKeyAuthenticationHandler(IOptionsMonitor<ApiKeyAuthenticationOptions> options, ILoggerFactory logger, UrlEncoder encoder)
    : AuthenticationHandler<ApiKeyAuthenticationOptions>(options, logger, encoder)
{
    /// <inheritdoc />
    protected override Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        if (!Request.Headers.TryGetValue(ApiKeyDefaults.HeaderName, out var values) || values.Count == 0)
        {
            return Task.FromResult(AuthenticateResult.NoResult());
        }

        var expected = Options.ApiKey;
        if (string.IsNullOrEmpty(expected) || values.Count != 1 || !KeysMatch(values.ToString(), expected))
        {
            return Task.FromResult(AuthenticateResult.Fail("Invalid API key."));
        }

        var identity = new ClaimsIdentity([new Claim(ClaimTypes.Name, "api-key")], Scheme.Name);
        return Task.FromResult(AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), Scheme.Name)));
    }

    /// <inheritdoc />
    protected override Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        Response.StatusCode = StatusCodes.Status401Unauthorized;
        Response.Headers.WWWAuthenticate = $"{ApiKeyDefaults.PolicyName} header=\"{ApiKeyDefaults.HeaderName}\"";
        return Task.CompletedTask;
    }

    private static bool KeysMatch(string given, string expected)
        => CryptographicOperations.FixedTimeEquals(SHA256.HashData(Encoding.UTF8.GetBytes(given)), SHA256.HashData(Encoding.UTF8.GetBytes(expected)));
}
