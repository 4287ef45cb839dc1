using System.ComponentModel;
using System.ComponentModel.DataAnnotations;
using System.Globalization;
using Newtonsoft.Json;
using Workflow.Jobs.Sample.Configuration;
using Workflow.Jobs.Sample.FakeApi;

namespace Workflow.Jobs.Sample.Workflows;

/// <summary>
/// A recurring workflow: collects usage figures from the fake API and publishes a report. Scheduled
/// at start-up through <see cref="IWorkflowScheduler"/> (see <see cref="RecurringWorkflowRegistration"/>).
/// </summary>
[WorkflowName("usage-report")]
public sealed class UsageReportWorkflow : WorkflowDefinition
{
    /// <summary>The recurring schedule's id (also the Hangfire recurring job id: "Trigger now" in the dashboard works on it).</summary>
    public const string RecurringId = "usage-report";

    /// <inheritdoc />
    public override IReadOnlyList<Type> Steps { get; } = [typeof(CollectUsageStep), typeof(PublishUsageReportStep)];

    /// <summary>A report is cheap to redo and the next one comes soon: one retry only.</summary>
    public override WorkflowRetryPolicy? Retry { get; } = new() { Attempts = 1, DelaysInSeconds = [30] };
}

/// <summary>Input of <see cref="CollectUsageStep"/>.</summary>
[WorkflowKey("usage_report_input")]
public sealed class UsageReportInput : WorkflowData
{
    /// <summary>Title of the report.</summary>
    [JsonProperty("title"), Required(AllowEmptyStrings = true, ErrorMessage = "The title field must be a string, not null."),
     StringLength(200, MinimumLength = 1), Description("Title of the report.")]
    public string Title { get; set; } = "Usage report";
}

/// <summary>Output of <see cref="CollectUsageStep"/>.</summary>
[WorkflowKey("usage_output")]
public sealed class UsageOutput : WorkflowData
{
    /// <summary>Title of the report.</summary>
    [JsonProperty("title")] public string Title { get; set; } = "";

    /// <summary>Customers in the fake API.</summary>
    [JsonProperty("customers")] public int Customers { get; set; }

    /// <summary>Subscriptions in the fake API.</summary>
    [JsonProperty("subscriptions")] public int Subscriptions { get; set; }

    /// <summary>Users in the fake API.</summary>
    [JsonProperty("users")] public int Users { get; set; }

    /// <summary>When the figures were read (UTC, ISO 8601).</summary>
    [JsonProperty("collected_at")] public DateTimeOffset CollectedAt { get; set; }
}

/// <summary>Reads the usage figures.</summary>
[WorkflowName("collect-usage")]
public sealed class CollectUsageStep(FakeExternalApi api, TimeProvider time) : WorkflowStep<UsageReportInput, UsageOutput>
{
    /// <inheritdoc />
    protected override Task<UsageOutput> ProcessInputAsync(UsageReportInput input, StepContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(input);
        var stats = api.GetStats();
        return Task.FromResult(new UsageOutput
        {
            Title = input.Title,
            Customers = stats.Customers,
            Subscriptions = stats.Subscriptions,
            Users = stats.Users,
            CollectedAt = time.GetUtcNow(),
        });
    }
}

/// <summary>Input of <see cref="PublishUsageReportStep"/>.</summary>
[WorkflowKey("publish_report_input")]
public sealed class PublishReportInput : WorkflowData
{
    /// <summary>Where the report goes.</summary>
    [JsonProperty("channel"), Required, RegularExpression("^[a-z0-9-]{1,40}$", ErrorMessage = "The channel field must be 1 to 40 lower-case letters, digits or dashes."),
     Description("Where the report is published.")]
    public string Channel { get; set; } = "ops";
}

/// <summary>Output of <see cref="PublishUsageReportStep"/>.</summary>
[WorkflowKey("publish_report_output")]
public sealed class PublishReportOutput : WorkflowData
{
    /// <summary>The published report's id.</summary>
    [JsonProperty("report_id")] public string ReportId { get; set; } = "";
}

/// <summary>Publishes the report built from the previous step's figures.</summary>
[WorkflowName("publish-usage-report")]
public sealed partial class PublishUsageReportStep(FakeExternalApi api, ILogger<PublishUsageReportStep> logger) : WorkflowStep<PublishReportInput, PublishReportOutput>
{
    /// <inheritdoc />
    protected override async Task<PublishReportOutput> ProcessInputAsync(PublishReportInput input, StepContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(context);
        var usage = context.AccumulatedOutput.Get<UsageOutput>() ?? throw new NonRetryableException("The usage figures are missing.");
        var text = string.Create(CultureInfo.InvariantCulture,
            $"{usage.Title}: {usage.Customers} customers, {usage.Subscriptions} subscriptions, {usage.Users} users at {usage.CollectedAt:O}");
        var id = await api.PublishReportAsync(input.Channel, text, context.StepId.ToString(), cancellationToken);
        LogPublished(id, input.Channel, context.WorkflowId, context.StepId);
        return new PublishReportOutput { ReportId = id };
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Usage report {ReportId} published to {Channel} by workflow run {WorkflowId}, step {StepId}")]
    private partial void LogPublished(string reportId, string channel, Guid workflowId, Guid stepId);
}

/// <summary>
/// Registers (or updates) the recurring usage report when the host starts, through
/// <see cref="IWorkflowScheduler"/>; an empty <c>WorkflowJobs:Sample:UsageReportCron</c> removes it.
/// </summary>
internal sealed partial class RecurringWorkflowRegistration(IWorkflowScheduler scheduler, SampleHostSettings settings,
    ILogger<RecurringWorkflowRegistration> logger) : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (settings.UsageReportCron is { } cron)
        {
            await scheduler.AddOrUpdateRecurringAsync<UsageReportWorkflow>(UsageReportWorkflow.RecurringId, cron,
                new WorkflowInput(new UsageReportInput(), new PublishReportInput()), cancellationToken: cancellationToken);
            LogScheduled(UsageReportWorkflow.RecurringId, cron);
        }
        else
        {
            await scheduler.RemoveRecurringAsync(UsageReportWorkflow.RecurringId, cancellationToken);
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    [LoggerMessage(Level = LogLevel.Information, Message = "Recurring workflow {RecurringId} scheduled with cron '{Cron}' (UTC)")]
    private partial void LogScheduled(string recurringId, string cron);
}
