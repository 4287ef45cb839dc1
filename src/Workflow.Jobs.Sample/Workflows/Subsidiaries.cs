using System.ComponentModel;
using System.ComponentModel.DataAnnotations;
using Newtonsoft.Json;

namespace Workflow.Jobs.Sample.Workflows;

/// <summary>
/// Provisions every subsidiary of a group as its own <c>customer-provisioning</c> run (child workflows): the parent waits
/// without a worker until the last child finishes, then collects their customer ids. Each child retries and resumes on its
/// own; the parent's page and <c>GET /api/workflows?parentId=…</c> list them.
/// </summary>
[WorkflowName("provision-subsidiaries")]
public sealed class ProvisionSubsidiariesWorkflow : WorkflowDefinition
{
    /// <inheritdoc />
    public override IReadOnlyList<Type> Steps { get; } = [typeof(ProvisionSubsidiariesStep)];
}

/// <summary>A subsidiary to provision.</summary>
public sealed class Subsidiary
{
    /// <summary>The subsidiary's name.</summary>
    [JsonProperty("name"), Required, StringLength(200, MinimumLength = 1), Description("The subsidiary's name.")]
    public string Name { get; set; } = "";

    /// <summary>Its billing e-mail, also its first administrator's login.</summary>
    [JsonProperty("email"), Required, EmailAddress, StringLength(320), Description("Billing e-mail, also the first administrator's login.")]
    public string Email { get; set; } = "";
}

/// <summary>Input of <see cref="ProvisionSubsidiariesStep"/>.</summary>
[WorkflowKey("subsidiaries_input")]
public sealed class SubsidiariesInput : WorkflowData, IValidatableObject
{
    /// <summary>The subsidiaries, 1 to 100.</summary>
    [JsonProperty("subsidiaries"), Required, MinLength(1), MaxLength(100), Description("Subsidiaries to provision (1 to 100).")]
    public List<Subsidiary> Subsidiaries { get; set; } = [];

    /// <summary>The plan every subsidiary subscribes to.</summary>
    [JsonProperty("plan"), Required, AllowedValues("starter", "business", "enterprise", ErrorMessage = "The plan field must be starter, business or enterprise."),
     Description("starter, business or enterprise.")]
    public string Plan { get; set; } = "business";

    /// <inheritdoc />
    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        var missing = Subsidiaries.FindIndex(s => s is null);
        if (missing >= 0)
        {
            yield return new ValidationResult($"The subsidiaries field has null at position {missing}; each entry must be an object with a name and an email.", [nameof(Subsidiaries)]);
        }
    }
}

/// <summary>Output of <see cref="ProvisionSubsidiariesStep"/>.</summary>
[WorkflowKey("subsidiaries_output")]
public sealed class SubsidiariesOutput : WorkflowData
{
    /// <summary>The subsidiaries' customer ids, in input order.</summary>
    [JsonProperty("customer_ids")] public List<string> CustomerIds { get; set; } = [];
}

/// <summary>Starts one <c>customer-provisioning</c> child run per subsidiary and returns their customer ids.</summary>
[WorkflowName("provision-each-subsidiary")]
public sealed class ProvisionSubsidiariesStep : WorkflowStep<SubsidiariesInput, SubsidiariesOutput>
{
    /// <inheritdoc />
    protected override async Task<SubsidiariesOutput> ProcessInputAsync(SubsidiariesInput input, StepContext context, CancellationToken cancellationToken)
    {
        var children = input.Subsidiaries.Select(s => new WorkflowInput(
                new CustomerInput { Name = s.Name, Email = s.Email },
                new SubscriptionInput { Plan = input.Plan },
                new AdminUsersInput { Admins = [new AdminUser { Email = s.Email, Name = s.Name }] },
                new WelcomeInput { Subject = "Welcome to " + s.Name }))
            .ToList();
        var outputs = await context.RunChildrenAsync<CustomerProvisioningWorkflow>(children, cancellationToken);
        return new SubsidiariesOutput { CustomerIds = outputs.Select(o => o.Get<CustomerOutput>()!.CustomerId).ToList() };
    }
}
