using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Hosting;

namespace Workflow.Jobs.Benchmarks;

/// <summary>
/// The worker child process: one line-based command per line on stdin, one answer per line on stdout
/// (logs go to stderr). <c>start &lt;connection string&gt;</c> builds and starts a worker host (one per
/// database; the history comparison runs two at once), <c>stop</c> stops and disposes them (closing their
/// connections), <c>rss</c> reports the peak resident
/// memory of this process, <c>exit</c> ends it. End of input ends it too.
/// </summary>
internal static class WorkerProcess
{
    public static async Task<int> RunAsync(IReadOnlyList<string> args)
    {
        var workers = int.Parse(args[0], CultureInfo.InvariantCulture);
        var poll = TimeSpan.FromMilliseconds(int.Parse(args[1], CultureInfo.InvariantCulture));
        var cancellationCheck = TimeSpan.FromMilliseconds(int.Parse(args[2], CultureInfo.InvariantCulture));
        var queueMode = BenchmarkQueueModes.Parse(args[3]);
        var schedulePolling = TimeSpan.FromMilliseconds(int.Parse(args[4], CultureInfo.InvariantCulture));
        var output = Console.Out;
        var hosts = new List<IHost>();
        try
        {
            while (await Console.In.ReadLineAsync().ConfigureAwait(false) is { } line)
            {
                var space = line.IndexOf(' ', StringComparison.Ordinal);
                var command = space < 0 ? line : line[..space];
                var argument = space < 0 ? "" : line[(space + 1)..];
                try
                {
                    switch (command)
                    {
                        case "start":
                            hosts.Add(await BenchmarkHosts.StartWorkerAsync(argument, workers, poll, cancellationCheck, queueMode, schedulePolling, CancellationToken.None).ConfigureAwait(false));
                            await output.WriteLineAsync("ok started").ConfigureAwait(false);
                            break;
                        case "stop":
                            await StopAllAsync(hosts).ConfigureAwait(false);
                            await output.WriteLineAsync("ok stopped").ConfigureAwait(false);
                            break;
                        case "cpu":
                            using (var self = Process.GetCurrentProcess())
                            {
                                await output.WriteLineAsync("ok " + self.TotalProcessorTime.TotalMilliseconds.ToString("0", CultureInfo.InvariantCulture)).ConfigureAwait(false);
                            }

                            break;
                        case "rss":
                            await output.WriteLineAsync("ok " + PeakRssMegabytes().ToString("0.0", CultureInfo.InvariantCulture)).ConfigureAwait(false);
                            break;
                        case "exit":
                            await output.WriteLineAsync("ok exiting").ConfigureAwait(false);
                            await output.FlushAsync().ConfigureAwait(false);
                            return 0;
                        default:
                            throw new InvalidOperationException($"Unknown command '{command}'.");
                    }
                }
                // Every failure is reported to the orchestrator, which stops the benchmark.
                catch (Exception ex)
                {
                    await Console.Error.WriteLineAsync(ex.ToString()).ConfigureAwait(false);
                    await output.WriteLineAsync("error " + ex.Message.ReplaceLineEndings(" ")).ConfigureAwait(false);
                }

                await output.FlushAsync().ConfigureAwait(false);
            }

            return 0;
        }
        finally
        {
            await StopAllAsync(hosts).ConfigureAwait(false);
        }
    }

    private static async Task StopAllAsync(List<IHost> hosts)
    {
        await Task.WhenAll(hosts.Select(h => h.StopAsync(CancellationToken.None))).ConfigureAwait(false);
        foreach (var host in hosts)
        {
            host.Dispose();
        }

        hosts.Clear();
        // Hangfire.PostgreSql's long polling opens its LISTEN connections from the connection string,
        // outside the library's data source: close them too, so the round's counters can settle.
        Npgsql.NpgsqlConnection.ClearAllPools();
    }

    /// <summary>Peak resident set size of this process (VmHWM on Linux).</summary>
    public static double PeakRssMegabytes()
    {
        const string status = "/proc/self/status";
        if (File.Exists(status))
        {
            foreach (var line in File.ReadLines(status))
            {
                if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                {
                    var kb = long.Parse(line["VmHWM:".Length..].Replace("kB", "", StringComparison.Ordinal).Trim(), CultureInfo.InvariantCulture);
                    return kb / 1024.0;
                }
            }
        }

        using var self = Process.GetCurrentProcess();
        return self.PeakWorkingSet64 / (1024.0 * 1024.0);
    }
}

