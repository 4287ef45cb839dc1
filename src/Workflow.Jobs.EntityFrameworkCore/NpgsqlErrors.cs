using System.Net.Sockets;
using Npgsql;

namespace Workflow.Jobs.EntityFrameworkCore;

/// <summary>Tells a database that cannot be reached from every other failure.</summary>
internal static class NpgsqlErrors
{
    /// <summary>
    /// A transient Npgsql failure (connection refused or broken, server shutting down, timeout) anywhere in
    /// the chain, including one wrapped by the job storage's client.
    /// </summary>
    public static bool IsUnavailable(Exception? exception)
    {
        if (exception is UnitOfWorkException)
        {
            return false;
        }

        for (var e = exception; e is not null; e = e.InnerException)
        {
            if (e is NpgsqlException { IsTransient: true } or SocketException)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>The library's exception for it, naming what did not happen and the cause.</summary>
    public static WorkflowStorageUnavailableException Unavailable(string what, Exception cause)
        => new($"{what}: the workflow database is unavailable ({Innermost(cause).Message}). Nothing was half-written; retry the call.", cause);

    private static Exception Innermost(Exception exception)
    {
        var e = exception;
        while (e.InnerException is not null)
        {
            e = e.InnerException;
        }

        return e;
    }
}
