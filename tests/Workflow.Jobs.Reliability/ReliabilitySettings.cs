namespace Workflow.Jobs.Reliability;

/// <summary>What one reliability run does. Defaults are those of <c>deploy/reliability.sh</c>.</summary>
public sealed record ReliabilitySettings
{
    /// <summary>Connection string of the database to use (or of the server, with <see cref="CreateDatabase"/>).</summary>
    public required string ConnectionString { get; init; }

    /// <summary>When set, this database is dropped and created afresh on the server of <see cref="ConnectionString"/>.</summary>
    public string? CreateDatabase { get; init; }

    /// <summary>Runs to enqueue.</summary>
    public int Runs { get; init; } = 300;

    /// <summary>Worker processes kept alive (killed ones are replaced).</summary>
    public int Processes { get; init; } = 3;

    /// <summary>Hangfire workers in each process.</summary>
    public int WorkersPerProcess { get; init; } = 4;

    /// <summary>SIGKILLs of random worker processes, spread over the load phase.</summary>
    public int Kills { get; init; } = 4;

    /// <summary>Shell command that restarts PostgreSQL once, in the middle of the load phase; null for none.</summary>
    public string? DatabaseRestartCommand { get; init; }

    /// <summary>Enqueues are spread evenly over this many seconds.</summary>
    public double LoadSeconds { get; init; } = 90;

    /// <summary>How long to wait, after the load phase, for every run to finish.</summary>
    public double DeadlineSeconds { get; init; } = 300;

    /// <summary>Longest random work of one step body.</summary>
    public int MaxWorkMilliseconds { get; init; } = 300;

    /// <summary>Chance in percent that each of a step's first two attempts fails on purpose.</summary>
    public int FailurePercent { get; init; } = 8;

    /// <summary>Chance in percent that a run sleeps durably (1–<see cref="MaxSleepMilliseconds"/>) in its second step.</summary>
    public int SleepPercent { get; init; } = 20;

    /// <summary>Chance in percent that a run waits in its fourth step for an event the driver signals (exclusive with sleeping).</summary>
    public int EventPercent { get; init; } = 20;

    /// <summary>Longest durable sleep; the shortest is a third of it.</summary>
    public int MaxSleepMilliseconds { get; init; } = 3000;

    /// <summary>Longest delay between a waiting run's enqueue and its signal (random from 0, so some events arrive before their wait).</summary>
    public int MaxSignalDelayMilliseconds { get; init; } = 4000;

    /// <summary>Invisibility timeout given to the workers; null for the library's default (1 minute).</summary>
    public TimeSpan? InvisibilityTimeout { get; init; }

    /// <summary>The program to start worker processes with (<c>dotnet</c>) and the assembly to give it.</summary>
    public string DotnetPath { get; init; } = "dotnet";

    /// <summary>The reliability assembly (worker mode); default: this assembly.</summary>
    public string? WorkerAssembly { get; init; }

    /// <summary>Folder for the worker processes' logs; null for none.</summary>
    public string? LogDirectory { get; init; }

    /// <summary>Seed of the random choices of the run (kill targets, run seeds).</summary>
    public int Seed { get; init; } = Environment.TickCount;

    public void Validate()
    {
        if (Runs < 1 || Processes < 1 || WorkersPerProcess < 1 || Kills < 0 || LoadSeconds <= 0 || DeadlineSeconds <= 0)
        {
            throw new ArgumentException("runs, workers and workers-per-process must be at least 1, kills at least 0, load and deadline positive.");
        }

        if (SleepPercent < 0 || EventPercent < 0 || SleepPercent + EventPercent > 100 || MaxSleepMilliseconds < 3 || MaxSignalDelayMilliseconds < 0)
        {
            throw new ArgumentException("sleep-percent and event-percent must be at least 0 and together at most 100; max-sleep-ms at least 3, max-signal-delay-ms at least 0.");
        }

        if (Kills > 0 && Processes < 2)
        {
            throw new ArgumentException("Killing workers needs at least 2 worker processes (one keeps working while the other is replaced).");
        }
    }
}
