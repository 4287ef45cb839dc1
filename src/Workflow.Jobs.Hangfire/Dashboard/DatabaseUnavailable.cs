using System.Net.Sockets;
using Microsoft.AspNetCore.Http;
using Npgsql;

namespace Workflow.Jobs.Hangfire.Dashboard;

/// <summary>Recognises a database outage and answers it with 503: a plain page, no stack trace, no connection details.</summary>
internal static class DatabaseUnavailable
{
    /// <summary>Seconds a browser or client is told to wait before trying again.</summary>
    public const int RetryAfterSeconds = 5;

    /// <summary>Whether the exception (or one it wraps) says the database could not be reached or answered too late.</summary>
    public static bool Is(Exception exception)
    {
        for (var e = exception; e is not null; e = e.InnerException)
        {
            if (e is NpgsqlException { IsTransient: true } or SocketException or TimeoutException)
            {
                return true;
            }
        }

        return false;
    }

    public static async Task RespondAsync(HttpContext http)
    {
        var response = http.Response;
        response.StatusCode = StatusCodes.Status503ServiceUnavailable;
        response.Headers.RetryAfter = RetryAfterSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        response.Headers.CacheControl = "no-store";
        response.ContentType = "text/html; charset=utf-8";
        await response.WriteAsync(Page, http.RequestAborted).ConfigureAwait(false);
    }

    private const string Page = """
        <!DOCTYPE html>
        <html lang="en">
        <head><meta charset="utf-8"><title>Database unavailable</title>
        <style>body { font-family: sans-serif; margin: 3em; color: #333; } h1 { font-size: 1.6em; }</style></head>
        <body>
        <h1 id="workflow-database-unavailable">Database unavailable</h1>
        <p>The workflow database cannot be reached right now, so the Workflows page cannot be shown.
        Runs are not lost: they continue once the database is back. Reload this page in a few seconds.</p>
        </body>
        </html>
        """;
}
