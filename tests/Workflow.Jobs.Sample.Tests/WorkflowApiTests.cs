using System.Net;
using System.Net.Http.Headers;
using System.Text;
using Newtonsoft.Json.Linq;
using Npgsql;

namespace Workflow.Jobs.Sample.Tests;

/// <summary>The HTTP API through the real sample host (All role) on real PostgreSQL: status codes and bodies.</summary>
public class WorkflowApiTests
{
    private const string Provisioning = "customer-provisioning";
    private SampleHost _host = null!;
    private HttpClient _client = null!;

    [OneTimeSetUp]
    public async Task StartAsync()
    {
        _host = await SampleHost.StartAsync(nameof(WorkflowApiTests));
        _client = _host.CreateClient();
    }

    [OneTimeTearDown]
    public async Task StopAsync()
    {
        _client.Dispose();
        await _host.DisposeAsync();
    }

    private static JObject ValidInput(string email, int subscriptionFailures = 0) => JObject.Parse($$"""
        {
          "customer_input": { "name": "Acme", "email": "{{email}}" },
          "subscription_input": { "plan": "business", "seats": 10, "simulate_failures": {{subscriptionFailures}} },
          "admin_users_input": { "admins": [ { "email": "ann@{{email.Split('@')[1]}}", "name": "Ann" } ] }
        }
        """);

    private async Task<(HttpStatusCode Status, JToken Body)> PostAsync(string path, HttpContent? content)
    {
        using var response = await _client.PostAsync(path, content);
        return (response.StatusCode, await SampleHost.ReadJsonAsync(response));
    }

