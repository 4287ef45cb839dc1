using System.ComponentModel.DataAnnotations;
using Newtonsoft.Json;

namespace Workflow.Jobs.Core.Tests;

[WorkflowKey("test_step_input")]
public sealed class AddInput : WorkflowData
{
    [JsonProperty("argument_1"), System.ComponentModel.DataAnnotations.Range(0, 1_000_000)] public int Argument1 { get; set; }
    [JsonProperty("argument_2")] public int Argument2 { get; set; }
}

[WorkflowKey("test_step_output")]
public sealed class AddOutput : WorkflowData
{
    [JsonProperty("result")] public int Result { get; set; }
}

[WorkflowKey("square_input")]
public sealed class SquareInput : WorkflowData
{
    [JsonProperty("offset")] public int Offset { get; set; }
}

[WorkflowKey("square_output")]
public sealed class SquareOutput : WorkflowData
{
    [JsonProperty("result")] public int Result { get; set; }
}

public sealed class AddStep : WorkflowStep<AddInput, AddOutput>
{
    protected override Task<AddOutput> ProcessInputAsync(AddInput input, StepContext context, CancellationToken cancellationToken)
        => Task.FromResult(new AddOutput { Result = input.Argument1 + input.Argument2 });
}

public sealed class SquareStep : WorkflowStep<SquareInput, SquareOutput>
{
    protected override Task<SquareOutput> ProcessInputAsync(SquareInput input, StepContext context, CancellationToken cancellationToken)
    {
        var value = context.AccumulatedOutput.Get<AddOutput>()!.Result + input.Offset;
        return Task.FromResult(new SquareOutput { Result = value * value });
    }
}

[WorkflowName("add-then-square")]
public sealed class AddThenSquareWorkflow : WorkflowDefinition
{
    public override IReadOnlyList<Type> Steps { get; } = [typeof(AddStep), typeof(SquareStep)];
}

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
