using System.ComponentModel;
using System.ComponentModel.DataAnnotations;
using Newtonsoft.Json;
using Workflow.Jobs.Sample.FakeApi;

namespace Workflow.Jobs.Sample.Workflows;

// The seed's provisioning flow: get-or-create customer -> create subscription -> create admin users
// -> send welcome. Every step calls the fake external API with its StepId as idempotency key, so a
// retried step (the answer was lost, the host crashed before the checkpoint) never creates duplicates.

/// <summary>Helpers shared by the sample's steps.</summary>
internal static class SampleSteps
{
    /// <summary>The demo failure plan of a step: its first <paramref name="times"/> calls to the fake API fail.</summary>
    public static FakeApiFailurePlan? Failures(StepContext context, int times) => times > 0 ? new FakeApiFailurePlan(context.StepId.ToString(), times) : null;
}

/// <summary>Provisions a new customer: customer, subscription, administrators, welcome e-mails.</summary>
[WorkflowName("customer-provisioning")]
public sealed class CustomerProvisioningWorkflow : WorkflowDefinition
{
    /// <inheritdoc />
    public override IReadOnlyList<Type> Steps { get; } =
        [typeof(GetOrCreateCustomerStep), typeof(CreateSubscriptionStep), typeof(CreateAdminUsersStep), typeof(SendWelcomeStep)];

    /// <summary>
    /// One provisioning per concurrency key at a time: runs enqueued with the same key (the <c>Concurrency-Key</c> header,
    /// for example an account id) run one after another in creation order, the others waiting without a worker. Runs
    /// without a key are not limited.
    /// </summary>
    public override int? MaxConcurrencyPerKey => 1;

    /// <summary>The approval of a large subscription (signals are validated against it, even one sent before the wait).</summary>
    public override IReadOnlyDictionary<string, Type> Events { get; } = new Dictionary<string, Type>
    {
        [CreateSubscriptionStep.ApprovalEvent] = typeof(SubscriptionApproval),
    };
}

/// <summary>
/// The payload of the <c>subscription-approval</c> event: a person's decision on a large subscription. Send it with
/// <c>POST /api/workflows/{id}/events/subscription-approval</c> or the Send event form of the run's page.
/// </summary>
public sealed class SubscriptionApproval : WorkflowData
{
    /// <summary>Whether the subscription is approved (false rejects it: the run fails without creating it).</summary>
    [JsonProperty("approved"), Description("true approves the subscription, false rejects it.")]
    public bool Approved { get; set; }

    /// <summary>Who decided.</summary>
    [JsonProperty("approver"), Required, StringLength(200, MinimumLength = 1), Description("Who decided.")]
    public string Approver { get; set; } = "";
}

/// <summary>
/// The provisioning flow that undoes itself: when a step fails for good (retries exhausted, or the welcome e-mail rejected),
/// the admin users are deleted and the subscription cancelled (in that order), and the run ends Compensated. The customer
/// record is kept (it may have existed before). <see cref="CustomerProvisioningWorkflow"/> keeps its failed runs for a retry instead.
/// </summary>
[WorkflowName("customer-provisioning-compensated")]
public sealed class CompensatedCustomerProvisioningWorkflow : WorkflowDefinition
{
    /// <inheritdoc />
    public override IReadOnlyList<Type> Steps { get; } =
        [typeof(GetOrCreateCustomerStep), typeof(CreateSubscriptionStep), typeof(CreateAdminUsersStep), typeof(SendWelcomeStep)];

    /// <inheritdoc />
    public override bool CompensateOnFailure => true;
}

/// <summary>Input of <see cref="GetOrCreateCustomerStep"/>.</summary>
[WorkflowKey("customer_input")]
public sealed class CustomerInput : WorkflowData
{
    /// <summary>The customer's name.</summary>
    [JsonProperty("name"), Required, StringLength(200, MinimumLength = 1), Description("The customer's name.")]
    public string Name { get; set; } = "";

    /// <summary>The customer's billing e-mail; also how an existing customer is found.</summary>
    [JsonProperty("email"), Required, EmailAddress, StringLength(320), Description("Billing e-mail; an existing customer with it is reused.")]
    public string Email { get; set; } = "";

    /// <summary>ISO 3166 country code.</summary>
    [JsonProperty("country"), Required(ErrorMessage = "The country field must be a two-letter ISO 3166 code such as US."),
     RegularExpression("^[A-Z]{2}$", ErrorMessage = "The country field must be a two-letter ISO 3166 code such as US."),
     Description("Two-letter ISO 3166 country code.")]
    public string Country { get; set; } = "US";

    /// <summary>Demo: how many calls of this step fail (after being applied) before one succeeds.</summary>
    [JsonProperty("simulate_failures"), Range(0, 20), Description("Demo: the first N attempts of this step fail.")]
    public int SimulateFailures { get; set; }
}

