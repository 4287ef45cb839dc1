using System.ComponentModel.DataAnnotations;
using System.Reflection;
using Namotion.Reflection;
using Newtonsoft.Json;
using Newtonsoft.Json.Linq;
using Newtonsoft.Json.Serialization;
using NJsonSchema;
using NJsonSchema.Generation;
using NJsonSchema.NewtonsoftJson.Generation;

namespace Workflow.Jobs;

/// <summary>
/// Builds the JSON Schema of a workflow's composite input with NJsonSchema from the same Newtonsoft
/// contract the input is read with (<see cref="WorkflowJson.CreateSettings"/>), so field names, enums and
/// DataAnnotations constraints in the schema are the ones the reader enforces. Two facts NJsonSchema cannot
/// know are added by <see cref="DefaultsProcessor"/>: a <c>[Required]</c> field whose class default is
/// valid may be left out (the reader keeps the default), and <see cref="AllowedValuesAttribute"/> lists
/// the accepted values.
/// </summary>
internal static class WorkflowInputSchema
{
    public static JObject Build(WorkflowDescriptor workflow)
    {
        var settings = new NewtonsoftJsonSchemaGeneratorSettings
        {
            SerializerSettings = WorkflowJson.CreateSettings(),
            SchemaType = SchemaType.JsonSchema,
            DefaultReferenceTypeNullHandling = ReferenceTypeNullHandling.NotNull,
            GenerateAbstractProperties = false,
            AllowReferencesWithProperties = false,
            FlattenInheritanceHierarchy = true,
            // Workflow data classes are closed: the reader refuses unknown fields.
            AlwaysAllowAdditionalObjectProperties = false,
        };
        settings.SchemaProcessors.Add(new DefaultsProcessor(settings.SerializerSettings.ContractResolver!));

        var root = new JsonSchema
        {
            Type = JsonObjectType.Object,
            Title = workflow.Name,
            Description = $"Composite input of the workflow '{workflow.Name}': one object per step input key.",
            AllowAdditionalProperties = false,
        };
        var resolver = new JsonSchemaResolver(root, settings);
        var generator = new JsonSchemaGenerator(settings);
        foreach (var step in workflow.Steps)
        {
            var property = generator.GenerateWithReferenceAndNullability<JsonSchemaProperty>(step.InputType.ToContextualType(), false, resolver, null);
            property.Description ??= $"Input of the step '{step.Name}'.";
            // A part left out is read as {}: it is required only when {} is refused.
            property.IsRequired = !AcceptsEmptyObject(step);
            root.Properties[step.InputKey] = property;
        }

        return JObject.Parse(root.ToJson());
    }

    private static bool AcceptsEmptyObject(StepDescriptor step)
    {
        var errors = new List<WorkflowDataError>();
        WorkflowDataReader.TryRead(step.InputType, new JObject(), step.InputKey, WorkflowDataReadMode.Strict, errors);
        return errors.Count == 0;
    }

    /// <summary>Adjusts <c>required</c> and <c>default</c> per field from the class's default instance, and adds <c>enum</c> for <see cref="AllowedValuesAttribute"/>.</summary>
    private sealed class DefaultsProcessor(IContractResolver resolver) : ISchemaProcessor
    {
        private static readonly JsonSerializer Serializer = JsonSerializer.Create(WorkflowJson.CreateSettings());

        public void Process(SchemaProcessorContext context)
        {
            var type = context.ContextualType.Type;
            if (resolver.ResolveContract(type) is not JsonObjectContract contract || context.Schema.Type != JsonObjectType.Object)
            {
                return;
            }

            var instance = CreateDefault(type);
            var failing = FailingMembers(instance);
            foreach (var property in contract.Properties.Where(p => !p.Ignored && p.PropertyName is not null))
            {
                if (!context.Schema.Properties.TryGetValue(property.PropertyName!, out var field))
                {
                    continue;
                }

                var requiredByContract = property.Required is Required.Always or Required.AllowNull;
                var failsByDefault = property.UnderlyingName is { } member && failing.Contains(member);
                field.IsRequired = requiredByContract || (instance is null ? field.IsRequired : failsByDefault);
                if (!field.IsRequired && instance is not null && property.ValueProvider?.GetValue(instance) is { } value)
                {
                    var token = JToken.FromObject(value, Serializer);
                    if (token is not (JContainer { Count: 0 } or JValue { Type: JTokenType.String, Value: "" }))
                    {
                        field.Default = token.ToObject<object>();
                    }
                }

                if (property.AttributeProvider?.GetAttributes(typeof(AllowedValuesAttribute), true).OfType<AllowedValuesAttribute>().FirstOrDefault() is { } allowed)
                {
                    field.Enumeration.Clear();
                    foreach (var allowedValue in allowed.Values)
                    {
                        field.Enumeration.Add(allowedValue);
                    }
                }
            }
        }

        private static object? CreateDefault(Type type)
        {
            try
            {
                return type.GetConstructor(Type.EmptyTypes) is null ? null : Activator.CreateInstance(type);
            }
            catch (TargetInvocationException)
            {
                return null;
            }
        }

        /// <summary>Members whose default value fails validation: an input that leaves them out is refused.</summary>
        private static HashSet<string> FailingMembers(object? instance)
        {
            var members = new HashSet<string>(StringComparer.Ordinal);
            if (instance is null)
            {
                return members;
            }

            var results = new List<ValidationResult>();
            Validator.TryValidateObject(instance, new ValidationContext(instance), results, validateAllProperties: true);
            foreach (var result in results)
            {
                members.UnionWith(result.MemberNames);
            }

            return members;
        }
    }
}
