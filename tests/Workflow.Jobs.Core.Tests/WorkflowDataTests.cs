using Newtonsoft.Json.Linq;

namespace Workflow.Jobs.Core.Tests;

public class WorkflowDataTests
{
    private static JObject Parse(string json) => WorkflowJson.ParseObject(json);

    [Test]
    public void ToJson_UsesJsonNames_AndFromJsonRoundTrips()
    {
        var json = new AddInput { Argument1 = 2, Argument2 = 3 }.ToJson();
        Assert.That(json.ToString(Newtonsoft.Json.Formatting.None), Is.EqualTo("{\"argument_1\":2,\"argument_2\":3}"));
        var back = WorkflowData.FromJson<AddInput>(json);
        Assert.That((back.Argument1, back.Argument2), Is.EqualTo((2, 3)));
    }

    [Test]
    public void ToJson_WritesGuidsAsStrings_DatesAsIso8601_EnumsAsStrings()
    {
        var id = Guid.NewGuid();
        var input = new AdminUsersInput
        {
            CustomerId = id,
            Start = new DateTimeOffset(2026, 1, 2, 3, 4, 5, TimeSpan.FromHours(2)),
            Admins = [new AdminUser { Email = "a@example.com", Role = Role.Member }],
        };
        var json = input.ToJson();
        Assert.That(json["customer_id"]!.Type, Is.EqualTo(JTokenType.String));
        Assert.That(json["customer_id"]!.Value<string>(), Is.EqualTo(id.ToString()));
        Assert.That(json.ToString(Newtonsoft.Json.Formatting.None), Does.Contain("\"start\":\"2026-01-02T03:04:05+02:00\""));
        Assert.That(json["admins"]![0]!["role"]!.Value<string>(), Is.EqualTo("Member"));
        var back = WorkflowData.FromJson<AdminUsersInput>(Parse(json.ToString()));
        Assert.That(back.Start, Is.EqualTo(input.Start));
        Assert.That(back.Start.Offset, Is.EqualTo(TimeSpan.FromHours(2)));
    }

    [TestCase("""{"argument_1": 1, "ARGUMENT_1": 2}""", "ARGUMENT_1", "ignoring case")]
    [TestCase("""{"argument_1": 1, "argument_1": 2}""", "argument_1", "more than once")]
    [TestCase("""{"argument_1": 1 /* note */}""", "argument_1", "Malformed JSON")]
    [TestCase("""{"argument_1": 1,}""", "argument_1", "trailing comma")]
    [TestCase("""{'argument_1': 1}""", "", "Malformed JSON")]
    public void ParseObject_RefusesWhatIsNotStrictJson_NamingThePath(string json, string path, string message)
    {
        var ex = Assert.Throws<WorkflowDataValidationException>(() => WorkflowJson.ParseObject(json));

        Assert.That(ex!.Errors.Single().Path, Is.EqualTo(path));
        Assert.That(ex.Errors.Single().Message, Does.Contain(message));
    }

    [Test]
    public void FromJson_Throws_WhenABuiltObjectHasFieldNamesDifferingOnlyInCase()
    {
        var json = new JObject { ["argument_1"] = 1, ["Argument_1"] = 7 };

        var ex = Assert.Throws<WorkflowDataValidationException>(() => WorkflowData.FromJson<AddInput>(json));

        Assert.That(ex!.Errors.Single().Path, Is.EqualTo("test_step_input.Argument_1"));
        Assert.That(ex.Errors.Single().Message, Does.Contain("more than once").And.Contain("'argument_1'"));
    }

    [TestCase("""{"start": "2026-01-01T00:00:00Z", "admins": {"email": "a@example.com"}}""", "expected an array but got an object")]
    [TestCase("""{"start": "2026-01-01T00:00:00Z", "admins": [["a@example.com"]]}""", "expected an object but got an array")]
    [TestCase("""{"start": "2026-01-01T00:00:00Z", "admins": [{"email": "a@example.com", "role": "Boss"}]}""", "one of: Owner, Member")]
    [TestCase("""{"start": "2026-01-01T00:00:00Z", "customer_id": 5}""", "UUID")]
    public void FromJson_SpeaksJson_NotDotNetTypeNames(string json, string message)
    {
        var ex = Assert.Throws<WorkflowDataValidationException>(() => WorkflowData.FromJson<AdminUsersInput>(Parse(json)));

        Assert.That(ex!.Errors.Select(e => e.Message), Has.Some.Contains(message));
        Assert.That(ex.Message, Does.Not.Contain("System.").And.Not.Contain("`1").And.Not.Contain("Workflow.Jobs."));
    }

