using System.Net;
using System.Net.Http.Headers;
using System.Text;
using Newtonsoft.Json.Linq;
using Npgsql;

namespace Workflow.Jobs.Sample.Tests;

/// <summary>
/// Hostile input through the HTTP API of the real sample host (All role, real PostgreSQL and Hangfire server):
/// malformed JSON, wrong types, missing and extra fields, nulls, very long strings, deep nesting, oversized bodies,
/// unknown workflows, <c>$type</c> payloads, broken Unicode, wrong content types, ids that are not GUIDs and bad
/// query parameters. Every case must get a 4xx whose body names the problem (with the field path where the problem
/// is in the data), must leave workflow.workflow_runs and hangfire.job as they were, and the host must go on
/// accepting and executing a valid run afterwards.
/// </summary>
public class HostileInputApiTests
{
    private const string Provisioning = "customer-provisioning";
    private const string Enqueue = "/api/workflows/" + Provisioning;
    private SampleHost _host = null!;
    private HttpClient _client = null!;
    private NpgsqlDataSource _database = null!;

    [OneTimeSetUp]
    public async Task StartAsync()
    {
        _host = await SampleHost.StartAsync(nameof(HostileInputApiTests));
        _client = _host.CreateClient();
        _database = NpgsqlDataSource.Create(_host.ConnectionString);
    }

    [OneTimeTearDown]
    public async Task StopAsync()
    {
        _client.Dispose();
        await _database.DisposeAsync();
        await _host.DisposeAsync();
    }

    /// <summary>One hostile request and the answer it must get.</summary>
    /// <param name="Status">The expected status.</param>
    /// <param name="ErrorPath">
    /// A path the errors must contain: the field in JSON names, "" for the whole request; ending with '*', a prefix (long paths
    /// are shortened); null: not checked (syntax errors, whose path is only where the reader stopped).
    /// </param>
    /// <param name="Message">Text the message of that error (or of any error when <paramref name="ErrorPath"/> is null) must contain, ignoring case.</param>
    public sealed record HostileRequest(string Method, string Path, HttpStatusCode Status, string? ErrorPath, string Message)
    {
        public byte[]? Body { get; init; }

        public string? ContentType { get; init; } = "application/json";

        /// <summary>Send without Content-Length (chunked), so the size limit must be enforced while reading.</summary>
        public bool UnknownLength { get; init; }

        public IReadOnlyList<(string Name, string Value)> Headers { get; init; } = [];
    }

    /// <summary>A valid provisioning input; each case breaks one thing in it.</summary>
    private static JObject ValidInput(string tag = "hostile") => JObject.Parse($$"""
        {
          "customer_input": { "name": "Acme {{tag}}", "email": "billing@{{tag}}.test" },
          "subscription_input": { "plan": "business", "seats": 10 },
          "admin_users_input": { "admins": [ { "email": "ann@{{tag}}.test", "name": "Ann" } ] }
        }
        """);

    private static byte[] Utf8(string text) => Encoding.UTF8.GetBytes(text);

    private static HostileRequest Post(string json, HttpStatusCode status, string? errorPath, string message, string path = Enqueue)
        => new("POST", path, status, errorPath, message) { Body = Utf8(json) };

    private static HostileRequest PostInput(Action<JObject> breakIt, string? errorPath, string message)
    {
        var input = ValidInput();
        breakIt(input);
        return Post(input.ToString(), HttpStatusCode.BadRequest, errorPath, message);
    }

    private static HostileRequest Get(string path, HttpStatusCode status, string? errorPath, string message)
        => new("GET", path, status, errorPath, message) { ContentType = null };

    private static string Nested(string open, string close, int depth, string inner = "1")
        => string.Concat(Enumerable.Repeat(open, depth)) + inner + string.Concat(Enumerable.Repeat(close, depth));