/// <summary>Output of <see cref="GetOrCreateCustomerStep"/>.</summary>
[WorkflowKey("customer_output")]
public sealed class CustomerOutput : WorkflowData
{
    /// <summary>The customer's id in the external system.</summary>
    [JsonProperty("customer_id")] public string CustomerId { get; set; } = "";

    /// <summary>Whether the customer was created (false: it existed).</summary>
    [JsonProperty("created")] public bool Created { get; set; }
}

/// <summary>Finds the customer by e-mail, or creates it.</summary>
[WorkflowName("get-or-create-customer")]
public sealed partial class GetOrCreateCustomerStep(FakeExternalApi api, ILogger<GetOrCreateCustomerStep> logger) : WorkflowStep<CustomerInput, CustomerOutput>
{
    /// <inheritdoc />
    protected override async Task<CustomerOutput> ProcessInputAsync(CustomerInput input, StepContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(context);
        var (customer, created) = await api.GetOrCreateCustomerAsync(input.Name, input.Email, input.Country, context.StepId.ToString(),
            SampleSteps.Failures(context, input.SimulateFailures), cancellationToken);
        LogCustomer(customer.Id, created, context.WorkflowId, context.StepId);
        return new CustomerOutput { CustomerId = customer.Id, Created = created };
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Customer {CustomerId} ready (created: {Created}) for workflow run {WorkflowId}, step {StepId}")]
    private partial void LogCustomer(string customerId, bool created, Guid workflowId, Guid stepId);
}

/// <summary>Input of <see cref="CreateSubscriptionStep"/>.</summary>
[WorkflowKey("subscription_input")]
public sealed class SubscriptionInput : WorkflowData
{
    /// <summary>The plan.</summary>
    [JsonProperty("plan"), Required, AllowedValues("starter", "business", "enterprise", ErrorMessage = "The plan field must be starter, business or enterprise."),
     Description("starter, business or enterprise.")]
    public string Plan { get; set; } = "starter";

    /// <summary>Licensed seats.</summary>
    [JsonProperty("seats"), Range(1, 10_000), Description("Licensed seats.")]
    public int Seats { get; set; } = 5;

    /// <summary>Demo: how many calls of this step fail before one succeeds.</summary>
    [JsonProperty("simulate_failures"), Range(0, 20), Description("Demo: the first N attempts of this step fail.")]
    public int SimulateFailures { get; set; }
}

/// <summary>Output of <see cref="CreateSubscriptionStep"/>.</summary>
[WorkflowKey("subscription_output")]
public sealed class SubscriptionOutput : WorkflowData
{
    /// <summary>The subscription's id.</summary>
    [JsonProperty("subscription_id")] public string SubscriptionId { get; set; } = "";

    /// <summary>The plan.</summary>
    [JsonProperty("plan")] public string Plan { get; set; } = "";

