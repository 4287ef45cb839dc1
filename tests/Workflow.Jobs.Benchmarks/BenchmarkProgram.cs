namespace Workflow.Jobs.Benchmarks;

/// <summary>
/// Entry point. <c>Workflow.Jobs.Benchmarks [--smoke] [--connection cs] [--output path] [...]</c> runs
/// the benchmark (see <see cref="BenchmarkSettings.Parse"/> for the options); <c>worker N ms</c> is the
/// child process it starts for the Hangfire server; <c>search ...</c> measures filtered listings on a
/// million runs (<see cref="SearchBenchmark"/>); <c>bulk-retry ...</c> times the retry of 100,000 failed runs (<see cref="BulkRetryBenchmark"/>);
/// <c>batch ...</c> and <c>foreach ...</c> measure batch enqueue (<see cref="BatchEnqueueBenchmark"/>) and fan-out inside a step (<see cref="ForEachBenchmark"/>).
/// <c>children ...</c> times a fan-out of child runs (<see cref="ChildrenBenchmark"/>).
/// <c>retention ...</c> measures run latency while retention purges a million old runs (<see cref="RetentionBenchmark"/>).
/// <c>flow ...</c> measures the overhead of flow control on ten-step runs (<see cref="FlowControlBenchmark"/>).
/// </summary>
public static class BenchmarkProgram
{
    /// <summary>Runs the benchmark (or the worker mode) and returns the process exit code.</summary>
    public static async Task<int> RunAsync(string[] args, TextWriter output, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(output);
        if (args.Length > 0 && args[0] == "worker")
        {
            return await WorkerProcess.RunAsync(args[1..]).ConfigureAwait(false);
        }

        if (args.Length > 0 && args[0] == "batch")
        {
            return await BatchEnqueueBenchmark.RunAsync(args[1..], output, cancellationToken).ConfigureAwait(false);
        }

        if (args.Length > 0 && args[0] == "bulk-retry")
        {
            return await BulkRetryBenchmark.RunAsync(args[1..], output, cancellationToken).ConfigureAwait(false);
        }

        if (args.Length > 0 && args[0] == "retention")
        {
            return await RetentionBenchmark.RunAsync(args[1..], output, cancellationToken).ConfigureAwait(false);
        }

        if (args.Length > 0 && args[0] == "foreach")
        {
            return await ForEachBenchmark.RunAsync(args[1..], output, cancellationToken).ConfigureAwait(false);
        }

        if (args.Length > 0 && args[0] == "children")
        {
            return await ChildrenBenchmark.RunAsync(args[1..], output, cancellationToken).ConfigureAwait(false);
        }

        if (args.Length > 0 && args[0] == "flow")
        {
            return await FlowControlBenchmark.RunAsync(args[1..], output, cancellationToken).ConfigureAwait(false);
        }

        if (args.Length > 0 && args[0] == "search")
        {
            return await SearchBenchmark.RunAsync(args[1..], output, cancellationToken).ConfigureAwait(false);
        }

        BenchmarkSettings settings;
        try
        {
            settings = BenchmarkSettings.Parse(args);
        }
        catch (ArgumentException ex)
        {
            await output.WriteLineAsync(ex.Message).ConfigureAwait(false);
            return 2;
        }

        var report = await new BenchmarkRunner(settings, output).RunAsync(cancellationToken).ConfigureAwait(false);
        report.WriteJson(settings.OutputPath);
        await output.WriteLineAsync().ConfigureAwait(false);
        await output.WriteLineAsync(report.Table()).ConfigureAwait(false);
        await output.WriteLineAsync($"written {Path.GetFullPath(settings.OutputPath)}").ConfigureAwait(false);
        return 0;
    }
}
