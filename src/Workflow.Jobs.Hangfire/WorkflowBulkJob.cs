using System.ComponentModel;
using Hangfire;
using Hangfire.Server;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.WebUtilities;
using Workflow.Jobs.Hangfire.Dashboard;

namespace Workflow.Jobs.Hangfire;

/// <summary>
/// A bulk action started from the Workflows page (retry, cancel or purge every run of a filter), run by the host's
/// Hangfire server in batches of one transaction each. Progress is kept in the job's parameters
/// (<see cref="TotalParameter"/>, <see cref="DoneParameter"/>: JSON numbers), updated after each batch, which the page polls.
/// </summary>
internal sealed class WorkflowBulkJob
{
    /// <summary>How many runs the filter selected when the job started (any status).</summary>
    public const string TotalParameter = "WorkflowBulk.Total";

    /// <summary>How many runs were changed so far.</summary>
    public const string DoneParameter = "WorkflowBulk.Done";

    private readonly WorkflowClient _client;

    internal WorkflowBulkJob(WorkflowClient client) => _client = client;

    /// <summary>Runs the action over the filter.</summary>
    /// <param name="action"><c>retry</c>, <c>cancel</c> or <c>purge</c>.</param>
    /// <param name="filter">The list page's query string (without paging), as it selected the runs.</param>
    /// <param name="user">Who started it (for the job's page and the log).</param>
    /// <param name="context">Filled in by Hangfire.</param>
    /// <param name="cancellationToken">Filled in by Hangfire.</param>
    /// <returns>How many runs were changed.</returns>
    [DisplayName("Workflow.Jobs bulk {0} of runs [{1}] by {2}")]
    [AutomaticRetry(Attempts = 3)]
    public async Task<int> RunAsync(string action, string filter, string user, PerformContext? context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(filter);
        var bulkAction = ParseAction(action);
        var parsed = WorkflowListFilter.Parse(new QueryCollection(QueryHelpers.ParseQuery(filter)));
        if (parsed.Errors.Count > 0)
        {
            throw new ArgumentException("The bulk action's filter cannot be applied: " + string.Join(" ", parsed.Errors), nameof(filter));
        }

        var query = parsed.ToWorkflowQuery(limit: 1) with { Offset = 0 };
        var total = await _client.CountAsync(query, cancellationToken).ConfigureAwait(false);
        context?.SetJobParameter(TotalParameter, total);
        context?.SetJobParameter(DoneParameter, 0L);
        return await _client.BulkAsync(bulkAction, query, (done, _) =>
        {
            context?.SetJobParameter(DoneParameter, (long)done);
            return Task.CompletedTask;
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The action of a route or job argument (<c>retry</c>, <c>cancel</c>, <c>purge</c>).</summary>
    public static WorkflowBulkAction ParseAction(string action) => action switch
    {
        "retry" => WorkflowBulkAction.Retry,
        "cancel" => WorkflowBulkAction.Cancel,
        "purge" => WorkflowBulkAction.Purge,
        _ => throw new ArgumentException($"Unknown bulk action '{action}'; expected retry, cancel or purge.", nameof(action)),
    };
}
