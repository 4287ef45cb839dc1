using System.ComponentModel.DataAnnotations;
using Newtonsoft.Json;

namespace Workflow.Jobs.Core.Tests;

public enum Role
{
    Owner,
    Member,
}

public sealed class AdminUser
{
    [JsonProperty("email"), Required, EmailAddress] public string? Email { get; set; }
    [JsonProperty("role")] public Role Role { get; set; }
}

[WorkflowKey("admin_users_input")]
public sealed class AdminUsersInput : WorkflowData, IValidatableObject
{
    [JsonProperty("customer_id")] public Guid CustomerId { get; set; }
    [JsonProperty("admins")] public List<AdminUser> Admins { get; set; } = [];
    [JsonProperty("start", Required = Required.Always)] public DateTimeOffset Start { get; set; }
    [JsonProperty("note"), StringLength(10)] public string? Note { get; set; }

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (Admins.Count == 0)
        {
            yield return new ValidationResult("At least one admin is required.", [nameof(Admins)]);
        }
    }
}

[WorkflowKey("no_key_dupe")]
public sealed class DupeInput : WorkflowData;

public sealed class NoKeyData : WorkflowData;
