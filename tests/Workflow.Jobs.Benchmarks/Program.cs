using Workflow.Jobs.Benchmarks;

return await BenchmarkProgram.RunAsync(args, Console.Out).ConfigureAwait(false);
