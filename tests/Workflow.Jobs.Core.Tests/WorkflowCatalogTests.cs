using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.DependencyInjection;
using Newtonsoft.Json;
using Newtonsoft.Json.Linq;

namespace Workflow.Jobs.Core.Tests;

[WorkflowKey("catalog_input")]
public sealed class CatalogInput : WorkflowData
{
    [JsonProperty("name"), Required, StringLength(50, MinimumLength = 1), System.ComponentModel.Description("The name.")]
    public string Name { get; set; } = "";

    [JsonProperty("country"), Required, RegularExpression("^[A-Z]{2}$")]
    public string Country { get; set; } = "US";

    [JsonProperty("plan"), AllowedValues("small", "large")]
    public string Plan { get; set; } = "small";

    [JsonProperty("role")]
    public Role Role { get; set; }

    [JsonProperty("admins"), MinLength(1)]
    public List<AdminUser> Admins { get; set; } = [];
}

public sealed class CatalogStep : WorkflowStep<CatalogInput, AddOutput>
{
    protected override Task<AddOutput> ProcessInputAsync(CatalogInput input, StepContext context, CancellationToken cancellationToken)
        => Task.FromResult(new AddOutput());
}

[WorkflowName("catalog-test")]
public sealed class CatalogWorkflow : WorkflowDefinition
{
    public override IReadOnlyList<Type> Steps { get; } = [typeof(CatalogStep), typeof(SquareStep)];

    public override WorkflowRetryPolicy? Retry { get; } = new() { Attempts = 1, DelaysInSeconds = [3] };
}

public class WorkflowCatalogTests
{
    private static WorkflowCatalog Build() => new(new WorkflowRegistry(
        [new WorkflowRegistration(typeof(CatalogWorkflow)), new WorkflowRegistration(typeof(AddThenSquareWorkflow))]));

    [Test]
    public void Workflows_AreOrderedByName_WithStepsKeysAndRetry()
    {
        var catalog = Build();

        Assert.That(catalog.Workflows.Select(w => w.Name), Is.EqualTo(new[] { "add-then-square", "catalog-test" }));
        var workflow = catalog.Workflows[1];
        Assert.That(workflow.DefinitionType, Is.EqualTo(typeof(CatalogWorkflow)));
        Assert.That(workflow.Steps, Is.EqualTo(new[]
        {
            new WorkflowStepInfo(nameof(CatalogStep), "catalog_input", "test_step_output", typeof(CatalogInput), typeof(AddOutput)),
            new WorkflowStepInfo(nameof(SquareStep), "square_input", "square_output", typeof(SquareInput), typeof(SquareOutput)),
        }));
        Assert.That(workflow.Retry!.Attempts, Is.EqualTo(1));
        Assert.That(catalog.Workflows[0].Retry, Is.Null, "no policy of its own: the host default applies");
    }

    [TestCase("catalog-test", true)]
    [TestCase("CATALOG-TEST", false)]
    [TestCase("no-such-workflow", false)]
    public void Find_MatchesTheNameExactly(string name, bool found)
        => Assert.That(Build().Find(name), found ? Is.Not.Null : Is.Null);

    [Test]
    public void InputSchema_DescribesTheCompositeInput_FromTheContractAndDataAnnotations()
    {
        var schema = Build().Find("catalog-test")!.InputSchema;

        Assert.That(schema["type"]!.Value<string>(), Is.EqualTo("object"));
        Assert.That(schema["additionalProperties"]!.Value<bool>(), Is.False);
        Assert.That(((JObject)schema["properties"]!).Properties().Select(p => p.Name), Is.EqualTo(new[] { "catalog_input", "square_input" }));
        Assert.That(schema["required"]!.Values<string>(), Is.EqualTo(new[] { "catalog_input" }), "square_input accepts {}");

        var input = Resolve(schema, schema["properties"]!["catalog_input"]!);
        var fields = (JObject)input["properties"]!;
        Assert.That(fields.Properties().Select(p => p.Name), Is.EquivalentTo(new[] { "name", "country", "plan", "role", "admins" }), "JSON names");
        Assert.That(input["additionalProperties"]!.Value<bool>(), Is.False);
        Assert.That(input["required"]!.Values<string>(), Is.EquivalentTo(new[] { "name", "admins" }), "country has a valid default; admins' default fails MinLength");
        Assert.That(fields["name"]!["type"]!.Value<string>(), Is.EqualTo("string"));
        Assert.That((fields["name"]!["minLength"]!.Value<int>(), fields["name"]!["maxLength"]!.Value<int>()), Is.EqualTo((1, 50)));
        Assert.That(fields["name"]!["description"]!.Value<string>(), Is.EqualTo("The name."));
        Assert.That(fields["country"]!["default"]!.Value<string>(), Is.EqualTo("US"));
        Assert.That(fields["country"]!["pattern"]!.Value<string>(), Is.EqualTo("^[A-Z]{2}$"));
        Assert.That(fields["plan"]!["enum"]!.Values<string>(), Is.EqualTo(new[] { "small", "large" }));
        Assert.That(Resolve(schema, fields["role"]!)["enum"]!.Values<string>(), Is.EqualTo(new[] { "Owner", "Member" }), "enums as strings");
        Assert.That(fields["admins"]!["type"]!.Value<string>(), Is.EqualTo("array"));
        Assert.That(fields["admins"]!["minItems"]!.Value<int>(), Is.EqualTo(1));
        var admin = Resolve(schema, fields["admins"]!["items"]!);
        Assert.That(admin["required"]!.Values<string>(), Does.Contain("email"));
        Assert.That(admin["properties"]!["email"]!["format"]!.Value<string>(), Is.EqualTo("email"));
    }

    [Test]
    public void InputSchema_IsACopyEachTime()
    {
        var workflow = Build().Find("catalog-test")!;

        workflow.InputSchema["properties"] = new JObject();

        Assert.That(((JObject)workflow.InputSchema["properties"]!).Count, Is.EqualTo(2));
    }

    [Test]
    public void AddWorkflowJobs_RegistersTheCatalog()
    {
        var services = new ServiceCollection();
        services.AddWorkflowJobs(_ => { }).AddWorkflow<CatalogWorkflow>();
        using var provider = services.BuildServiceProvider();

        var catalog = provider.GetRequiredService<IWorkflowCatalog>();

        Assert.That(catalog.Workflows.Select(w => w.Name), Is.EqualTo(new[] { "catalog-test" }));
        Assert.That(provider.GetRequiredService<IWorkflowCatalog>(), Is.SameAs(catalog));
    }

    private static JObject Resolve(JObject root, JToken schema)
    {
        var current = (JObject)schema;
        for (var hops = 0; hops < 10; hops++)
        {
            if (current["$ref"]?.Value<string>() is { } reference)
            {
                current = (JObject)root.SelectToken(reference[2..].Replace('/', '.'))!;
            }
            else if ((current["allOf"] ?? current["oneOf"]) is JArray { Count: 1 } single && current["properties"] is null)
            {
                current = (JObject)single[0];
            }
            else
            {
                return current;
            }
        }

        throw new AssertionException("reference loop");
    }
}