    public static IEnumerable<TestCaseData> HostileRequests()
    {
        var valid = ValidInput().ToString();
        var bad = HttpStatusCode.BadRequest;
        TestCaseData Case(string name, HostileRequest request) => new TestCaseData(request).SetArgDisplayNames(name);

        // Malformed JSON: RFC 8259 only (no Json.NET leniency), the first problem with its position.
        yield return Case("MalformedJson_Truncated", Post("""{"customer_input": {"name": "Acme" """, bad, null, "Malformed JSON"));
        yield return Case("MalformedJson_SingleQuotes", Post("{'customer_input': {'name': 'Acme'}}", bad, "", "Malformed JSON"));
        yield return Case("MalformedJson_UnquotedFieldNames", Post("{customer_input: {}}", bad, "", "Malformed JSON"));
        yield return Case("MalformedJson_Comment", Post("""{"customer_input": {/* x */}}""", bad, "customer_input", "Malformed JSON"));
        yield return Case("MalformedJson_TrailingComma", Post("""{"admin_users_input": {"admins": [{"email": "a@x.test"},]}}""", bad,
            "admin_users_input.admins[0]", "trailing comma"));
        yield return Case("MalformedJson_NaN", Post("""{"subscription_input": {"seats": NaN}}""", bad, "subscription_input.seats", "Malformed JSON"));
        yield return Case("MalformedJson_DuplicateField", Post("""{"customer_input": {"name": "A", "name": "B", "email": "a@x.test"}}""", bad,
            "customer_input.name", "more than once"));
        yield return Case("MalformedJson_DuplicateFieldDifferingInCase", Post("""{"subscription_input": {"seats": 7, "SEATS": 9}}""", bad,
            "subscription_input.SEATS", "more than once"));
        yield return Case("MalformedJson_DuplicateInputKeyDifferingInCase", Post("""{"customer_input": {"name": "A"}, "Customer_Input": {"name": "B"}}""", bad,
            "Customer_Input", "more than once"));
        yield return Case("MalformedJson_DuplicateFieldInListItem", Post("""{"admin_users_input": {"admins": [{"email": "a@x.test", "Email": "b@x.test"}]}}""", bad,
            "admin_users_input.admins[0].Email", "ignoring case"));
        yield return Case("MalformedJson_TrailingContent", Post(valid + " {}", bad, null, "Malformed JSON"));
        yield return Case("MalformedJson_NotUtf8", new HostileRequest("POST", Enqueue, bad, "", "UTF-8") { Body = [0x7B, 0x22, 0xC3, 0x28, 0x22, 0x7D] });
        yield return Case("NotAnObject_Array", Post("[1, 2]", bad, "", "Expected a JSON object"));
        yield return Case("NotAnObject_Null", Post("null", bad, "", "Expected a JSON object but got null"));
        yield return Case("NotAnObject_Number", Post("42", bad, "", "Expected a JSON object"));

        // Wrong types.
        yield return Case("WrongType_TextForInteger", PostInput(i => i["subscription_input"]!["seats"] = "ten", "subscription_input.seats", "Wrong type"));
        yield return Case("WrongType_FractionForInteger", PostInput(i => i["subscription_input"]!["seats"] = 1.5m, "subscription_input.seats", "whole number"));
        yield return Case("WrongType_BooleanForInteger", PostInput(i => i["subscription_input"]!["seats"] = true, "subscription_input.seats", "whole number"));
        yield return Case("WrongType_IntegerOutOfRange", Post("""{"subscription_input": {"seats": 99999999999999999999999}}""", bad,
            "subscription_input.seats", "not a whole number from -2147483648 to 2147483647"));
        yield return Case("WrongType_NumberBeyondDecimal", Post("""{"subscription_input": {"seats": 1e30}}""", bad, "subscription_input.seats", "out of range"));
        yield return Case("WrongType_ObjectForText", PostInput(i => i["customer_input"]!["name"] = new JObject { ["first"] = "A" }, "customer_input.name", "Wrong type"));
        yield return Case("WrongType_ListForText", PostInput(i => i["customer_input"]!["email"] = new JArray("a@x.test"), "customer_input.email", "Wrong type"));
        yield return Case("WrongType_TextForList", PostInput(i => i["admin_users_input"]!["admins"] = "ann@x.test", "admin_users_input.admins", "Wrong type"));
        yield return Case("WrongType_ObjectForList", PostInput(i => i["admin_users_input"]!["admins"] = new JObject { ["email"] = "ann@x.test" },
            "admin_users_input.admins*", "expected an array but got an object"));
        yield return Case("WrongType_ListForObject", PostInput(i => ((JArray)i["admin_users_input"]!["admins"]!)[0] = new JArray("ann@x.test"),
            "admin_users_input.admins[0]", "expected an object but got an array"));
        yield return Case("WrongType_TextForListItem", PostInput(i => ((JArray)i["admin_users_input"]!["admins"]!)[0] = "ann@x.test",
            "admin_users_input.admins[0]", "expected an object"));
        yield return Case("WrongType_NumberForInputPart", PostInput(i => i["customer_input"] = 5, "customer_input", "Expected an object"));
        yield return Case("WrongType_TextForEnumLikeField", PostInput(i => i["subscription_input"]!["plan"] = "gold", "subscription_input.plan", "starter, business or enterprise"));
        yield return Case("WrongType_NumberForText", PostInput(i => i["customer_input"]!["name"] = 123, "customer_input.name", "string"));

        // Missing and extra fields.
        yield return Case("Missing_EverythingRequired", Post("{}", bad, "customer_input.name", "required"));
        yield return Case("Missing_AdminEmail", PostInput(i => ((JObject)i["admin_users_input"]!["admins"]![0]!).Remove("email"), "admin_users_input.admins[0].email", "required"));
        yield return Case("Missing_EveryAdmin", PostInput(i => i["admin_users_input"]!["admins"] = new JArray(), "admin_users_input.admins", "minimum length"));
        yield return Case("Extra_UnknownField", PostInput(i => i["customer_input"]!["nickname"] = "Ace", "customer_input.nickname", "Unknown field 'nickname'"));
        yield return Case("Extra_UnknownFieldInListItem", PostInput(i => i["admin_users_input"]!["admins"]![0]!["role"] = "root", "admin_users_input.admins[0].role", "Unknown field"));
        yield return Case("Extra_UnknownInputKey", PostInput(i => i["billing_input"] = new JObject(), "billing_input", "Unknown input key"));

        // Nulls.
        yield return Case("Null_InputPart", PostInput(i => i["customer_input"] = JValue.CreateNull(), "customer_input", "got null"));
        yield return Case("Null_RequiredText", PostInput(i => i["customer_input"]!["name"] = JValue.CreateNull(), "customer_input.name", "required"));
        yield return Case("Null_Integer", PostInput(i => i["subscription_input"]!["seats"] = JValue.CreateNull(), "subscription_input.seats", "Null is not allowed"));
        yield return Case("Null_TextWithDefault", PostInput(i => i["customer_input"]!["country"] = JValue.CreateNull(), "customer_input.country", "two-letter"));
        yield return Case("Null_OptionalTextInListItem", PostInput(i => i["admin_users_input"]!["admins"]![0]!["name"] = JValue.CreateNull(),
            "admin_users_input.admins[0].name", "not null"));
        yield return Case("Null_ListEntry", PostInput(i => ((JArray)i["admin_users_input"]!["admins"]!).Add(JValue.CreateNull()), "admin_users_input.admins", "null at position 1"));
        yield return Case("Null_List", PostInput(i => i["admin_users_input"]!["admins"] = JValue.CreateNull(), "admin_users_input.admins", "required"));
        yield return Case("Null_TextOfLaterStep", PostInput(i => i["welcome_input"] = new JObject { ["subject"] = JValue.CreateNull() }, "welcome_input.subject", "not null"));
        yield return Case("Null_TextOfOtherWorkflow", Post("""{"usage_report_input": {"title": null}}""", bad, "usage_report_input.title", "not null", "/api/workflows/usage-report"));
        yield return Case("Empty_TextWithDefault", PostInput(i => i["customer_input"]!["country"] = "", "customer_input.country", "two-letter"));

        // Very long strings.
        yield return Case("LongString_OverTheFieldLimit", PostInput(i => i["customer_input"]!["name"] = new string('n', 201), "customer_input.name", "maximum length of 200"));
        yield return Case("LongString_200KiBValue", PostInput(i => i["customer_input"]!["email"] = new string('e', 200 * 1024) + "@x.test", "customer_input.email", "maximum length"));
        var longName = new string('k', 100 * 1024);
        yield return Case("LongString_100KiBFieldName", PostInput(i => i["customer_input"]![longName] = 1, "customer_input.kkkkkkkk*", "Unknown field"));
        yield return Case("LongString_IdempotencyKey", new HostileRequest("POST", Enqueue, bad, "Idempotency-Key", "at most 200 characters")
        {
            Body = Utf8(valid),
            Headers = [("Idempotency-Key", new string('i', 201))],
        });
        yield return Case("LongString_WorkflowName", Post(valid, HttpStatusCode.NotFound, "", "Unknown workflow", "/api/workflows/" + new string('w', 4000)));

        // Deep nesting: the limit is 64 levels, checked before anything recursive reads the data.
        yield return Case("DeepNesting_10000Arrays", Post("{\"customer_input\": {\"name\": " + Nested("[", "]", 10_000) + "}}", bad, null, "depth of 64"));
        yield return Case("DeepNesting_100Objects", Post("{\"customer_input\": {\"extra\": " + Nested("{\"a\":", "}", 100) + "}}", bad, null, "depth of 64"));
        yield return Case("DeepNesting_WithinTheLimit", PostInput(i => i["customer_input"]!["extra"] = JToken.Parse(Nested("[", "]", 50)),
            "customer_input.extra", "Unknown field 'extra'"));

        // Oversized bodies: WorkflowJobs:Api:MaxRequestBodyBytes, 256 KiB by default; 4 KiB for the fake API.
        var oversized = ValidInput();
        oversized["customer_input"]!["name"] = new string('o', 300 * 1024);
        yield return Case("Oversized_DeclaredLength", Post(oversized.ToString(), HttpStatusCode.RequestEntityTooLarge, "", "262144"));
        yield return Case("Oversized_Chunked", Post(oversized.ToString(), HttpStatusCode.RequestEntityTooLarge, "", "262144") with { UnknownLength = true });
        yield return Case("Oversized_FakeApiBody", Post($$"""{"operation": "create_subscription", "times": 1, "pad": "{{new string('p', 5000)}}"}""",
            HttpStatusCode.RequestEntityTooLarge, "", "larger than 4096 bytes", "/api/fake-api/failures"));

        // Unknown workflows.
        yield return Case("UnknownWorkflow", Post(valid, HttpStatusCode.NotFound, "", "Unknown workflow 'no-such-workflow'", "/api/workflows/no-such-workflow"));
        yield return Case("UnknownWorkflow_Markup", Post(valid, HttpStatusCode.NotFound, "", "Unknown workflow '<script>'", "/api/workflows/%3Cscript%3E"));
        yield return Case("UnknownWorkflow_RunIdAsName", Post(valid, HttpStatusCode.NotFound, "", "Unknown workflow", $"/api/workflows/{Guid.NewGuid()}"));
        yield return Case("UnknownWorkflow_StepName", Post(valid, HttpStatusCode.NotFound, "", "Unknown workflow", "/api/workflows/create-subscription"));

        // $type and other Json.NET metadata are ordinary (unknown) field names: no type is ever named, loaded or created.
        const string Gadget = "System.Diagnostics.Process, System.Diagnostics.Process";
        yield return Case("TypeName_InStepInput", PostInput(i => i["customer_input"]!["$type"] = Gadget, "customer_input.$type", "Unknown field '$type'"));
        yield return Case("TypeName_AtTopLevel", PostInput(i => i.AddFirst(new JProperty("$type", Gadget)), "$type", "Unknown input key"));
        yield return Case("TypeName_InListItem", PostInput(i => ((JObject)i["admin_users_input"]!["admins"]![0]!).AddFirst(new JProperty("$type", Gadget)),
            "admin_users_input.admins[0].$type", "Unknown field '$type'"));
        yield return Case("TypeName_WrappingAList", PostInput(i => i["admin_users_input"]!["admins"] = new JObject
        {
            ["$type"] = "System.Collections.Generic.List`1[[System.Object, System.Private.CoreLib]], System.Private.CoreLib",
            ["$values"] = new JArray(new JObject { ["$type"] = Gadget }),
        }, "admin_users_input.admins*", "Wrong type"));
        yield return Case("TypeName_Reference", PostInput(i => i["customer_input"] = new JObject { ["$ref"] = "1" }, "customer_input.$ref", "Unknown field '$ref'"));

        // Text PostgreSQL cannot store, or that is not Unicode.
        yield return Case("Unicode_NulCharacter", PostInput(i => i["customer_input"]!["name"] = "Acme\0Corp", "customer_input.name", "NUL character"));
        yield return Case("Unicode_LoneSurrogateEscape", Post("""{"customer_input": {"name": "Acme \ud800", "email": "a@x.test"}}""", bad, "customer_input.name", "surrogate"));

        // Content types.
        yield return Case("ContentType_TextPlain", Post(valid, HttpStatusCode.UnsupportedMediaType, "Content-Type", "application/json") with { ContentType = "text/plain; charset=utf-8" });
        yield return Case("ContentType_Form", Post("customer_input=x", HttpStatusCode.UnsupportedMediaType, "Content-Type", "application/json") with { ContentType = "application/x-www-form-urlencoded" });
        yield return Case("ContentType_Xml", Post("<input/>", HttpStatusCode.UnsupportedMediaType, "Content-Type", "application/json") with { ContentType = "application/xml" });
        yield return Case("ContentType_Utf16Charset", Post(valid, HttpStatusCode.UnsupportedMediaType, "Content-Type", "application/json") with { ContentType = "application/json; charset=utf-16" });
        yield return Case("ContentType_Missing", Post(valid, HttpStatusCode.UnsupportedMediaType, "Content-Type", "application/json") with { ContentType = null });
        yield return Case("ContentType_MissingOnRetry", new HostileRequest("POST", $"/api/workflows/{Guid.NewGuid()}/retry", HttpStatusCode.UnsupportedMediaType,
            "Content-Type", "application/json") { Body = [], ContentType = null });
        yield return Case("ContentType_FormOnCancel", new HostileRequest("POST", $"/api/workflows/{Guid.NewGuid()}/cancel", HttpStatusCode.UnsupportedMediaType,
            "Content-Type", "application/json") { Body = Utf8("a=b"), ContentType = "application/x-www-form-urlencoded" });
        yield return Case("ContentType_TextPlainOnCancel", new HostileRequest("POST", $"/api/workflows/{Guid.NewGuid()}/cancel", HttpStatusCode.UnsupportedMediaType,
            "Content-Type", "application/json") { Body = [], ContentType = "text/plain" });
        yield return Case("ContentType_FakeApiMissing", Post("""{"operation": "create_subscription", "times": 1}""", HttpStatusCode.UnsupportedMediaType, "",
            "application/json", "/api/fake-api/failures") with { ContentType = null });
        yield return Case("ContentType_FakeApiTextPlain", Post("""{"operation": "create_subscription", "times": 1}""", HttpStatusCode.UnsupportedMediaType, "",
            "application/json", "/api/fake-api/failures") with { ContentType = "text/plain" });

        // Run ids in routes.
        yield return Case("RouteId_NotAGuid_Get", Get("/api/workflows/not-a-guid", HttpStatusCode.NotFound, "id", "'not-a-guid' is not a workflow run id"));
        yield return Case("RouteId_NotAGuid_Retry", new HostileRequest("POST", "/api/workflows/12345/retry", HttpStatusCode.NotFound, "id", "'12345' is not a workflow run id"));
        yield return Case("RouteId_NotAGuid_Cancel", new HostileRequest("POST", "/api/workflows/%27%3B%20DROP%20TABLE%20x%3B--/cancel", HttpStatusCode.NotFound, "id",
            "'; DROP TABLE x;--' is not a workflow run id"));
        yield return Case("RouteId_UnknownRun_Retry", new HostileRequest("POST", $"/api/workflows/{Guid.NewGuid()}/retry", HttpStatusCode.NotFound, "", "does not exist")
        {
            Body = [],
        });

        // Query parameters of the list.
        yield return Case("Query_StatusUnknown", Get("/api/workflows?status=Exploded", bad, "status", "Unknown status 'Exploded'"));
        yield return Case("Query_StatusNumber", Get("/api/workflows?status=3", bad, "status", "Unknown status"));
        yield return Case("Query_StatusCombination", Get("/api/workflows?status=Running,Succeeded", bad, "status", "Unknown status 'Running,Succeeded'"));
        yield return Case("Query_LimitNotANumber", Get("/api/workflows?limit=ten", bad, "limit", "whole number from 1 to 1000"));
        yield return Case("Query_LimitHuge", Get("/api/workflows?limit=99999999999999999999", bad, "limit", "whole number from 1 to 1000"));
        yield return Case("Query_LimitFraction", Get("/api/workflows?limit=1.5", bad, "limit", "whole number"));
        yield return Case("Query_LimitRepeated", Get("/api/workflows?limit=1&limit=2", bad, "limit", "whole number"));
        yield return Case("Query_NameWithNul", Get("/api/workflows?name=customer%00provisioning", bad, "name", "NUL"));
        yield return Case("Query_StatusWithNul", Get("/api/workflows?status=Failed%00", bad, "status", "Unknown status"));
        yield return Case("Query_StatusRepeated", Get("/api/workflows?status=Failed&status=Running", bad, "status", "Unknown status"));
        yield return Case("Definition_Unknown", Get("/api/workflow-definitions/no-such-workflow", HttpStatusCode.NotFound, "", "Unknown workflow 'no-such-workflow'"));
        yield return Case("Query_OffsetNegative", Get("/api/workflows?offset=-1", bad, "offset", "at least 0"));

        // Headers.
        yield return Case("IdempotencyKey_Blank", new HostileRequest("POST", Enqueue, bad, "Idempotency-Key", "non-blank") { Body = Utf8(valid), Headers = [("Idempotency-Key", "   ")] });
        yield return Case("IdempotencyKey_Repeated", new HostileRequest("POST", Enqueue, bad, "Idempotency-Key", "one non-blank value")
        {
            Body = Utf8(valid),
            Headers = [("Idempotency-Key", "a"), ("Idempotency-Key", "b")],
        });

        // The fake API's control endpoint.
        yield return Case("FakeApi_UnknownOperation", Post("""{"operation": "drop_database", "times": 1}""", bad, "operation", "Expected one of", "/api/fake-api/failures"));
        yield return Case("FakeApi_TextForTimes", Post("""{"operation": "create_subscription", "times": "1"}""", bad, "times", "whole number", "/api/fake-api/failures"));
        yield return Case("FakeApi_ExtraField", Post("""{"operation": "create_subscription", "times": 1, "forever": true}""", bad, "forever", "Unknown field", "/api/fake-api/failures"));
        yield return Case("FakeApi_EmptyBody", Post("", bad, "", "Malformed JSON", "/api/fake-api/failures"));
        yield return Case("FakeApi_HugeInteger", Post("""{"operation": "create_subscription", "times": 99999999999999999999}""", bad, "times", "whole number",
            "/api/fake-api/failures"));
        yield return Case("FakeApi_ExponentNumber", Post("""{"operation": "create_subscription", "times": 1e30}""", bad, "times", "out of range",
            "/api/fake-api/failures"));
        yield return Case("FakeApi_NegativeHugeInteger", Post("""{"operation": "create_subscription", "times": -99999999999999999999}""", bad, "times", "whole number",
            "/api/fake-api/failures"));
        yield return Case("FakeApi_DuplicateFieldDifferingInCase", Post("""{"operation": "create_subscription", "times": 0, "TIMES": 20}""", bad, "TIMES",
            "more than once", "/api/fake-api/failures"));
        yield return Case("FakeApi_DuplicateField", Post("""{"operation": "create_subscription", "times": 0, "times": 20}""", bad, "times", "more than once", "/api/fake-api/failures"));
    }

