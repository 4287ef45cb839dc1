using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Newtonsoft.Json;
using Newtonsoft.Json.Linq;
using Npgsql;

namespace Workflow.Jobs.IntegrationTests;

[WorkflowKey("profile_input")]
public sealed class ProfileInput : WorkflowData
{
    [JsonProperty("name", Required = Required.Always), StringLength(200, MinimumLength = 1)]
    public string Name { get; set; } = "";

    [JsonProperty("age"), System.ComponentModel.DataAnnotations.Range(0, 150)]
    public int Age { get; set; }

    [JsonProperty("tags")]
    public List<string> Tags { get; set; } = [];

    [JsonProperty("address")]
    public ProfileAddress? Address { get; set; }

    /// <summary>Free-form data: stored as given, never bound to a CLR type.</summary>
    [JsonProperty("attributes")]
    public JObject? Attributes { get; set; }
}

public sealed class ProfileAddress
{
    [JsonProperty("city"), Required]
    public string? City { get; set; }
}

[WorkflowKey("profile_output")]
public sealed class ProfileOutput : WorkflowData
{
    [JsonProperty("greeting")] public string Greeting { get; set; } = "";
}

public sealed class ProfileStep : WorkflowStep<ProfileInput, ProfileOutput>
{
    protected override Task<ProfileOutput> ProcessInputAsync(ProfileInput input, StepContext context, CancellationToken cancellationToken)
        => Task.FromResult(new ProfileOutput { Greeting = "Hello, " + input.Name });
}

[WorkflowName("profile")]
public sealed class ProfileWorkflow : WorkflowDefinition
{
    public override IReadOnlyList<Type> Steps { get; } = [typeof(ProfileStep)];
}

/// <summary>
/// A type whose constructor has a visible side effect. Payloads name it with <c>$type</c>; if any
/// deserializer honoured type names, the marker would be set in the app context.
/// </summary>
public sealed class TypeNameProbe
{
    public const string Marker = "Workflow.Jobs.IntegrationTests.TypeNameProbe.Constructed";

    public TypeNameProbe() => AppContext.SetData(Marker, "constructed");
}

/// <summary>One hostile input and what the client must say about it.</summary>
/// <param name="Name">The case, for the test name.</param>
/// <param name="Act">What the caller does.</param>
/// <param name="Code">The <see cref="UnitOfWorkException.Code"/> expected (null: an argument exception is expected).</param>
/// <param name="Path">For validation errors, the JSON path an error must name.</param>
/// <param name="Message">A fragment the error must contain.</param>
public sealed record HostileCase(string Name, Func<IWorkflowClient, Task> Act, string? Code, string? Path, string Message)
{
    public override string ToString() => Name;
}