    private async Task<long> CountRunsAsync(string where, params (string Name, object Value)[] parameters)
    {
        await using var connection = new NpgsqlConnection(_host.ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand($"SELECT count(*) FROM workflow.workflow_runs WHERE {where}", connection);
        foreach (var (name, value) in parameters)
        {
            command.Parameters.AddWithValue(name, value);
        }

        return (long)(await command.ExecuteScalarAsync())!;
    }

    [Test]
    public async Task GetDefinitions_ListsEachWorkflowsStepsAndRetryPolicy()
    {
        using var response = await _client.GetAsync("/api/workflow-definitions");
        var body = (JArray)await SampleHost.ReadJsonAsync(response);

        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.OK));
        Assert.That(body.Select(d => d["name"]!.Value<string>()), Is.EqualTo(new[] { Provisioning, "customer-provisioning-compensated", "provision-subsidiaries", "usage-report" }), "ordered by name");
        var provisioning = body.Single(d => d["name"]!.Value<string>() == Provisioning);
        Assert.That(provisioning["steps"]!.Select(s => s["name"]!.Value<string>()),
            Is.EqualTo(new[] { "get-or-create-customer", "create-subscription", "create-admin-users", "send-welcome" }));
        Assert.That(provisioning["steps"]![0]!["inputKey"]!.Value<string>(), Is.EqualTo("customer_input"));
        Assert.That(provisioning["steps"]![0]!["outputKey"]!.Value<string>(), Is.EqualTo("customer_output"));
        var report = body.Single(d => d["name"]!.Value<string>() == "usage-report");
        Assert.That(report["retry"]!["attempts"]!.Value<int>(), Is.EqualTo(1), "the usage report's own retry policy");
        Assert.That(provisioning["retry"]!["attempts"]!.Value<int>(), Is.EqualTo(2), "the host default from WorkflowJobs:Retry");
    }

    [Test]
    public async Task GetDefinition_DescribesTheCompositeInputAsJsonSchema()
    {
        using var response = await _client.GetAsync($"/api/workflow-definitions/{Provisioning}");
        var body = await SampleHost.ReadJsonAsync(response);

        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.OK));
        Assert.That(body["name"]!.Value<string>(), Is.EqualTo(Provisioning));
        var schema = (JObject)body["inputSchema"]!;
        Assert.That(schema["$schema"]!.Value<string>(), Does.Contain("json-schema.org"));
        Assert.That(schema["type"]!.Value<string>(), Is.EqualTo("object"));
        Assert.That(schema["additionalProperties"]!.Value<bool>(), Is.False, "unknown input keys are refused");
        Assert.That(((JObject)schema["properties"]!).Properties().Select(p => p.Name),
            Is.EqualTo(new[] { "customer_input", "subscription_input", "admin_users_input", "welcome_input" }));
        Assert.That(schema["required"]!.Values<string>(), Is.EquivalentTo(new[] { "customer_input", "admin_users_input" }),
            "the parts whose empty object is refused");

        JObject Part(string key) => Resolve(schema, schema["properties"]![key]!);
        JObject Field(string key, string name) => Resolve(schema, Part(key)["properties"]![name]!);
        string?[] Required(JObject objectSchema) => objectSchema["required"]?.Values<string>().ToArray() ?? [];

        var customer = Part("customer_input");
        Assert.That(customer["additionalProperties"]!.Value<bool>(), Is.False, "unknown fields are refused");
        Assert.That(Field("customer_input", "name")["type"]!.Value<string>(), Is.EqualTo("string"));
        Assert.That(Field("customer_input", "name")["maxLength"]!.Value<int>(), Is.EqualTo(200));
        Assert.That(Field("customer_input", "name")["description"]!.Value<string>(), Is.EqualTo("The customer's name."));
        Assert.That(Field("customer_input", "email")["format"]!.Value<string>(), Is.EqualTo("email"));
        Assert.That(Required(customer), Is.EquivalentTo(new[] { "name", "email" }), "country falls back to a valid default");
        Assert.That(Field("customer_input", "country")["default"]!.Value<string>(), Is.EqualTo("US"));
        Assert.That(Field("customer_input", "country")["pattern"]!.Value<string>(), Is.EqualTo("^[A-Z]{2}$"));
        Assert.That(Field("subscription_input", "seats")["type"]!.Value<string>(), Is.EqualTo("integer"));
        Assert.That(Field("subscription_input", "seats")["maximum"]!.Value<int>(), Is.EqualTo(10_000));
        Assert.That(Field("subscription_input", "plan")["enum"]!.Values<string>(), Is.EqualTo(new[] { "starter", "business", "enterprise" }));
        var admins = Field("admin_users_input", "admins");
        Assert.That(admins["type"]!.Value<string>(), Is.EqualTo("array"));
        Assert.That(Required(Part("admin_users_input")), Does.Contain("admins"));
        Assert.That(admins["minItems"]!.Value<int>(), Is.EqualTo(1));
        var admin = Resolve(schema, admins["items"]!);
        Assert.That(Required(admin), Does.Contain("email"));
        Assert.That(Resolve(schema, admin["properties"]!["email"]!)["format"]!.Value<string>(), Is.EqualTo("email"));
    }

    [Test]
    public async Task GetDefinition_Returns404_WhenWorkflowIsUnknown()
    {
        using var response = await _client.GetAsync("/api/workflow-definitions/no-such-workflow");
        var body = await SampleHost.ReadJsonAsync(response);

        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.NotFound));
        Assert.That(body["errors"]![0]!["message"]!.Value<string>(), Does.Contain("no-such-workflow"));
    }

    [Test]
    public async Task OpenApiDocument_ListsTheWorkflowEndpoints()
    {
        using var response = await _client.GetAsync("/openapi/v1.json");
        var text = await response.Content.ReadAsStringAsync();

        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.OK), text);
        var paths = (JObject)SampleHost.Parse(text)["paths"]!;
        Assert.That(paths.Properties().Select(p => p.Name), Is.SupersetOf(new[]
        {
            "/api/workflows", "/api/workflows/{name}", "/api/workflows/{id}", "/api/workflows/{id}/retry", "/api/workflows/{id}/cancel",
            "/api/workflows/{name}/batch", "/api/workflows/{id}/fork",
            "/api/workflow-definitions", "/api/workflow-definitions/{name}",
        }));
        Assert.That(paths["/api/workflows/{name}"]!["post"]!["operationId"]!.Value<string>(), Is.EqualTo("WorkflowJobs_Enqueue"));
        Assert.That(((JObject)paths["/api/workflows/{name}"]!["post"]!["responses"]!).Properties().Select(p => p.Name),
            Is.SupersetOf(new[] { "202", "400", "404", "415", "503" }));
        Assert.That(paths["/api/workflows"]!["get"]!["tags"]![0]!.Value<string>(), Is.EqualTo("Workflows"));
    }

    /// <summary>A schema with its <c>$ref</c> (to <c>#/definitions/..</c>, possibly inside a one-element <c>allOf</c>/<c>oneOf</c>) followed.</summary>
    private static JObject Resolve(JObject root, JToken schema)
    {
        var current = (JObject)schema;
        for (var hops = 0; hops < 10; hops++)
        {
            if (current["$ref"]?.Value<string>() is { } reference)
            {
                Assert.That(reference, Does.StartWith("#/"), "references stay inside the document");
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

    [Test]
    public async Task Enqueue_Returns202WithIdAndLocation_WhenInputIsValid()
    {
        using var response = await _client.PostAsync($"/api/workflows/{Provisioning}", SampleHost.Json(ValidInput("ops@valid.test")));
        var body = await SampleHost.ReadJsonAsync(response);

        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.Accepted));
        var id = Guid.Parse(body["id"]!.Value<string>()!);
        Assert.That(response.Headers.Location?.ToString(), Is.EqualTo($"/api/workflows/{id}"));
        var run = await SampleHost.WaitForStatusAsync(_client, id, WorkflowStatus.Succeeded);
        Assert.That(run["workflowName"]!.Value<string>(), Is.EqualTo(Provisioning));
        Assert.That(run["completedSteps"]!.Value<int>(), Is.EqualTo(4));
        Assert.That(run["steps"]!.Select(s => s["status"]!.Value<string>()), Is.All.EqualTo("Succeeded"));
        Assert.That(run["output"]!["subscription_output"]!["plan"]!.Value<string>(), Is.EqualTo("business"));
        Assert.That(run["input"]!["customer_input"]!["email"]!.Value<string>(), Is.EqualTo("ops@valid.test"));
    }

    [Test]
    public async Task GetRun_ReturnsTheRunWithItsSteps_WhenItExists()
    {
        var id = await SampleHost.EnqueueAsync(_client, Provisioning, ValidInput("ops@get.test"));
        await SampleHost.WaitForStatusAsync(_client, id, WorkflowStatus.Succeeded);

        using var response = await _client.GetAsync($"/api/workflows/{id}");
        var run = await SampleHost.ReadJsonAsync(response);

        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.OK));
        Assert.That(run["id"]!.Value<string>(), Is.EqualTo(id.ToString()));
        var steps = (JArray)run["steps"]!;
        Assert.That(steps.Select(s => s["name"]!.Value<string>()), Is.EqualTo(new[] { "get-or-create-customer", "create-subscription", "create-admin-users", "send-welcome" }));
        Assert.That(steps[1]["precedingStepId"]!.Value<string>(), Is.EqualTo(steps[0]["id"]!.Value<string>()));
        Assert.That(steps[0]["attempts"]!.Value<int>(), Is.EqualTo(1));
        Assert.That(steps[0]["output"]!["customer_id"]!.Value<string>(), Does.StartWith("cus_"));
        Assert.That(run["succeededAt"]!.Type, Is.EqualTo(JTokenType.String));
        Assert.That(run["links"]!["job"]!.Value<string>(), Does.StartWith("/hangfire/jobs/details/"));
    }

    [Test]
    public async Task GetRun_CarriesEachStepsAttemptHistory_WhenAStepFailedBeforeSucceeding()
    {
        var id = await SampleHost.EnqueueAsync(_client, Provisioning, ValidInput("ops@history.test", subscriptionFailures: 1));
        await SampleHost.WaitForStatusAsync(_client, id, WorkflowStatus.Succeeded);

        using var response = await _client.GetAsync($"/api/workflows/{id}");
        var run = await SampleHost.ReadJsonAsync(response);

        var history = (JArray)run["steps"]!.Single(s => s["name"]!.Value<string>() == "create-subscription")["history"]!;
        Assert.That(history.Select(a => a["attempt"]!.Value<int>()), Is.EqualTo(new[] { 1, 2 }));
        Assert.That(history.Select(a => a["status"]!.Value<string>()), Is.EqualTo(new[] { "Failed", "Succeeded" }));
        var failed = history[0];
        Assert.Multiple(() =>
        {
            Assert.That(failed["exceptionMessage"]!.Value<string>(), Is.Not.Empty);
            Assert.That(failed["exceptionType"]!.Value<string>(), Does.Contain("Exception"));
            Assert.That(failed["stackTrace"]!.Value<string>(), Does.Contain(failed["exceptionMessage"]!.Value<string>()));
            Assert.That(failed["startedAt"]!.Type, Is.EqualTo(JTokenType.String));
            Assert.That(failed["finishedAt"]!.Type, Is.EqualTo(JTokenType.String));
            Assert.That(failed["durationMs"]!.Type, Is.EqualTo(JTokenType.Float).Or.EqualTo(JTokenType.Integer));
            Assert.That(history.Select(a => a["jobId"]!.Value<string>()), Is.All.EqualTo(run["jobId"]!.Value<string>()));
            Assert.That(history.Select(a => a["serverName"]!.Value<string>()), Is.All.Not.Empty);
            Assert.That(history[1]["exceptionMessage"]!.Type, Is.EqualTo(JTokenType.Null));
        });
    }

    [Test]
    public async Task Enqueue_Returns400WithEveryFieldErrorAndPersistsNothing_WhenInputIsInvalid()
    {
        var before = await CountRunsAsync("true");
        var input = JObject.Parse("""
            {
              "customer_input": { "name": "", "email": "not-an-email" },
              "subscription_input": { "plan": "gold", "seats": 0 },
              "admin_users_input": { "admins": [ { "email": "ok@x.test" }, { "email": "broken" } ] }
            }
            """);

        var (status, body) = await PostAsync($"/api/workflows/{Provisioning}", SampleHost.Json(input));

        Assert.That(status, Is.EqualTo(HttpStatusCode.BadRequest));
        var paths = body["errors"]!.Select(e => e["path"]!.Value<string>()).ToList();
        Assert.That(paths, Is.SupersetOf(new[]
        {
            "customer_input.name", "customer_input.email", "subscription_input.plan", "subscription_input.seats", "admin_users_input.admins[1].email",
        }));
        Assert.That(body["errors"]!.All(e => e["message"]!.Value<string>()!.Length > 0), Is.True);
        Assert.That(await CountRunsAsync("true"), Is.EqualTo(before));
    }

    [TestCase("{\"customer_input\":", TestName = "Enqueue_Returns400_WhenJsonIsTruncated")]
    [TestCase("{\"customer_input\": {} } trailing", TestName = "Enqueue_Returns400_WhenJsonHasTrailingContent")]
    [TestCase("[1, 2]", TestName = "Enqueue_Returns400_WhenJsonIsAnArray")]
    [TestCase("\"text\"", TestName = "Enqueue_Returns400_WhenJsonIsAString")]
    [TestCase("{\"customer_input\": 5}", TestName = "Enqueue_Returns400_WhenAnInputPartIsNotAnObject")]
    public async Task Enqueue_Returns400WithAnError_WhenBodyIsNotAJsonObjectOfObjects(string json)
    {
        var (status, body) = await PostAsync($"/api/workflows/{Provisioning}", SampleHost.Json(json));

        Assert.That(status, Is.EqualTo(HttpStatusCode.BadRequest));
        Assert.That(body["errors"]!, Is.Not.Empty);
        Assert.That(body["errors"]![0]!["message"]!.Value<string>(), Is.Not.Empty);
    }

    [Test]
    public async Task Enqueue_Returns400_WhenBodyIsNotUtf8()
    {
        var content = new ByteArrayContent([0x7B, 0xFF, 0xFE, 0x7D]);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");

        var (status, body) = await PostAsync($"/api/workflows/{Provisioning}", content);

        Assert.That(status, Is.EqualTo(HttpStatusCode.BadRequest));
        Assert.That(body["errors"]![0]!["message"]!.Value<string>(), Does.Contain("UTF-8"));
    }

    [Test]
    public async Task Enqueue_Returns404_WhenWorkflowIsUnknown()
    {
        var (status, body) = await PostAsync("/api/workflows/no-such-workflow", SampleHost.Json("{}"));

        Assert.That(status, Is.EqualTo(HttpStatusCode.NotFound));
        Assert.That(body["errors"]![0]!["message"]!.Value<string>(), Does.Contain("no-such-workflow"));
    }

    [Test]
    public async Task Enqueue_Returns415_WhenContentTypeIsNotJson()
    {
        var (status, body) = await PostAsync($"/api/workflows/{Provisioning}", new StringContent("{}", Encoding.UTF8, "text/plain"));

        Assert.That(status, Is.EqualTo(HttpStatusCode.UnsupportedMediaType));
        Assert.That(body["errors"]![0]!["message"]!.Value<string>(), Does.Contain("application/json"));
    }

    [Test]
    public async Task Enqueue_Returns413_WhenDeclaredBodyLengthExceeds256KiB()
    {
        var (status, body) = await PostAsync($"/api/workflows/{Provisioning}", SampleHost.Json(new string(' ', 256 * 1024 + 1)));

        Assert.That(status, Is.EqualTo(HttpStatusCode.RequestEntityTooLarge));
        Assert.That(body["errors"]![0]!["message"]!.Value<string>(), Does.Contain("262144"));
    }

    [Test]
    public async Task Enqueue_Returns413_WhenChunkedBodyExceeds256KiB()
    {
        // No Content-Length: the limit is enforced while reading.
        var content = new UnknownLengthContent(Encoding.UTF8.GetBytes(new string(' ', 300 * 1024)));
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        using var request = new HttpRequestMessage(HttpMethod.Post, $"/api/workflows/{Provisioning}") { Content = content };

        using var response = await _client.SendAsync(request);

        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.RequestEntityTooLarge));
    }

    [Test]
    public async Task Enqueue_ReadsTheBody_WhenItIsExactlyAtTheLimit()
    {
        // 256 KiB of whitespace is an empty body: read, taken as {}, and refused for its missing fields (not 413).
        var (status, body) = await PostAsync($"/api/workflows/{Provisioning}", SampleHost.Json(new string(' ', 256 * 1024)));

        Assert.That(status, Is.EqualTo(HttpStatusCode.BadRequest));
        Assert.That(body["errors"]!.Select(e => e["path"]!.Value<string>()), Does.Contain("customer_input.name"));
    }

    [Test]
    public async Task Enqueue_ReturnsTheSameRun_WhenIdempotencyKeyIsRepeated()
    {
        var key = "order-" + Guid.NewGuid();

        var first = await SampleHost.EnqueueAsync(_client, Provisioning, ValidInput("ops@idem.test"), key);
        var second = await SampleHost.EnqueueAsync(_client, Provisioning, ValidInput("ops@idem.test"), key);

        Assert.That(second, Is.EqualTo(first));
        Assert.That(await CountRunsAsync("idempotency_key = @key", ("key", key)), Is.EqualTo(1));
        using var response = await _client.GetAsync($"/api/workflows/{first}");
        Assert.That((await SampleHost.ReadJsonAsync(response))["idempotencyKey"]!.Value<string>(), Is.EqualTo(key));
    }

    [Test]
    public async Task Enqueue_Returns409_WhenIdempotencyKeyWasUsedForAnotherWorkflow()
    {
        var key = "report-" + Guid.NewGuid();
        var first = await SampleHost.EnqueueAsync(_client, "usage-report", new JObject(), key);

        using var request = new HttpRequestMessage(HttpMethod.Post, $"/api/workflows/{Provisioning}") { Content = SampleHost.Json(ValidInput("ops@conflict.test")) };
        request.Headers.Add("Idempotency-Key", key);
        using var response = await _client.SendAsync(request);
        var body = await SampleHost.ReadJsonAsync(response);

        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.Conflict));
        Assert.That(body["errors"]![0]!["path"]!.Value<string>(), Is.EqualTo("Idempotency-Key"));
        Assert.That(body["errors"]![0]!["message"]!.Value<string>(), Does.Contain(first.ToString()));
    }

    [Test]
    public async Task Enqueue_Returns400_WhenIdempotencyKeyIsLongerThan200Characters()
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, $"/api/workflows/{Provisioning}") { Content = SampleHost.Json(ValidInput("ops@long.test")) };
        request.Headers.Add("Idempotency-Key", new string('k', 201));

        using var response = await _client.SendAsync(request);
        var body = await SampleHost.ReadJsonAsync(response);

        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.BadRequest));
        Assert.That(body["errors"]![0]!["path"]!.Value<string>(), Is.EqualTo("Idempotency-Key"));
    }

    [Test]
    public async Task Enqueue_StoresTheConcurrencyKey_WhenTheHeaderIsGiven()
    {
        var key = "customer-" + Guid.NewGuid();
        using var request = new HttpRequestMessage(HttpMethod.Post, $"/api/workflows/{Provisioning}") { Content = SampleHost.Json(ValidInput("ops@ckey.test")) };
        request.Headers.Add("Concurrency-Key", key);
        using var response = await _client.SendAsync(request);
        var id = (await SampleHost.ReadJsonAsync(response))["id"]!.Value<string>();

        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.Accepted));
        using var run = await _client.GetAsync($"/api/workflows/{id}");
        var json = await SampleHost.ReadJsonAsync(run);
        Assert.That(json["concurrencyKey"]!.Value<string>(), Is.EqualTo(key));
        Assert.That(((JObject)json).ContainsKey("waitingFor"), Is.True, "waitingFor is part of the run JSON");
        using var listed = await _client.GetAsync($"/api/workflows?concurrencyKey={Uri.EscapeDataString(key)}");
        var items = (await SampleHost.ReadJsonAsync(listed))["items"]!;
        Assert.That(items.Select(i => i["id"]!.Value<string>()), Is.EqualTo(new[] { id }));
    }

    [Test]
    public async Task Enqueue_Returns400NamingTheConcurrencyKey_WhenItIsLongerThan200Characters()
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, $"/api/workflows/{Provisioning}") { Content = SampleHost.Json(ValidInput("ops@ckeylong.test")) };
        request.Headers.Add("Concurrency-Key", new string('k', 201));

        using var response = await _client.SendAsync(request);
        var body = await SampleHost.ReadJsonAsync(response);

        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.BadRequest));
        Assert.That(body["errors"]![0]!["path"]!.Value<string>(), Is.EqualTo("concurrency_key"));
        Assert.That(await CountRunsAsync("input_data -> 'customer_input' ->> 'email' = @email", ("email", "ops@ckeylong.test")), Is.Zero);
    }

    [Test]
    public async Task GetRun_Returns404_WhenRunIsUnknown()
    {
        using var response = await _client.GetAsync($"/api/workflows/{Guid.NewGuid()}");
        var body = await SampleHost.ReadJsonAsync(response);

        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.NotFound));
        Assert.That(body["errors"]![0]!["message"]!.Value<string>(), Does.Contain("does not exist"));
    }

    [Test]
    public async Task GetRun_Returns404_WhenIdIsNotAGuid()
    {
        using var response = await _client.GetAsync("/api/workflows/not-a-guid");

        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.NotFound));
    }

    [Test]
    public async Task List_FiltersByStatusAndName_WhenBothAreGiven()
    {
        var failed = await SampleHost.EnqueueAsync(_client, Provisioning, ValidInput("ops@listfail.test", subscriptionFailures: 10));
        var succeeded = await SampleHost.EnqueueAsync(_client, Provisioning, ValidInput("ops@listok.test"));
        await SampleHost.WaitForFinalFailureAsync(_client, failed);
        await SampleHost.WaitForStatusAsync(_client, succeeded, WorkflowStatus.Succeeded);

        using var response = await _client.GetAsync($"/api/workflows?status=failed&name={Provisioning}&limit=1000");
        var body = await SampleHost.ReadJsonAsync(response);

        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.OK));
        var items = (JArray)body["items"]!;
        Assert.That(items.Select(i => i["id"]!.Value<string>()), Does.Contain(failed.ToString()).And.Not.Contain(succeeded.ToString()));
        Assert.That(items.Select(i => i["status"]!.Value<string>()), Is.All.EqualTo("Failed"));
        Assert.That(items.Select(i => i["workflowName"]!.Value<string>()), Is.All.EqualTo(Provisioning));
        var item = items.Single(i => i["id"]!.Value<string>() == failed.ToString());
        Assert.That(item["exceptionMessage"]!.Value<string>(), Does.Contain("simulated failure"));
        Assert.That(item["links"]!["retry"]!.Value<string>(), Is.EqualTo($"/api/workflows/{failed}/retry"));
    }

    [Test]
    public async Task List_PagesNewestFirst_WithLimitAndOffset()
    {
        var older = await SampleHost.EnqueueAsync(_client, Provisioning, ValidInput("ops@page1.test"));
        var newer = await SampleHost.EnqueueAsync(_client, Provisioning, ValidInput("ops@page2.test"));
        await SampleHost.WaitForStatusAsync(_client, older, WorkflowStatus.Succeeded);
        await SampleHost.WaitForStatusAsync(_client, newer, WorkflowStatus.Succeeded);

        using var first = await _client.GetAsync($"/api/workflows?name={Provisioning}&limit=1");
        var firstBody = await SampleHost.ReadJsonAsync(first);
        using var second = await _client.GetAsync(firstBody["next"]!.Value<string>());
        var secondBody = await SampleHost.ReadJsonAsync(second);

        Assert.That(firstBody["items"]!.Count(), Is.EqualTo(1));
        Assert.That(firstBody["next"]!.Value<string>(), Is.EqualTo($"/api/workflows?name={Provisioning}&limit=1&offset=1"));
        Assert.That(secondBody["offset"]!.Value<int>(), Is.EqualTo(1));
        Assert.That(secondBody["items"]![0]!["id"], Is.Not.EqualTo(firstBody["items"]![0]!["id"]));
        var firstCreated = DateTimeOffset.Parse(firstBody["items"]![0]!["created"]!.Value<string>()!, System.Globalization.CultureInfo.InvariantCulture);
        var secondCreated = DateTimeOffset.Parse(secondBody["items"]![0]!["created"]!.Value<string>()!, System.Globalization.CultureInfo.InvariantCulture);
        Assert.That(firstCreated, Is.GreaterThanOrEqualTo(secondCreated));
    }

    [TestCase("status=bogus", "status")]
    [TestCase("status=3", "status")]
    [TestCase("limit=0", "limit")]
    [TestCase("limit=1001", "limit")]
    [TestCase("limit=ten", "limit")]
    [TestCase("offset=-1", "offset")]
    public async Task List_Returns400NamingTheParameter_WhenQueryIsInvalid(string query, string parameter)
    {
        using var response = await _client.GetAsync($"/api/workflows?{query}");
        var body = await SampleHost.ReadJsonAsync(response);

        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.BadRequest));
        Assert.That(body["errors"]!.Select(e => e["path"]!.Value<string>()), Is.EqualTo(new[] { parameter }));
    }

    [TestCase("retry")]
    [TestCase("cancel")]
    public async Task Command_Returns404_WhenRunIsUnknown(string command)
    {
        var (status, body) = await PostAsync($"/api/workflows/{Guid.NewGuid()}/{command}", SampleHost.NoInput());

        Assert.That(status, Is.EqualTo(HttpStatusCode.NotFound));
        Assert.That(body["errors"]![0]!["message"]!.Value<string>(), Does.Contain("does not exist"));
    }

    [TestCase("retry")]
    [TestCase("cancel")]
    public async Task Command_Returns409WithTheStatus_WhenRunHasSucceeded(string command)
    {
        var id = await SampleHost.EnqueueAsync(_client, Provisioning, ValidInput($"ops@{command}409.test"));
        await SampleHost.WaitForStatusAsync(_client, id, WorkflowStatus.Succeeded);

        var (status, body) = await PostAsync($"/api/workflows/{id}/{command}", SampleHost.NoInput());

        Assert.That(status, Is.EqualTo(HttpStatusCode.Conflict));
        Assert.That(body["runStatus"]!.Value<string>(), Is.EqualTo("Succeeded"));
        Assert.That(body["errors"]![0]!["message"]!.Value<string>(), Does.Contain("Succeeded"));
    }

    [Test]
    public async Task Retry_Returns202AndTheRunSucceeds_WhenRunFailed()
    {
        var id = await SampleHost.EnqueueAsync(_client, Provisioning, ValidInput("ops@retry.test", subscriptionFailures: 3));
        await SampleHost.WaitForFinalFailureAsync(_client, id);

        using var response = await _client.PostAsync($"/api/workflows/{id}/retry", SampleHost.NoInput());
        var body = await SampleHost.ReadJsonAsync(response);

        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.Accepted));
        Assert.That(body["id"]!.Value<string>(), Is.EqualTo(id.ToString()));
        Assert.That(response.Headers.Location?.ToString(), Is.EqualTo($"/api/workflows/{id}"));
        await SampleHost.WaitForStatusAsync(_client, id, WorkflowStatus.Succeeded);
    }

    [Test]
    public async Task Cancel_Returns204AndTheRunIsCancelled_WhenRunFailed()
    {
        var id = await SampleHost.EnqueueAsync(_client, Provisioning, ValidInput("ops@cancel.test", subscriptionFailures: 10));
        await SampleHost.WaitForFinalFailureAsync(_client, id);

        using var response = await _client.PostAsync($"/api/workflows/{id}/cancel", SampleHost.NoInput());

        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.NoContent));
        var run = await SampleHost.WaitForStatusAsync(_client, id, WorkflowStatus.Cancelled);
        Assert.That(run["links"]!["retry"]!.Value<string>(), Is.EqualTo($"/api/workflows/{id}/retry"));
    }

    [TestCase("errorContains=%00", "errorContains")]
    [TestCase("createdAfter=yesterday", "createdAfter")]
    [TestCase("tag=no-colon", "tag")]
    [TestCase("tag=a:1&tag=a:2", "tag")]
    [TestCase("parentId=not-a-run", "parentId")]
    public async Task List_Returns400NamingTheParameter_ForABadSearchFilter(string query, string parameter)
    {
        using var response = await _client.GetAsync("/api/workflows?" + query);
        var body = await SampleHost.ReadJsonAsync(response);

        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.BadRequest), body.ToString());
        Assert.That(body["errors"]![0]!["path"]!.Value<string>(), Is.EqualTo(parameter));
    }

    [Test]
    public async Task List_ReturnsTheRunsChildren_WhenFilteredByParentId()
    {
        var suffix = Guid.NewGuid().ToString("N")[..8];
        var input = new JObject
        {
            ["subsidiaries_input"] = new JObject
            {
                ["subsidiaries"] = new JArray(
                    new JObject { ["name"] = "North " + suffix, ["email"] = $"north-{suffix}@group.test" },
                    new JObject { ["name"] = "South " + suffix, ["email"] = $"south-{suffix}@group.test" }),
            },
        };
        using var enqueued = await _client.PostAsync("/api/workflows/provision-subsidiaries", SampleHost.Json(input));
        var id = (await SampleHost.ReadJsonAsync(enqueued))["id"]!.Value<string>();
        Assert.That(enqueued.StatusCode, Is.EqualTo(HttpStatusCode.Accepted));

        var parent = await SampleHost.WaitForStatusAsync(_client, Guid.Parse(id!), WorkflowStatus.Succeeded);
        using var listed = await _client.GetAsync($"/api/workflows?parentId={id}");
        var items = (await SampleHost.ReadJsonAsync(listed))["items"]!;

        Assert.That(listed.StatusCode, Is.EqualTo(HttpStatusCode.OK));
        Assert.That(items.Select(i => i["childIndex"]!.Value<int>()).Order(), Is.EqualTo(new[] { 0, 1 }));
        Assert.That(items.Select(i => i["workflowName"]!.Value<string>()), Is.All.EqualTo(Provisioning));
        Assert.That(items.Select(i => i["parentId"]!.Value<string>()), Is.All.EqualTo(id));
        Assert.That(parent["children"]!["total"]!.Value<int>(), Is.EqualTo(2));
        Assert.That(parent["output"]!["subsidiaries_output"]!["customer_ids"]!.Count(), Is.EqualTo(2));
    }

    [Test]
    public async Task List_FiltersByIdempotencyKeyAndCreatedRange_AndCarriesTheFiltersInTheNextLink()
    {
        var key = "search-" + Guid.NewGuid();
        using var request = new HttpRequestMessage(HttpMethod.Post, $"/api/workflows/{Provisioning}") { Content = SampleHost.Json(ValidInput("ops@search.test")) };
        request.Headers.Add("Idempotency-Key", key);
        using var enqueued = await _client.SendAsync(request);
        var id = (await SampleHost.ReadJsonAsync(enqueued))["id"]!.Value<string>();
        var after = Uri.EscapeDataString(DateTimeOffset.UtcNow.AddHours(-1).ToString("O", System.Globalization.CultureInfo.InvariantCulture));

        using var response = await _client.GetAsync($"/api/workflows?idempotencyKey={key}&createdAfter={after}&limit=1");
        var body = await SampleHost.ReadJsonAsync(response);

        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.OK), body.ToString());
        Assert.That(body["items"]!.Select(i => i["id"]!.Value<string>()), Is.EqualTo(new[] { id }));
        Assert.That(body["next"]!.Value<string>(), Does.Contain("idempotencyKey=" + key).And.Contain("offset=1"));
    }

    [Test]
    public async Task Bulk_Returns400NamingAll_WhenNoFilterIsGiven_AndChangesNothing()
    {
        var (status, answer) = await PostAsync("/api/workflows/bulk/cancel", SampleHost.Json("{}"));

        Assert.That(status, Is.EqualTo(HttpStatusCode.BadRequest), answer.ToString());
        Assert.That(answer["errors"]![0]!["path"]!.Value<string>(), Is.EqualTo("all"));
    }

    [Test]
    public async Task CountAndBulkPurge_SelectRunsByTheFiltersOfTheListing()
    {
        var key = "purge-" + Guid.NewGuid();
        using var request = new HttpRequestMessage(HttpMethod.Post, $"/api/workflows/{Provisioning}") { Content = SampleHost.Json(ValidInput("ops@purge.test")) };
        request.Headers.Add("Idempotency-Key", key);
        using var enqueued = await _client.SendAsync(request);
        var id = Guid.Parse((await SampleHost.ReadJsonAsync(enqueued))["id"]!.Value<string>()!);
        await SampleHost.WaitForStatusAsync(_client, id, WorkflowStatus.Succeeded);

        using var count = await _client.GetAsync($"/api/workflows/count?idempotencyKey={key}");
        Assert.That((await SampleHost.ReadJsonAsync(count))["count"]!.Value<long>(), Is.EqualTo(1));

        var (status, answer) = await PostAsync($"/api/workflows/bulk/purge?idempotencyKey={key}", SampleHost.Json("{}"));

        Assert.That(status, Is.EqualTo(HttpStatusCode.OK), answer.ToString());
        Assert.That(answer["count"]!.Value<int>(), Is.EqualTo(1));
        using var gone = await _client.GetAsync($"/api/workflows/{id}");
        Assert.That(gone.StatusCode, Is.EqualTo(HttpStatusCode.NotFound));
    }

    [Test]
    public async Task Batch_StartsEveryRun_AndAnswersTheirIdsInItemOrder()
    {
        var body = new JObject
        {
            ["items"] = new JArray(
                new JObject { ["input"] = ValidInput("ops@batch-one.test") },
                new JObject { ["input"] = ValidInput("ops@batch-two.test"), ["idempotencyKey"] = "batch-" + Guid.NewGuid() }),
        };

        var (status, answer) = await PostAsync($"/api/workflows/{Provisioning}/batch", SampleHost.Json(body.ToString()));

        Assert.That(status, Is.EqualTo(HttpStatusCode.Accepted), answer.ToString());
        var ids = answer["ids"]!.Select(t => Guid.Parse(t.Value<string>()!)).ToList();
        Assert.That(ids, Has.Count.EqualTo(2).And.Unique);
        var second = await SampleHost.WaitForStatusAsync(_client, ids[1], WorkflowStatus.Succeeded);
        Assert.That(second["input"]!["customer_input"]!["email"]!.Value<string>(), Is.EqualTo("ops@batch-two.test"));
        await SampleHost.WaitForStatusAsync(_client, ids[0], WorkflowStatus.Succeeded);
    }

    [Test]
    public async Task Enqueue_StoresAndReturnsTheTags_WhenTagsAreGivenInTheQuery()
    {
        var (status, answer) = await PostAsync($"/api/workflows/{Provisioning}?tag=customer:c-42&tag=region:%20eu", SampleHost.Json(ValidInput("ops@tags.test")));

        Assert.That(status, Is.EqualTo(HttpStatusCode.Accepted), answer.ToString());
        Assert.That(answer["tags"]!.ToString(Newtonsoft.Json.Formatting.None), Is.EqualTo("""{"customer":"c-42","region":"eu"}"""));
        using var run = await _client.GetAsync($"/api/workflows/{answer["id"]!.Value<string>()}");
        var stored = await SampleHost.ReadJsonAsync(run);
        Assert.That(stored["tags"]!["customer"]!.Value<string>(), Is.EqualTo("c-42"));
        Assert.That(stored["tags"]!["region"]!.Value<string>(), Is.EqualTo("eu"));
    }

    [Test]
    public async Task Enqueue_Returns400NamingTheTag_AndStartsNothing_WhenATagIsInvalid()
    {
        var (status, answer) = await PostAsync($"/api/workflows/{Provisioning}?tag=nocolon", SampleHost.Json(ValidInput("ops@bad-tag.test")));
        var (badKeyStatus, badKey) = await PostAsync($"/api/workflows/{Provisioning}?tag={new string('k', 65)}:v", SampleHost.Json(ValidInput("ops@bad-tag.test")));

        Assert.That(status, Is.EqualTo(HttpStatusCode.BadRequest), answer.ToString());
        Assert.That(answer["errors"]!.Select(e => e["path"]!.Value<string>()), Does.Contain("tag"));
        Assert.That(badKeyStatus, Is.EqualTo(HttpStatusCode.BadRequest), badKey.ToString());
        Assert.That(badKey["errors"]!.Select(e => e["path"]!.Value<string>()!), Has.Some.StartsWith("tags."));
        Assert.That(await CountRunsAsync("input_data->'customer_input'->>'email' = 'ops@bad-tag.test'"), Is.Zero);
    }

    [Test]
    public async Task Batch_StoresAndReturnsEachItemsTags_WhenItemsHaveTags()
    {
        var body = new JObject
        {
            ["items"] = new JArray(
                new JObject { ["input"] = ValidInput("ops@batch-tag-one.test"), ["tags"] = new JObject { ["customer"] = "c-1" } },
                new JObject { ["input"] = ValidInput("ops@batch-tag-two.test") }),
        };

        var (status, answer) = await PostAsync($"/api/workflows/{Provisioning}/batch", SampleHost.Json(body.ToString()));

        Assert.That(status, Is.EqualTo(HttpStatusCode.Accepted), answer.ToString());
        var items = (JArray)answer["items"]!;
        Assert.That(items[0]["tags"]!["customer"]!.Value<string>(), Is.EqualTo("c-1"));
        Assert.That(((JObject)items[1]["tags"]!).Count, Is.Zero);
        using var run = await _client.GetAsync($"/api/workflows/{items[0]["id"]!.Value<string>()}");
        Assert.That((await SampleHost.ReadJsonAsync(run))["tags"]!["customer"]!.Value<string>(), Is.EqualTo("c-1"));
    }

    [Test]
    public async Task Batch_Returns400NamingTheItemsTag_AndStartsNothing_WhenATagIsNotAString()
    {
        var body = new JObject
        {
            ["items"] = new JArray(
                new JObject { ["input"] = ValidInput("ops@batch-tag-bad.test"), ["tags"] = new JObject { ["customer"] = 42 } }),
        };

        var (status, answer) = await PostAsync($"/api/workflows/{Provisioning}/batch", SampleHost.Json(body.ToString()));

        Assert.That(status, Is.EqualTo(HttpStatusCode.BadRequest), answer.ToString());
        Assert.That(answer["errors"]!.Select(e => e["path"]!.Value<string>()), Does.Contain("items[0].tags.customer"));
        Assert.That(await CountRunsAsync("input_data->'customer_input'->>'email' = 'ops@batch-tag-bad.test'"), Is.Zero);
    }

    [Test]
    public async Task Batch_Returns400NamingTheItem_AndStartsNothing_WhenOneInputIsInvalid()
    {
        var invalid = ValidInput("ops@batch-bad.test");
        invalid["subscription_input"]!["seats"] = "many";
        var body = new JObject
        {
            ["items"] = new JArray(new JObject { ["input"] = ValidInput("ops@batch-good.test") }, new JObject { ["input"] = invalid }),
        };

        var (status, answer) = await PostAsync($"/api/workflows/{Provisioning}/batch", SampleHost.Json(body.ToString()));

        Assert.That(status, Is.EqualTo(HttpStatusCode.BadRequest), answer.ToString());
        Assert.That(answer["errors"]!.Select(e => e["path"]!.Value<string>()), Does.Contain("items[1].subscription_input.seats"));
        Assert.That(await CountRunsAsync("input_data->'customer_input'->>'email' IN ('ops@batch-good.test', 'ops@batch-bad.test')"), Is.Zero);
    }

    [Test]
    public async Task Fork_StartsANewRunFromTheNamedStep_LinkedToTheOriginal()
    {
        var (_, enqueued) = await PostAsync($"/api/workflows/{Provisioning}", SampleHost.Json(ValidInput("ops@fork.test")));
        var original = Guid.Parse(enqueued["id"]!.Value<string>()!);
        await SampleHost.WaitForStatusAsync(_client, original, WorkflowStatus.Succeeded);

        var (status, answer) = await PostAsync($"/api/workflows/{original}/fork", SampleHost.Json("""{"fromStep":"send-welcome"}"""));

        Assert.That(status, Is.EqualTo(HttpStatusCode.Accepted), answer.ToString());
        var fork = await SampleHost.WaitForStatusAsync(_client, Guid.Parse(answer["id"]!.Value<string>()!), WorkflowStatus.Succeeded);
        Assert.That(fork["forkedFrom"]!.Value<string>(), Is.EqualTo(original.ToString()));
        var steps = (JArray)fork["steps"]!;
        Assert.That(steps.Where(s => s["name"]!.Value<string>() != "send-welcome").Select(s => s["attempts"]!.Value<int>()), Is.All.Zero,
            "the steps before send-welcome were copied, never executed");
    }

    [Test]
    public async Task Fork_Returns400NamingFromStep_ForAnUnknownStep()
    {
        var (_, enqueued) = await PostAsync($"/api/workflows/{Provisioning}", SampleHost.Json(ValidInput("ops@fork-bad.test")));
        var original = Guid.Parse(enqueued["id"]!.Value<string>()!);

        var (status, answer) = await PostAsync($"/api/workflows/{original}/fork", SampleHost.Json("""{"fromStep":"no-such-step"}"""));

        Assert.That(status, Is.EqualTo(HttpStatusCode.BadRequest), answer.ToString());
        Assert.That(answer["errors"]![0]!["path"]!.Value<string>(), Is.EqualTo("fromStep"));
    }
}

/// <summary>A body whose length is not known in advance (sent chunked).</summary>
internal sealed class UnknownLengthContent(byte[] bytes) : HttpContent
{
    protected override Task SerializeToStreamAsync(Stream stream, System.Net.TransportContext? context) => stream.WriteAsync(bytes).AsTask();

    protected override bool TryComputeLength(out long length)
    {
        length = 0;
        return false;
    }
}