    [Test]
    public void FromJson_Throws_WithPathOfWrongType_NotJsonReaderException()
    {
        var ex = Assert.Throws<WorkflowDataValidationException>(() => WorkflowData.FromJson<AddInput>(Parse("{\"argument_1\":\"abc\",\"argument_2\":1}")));
        Assert.That(ex!.Errors.Select(e => e.Path), Is.EquivalentTo(new[] { "test_step_input.argument_1" }));
        Assert.That(ex.Code, Is.EqualTo("validation_failed"));
    }

    [Test]
    public void FromJson_ReportsEveryError_WithJsonPaths()
    {
        var json = Parse("""
            {"customer_id":"not-a-guid","admins":[{"email":"a@example.com"},{"email":"b@example.com"},{"email":"nope"}],
             "start":"2026-01-01T00:00:00Z","note":"far too long for ten"}
            """);
        var ex = Assert.Throws<WorkflowDataValidationException>(() => WorkflowData.FromJson<AdminUsersInput>(json));
        Assert.That(ex!.Errors.Select(e => e.Path), Is.EquivalentTo(new[] { "admin_users_input.customer_id" }));

        // With the type error fixed, every validation error is reported at once.
        json["customer_id"] = Guid.NewGuid().ToString();
        ex = Assert.Throws<WorkflowDataValidationException>(() => WorkflowData.FromJson<AdminUsersInput>(json));
        Assert.That(ex!.Errors.Select(e => e.Path), Is.EquivalentTo(new[] { "admin_users_input.note", "admin_users_input.admins[2].email" }));
        Assert.That(ex.Errors.Single(e => e.Path.EndsWith("note", StringComparison.Ordinal)).Message, Does.Contain("note"));
    }

    [Test]
    public void FromJson_ReportsMissingRequiredField()
    {
        var ex = Assert.Throws<WorkflowDataValidationException>(() => WorkflowData.FromJson<AdminUsersInput>(Parse("{\"admins\":[{\"email\":\"a@example.com\"}]}")));
        Assert.That(ex!.Errors, Has.Count.EqualTo(1));
        Assert.That(ex.Errors[0].Path, Is.EqualTo("admin_users_input.start"));
        Assert.That(ex.Errors[0].Message, Does.Contain("start").And.Contain("missing"));
    }

    [Test]
    public void FromJson_RunsValidatableObject()
    {
        var ex = Assert.Throws<WorkflowDataValidationException>(() => WorkflowData.FromJson<AdminUsersInput>(Parse("{\"start\":\"2026-01-01T00:00:00Z\"}")));
        Assert.That(ex!.Errors.Single().Path, Is.EqualTo("admin_users_input.admins"));
        Assert.That(ex.Errors.Single().Message, Is.EqualTo("At least one admin is required."));
    }

    [Test]
    public void FromJson_ReportsRangeAttribute()
    {
        var ex = Assert.Throws<WorkflowDataValidationException>(() => WorkflowData.FromJson<AddInput>(Parse("{\"argument_1\":-1}")));
        Assert.That(ex!.Errors.Single().Path, Is.EqualTo("test_step_input.argument_1"));
        Assert.That(ex.Errors.Single().Message, Does.Contain("argument_1"));
    }

    [Test]
    public void FromJson_RefusesUnknownFields()
    {
        var ex = Assert.Throws<WorkflowDataValidationException>(() => WorkflowData.FromJson<AddInput>(Parse("{\"argument_1\":1,\"argument_3\":2}")));
        Assert.That(ex!.Errors.Single().Message, Does.Contain("argument_3"));
    }

    [Test]
    public void FromJson_NeverInstantiatesTypeNames()
    {
        var json = Parse("""{"$type":"System.IO.FileInfo, System.IO.FileSystem","argument_1":1}""");
        var ex = Assert.Throws<WorkflowDataValidationException>(() => WorkflowData.FromJson<AddInput>(json));
        Assert.That(ex!.Errors.Single().Message, Does.Contain("$type"));
    }