    /// <summary>Licensed seats.</summary>
    [JsonProperty("seats")] public int Seats { get; set; }
}

/// <summary>
/// Creates the customer's subscription. A large one (more than <see cref="ApprovalAboveSeats"/> seats) first waits for a
/// person's approval (the <c>subscription-approval</c> event), durably: the run is Waiting and holds no worker meanwhile.
/// </summary>
[WorkflowName("create-subscription")]
public sealed partial class CreateSubscriptionStep(FakeExternalApi api, ILogger<CreateSubscriptionStep> logger)
    : WorkflowStep<SubscriptionInput, SubscriptionOutput>
{
    /// <summary>The event a large subscription waits for.</summary>
    public const string ApprovalEvent = "subscription-approval";

    /// <summary>Subscriptions with more seats than this need an approval.</summary>
    public const int ApprovalAboveSeats = 100;

    /// <summary>How long an approval may take before the run fails (<c>event_timeout</c>).</summary>
    public static readonly TimeSpan ApprovalTimeout = TimeSpan.FromDays(3);

    /// <inheritdoc />
    protected override async Task<SubscriptionOutput> ProcessInputAsync(SubscriptionInput input, StepContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(context);
        var customer = context.AccumulatedOutput.Get<CustomerOutput>()
            ?? throw new NonRetryableException("The customer step's output is missing.");
        if (input.Seats > ApprovalAboveSeats)
        {
            // Parks the run until the decision arrives (the step runs again from its start then, and this returns it).
            var approval = await context.WaitForEventAsync<SubscriptionApproval>(ApprovalEvent, ApprovalTimeout, cancellationToken);
            if (!approval.Approved)
            {
                throw new NonRetryableException($"The subscription of {input.Seats} seats was rejected by {approval.Approver}.");
            }

            LogApproved(input.Seats, approval.Approver, context.WorkflowId);
        }
        var subscription = await api.CreateSubscriptionAsync(customer.CustomerId, input.Plan, input.Seats, context.StepId.ToString(),
            SampleSteps.Failures(context, input.SimulateFailures), cancellationToken);
        LogSubscription(subscription.Id, customer.CustomerId, context.WorkflowId, context.StepId);
        return new SubscriptionOutput { SubscriptionId = subscription.Id, Plan = subscription.Plan, Seats = subscription.Seats };
    }

    /// <summary>Undo: cancels the subscription this step created (idempotent, keyed by the step's id).</summary>
    protected override async Task CompensateAsync(SubscriptionInput input, SubscriptionOutput output, StepContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(context);
        await api.CancelSubscriptionAsync(output.SubscriptionId, $"{context.StepId}:cancel", cancellationToken);
        LogCancelled(output.SubscriptionId, context.WorkflowId);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Subscription {SubscriptionId} cancelled: workflow run {WorkflowId} is compensated")]
    private partial void LogCancelled(string subscriptionId, Guid workflowId);

    [LoggerMessage(Level = LogLevel.Information, Message = "Subscription {SubscriptionId} created for customer {CustomerId}, workflow run {WorkflowId}, step {StepId}")]
    private partial void LogSubscription(string subscriptionId, string customerId, Guid workflowId, Guid stepId);

    [LoggerMessage(Level = LogLevel.Information, Message = "Subscription of {Seats} seats approved by {Approver} for workflow run {WorkflowId}")]
    private partial void LogApproved(int seats, string approver, Guid workflowId);
}

/// <summary>An administrator to create.</summary>
public sealed class AdminUser
{
    /// <summary>The administrator's e-mail (login).</summary>
    [JsonProperty("email"), Required, EmailAddress, StringLength(320), Description("Login e-mail.")]
    public string Email { get; set; } = "";

    /// <summary>The administrator's display name.</summary>
    [JsonProperty("name"), Required(AllowEmptyStrings = true, ErrorMessage = "The name field must be a string, not null."), StringLength(200),
     Description("Display name.")]
    public string Name { get; set; } = "";
}

/// <summary>Input of <see cref="CreateAdminUsersStep"/>.</summary>
[WorkflowKey("admin_users_input")]
public sealed class AdminUsersInput : WorkflowData, IValidatableObject
{
    /// <summary>The administrators, 1 to 50, distinct e-mails.</summary>
    [JsonProperty("admins"), Required, MinLength(1), MaxLength(50), Description("Administrators to create (1 to 50, distinct e-mails).")]
    public List<AdminUser> Admins { get; set; } = [];

    /// <summary>Demo: how many calls of this step fail before one succeeds.</summary>
    [JsonProperty("simulate_failures"), Range(0, 20), Description("Demo: the first N attempts of this step fail.")]
    public int SimulateFailures { get; set; }

    /// <inheritdoc />
    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        // JSON null in the list would reach the step as a null administrator.
        var missing = Admins.FindIndex(a => a is null);
        if (missing >= 0)
        {
            yield return new ValidationResult($"The admins field has null at position {missing}; each entry must be an object with an email.", [nameof(Admins)]);
        }

        var duplicate = Admins.Where(a => a is not null).GroupBy(a => a.Email, StringComparer.OrdinalIgnoreCase).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null)
        {
            yield return new ValidationResult($"The admins field lists '{duplicate.Key}' more than once.", [nameof(Admins)]);
        }
    }
}

/// <summary>A created administrator.</summary>
public sealed class CreatedUser
{
    /// <summary>The user's id.</summary>
    [JsonProperty("user_id")] public string UserId { get; set; } = "";

    /// <summary>The user's e-mail.</summary>
    [JsonProperty("email")] public string Email { get; set; } = "";
}

/// <summary>Output of <see cref="CreateAdminUsersStep"/>.</summary>
[WorkflowKey("admin_users_output")]
public sealed class AdminUsersOutput : WorkflowData
{
    /// <summary>The created administrators.</summary>
    [JsonProperty("users")] public List<CreatedUser> Users { get; set; } = [];
}

