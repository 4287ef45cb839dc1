using System.Globalization;
using Workflow.Jobs.Reliability;

// Two modes of one program:
//   worker --connection CS --label L --workers W [--invisibility-seconds S]
//   run    --connection CS [--database NAME] [--runs N] [--workers K] [--workers-per-process W] [--kills M]
//          [--db-restart-command CMD] [--load-seconds S] [--deadline-seconds S] [--max-work-ms MS]
//          [--failure-percent P] [--sleep-percent P] [--event-percent P] [--max-sleep-ms MS] [--max-signal-delay-ms MS]
//          [--invisibility-seconds S] [--log-dir DIR] [--seed N]
// deploy/reliability.sh runs the second; it starts the first as separate processes.
if (args.Length == 0 || args[0] is not ("worker" or "run"))
{
    Console.Error.WriteLine("usage: Workflow.Jobs.Reliability worker|run --connection CS [options] (see deploy/reliability.sh)");
    return 2;
}

var options = new Dictionary<string, string>(StringComparer.Ordinal);
for (var i = 1; i < args.Length; i++)
{
    if (!args[i].StartsWith("--", StringComparison.Ordinal) || i + 1 >= args.Length)
    {
        Console.Error.WriteLine($"unexpected argument '{args[i]}'");
        return 2;
    }

    options[args[i][2..]] = args[++i];
}

string? Text(string name) => options.GetValueOrDefault(name);
int Int(string name, int fallback) => options.TryGetValue(name, out var v) ? int.Parse(v, CultureInfo.InvariantCulture) : fallback;
double Real(string name, double fallback) => options.TryGetValue(name, out var v) ? double.Parse(v, CultureInfo.InvariantCulture) : fallback;
TimeSpan? Seconds(string name) => options.TryGetValue(name, out var v) ? TimeSpan.FromSeconds(double.Parse(v, CultureInfo.InvariantCulture)) : null;

var connection = Text("connection");
if (connection is null)
{
    Console.Error.WriteLine("--connection is required");
    return 2;
}

if (args[0] == "worker")
{
    return await WorkerProgram.RunAsync(new WorkerSettings(connection, Text("label") ?? $"pid{Environment.ProcessId}", Int("workers", 4), Seconds("invisibility-seconds")));
}

var defaults = new ReliabilitySettings { ConnectionString = connection };
var restart = Text("db-restart-command");
var settings = defaults with
{
    CreateDatabase = Text("database"),
    Runs = Int("runs", defaults.Runs),
    Processes = Int("workers", defaults.Processes),
    WorkersPerProcess = Int("workers-per-process", defaults.WorkersPerProcess),
    Kills = Int("kills", defaults.Kills),
    DatabaseRestartCommand = string.IsNullOrWhiteSpace(restart) || restart == "none" ? null : restart,
    LoadSeconds = Real("load-seconds", defaults.LoadSeconds),
    DeadlineSeconds = Real("deadline-seconds", defaults.DeadlineSeconds),
    MaxWorkMilliseconds = Int("max-work-ms", defaults.MaxWorkMilliseconds),
    FailurePercent = Int("failure-percent", defaults.FailurePercent),
    SleepPercent = Int("sleep-percent", defaults.SleepPercent),
    EventPercent = Int("event-percent", defaults.EventPercent),
    MaxSleepMilliseconds = Int("max-sleep-ms", defaults.MaxSleepMilliseconds),
    MaxSignalDelayMilliseconds = Int("max-signal-delay-ms", defaults.MaxSignalDelayMilliseconds),
    InvisibilityTimeout = Seconds("invisibility-seconds"),
    LogDirectory = Text("log-dir"),
    Seed = Int("seed", defaults.Seed),
};

using var cancel = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    cancel.Cancel();
};
var report = await new ReliabilityRun(settings, Console.Out).RunAsync(cancel.Token);
foreach (var line in report.DetailLines())
{
    Console.WriteLine(line);
}

Console.WriteLine(report.FinalLine);
return report.Passed ? 0 : 1;
