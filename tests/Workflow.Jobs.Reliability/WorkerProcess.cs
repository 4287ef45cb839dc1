using System.Diagnostics;

namespace Workflow.Jobs.Reliability;

/// <summary>A worker process started by the orchestrator, its output copied to a log file.</summary>
public sealed class WorkerProcess : IDisposable
{
    private readonly Process _process;
    private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private StreamWriter? _log;
    private readonly object _logLock = new();

    private WorkerProcess(string label, Process process, StreamWriter? log)
    {
        Label = label;
        _process = process;
        _log = log;
    }

    public string Label { get; }

    public int Pid => _process.Id;

    /// <summary>Set by the orchestrator before it kills or stops the process on purpose.</summary>
    public bool Expected { get; private set; }

    public bool HasExited => _process.HasExited;

#pragma warning disable VSTHRD003 // The completion source is this object's own (set from the process's output); no JoinableTaskFactory context exists.
    public Task Ready => _ready.Task;
#pragma warning restore VSTHRD003

    /// <summary>When the process printed its ready line (UTC), or null.</summary>
    public DateTime? ReadyAt { get; private set; }

    public Task Exited => _process.WaitForExitAsync();

    public static WorkerProcess Start(ReliabilitySettings settings, string connectionString, string label)
    {
        var assembly = settings.WorkerAssembly ?? typeof(WorkerProgram).Assembly.Location;
        var start = new ProcessStartInfo(settings.DotnetPath)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(assembly);
        start.ArgumentList.Add("worker");
        start.ArgumentList.Add("--connection");
        start.ArgumentList.Add(connectionString);
        start.ArgumentList.Add("--label");
        start.ArgumentList.Add(label);
        start.ArgumentList.Add("--workers");
        start.ArgumentList.Add(settings.WorkersPerProcess.ToString(System.Globalization.CultureInfo.InvariantCulture));
        if (settings.InvisibilityTimeout is { } timeout)
        {
            start.ArgumentList.Add("--invisibility-seconds");
            start.ArgumentList.Add(timeout.TotalSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        StreamWriter? log = null;
        if (settings.LogDirectory is not null)
        {
            Directory.CreateDirectory(settings.LogDirectory);
            log = new StreamWriter(Path.Combine(settings.LogDirectory, label + ".log"), append: false) { AutoFlush = true };
        }

        var process = Process.Start(start) ?? throw new InvalidOperationException("Could not start a worker process.");
        var worker = new WorkerProcess(label, process, log);
        process.OutputDataReceived += (_, e) => worker.OnLine(e.Data, isError: false);
        process.ErrorDataReceived += (_, e) => worker.OnLine(e.Data, isError: true);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        _ = process.WaitForExitAsync().ContinueWith(_ => worker._ready.TrySetException(
            new InvalidOperationException($"Worker {label} exited with code {process.ExitCode} before it was ready.")), TaskScheduler.Default);
        return worker;
    }

    /// <summary>SIGKILL: no shutdown code runs, connections drop, the job stays fetched.</summary>
    public void Kill()
    {
        Expected = true;
        _process.Kill(entireProcessTree: false);
    }

    /// <summary>Graceful stop: the worker's host shuts down (Hangfire requeues what is in flight).</summary>
    public async Task StopAsync(TimeSpan timeout)
    {
        Expected = true;
        if (_process.HasExited)
        {
            return;
        }

        try
        {
            await _process.StandardInput.WriteLineAsync("stop");
            await _process.StandardInput.FlushAsync();
        }
        catch (IOException)
        {
            // Already gone.
        }

        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            _process.Kill(entireProcessTree: false);
        }
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            Expected = true;
            _process.Kill(entireProcessTree: false);
        }

        _process.Dispose();
        lock (_logLock)
        {
            _log?.Dispose();
            _log = null;
        }
    }

    private void OnLine(string? line, bool isError)
    {
        if (line is null)
        {
            return;
        }

        if (!isError && line.StartsWith(WorkerProgram.ReadyLine + " ", StringComparison.Ordinal))
        {
            ReadyAt = DateTime.UtcNow;
            _ready.TrySetResult();
        }

        lock (_logLock)
        {
            _log?.WriteLine(isError ? "[stderr] " + line : line);
        }
    }
}
