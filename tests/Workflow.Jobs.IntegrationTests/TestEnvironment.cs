[assembly: Parallelizable(ParallelScope.Fixtures)]
[assembly: LevelOfParallelism(4)]

namespace Workflow.Jobs.IntegrationTests;

/// <summary>
/// Checks the server of WORKFLOW_JOBS_TEST_CONNECTION before the first fixture, and drops the run's databases
/// after the last one (every fixture has disposed its hosts by then). Each fixture has databases of its own
/// (<see cref="TestDatabases.CreateAsync"/>), so fixtures run in parallel.
/// </summary>
[SetUpFixture]
public sealed class TestEnvironment
{
    [OneTimeSetUp]
    public Task CheckServerAsync() => TestDatabases.CheckServerAsync();

    [OneTimeTearDown]
    public Task DropDatabasesAsync() => TestDatabases.DropAllAsync(TestContext.Progress);
}