/// <summary>
/// Hostile input through <see cref="IWorkflowClient"/>: each case is refused with an
/// exception naming the problem, and nothing is written: no run, no Hangfire job.
/// </summary>
public class HostileInputTests
{
    private const string ProbeType = "Workflow.Jobs.IntegrationTests.TypeNameProbe, Workflow.Jobs.IntegrationTests";
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);
    private string _connectionString = null!;
    private IHost _host = null!;
    private IWorkflowClient _client = null!;

    [OneTimeSetUp]
    public async Task OneTimeSetUpAsync()
    {
        _connectionString = await TestDatabases.CreateAsync(nameof(HostileInputTests));
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        // Hangfire's log provider is static and points at the ILoggerFactory of the last host that configured Hangfire;
        // a factory that disposing a host cannot break keeps the other hosts of this test process working.
        builder.Services.AddSingleton<ILoggerFactory>(Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance);
        builder.Services.AddSingleton<ExecutionLog>();
        builder.Services.AddWorkflowJobs(o => o.UseNpgsql(_connectionString))
            .AddWorkflow<ProfileWorkflow>()
            .AddWorkflow<AddThenSquareWorkflow>()
            .AddHangfireJobs(o =>
            {
                o.WorkerCount = 2;
                o.QueuePollInterval = TimeSpan.FromMilliseconds(50);
                o.ShutdownTimeout = TimeSpan.FromSeconds(2);
            });
        _host = builder.Build();
        await _host.StartAsync();
        _client = _host.Services.GetRequiredService<IWorkflowClient>();
    }

    [OneTimeTearDown]
    public async Task OneTimeTearDownAsync()
    {
        await _host.StopAsync();
        _host.Dispose();
    }

    private static Func<IWorkflowClient, Task> Json(string json) => client => client.EnqueueAsync("profile", WorkflowJson.ParseObject(json));

    private static Func<IWorkflowClient, Task> Object(JObject input) => client => client.EnqueueAsync("profile", input);

    private static Func<IWorkflowClient, Task> Name(string workflowName) => client => client.EnqueueAsync(workflowName, JObject.Parse("""{"profile_input":{"name":"a"}}"""));

    private static JObject Nested(int depth)
    {
        var root = new JObject();
        var current = root;
        for (var i = 0; i < depth; i++)
        {
            var child = new JObject();
            current["x"] = child;
            current = child;
        }

        return root;
    }

    public static IEnumerable<HostileCase> Cases()
    {
        const string Validation = WorkflowDataValidationException.ValidationFailedCode;
        var huge = new string('x', 1_000_000);

        // Malformed JSON (the text never becomes input).
        yield return new("malformed: truncated", Json("""{"profile_input": {"name": "a" """), Validation, null, "Malformed JSON");
        yield return new("malformed: not JSON", Json("hello"), Validation, "", "Malformed JSON");
        yield return new("malformed: empty", Json(""), Validation, "", "Malformed JSON");
        yield return new("malformed: trailing content", Json("""{"profile_input":{"name":"a"}} {"x":1}"""), Validation, "", "Malformed JSON");
        yield return new("malformed: single quotes", Json("['a']"), Validation, "", "Malformed JSON");
        yield return new("malformed: comment", Json("""{"profile_input": {"name": "a" /* admin */}}"""), Validation, "profile_input.name", "Malformed JSON");
        yield return new("malformed: trailing comma", Json("""{"profile_input": {"name": "a",}}"""), Validation, null, "trailing comma");
        yield return new("malformed: duplicate field", Json("""{"profile_input": {"name": "a", "name": "b"}}"""), Validation, "profile_input.name", "more than once");
        yield return new("malformed: fields differing only in case (text)", Json("""{"profile_input": {"name": "a", "NAME": "b"}}"""), Validation,
            "profile_input.NAME", "more than once");
        yield return new("malformed: fields differing only in case (built object)", Object(new JObject { ["profile_input"] = new JObject { ["name"] = "a", ["Name"] = "b" } }),
            Validation, "profile_input.Name", "ignoring case");
        yield return new("malformed: fields differing only in case (nested, built object)",
            Object(new JObject { ["profile_input"] = new JObject { ["name"] = "a", ["address"] = new JObject { ["city"] = "x", ["CITY"] = "y" } } }),
            Validation, "profile_input.address.CITY", "more than once");
        yield return new("malformed: fields differing only in case (free-form data)",
            Object(new JObject { ["profile_input"] = new JObject { ["name"] = "a", ["attributes"] = new JObject { ["k"] = 1, ["K"] = 2 } } }),
            Validation, "profile_input.attributes.K", "more than once");
        yield return new("malformed: array instead of object", Json("""[{"profile_input":{}}]"""), Validation, "", "Expected a JSON object but got an array");
        yield return new("malformed: bare string", Json("\"profile\""), Validation, "", "Expected a JSON object but got a string");

        // Wrong types.
        yield return new("wrong type: string for int", Json("""{"profile_input":{"name":"a","age":"old"}}"""), Validation, "profile_input.age", "Wrong type");
        yield return new("wrong type: fraction for int", Json("""{"profile_input":{"name":"a","age":1.5}}"""), Validation, "profile_input.age", "expected a whole number but got 1.5");
        yield return new("wrong type: object for int", Json("""{"profile_input":{"name":"a","age":{}}}"""), Validation, "profile_input.age", "Wrong type");
        yield return new("wrong type: huge number for int", Json("""{"profile_input":{"name":"a","age":99999999999999999999999}}"""), Validation, "profile_input.age", "Wrong type");
        yield return new("wrong type: string for list", Json("""{"profile_input":{"name":"a","tags":"a,b"}}"""), Validation, "profile_input.tags", "Wrong type");
        yield return new("wrong type: object for list", Json("""{"profile_input":{"name":"a","tags":{"a":"b"}}}"""), Validation, null, "expected an array but got an object");
        yield return new("wrong type: list for nested object", Json("""{"profile_input":{"name":"a","address":["b"]}}"""), Validation, "profile_input.address", "expected an object but got an array");
        yield return new("wrong type: number beyond decimal", Json("""{"profile_input":{"name":"a","age":1e300}}"""), Validation, "profile_input.age", "out of range");
        yield return new("wrong type: string for step input", Json("""{"profile_input":"a"}"""), Validation, "profile_input", "Expected an object but got a string");
        yield return new("wrong type: array for nested object", Json("""{"profile_input":{"name":"a","address":[]}}"""), Validation, "profile_input.address", "Wrong type");
        yield return new("out of range", Json("""{"profile_input":{"name":"a","age":-1}}"""), Validation, "profile_input.age", "age");

        // Missing and extra fields.
        yield return new("missing: required field", Json("""{"profile_input":{"age":3}}"""), Validation, "profile_input.name", "Required field 'name' is missing");
        yield return new("missing: whole step input", Json("{}"), Validation, "profile_input.name", "Required field 'name' is missing");
        yield return new("missing: nested required field", Json("""{"profile_input":{"name":"a","address":{}}}"""), Validation, "profile_input.address.city", "city");
        yield return new("extra: unknown field", Json("""{"profile_input":{"name":"a","is_admin":true}}"""), Validation, "profile_input.is_admin", "Unknown field 'is_admin'");
        yield return new("extra: unknown nested field", Json("""{"profile_input":{"name":"a","address":{"city":"b","zip":1}}}"""), Validation, "profile_input.address.zip", "Unknown field 'zip'");
        yield return new("extra: thousands of unknown fields", Object(new JObject { ["profile_input"] = new JObject(Enumerable.Range(0, 10_000).Select(i => new JProperty($"f{i}", i)).Prepend(new JProperty("name", "a"))) }),
            Validation, "profile_input.f9999", "and 9990 more");
        yield return new("extra: unknown input key", Json("""{"profile_input":{"name":"a"},"admin_input":{}}"""), Validation, "admin_input", "Unknown input key");

        // Nulls.
        yield return new("null: input", client => client.EnqueueAsync("profile", null!), Validation, "", "The input is required");
        yield return new("null: step input", Json("""{"profile_input":null}"""), Validation, "profile_input", "Expected an object but got null");
        yield return new("null: required string", Json("""{"profile_input":{"name":null}}"""), Validation, "profile_input.name", "name");
        yield return new("null: int", Json("""{"profile_input":{"name":"a","age":null}}"""), Validation, "profile_input.age", "Null is not allowed");
        yield return new("null: workflow name", client => client.EnqueueAsync(null!, []), null, null, "workflowName");

        // Very long strings.
        yield return new("long: string beyond its limit", Object(new JObject { ["profile_input"] = new JObject { ["name"] = huge } }), Validation, "profile_input.name", "name");
        yield return new("long: string for int", Object(new JObject { ["profile_input"] = new JObject { ["name"] = "a", ["age"] = huge } }), Validation, "profile_input.age", "Wrong type");
        yield return new("long: field name", Object(new JObject { ["profile_input"] = new JObject { ["name"] = "a", [huge] = 1 } }), Validation, null, "Unknown field 'xxxx");
        yield return new("long: input key", Object(new JObject { [huge] = new JObject() }), Validation, null, "Unknown input key");

        // Deep nesting.
        yield return new("deep: parsed text", Json("""{"profile_input":{"name":"a","attributes":""" + string.Concat(Enumerable.Repeat("""{"x":""", 10_000)) + "1" + new string('}', 10_002)),
            Validation, null, "depth");
        yield return new("deep: built object in a free-form field", Object(new JObject { ["profile_input"] = new JObject { ["name"] = "a", ["attributes"] = Nested(10_000) } }),
            Validation, "profile_input", "depth");
        yield return new("deep: built object under an unknown key", Object(new JObject { ["profile_input"] = new JObject { ["name"] = "a" }, ["deep"] = Nested(10_000) }),
            Validation, "deep", "Unknown input key");

        // Unknown workflow names.
        yield return new("unknown workflow", Name("no-such-workflow"), "unknown_workflow", null, "Unknown workflow 'no-such-workflow'");
        yield return new("unknown workflow: empty name", Name(""), "unknown_workflow", null, "Unknown workflow ''");
        yield return new("unknown workflow: other case", Name("PROFILE"), "unknown_workflow", null, "Unknown workflow 'PROFILE'");
        yield return new("unknown workflow: SQL text", Name("profile'; DROP TABLE workflow.workflow_runs; --"), "unknown_workflow", null, "Unknown workflow");
        yield return new("unknown workflow: very long name", Name(huge), "unknown_workflow", null, "Unknown workflow");

        // $type payloads: metadata is never honoured; where a type is bound, $type is an unknown field.
        yield return new("$type: in a step input", Json($$$"""{"profile_input":{"$type":"{{{ProbeType}}}","name":"a"}}"""), Validation, "profile_input.$type", "Unknown field '$type'");
        yield return new("$type: in a nested object", Json($$$$"""{"profile_input":{"name":"a","address":{"$type":"{{{{ProbeType}}}}","city":"b"}}}"""), Validation, "profile_input.address.$type", "Unknown field '$type'");
        yield return new("$type: at the top", Json($$$"""{"$type":"{{{ProbeType}}}","profile_input":{"name":"a"}}"""), Validation, "$type", "Unknown input key");
        yield return new("$type: as a list item", Json($$$"""{"profile_input":{"name":"a","tags":[{"$type":"{{{ProbeType}}}"}]}}"""), Validation, "profile_input.tags[0]", "Wrong type");

        // Text PostgreSQL cannot store in jsonb.
        yield return new("unicode: NUL character", Object(new JObject { ["profile_input"] = new JObject { ["name"] = "a\u0000b" } }), Validation, "profile_input.name", "NUL");
        yield return new("unicode: lone surrogate", Object(new JObject { ["profile_input"] = new JObject { ["name"] = "a\ud800b" } }), Validation, "profile_input.name", "surrogate");
    }

    [TestCaseSource(nameof(Cases))]
    public async Task EnqueueAsync_RefusesHostileInput_NamingTheProblem_AndWritesNothing(HostileCase hostile)
    {
        var before = await CountRowsAsync();

        var error = await CatchAsync(() => hostile.Act(_client));

        Assert.That(error, Is.Not.Null, $"{hostile.Name}: accepted");
        if (hostile.Code is null)
        {
            Assert.That(error, Is.InstanceOf<ArgumentException>());
        }
        else
        {
            Assert.That(error, Is.InstanceOf<UnitOfWorkException>(), error!.ToString());
            Assert.That(((UnitOfWorkException)error!).Code, Is.EqualTo(hostile.Code));
        }

        Assert.That(error!.Message, Does.Contain(hostile.Message).IgnoreCase);
        if (error is WorkflowDataValidationException validation)
        {
            Assert.That(validation.Errors.Select(e => e.Message), Has.None.Match(@"System\.|`1|Workflow\.Jobs\."), "messages speak JSON, not .NET type names");
        }

        Assert.That(error.Message, Has.Length.LessThan(6_000), "the message stays readable however large the input");
        if (hostile.Path is not null)
        {
            var errors = ((WorkflowDataValidationException)error).Errors;
            Assert.That(errors.Select(e => e.Path), Does.Contain(hostile.Path), string.Join("; ", errors));
        }

        Assert.That(await CountRowsAsync(), Is.EqualTo(before), "no run and no Hangfire job were written");
        Assert.That(AppContext.GetData(TypeNameProbe.Marker), Is.Null, "no type named in the payload was instantiated");
    }

    [Test]
    public async Task EnqueueAsync_KeepsTypeNamesInFreeFormData_AsPlainData_AndNeverInstantiatesThem()
    {
        var attributes = JObject.Parse($$$"""{"$type":"{{{ProbeType}}}","$id":"1","inner":{"$type":"System.IO.FileInfo, System.IO.FileSystem","fileName":"/etc/passwd"}}""");

        var id = await _client.EnqueueAsync("profile", new JObject { ["profile_input"] = new JObject { ["name"] = "a", ["attributes"] = attributes } });
        var run = await WaitForSucceededAsync(id);

        Assert.That(JToken.DeepEquals(run.Input["profile_input"]!["attributes"], attributes), Is.True, run.Input.ToString());
        Assert.That(AppContext.GetData(TypeNameProbe.Marker), Is.Null);
    }

    [TestCase("Grüße, 世界 🎉 — עברית, e\u0301, \u200d👩‍💻, 𝔘𝔫𝔦𝔠𝔬𝔡𝔢")]
    [TestCase("quotes \" and \\ backslashes \n newlines \t tabs \u001f controls")]
    [TestCase("ﷺ \u202e right-to-left override, \ufeff BOM, \uffff non-character")]
    public async Task EnqueueAsync_Unicode_RoundTripsIntact(string text)
    {
        var input = new JObject
        {
            ["profile_input"] = new JObject { ["name"] = text, ["tags"] = new JArray(text), ["attributes"] = new JObject { [text] = text } },
        };

        var id = await _client.EnqueueAsync("profile", WorkflowJson.ParseObject(input.ToString(Formatting.None)));
        var run = await WaitForSucceededAsync(id);

        Assert.That(run.Input["profile_input"]!["name"]!.Value<string>(), Is.EqualTo(text));
        Assert.That(JToken.DeepEquals(run.Input, input), Is.True, run.Input.ToString());
        Assert.That(run.Output!["profile_output"]!["greeting"]!.Value<string>(), Is.EqualTo("Hello, " + text));
    }

    [Test]
    public async Task EnqueueAsync_Typed_RefusesAnInvalidObject_AndWritesNothing()
    {
        var before = await CountRowsAsync();

        var error = Assert.ThrowsAsync<WorkflowDataValidationException>(() =>
            _client.EnqueueAsync<ProfileWorkflow>(new WorkflowInput(new ProfileInput { Name = "", Age = 200, Address = new ProfileAddress() })));

        Assert.That(error!.Errors.Select(e => e.Path), Is.EquivalentTo(new[] { "profile_input.name", "profile_input.age", "profile_input.address.city" }));
        Assert.That(await CountRowsAsync(), Is.EqualTo(before));
    }

    [Test]
    public void HostileCases_CoverEveryKindTheIssueNames()
    {
        var names = Cases().Select(c => c.Name).ToList();

        foreach (var kind in new[] { "malformed", "wrong type", "missing", "extra", "null", "long", "deep", "unknown workflow", "$type" })
        {
            Assert.That(names.Count(n => n.StartsWith(kind, StringComparison.Ordinal)), Is.GreaterThanOrEqualTo(1), kind);
        }

        Assert.That(names, Is.Unique);
    }

    private static async Task<Exception?> CatchAsync(Func<Task> act)
    {
        try
        {
            await act();
            return null;
        }
        // The test inspects whatever was thrown.
        catch (Exception ex)
        {
            return ex;
        }
    }

    private async Task<WorkflowRun> WaitForSucceededAsync(Guid id)
    {
        WorkflowRun? run = null;
        await Eventually.UntilAsync(async () => (run = await _client.GetAsync(id))?.Status == WorkflowStatus.Succeeded, Deadline, $"run {id} to succeed");
        return run!;
    }

    private async Task<(long Runs, long Jobs)> CountRowsAsync()
    {
        await using var connection = new NpgsqlConnection(_connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT (SELECT count(*) FROM workflow.workflow_runs), (SELECT count(*) FROM hangfire.job)", connection);
        await using var reader = await command.ExecuteReaderAsync();
        await reader.ReadAsync();
        return (reader.GetInt64(0), reader.GetInt64(1));
    }
}
