using Newtonsoft.Json.Linq;

namespace Workflow.Jobs;

/// <summary>Checks a composite input against a workflow before anything is written.</summary>
internal static class WorkflowInputValidator
{
    /// <summary>Returns a copy of the input when every part is valid; else throws with every error found.</summary>
    public static JObject Validate(WorkflowDescriptor workflow, JObject? input)
    {
        if (input is null)
        {
            throw new WorkflowDataValidationException([new WorkflowDataError("", "The input is required (use {} for defaults).")]);
        }

        var errors = new List<WorkflowDataError>();
        foreach (var property in input.Properties())
        {
            if (!workflow.Steps.Any(s => s.InputKey == property.Name))
            {
                var expected = string.Join(", ", workflow.Steps.Select(s => s.InputKey));
                errors.Add(new WorkflowDataError(property.Name, $"Unknown input key for workflow '{workflow.Name}'; expected one of: {expected}."));
            }
        }

        foreach (var step in workflow.Steps)
        {
            var part = input[step.InputKey];
            WorkflowDataReader.TryRead(step.InputType, part, step.InputKey, WorkflowDataReadMode.Strict, errors);
        }

        if (errors.Count > 0)
        {
            throw new WorkflowDataValidationException(errors);
        }

        return (JObject)input.DeepClone();
    }
}
