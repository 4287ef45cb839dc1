using Hangfire.AspNetCore;
using Hangfire.Logging;
using Microsoft.Extensions.Logging;

namespace Workflow.Jobs.Hangfire;

/// <summary>
/// Hangfire's log provider is process-wide: the last host to configure Hangfire supplies it. When that
/// host is disposed, its logger factory is too, and Hangfire's workers in every other host of the process
/// would throw <see cref="ObjectDisposedException"/> while logging. This provider drops such log calls
/// instead, so one host's shutdown never stalls another host's workers.
/// </summary>
internal sealed class HostTolerantLogProvider(ILoggerFactory loggerFactory) : ILogProvider
{
    private readonly AspNetCoreLogProvider _inner = new(loggerFactory);

    public ILog GetLogger(string name)
    {
        try
        {
            return new TolerantLog(_inner.GetLogger(name));
        }
        catch (ObjectDisposedException)
        {
            return new TolerantLog(null);
        }
    }

    private sealed class TolerantLog(ILog? inner) : ILog
    {
        public bool Log(global::Hangfire.Logging.LogLevel logLevel, Func<string> messageFunc, Exception exception)
        {
            if (inner is null)
            {
                return false;
            }

            try
            {
                return inner.Log(logLevel, messageFunc, exception);
            }
            catch (ObjectDisposedException)
            {
                return false;
            }
        }
    }
}