/// <summary>Creates the customer's administrators: one idempotent call per administrator, fanned out with per-item checkpoints.</summary>
[WorkflowName("create-admin-users")]
public sealed partial class CreateAdminUsersStep(FakeExternalApi api, ILogger<CreateAdminUsersStep> logger) : WorkflowStep<AdminUsersInput, AdminUsersOutput>
{
    /// <inheritdoc />
    protected override async Task<AdminUsersOutput> ProcessInputAsync(AdminUsersInput input, StepContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(context);
        var customer = context.AccumulatedOutput.Get<CustomerOutput>()
            ?? throw new NonRetryableException("The customer step's output is missing.");
        // A fan-out: up to 4 administrators at once, each checkpointed as soon as it is created, so when one fails the
        // retry creates only the ones not created yet. Each item's key (step id, call, index) is the same on every retry.
        var users = await context.ForEachAsync(input.Admins, async admin =>
        {
            // The demo failures count per administrator (its item key): each one's first N calls fail, so the step fails N times.
            var failures = input.SimulateFailures > 0 ? new FakeApiFailurePlan(admin.IdempotencyKey, input.SimulateFailures) : null;
            var user = await api.CreateAdminUserAsync(customer.CustomerId, admin.Item.Email, admin.Item.Name, admin.IdempotencyKey, failures,
                admin.CancellationToken);
            return new CreatedUser { UserId = user.Id, Email = user.Email };
        }, cancellationToken: cancellationToken);
        var output = new AdminUsersOutput { Users = [.. users] };

        LogUsers(output.Users.Count, customer.CustomerId, context.WorkflowId, context.StepId);
        return output;
    }

    /// <summary>Undo: deletes the administrators this step created (idempotent, one key per user).</summary>
    protected override async Task CompensateAsync(AdminUsersInput input, AdminUsersOutput output, StepContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(context);
        foreach (var user in output.Users)
        {
            await api.DeleteAdminUserAsync(user.UserId, $"{context.StepId}:delete:{user.UserId}", cancellationToken);
        }

        LogDeleted(output.Users.Count, context.WorkflowId);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "{UserCount} admin users deleted: workflow run {WorkflowId} is compensated")]
    private partial void LogDeleted(int userCount, Guid workflowId);

    [LoggerMessage(Level = LogLevel.Information, Message = "{UserCount} admin users ready for customer {CustomerId}, workflow run {WorkflowId}, step {StepId}")]
    private partial void LogUsers(int userCount, string customerId, Guid workflowId, Guid stepId);
}

/// <summary>Input of <see cref="SendWelcomeStep"/>.</summary>
[WorkflowKey("welcome_input")]
public sealed class WelcomeInput : WorkflowData
{
    /// <summary>Subject of the welcome e-mail.</summary>
    [JsonProperty("subject"), Required(AllowEmptyStrings = true, ErrorMessage = "The subject field must be a string, not null."),
     StringLength(200, MinimumLength = 1), Description("Subject of the welcome e-mail.")]
    public string Subject { get; set; } = "Welcome aboard";

    /// <summary>Demo: how many calls of this step fail before one succeeds.</summary>
    [JsonProperty("simulate_failures"), Range(0, 20), Description("Demo: the first N attempts of this step fail.")]
    public int SimulateFailures { get; set; }

    /// <summary>Demo: the mail provider rejects the welcome e-mail for good (a non-retryable failure).</summary>
    [JsonProperty("simulate_rejection"), Description("Demo: the welcome e-mail is rejected for good (not retried).")]
    public bool SimulateRejection { get; set; }
}

/// <summary>Output of <see cref="SendWelcomeStep"/>.</summary>
[WorkflowKey("welcome_output")]
public sealed class WelcomeOutput : WorkflowData
{
    /// <summary>Ids of the sent e-mails.</summary>
    [JsonProperty("message_ids")] public List<string> MessageIds { get; set; } = [];
}

/// <summary>Sends a welcome e-mail to every administrator created by the previous step.</summary>
[WorkflowName("send-welcome")]
public sealed partial class SendWelcomeStep(FakeExternalApi api, ILogger<SendWelcomeStep> logger) : WorkflowStep<WelcomeInput, WelcomeOutput>
{
    /// <inheritdoc />
    protected override async Task<WelcomeOutput> ProcessInputAsync(WelcomeInput input, StepContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(context);
        var users = context.AccumulatedOutput.Get<AdminUsersOutput>()
            ?? throw new NonRetryableException("The admin users step's output is missing.");
        if (input.SimulateRejection)
        {
            throw new NonRetryableException("The mail provider rejected the welcome e-mail (simulated rejection).");
        }

        var output = new WelcomeOutput();
        foreach (var user in users.Users)
        {
            var email = await api.SendWelcomeEmailAsync(user.Email, input.Subject, $"{context.StepId}:{user.UserId}",
                SampleSteps.Failures(context, input.SimulateFailures), cancellationToken);
            output.MessageIds.Add(email.Id);
        }

        LogSent(output.MessageIds.Count, context.WorkflowId, context.StepId);
        return output;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "{EmailCount} welcome e-mails sent for workflow run {WorkflowId}, step {StepId}")]
    private partial void LogSent(int emailCount, Guid workflowId, Guid stepId);
}
