using Microsoft.Extensions.Configuration;
using Workflow.Jobs.Sample.Configuration;

namespace Workflow.Jobs.Sample.Tests;

/// <summary>Reading and checking the host's configuration (no host, no database).</summary>
public class SampleHostSettingsTests
{
    private const string Connection = "Host=db.internal;Port=5432;Username=app;Password=s3cret-pw;Database=jobs";

    private static SampleHostSettings Load(Dictionary<string, string?> values)
        => SampleHostSettings.Load(new ConfigurationBuilder().AddInMemoryCollection(values).Build());

    [Test]
    public void Load_UsesDefaults_WhenOnlyTheConnectionStringIsSet()
    {
        var settings = Load(new() { ["ConnectionStrings:WorkflowJobs"] = Connection });

        Assert.That(settings.Role, Is.EqualTo(SampleRole.All));
        Assert.That(settings.RunsServer && settings.ServesHttpApi, Is.True);
        Assert.That(settings.Queues, Is.EqualTo(new[] { "default" }));
        Assert.That(settings.WorkerCount, Is.Null);
        Assert.That(settings.MaxRequestBodyBytes, Is.EqualTo(256 * 1024));
        Assert.That(settings.WritePolicy, Is.Null, "the API is open unless a policy is named");
        Assert.That(settings.Exporter, Is.EqualTo(TelemetryExporter.Console));
        Assert.That(settings.UsageReportCron, Is.EqualTo("*/5 * * * *"));
    }

    [TestCase("web", SampleRole.Web, false, true)]
    [TestCase("Worker", SampleRole.Worker, true, false)]
    [TestCase("ALL", SampleRole.All, true, true)]
    public void Load_ReadsTheRole_CaseInsensitively(string value, SampleRole role, bool runsServer, bool servesApi)
    {
        var settings = Load(new() { ["ConnectionStrings:WorkflowJobs"] = Connection, ["WorkflowJobs:Role"] = value });

        Assert.That(settings.Role, Is.EqualTo(role));
        Assert.That(settings.RunsServer, Is.EqualTo(runsServer));
        Assert.That(settings.ServesHttpApi, Is.EqualTo(servesApi));
    }

    [Test]
    public void Load_ReadsWorkersQueuesAndRetry_FromEnvironmentStyleValues()
    {
        var settings = Load(new()
        {
            ["ConnectionStrings:WorkflowJobs"] = Connection,
            ["WorkflowJobs:Workers:Count"] = "16",
            ["WorkflowJobs:Workers:Queues"] = "critical, default",
            ["WorkflowJobs:Retry:Attempts"] = "5",
            ["WorkflowJobs:Retry:DelaysInSeconds:0"] = "1",
            ["WorkflowJobs:Retry:DelaysInSeconds:1"] = "30",
        });

        Assert.That(settings.WorkerCount, Is.EqualTo(16));
        Assert.That(settings.Queues, Is.EqualTo(new[] { "critical", "default" }));
        Assert.That(settings.Retry.Attempts, Is.EqualTo(5));
        Assert.That(settings.Retry.DelaysInSeconds, Is.EqualTo(new[] { 1, 30 }));
    }

    [Test]
    public void Load_SelectsOtlp_WhenTheStandardEndpointVariableIsSet()
    {
        var settings = Load(new() { ["ConnectionStrings:WorkflowJobs"] = Connection, ["OTEL_EXPORTER_OTLP_ENDPOINT"] = "http://collector:4317" });

        Assert.That(settings.Exporter, Is.EqualTo(TelemetryExporter.Otlp));
        Assert.That(settings.OtlpEndpoint, Is.EqualTo(new Uri("http://collector:4317")));
    }

    [Test]
    public void Load_ThrowsListingEveryProblem_WhenSettingsAreInvalid()
    {
        var error = Assert.Throws<InvalidOperationException>(() => Load(new()
        {
            ["WorkflowJobs:Role"] = "Everything",
            ["WorkflowJobs:Workers:Count"] = "0",
            ["WorkflowJobs:Workers:Queues"] = "Bad Queue",
            ["WorkflowJobs:Api:WritePolicy"] = "ApiKey",
        }));

        Assert.That(error!.Message, Does.Contain("ConnectionStrings:WorkflowJobs is not set"));
        Assert.That(error.Message, Does.Contain("WorkflowJobs:Role must be one of: All, Web, Worker"));
        Assert.That(error.Message, Does.Contain("WorkflowJobs:Workers:Count"));
        Assert.That(error.Message, Does.Contain("'Bad Queue'"));
        Assert.That(error.Message, Does.Contain("WorkflowJobs:Api:ApiKey is not set"));
    }

    [TestCase("ops", null, "set both BasicAuthUserName and BasicAuthPassword")]
    [TestCase(null, "secret", "set both BasicAuthUserName and BasicAuthPassword")]
    [TestCase("o:ps", "secret", "BasicAuthUserName must not contain ':'")]
    public void Load_Throws_WhenDashboardBasicCredentialsAreIncomplete(string? user, string? password, string expected)
    {
        var error = Assert.Throws<InvalidOperationException>(() => Load(new()
        {
            ["ConnectionStrings:WorkflowJobs"] = Connection,
            ["WorkflowJobs:Dashboard:BasicAuthUserName"] = user,
            ["WorkflowJobs:Dashboard:BasicAuthPassword"] = password,
        }));

        Assert.That(error!.Message, Does.Contain(expected).And.Not.Contain("secret"));
    }

    [Test]
    public void Load_ReadsDashboardBasicCredentials_WhenBothAreSet()
    {
        var settings = Load(new()
        {
            ["ConnectionStrings:WorkflowJobs"] = Connection,
            ["WorkflowJobs:Dashboard:BasicAuthUserName"] = "ops",
            ["WorkflowJobs:Dashboard:BasicAuthPassword"] = "a long secret",
        });

        Assert.That(settings.DashboardBasicAuth, Is.True);
        Assert.That((settings.DashboardUserName, settings.DashboardPassword), Is.EqualTo(("ops", "a long secret")));
    }

    [Test]
    public void Load_NeverEchoesTheConnectionString_WhenItIsInvalid()
    {
        var error = Assert.Throws<InvalidOperationException>(() => Load(new() { ["ConnectionStrings:WorkflowJobs"] = "Host=x;Password=s3cret-pw;NoSuchKeyword=1" }));

        Assert.That(error!.Message, Does.Contain("not a valid Npgsql connection string"));
        Assert.That(error.Message, Does.Not.Contain("s3cret-pw"));
    }

    [Test]
    public void DescribeDatabase_OmitsCredentials()
    {
        var settings = Load(new() { ["ConnectionStrings:WorkflowJobs"] = Connection });

        Assert.That(settings.DescribeDatabase(), Is.EqualTo("db.internal:5432/jobs"));
    }
}