/// <summary>The orchestrator's handle on the worker child process.</summary>
internal sealed class WorkerClient : IAsyncDisposable
{
    private readonly Process _process;

    private WorkerClient(Process process) => _process = process;

    public int ProcessId => _process.Id;

    /// <summary>Starts this program again in worker mode.</summary>
    public static WorkerClient Start(int workers, TimeSpan pollInterval, TimeSpan cancellationCheckInterval, QueueMode queueMode,
        TimeSpan schedulePollingInterval)
    {
        var assembly = typeof(WorkerClient).Assembly.Location;
        var directory = Path.GetDirectoryName(assembly)!;
        var name = Path.GetFileNameWithoutExtension(assembly);
        var info = new ProcessStartInfo(DotnetHost())
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = directory,
        };
        info.ArgumentList.Add("exec");
        var runtimeConfig = Path.Combine(directory, name + ".runtimeconfig.json");
        if (File.Exists(runtimeConfig))
        {
            info.ArgumentList.Add("--runtimeconfig");
            info.ArgumentList.Add(runtimeConfig);
        }

        var deps = Path.Combine(directory, name + ".deps.json");
        if (File.Exists(deps))
        {
            info.ArgumentList.Add("--depsfile");
            info.ArgumentList.Add(deps);
        }

        info.ArgumentList.Add(assembly);
        info.ArgumentList.Add("worker");
        info.ArgumentList.Add(workers.ToString(CultureInfo.InvariantCulture));
        info.ArgumentList.Add(((int)pollInterval.TotalMilliseconds).ToString(CultureInfo.InvariantCulture));
        info.ArgumentList.Add(((int)cancellationCheckInterval.TotalMilliseconds).ToString(CultureInfo.InvariantCulture));
        info.ArgumentList.Add(BenchmarkQueueModes.Name(queueMode));
        info.ArgumentList.Add(((int)schedulePollingInterval.TotalMilliseconds).ToString(CultureInfo.InvariantCulture));
        var process = Process.Start(info) ?? throw new InvalidOperationException("Could not start the worker process.");
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                Console.Error.WriteLine("[worker] " + e.Data);
            }
        };
        process.BeginErrorReadLine();
        return new WorkerClient(process);
    }

    /// <summary>Sends a command and returns the text after "ok".</summary>
    public async Task<string> SendAsync(string command, TimeSpan timeout)
    {
        await _process.StandardInput.WriteLineAsync(command).ConfigureAwait(false);
        await _process.StandardInput.FlushAsync().ConfigureAwait(false);
        using var cts = new CancellationTokenSource(timeout);
        string? answer;
        try
        {
            answer = await _process.StandardOutput.ReadLineAsync(cts.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"The worker did not answer '{command.Split(' ')[0]}' within {timeout.TotalSeconds:0} s.");
        }

        if (answer is null)
        {
            throw new InvalidOperationException("The worker process ended unexpectedly.");
        }

        if (!answer.StartsWith("ok", StringComparison.Ordinal))
        {
            throw new InvalidOperationException("The worker failed: " + answer);
        }

        return answer.Length > 3 ? answer[3..] : "";
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                await SendAsync("exit", TimeSpan.FromSeconds(30)).ConfigureAwait(false);
                await _process.WaitForExitAsync(new CancellationTokenSource(TimeSpan.FromSeconds(30)).Token).ConfigureAwait(false);
            }
        }
        // Best effort: the process is killed below if it did not exit.
        catch (Exception)
        {
        }
        finally
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
            }

            _process.Dispose();
        }
    }

    private static string DotnetHost()
    {
        var current = Environment.ProcessPath;
        if (current is not null && Path.GetFileNameWithoutExtension(current).Equals("dotnet", StringComparison.OrdinalIgnoreCase))
        {
            return current;
        }

        var fromSdk = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH");
        if (!string.IsNullOrEmpty(fromSdk) && File.Exists(fromSdk))
        {
            return fromSdk;
        }

        var root = Environment.GetEnvironmentVariable("DOTNET_ROOT");
        if (!string.IsNullOrEmpty(root) && File.Exists(Path.Combine(root, "dotnet")))
        {
            return Path.Combine(root, "dotnet");
        }

        return "dotnet";
    }
}
