using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Design;

namespace Workflow.Jobs.EntityFrameworkCore;

/// <summary>Lets <c>dotnet ef migrations add</c> build the context without a host.</summary>
internal sealed class DesignTimeFactory : IDesignTimeDbContextFactory<WorkflowDbContext>
{
    public WorkflowDbContext CreateDbContext(string[] args)
    {
        var connectionString = Environment.GetEnvironmentVariable("WORKFLOW_JOBS_TEST_CONNECTION") ?? "Host=localhost;Database=workflow_design";
        var options = new DbContextOptionsBuilder<WorkflowDbContext>()
            .UseNpgsql(connectionString, o => o.MigrationsHistoryTable(NpgsqlWorkflowStorageInitializer.HistoryTable, WorkflowDbContext.Schema))
            .Options;
        return new WorkflowDbContext(options);
    }
}
