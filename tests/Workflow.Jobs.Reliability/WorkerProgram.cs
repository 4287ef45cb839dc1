using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace Workflow.Jobs.Reliability;

/// <summary>Settings of one worker process.</summary>
public sealed record WorkerSettings(string ConnectionString, string Label, int Workers, TimeSpan? InvisibilityTimeout);

/// <summary>
/// One worker process: a generic host with the library registered the ordinary way and a Hangfire
/// server with several workers. Prints "ready" once started; stops gracefully on "stop" or end of input.
/// </summary>
public static class WorkerProgram
{
    public const string ReadyLine = "ready";

    public static async Task<int> RunAsync(WorkerSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(o =>
        {
            o.SingleLine = true;
            o.TimestampFormat = "HH:mm:ss.fff ";
        });
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        await using var ledgerSource = NpgsqlDataSource.Create(settings.ConnectionString);
        builder.Services.AddSingleton(new Ledger(ledgerSource, new WorkerIdentity(settings.Label)));
        builder.Services.AddWorkflowJobs(o => o.UseNpgsql(settings.ConnectionString))
            .AddWorkflow<ReliabilityWorkflow>()
            .AddHangfireJobs(o =>
            {
                o.WorkerCount = settings.Workers;
                o.ServerName = settings.Label;
                if (settings.InvisibilityTimeout is { } timeout)
                {
                    o.InvisibilityTimeout = timeout;
                }
            });
        using var host = builder.Build();
        try
        {
            await host.StartAsync();
        }
        catch (Exception ex)
        {
            // Starting needs the database (migrations, Hangfire's schema): say so and let the orchestrator start another.
            await Console.Error.WriteLineAsync($"worker {settings.Label} could not start: {ex.GetType().Name}: {ex.Message}");
            return 3;
        }

        Console.WriteLine($"{ReadyLine} {settings.Label} pid {Environment.ProcessId}");

        var lifetime = host.Services.GetRequiredService<IHostApplicationLifetime>();
        _ = Task.Run(() =>
        {
            while (Console.ReadLine() is { } line && line.Trim() != "stop")
            {
            }

            lifetime.StopApplication();
        });
        await host.WaitForShutdownAsync();
        Console.WriteLine($"stopped {settings.Label}");
        return 0;
    }
}
