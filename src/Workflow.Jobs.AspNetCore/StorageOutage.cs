using System.Data.Common;
using System.Net.Sockets;
using Microsoft.AspNetCore.Http;

namespace Workflow.Jobs.AspNetCore;

/// <summary>
/// Recognises a failure to reach the workflow database (or the job storage on it) anywhere in an exception's
/// chain, so the API answers 503 with <c>Retry-After</c> instead of 500: the request did not happen and may be
/// sent again (with the same Idempotency-Key for an enqueue).
/// </summary>
internal static class StorageOutage
{
    /// <summary>The code of the library's storage-unavailable exception (<see cref="UnitOfWorkException.Code"/>).</summary>
    private const string StorageUnavailableCode = "storage_unavailable";

    public static bool Is(Exception exception, out string cause)
    {
        cause = "";
        var pending = new Stack<Exception>();
        pending.Push(exception);
        var seen = 0;
        while (pending.Count > 0 && seen++ < 32)
        {
            var current = pending.Pop();
            switch (current)
            {
                case UnitOfWorkException { Code: StorageUnavailableCode }:
                case DbException { IsTransient: true }:
                case SocketException:
                    cause = Describe(current);
                    return true;
            }

            if (current is AggregateException aggregate)
            {
                foreach (var inner in aggregate.InnerExceptions)
                {
                    pending.Push(inner);
                }
            }
            else if (current.InnerException is { } inner)
            {
                pending.Push(inner);
            }
        }

        return false;
    }

    private static string Describe(Exception found)
    {
        // The driver's own message ("Failed to connect to 127.0.0.1:5432", "57P01: terminating connection ...")
        // names the cause, rather than a wrapper's; Npgsql does not put connection strings or passwords in messages.
        var driver = found;
        for (var current = found; current is not null; current = current.InnerException)
        {
            if (current is DbException)
            {
                driver = current;
            }
        }

        var innermost = driver;
        while (innermost.InnerException is { } inner)
        {
            innermost = inner;
        }

        var message = ReferenceEquals(driver, innermost) ? driver.Message : $"{driver.Message} ({innermost.Message})";
        return message.Length > 300 ? message[..300] + "…" : message;
    }

    public static IResult Answer(string cause, TimeSpan retryAfter)
        => ApiResults.Problem(StatusCodes.Status503ServiceUnavailable,
            [new WorkflowDataError("", $"The workflow database is unavailable: {cause}")],
            "The workflow database is unavailable. Send the request again after Retry-After seconds; an enqueue sent again with the same Idempotency-Key never starts a second run.",
            body => body["cause"] = "database_unavailable",
            retryAfter);
}
