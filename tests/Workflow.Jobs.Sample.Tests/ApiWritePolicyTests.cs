using System.Net;
using Newtonsoft.Json.Linq;

namespace Workflow.Jobs.Sample.Tests;

/// <summary>
/// WorkflowJobs:Api:WritePolicy protects the write endpoints with an ASP.NET Core authorization policy; here
/// the built-in "ApiKey" policy (header X-Api-Key), as configured by an operator. Reads stay open.
/// </summary>
public class ApiWritePolicyTests
{
    private const string Key = "test-key-4f1c2b";
    private SampleHost _host = null!;
    private HttpClient _client = null!;

    [OneTimeSetUp]
    public async Task StartAsync()
    {
        _host = await SampleHost.StartAsync(nameof(ApiWritePolicyTests), s =>
        {
            s["WorkflowJobs:Role"] = "Web";
            s["WorkflowJobs:Api:WritePolicy"] = "ApiKey";
            s["WorkflowJobs:Api:ApiKey"] = Key;
        });
        _client = _host.CreateClient();
    }

    [OneTimeTearDown]
    public async Task StopAsync()
    {
        _client.Dispose();
        await _host.DisposeAsync();
    }

    private static readonly JObject Input = JObject.Parse("""
        { "customer_input": { "name": "Keyed", "email": "ops@keyed.test" }, "admin_users_input": { "admins": [ { "email": "a@keyed.test" } ] } }
        """);

    private async Task<HttpResponseMessage> PostAsync(string path, string? key, HttpContent? content = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = content };
        if (key is not null)
        {
            request.Headers.Add("X-Api-Key", key);
        }

        return await _client.SendAsync(request);
    }

    [TestCase(null, TestName = "Enqueue_Returns401_WhenApiKeyIsMissing")]
    [TestCase("wrong-key", TestName = "Enqueue_Returns401_WhenApiKeyIsWrong")]
    public async Task Enqueue_Returns401_WhenApiKeyIsNotTheConfiguredOne(string? key)
    {
        using var response = await PostAsync("/api/workflows/customer-provisioning", key, SampleHost.Json(Input));

        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.Unauthorized));
        Assert.That(response.Headers.WwwAuthenticate.ToString(), Does.Contain("X-Api-Key"));
    }

    [Test]
    public async Task Enqueue_Returns202_WhenApiKeyIsTheConfiguredOne()
    {
        using var response = await PostAsync("/api/workflows/customer-provisioning", Key, SampleHost.Json(Input));

        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.Accepted));
    }

    [TestCase("/api/workflows/{0}/retry")]
    [TestCase("/api/workflows/{0}/cancel")]
    [TestCase("/api/fake-api/failures")]
    public async Task OtherWrites_Return401_WhenApiKeyIsMissing(string path)
    {
        using var response = await PostAsync(string.Format(System.Globalization.CultureInfo.InvariantCulture, path, Guid.NewGuid()), null,
            SampleHost.Json("""{"operation":"create_subscription","times":1}"""));

        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.Unauthorized));
    }

    [TestCase("/api/workflows")]
    [TestCase("/api/workflow-definitions")]
    [TestCase("/api/fake-api")]
    public async Task Reads_Return200WithoutApiKey_WhenOnlyWritesAreProtected(string path)
    {
        using var response = await _client.GetAsync(path);

        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.OK));
    }

    [Test]
    public void Startup_Fails_WhenTheWritePolicyIsNotRegistered()
    {
        var error = Assert.ThrowsAsync<InvalidOperationException>(async () =>
        {
            await using var host = await SampleHost.StartOnAsync(_host.ConnectionString, s =>
            {
                s["WorkflowJobs:Role"] = "Web";
                s["WorkflowJobs:Api:WritePolicy"] = "operators";
            });
        });

        Assert.That(error!.Message, Does.Contain("'operators'"));
    }
}
