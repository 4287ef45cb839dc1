using Hangfire;
using Hangfire.Common;
using Hangfire.Dashboard;
using Microsoft.Extensions.DependencyInjection;

namespace Workflow.Jobs.Hangfire;

/// <summary>Shows a workflow job in the dashboard as "<c>{workflow name} run {run id}</c>".</summary>
[AttributeUsage(AttributeTargets.Method, AllowMultiple = false)]
internal sealed class WorkflowJobDisplayNameAttribute : JobDisplayNameAttribute
{
    /// <summary>Creates the attribute.</summary>
    public WorkflowJobDisplayNameAttribute() : base("Workflow run {0}") { }

    /// <inheritdoc />
    public override string Format(DashboardContext context, Job job)
    {
        ArgumentNullException.ThrowIfNull(job);
        if (job.Args.Count > 0 && job.Args[0] is Guid id)
        {
            var names = (context as AspNetCoreDashboardContext)?.HttpContext.RequestServices.GetService<WorkflowNameCache>();
            var name = names?.Find(id);
            return name is null ? $"Workflow run {id}" : $"{name} run {id}";
        }

        return base.Format(context, job);
    }
}