    [TestCaseSource(nameof(HostileRequests))]
    public async Task HostileRequest_Gets4xxNamingTheProblem_AndChangesNothing(HostileRequest hostile)
    {
        var runsBefore = await CountAsync("workflow.workflow_runs");
        var jobsBefore = await CountAsync("hangfire.job");

        using var response = await _client.SendAsync(ToMessage(hostile));
        var text = await response.Content.ReadAsStringAsync();

        Assert.That(response.StatusCode, Is.EqualTo(hostile.Status), Shorten(text));
        Assert.That(response.Content.Headers.ContentType?.MediaType, Is.EqualTo("application/problem+json"), Shorten(text));
        SampleHost.AssertProblem(SampleHost.Parse(text), hostile.Status, Shorten(text));
        Assert.That(text, Does.Not.Match(@"System\.|Workflow\.Jobs\.|Newtonsoft|`1"), "messages speak JSON, not .NET type names");
        var errors = SampleHost.Parse(text)["errors"]!.Select(e => (Path: e["path"]!.Value<string>()!, Message: e["message"]!.Value<string>()!)).ToList();
        Assert.That(errors, Is.Not.Empty);
        Assert.That(errors.Select(e => e.Message), Has.All.Not.Empty);
        var named = hostile.ErrorPath switch
        {
            null => errors,
            [.. var prefix, '*'] => errors.Where(e => e.Path.StartsWith(prefix, StringComparison.Ordinal)).ToList(),
            var path => errors.Where(e => e.Path == path).ToList(),
        };
        Assert.That(named, Is.Not.Empty, $"an error at '{Shorten(hostile.ErrorPath ?? "")}'; got: {Shorten(text)}");
        Assert.That(named.Select(e => e.Message), Has.Some.Contains(hostile.Message).IgnoreCase, Shorten(text));

        Assert.That(await CountAsync("workflow.workflow_runs"), Is.EqualTo(runsBefore), "no run stored");
        Assert.That(await CountAsync("hangfire.job"), Is.EqualTo(jobsBefore), "no job created");

        // The host keeps serving: a valid run is accepted and executed.
        var id = await SampleHost.EnqueueAsync(_client, Provisioning, ValidInput("after" + Guid.NewGuid().ToString("N")[..8]));
        await SampleHost.WaitForStatusAsync(_client, id, WorkflowStatus.Succeeded);
    }