    [Test]
    public void FromJson_ReportsNullForValueType()
    {
        var ex = Assert.Throws<WorkflowDataValidationException>(() => WorkflowData.FromJson<AddInput>(Parse("{\"argument_1\":null}")));
        Assert.That(ex!.Errors.Single().Path, Is.EqualTo("test_step_input.argument_1"));
        Assert.That(ex.Errors.Single().Message, Does.Contain("Null"));
    }

    [Test]
    public void FromJson_EmptyObject_GivesDefaults()
    {
        var value = WorkflowData.FromJson<AddInput>([]);
        Assert.That((value.Argument1, value.Argument2), Is.EqualTo((0, 0)));
    }

    [Test]
    public void ParseObject_ReportsMalformedJson()
    {
        var ex = Assert.Throws<WorkflowDataValidationException>(() => WorkflowJson.ParseObject("{\"argument_1\": 1,"));
        Assert.That(ex!.Errors.Single().Message, Does.StartWith("Malformed JSON"));
        ex = Assert.Throws<WorkflowDataValidationException>(() => WorkflowJson.ParseObject("[1,2]"));
        Assert.That(ex!.Errors.Single().Message, Does.Contain("an array"));
    }

    [Test]
    public void ParseObject_RefusesExcessiveNesting()
    {
        var deep = string.Concat(Enumerable.Repeat("{\"a\":", 200)) + "1" + new string('}', 200);
        Assert.Throws<WorkflowDataValidationException>(() => WorkflowJson.ParseObject(deep));
    }

    [Test]
    public void GetKey_Throws_NamingTheType_WhenKeyMissing()
    {
        var ex = Assert.Throws<WorkflowDefinitionException>(() => WorkflowData.GetKey<NoKeyData>());
        Assert.That(ex!.Message, Does.Contain(typeof(NoKeyData).FullName));
    }

    [Test]
    public void WorkflowInput_IsKeyedByWorkflowKey_AndTyped()
    {
        var input = new WorkflowInput(new AddInput { Argument1 = 2, Argument2 = 3 });
        Assert.That(input.ToJson().ToString(Newtonsoft.Json.Formatting.None), Is.EqualTo("{\"test_step_input\":{\"argument_1\":2,\"argument_2\":3}}"));
        var parsed = WorkflowInput.FromJson(JObject.Parse("{\"test_step_input\":{\"argument_1\":2,\"argument_2\":3}}"));
        Assert.That(parsed.Get<AddInput>()!.Argument2, Is.EqualTo(3));
        Assert.That(parsed.Get<SquareInput>(), Is.Null);
    }

    [Test]
    public void WorkflowInput_FromJson_RefusesNonObjectParts()
    {
        var ex = Assert.Throws<WorkflowDataValidationException>(() => WorkflowInput.FromJson(JObject.Parse("{\"test_step_input\":5}")));
        Assert.That(ex!.Errors.Single().Path, Is.EqualTo("test_step_input"));
    }

    [Test]
    public void WorkflowOutput_GetReturnsTypedPart()
    {
        var output = WorkflowOutput.FromJson(JObject.Parse("{\"test_step_output\":{\"result\":5}}"));
        Assert.That(output.Get<AddOutput>()!.Result, Is.EqualTo(5));
        Assert.That(output.Contains<SquareOutput>(), Is.False);
    }

    [TestCase("123", "an integer")]
    [TestCase("true", "a boolean")]
    [TestCase("{\"a\":1}", "an object")]
    public void FromJson_RefusesNonStringForTextField(string value, string described)
    {
        var json = Parse($"{{\"start\":\"2026-01-01T00:00:00Z\",\"admins\":[{{\"email\":\"a@example.com\"}}],\"note\":{value}}}");
        var ex = Assert.Throws<WorkflowDataValidationException>(() => WorkflowData.FromJson<AdminUsersInput>(json));
        Assert.That(ex!.Errors.Single().Path, Is.EqualTo("admin_users_input.note"));
        Assert.That(ex.Errors.Single().Message, Does.Contain("expected a string").And.Contain(described));
    }
}