    [Test]
    public async Task Enqueue_KeepsUnicodeIntact_WhenInputHasNonAsciiText()
    {
        // Combining marks, right-to-left text and a bidi override, characters outside the BMP (surrogate pairs),
        // a zero-width joiner sequence, and the same text sent escaped.
        const string Name = "Ærøskøbing Åström e\u0301 株式会社 مرحبا \u202Etxet\u202C 🚀 👩\u200D💻 𝔘𝔫𝔦𝔠𝔬𝔡𝔢";
        const string Email = "zoë@exämple.test";
        var input = ValidInput("unicode");
        input["customer_input"]!["name"] = Name;
        input["customer_input"]!["email"] = Email;
        input["admin_users_input"]!["admins"]![0]!["name"] = "Дарья 🌻";
        input["welcome_input"] = new JObject { ["subject"] = "ようこそ — 歡迎 — Καλώς ήρθατε" };
        var escaped = ValidInput("escaped").ToString().Replace("Acme escaped", "\\u00c6r\\u00f8 \\ud83d\\ude80", StringComparison.Ordinal);

        var id = await SampleHost.EnqueueAsync(_client, Provisioning, input);
        var escapedId = await SampleHost.EnqueueAsync(_client, Provisioning, JObject.Parse(escaped));
        var run = await SampleHost.WaitForStatusAsync(_client, id, WorkflowStatus.Succeeded);
        var escapedRun = await SampleHost.WaitForStatusAsync(_client, escapedId, WorkflowStatus.Succeeded);

        Assert.That(run["input"]!["customer_input"]!["name"]!.Value<string>(), Is.EqualTo(Name));
        Assert.That(run["input"]!["customer_input"]!["email"]!.Value<string>(), Is.EqualTo(Email));
        Assert.That(run["input"]!["admin_users_input"]!["admins"]![0]!["name"]!.Value<string>(), Is.EqualTo("Дарья 🌻"));
        Assert.That(run["input"]!["welcome_input"]!["subject"]!.Value<string>(), Is.EqualTo("ようこそ — 歡迎 — Καλώς ήρθατε"));
        var step = run["steps"]!.Single(s => s["name"]!.Value<string>() == "get-or-create-customer");
        Assert.That(step["input"]!["name"]!.Value<string>(), Is.EqualTo(Name), "the step's stored input");
        Assert.That(escapedRun["input"]!["customer_input"]!["name"]!.Value<string>(), Is.EqualTo("Ærø 🚀"));
        await using var command = _database.CreateCommand("SELECT input_data -> 'customer_input' ->> 'name' FROM workflow.workflow_runs WHERE uuid = $1");
        command.Parameters.AddWithValue(id);
        Assert.That(await command.ExecuteScalarAsync(), Is.EqualTo(Name), "as stored in PostgreSQL");
    }

    private async Task<long> CountAsync(string table)
    {
        await using var command = _database.CreateCommand($"SELECT count(*) FROM {table}");
        return (long)(await command.ExecuteScalarAsync())!;
    }

    private static HttpRequestMessage ToMessage(HostileRequest hostile)
    {
        var message = new HttpRequestMessage(new HttpMethod(hostile.Method), hostile.Path);
        if (hostile.Body is { } body)
        {
            message.Content = hostile.UnknownLength ? new UnknownLengthContent(body) : new ByteArrayContent(body);
            if (hostile.ContentType is { } type)
            {
                message.Content.Headers.ContentType = MediaTypeHeaderValue.Parse(type);
            }
        }

        foreach (var (name, value) in hostile.Headers)
        {
            message.Headers.Add(name, value);
        }

        return message;
    }

    private static string Shorten(string text) => text.Length > 600 ? text[..600] + "…" : text;
}
