using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Npgsql;

namespace Workflow.Jobs.IntegrationTests;

/// <summary>
/// Tags and the search filters of <see cref="WorkflowQuery"/> on real PostgreSQL, with runs enqueued through a real
/// Hangfire server: each filter alone and combined, tags round-trip, listings without input/output JSON, validation.
/// </summary>
public class WorkflowSearchTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);
    private static readonly EnqueueOptions Later = new() { Delay = TimeSpan.FromHours(1) };
    private string _connectionString = null!;
    private IHost _host = null!;
    private IWorkflowClient _client = null!;
    private Guid _a;
    private Guid _b;
    private Guid _c;
    private Guid _failed;
    private Guid _succeeded;
    private Guid _percent;

    [OneTimeSetUp]
    public async Task OneTimeSetUpAsync()
    {
        _connectionString = await TestDatabases.CreateAsync(nameof(WorkflowSearchTests));
        _host = await TestHosts.StartHangfireHostAsync(_connectionString);
        _client = _host.Services.GetRequiredService<IWorkflowClient>();

        // Pending runs (their jobs start in an hour), with tags and a key.
        _a = await _client.EnqueueAsync<AddWorkflow>(new WorkflowInput(new AddInput()),
            Later with { IdempotencyKey = "order-a", Tags = new Dictionary<string, string> { ["customer"] = "c-1", ["region"] = "eu" } });
        _b = await _client.EnqueueAsync<AddWorkflow>(new WorkflowInput(new AddInput()),
            Later with { Tags = new Dictionary<string, string> { ["customer"] = "c-2", ["region"] = "eu" } });
        _c = await _client.EnqueueAsync<AddWorkflow>(new WorkflowInput(new AddInput()), Later);
        _percent = await _client.EnqueueAsync<AddWorkflow>(new WorkflowInput(new AddInput()), Later);

        // A run that really failed, and one that really succeeded (with input and output JSON).
        _failed = await _client.EnqueueAsync<NoRetryWorkflow>(new WorkflowInput(new AddInput(), new FailInput { FailTimes = 1, NonRetryable = true }),
            new EnqueueOptions { Tags = new Dictionary<string, string> { ["customer"] = "c-1" } });
        _succeeded = await _client.EnqueueAsync<AddThenSquareWorkflow>(new WorkflowInput(new AddInput { Argument1 = 2, Argument2 = 3 }),
            new EnqueueOptions { IdempotencyKey = "order-s" });
        await WaitForStatusAsync(_failed, WorkflowStatus.Failed);
        await WaitForStatusAsync(_succeeded, WorkflowStatus.Succeeded);

        // Arranged by the test: creation times in the past, and an error text with LIKE wildcards in it.
        await ExecuteAsync($"UPDATE workflow.workflow_runs SET created = '2026-01-01T00:00:00Z' WHERE uuid = '{_a}'");
        await ExecuteAsync($"UPDATE workflow.workflow_runs SET created = '2026-02-01T00:00:00Z' WHERE uuid = '{_b}'");
        await ExecuteAsync($"UPDATE workflow.workflow_runs SET exception_message = 'quota at 100% for tenant_x' WHERE uuid = '{_percent}'");
    }

    [OneTimeTearDown]
    public async Task OneTimeTearDownAsync()
    {
        await _host.StopAsync();
        _host.Dispose();
    }

    private async Task WaitForStatusAsync(Guid id, WorkflowStatus status)
    {
        WorkflowRun? run = null;
        await Eventually.UntilAsync(async () => (run = await _client.GetAsync(id))?.Status == status, Deadline, $"run {id} to be {status} (is {run?.Status})");
    }

    private async Task ExecuteAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(_connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    private async Task<long> CountAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(_connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        return (long)(await command.ExecuteScalarAsync())!;
    }

    private async Task<List<Guid>> IdsAsync(WorkflowQuery query) => (await _client.ListAsync(query with { Limit = 1000 })).Select(r => r.Id).ToList();

    private static Dictionary<string, string> Tags(params (string Key, string Value)[] tags) => tags.ToDictionary(t => t.Key, t => t.Value);

    [Test]
    public async Task Tags_RoundTrip_ThroughGetAndList_AndAreEmptyWhenNone()
    {
        var run = await _client.GetAsync(_a);
        var listed = (await _client.ListAsync(new WorkflowQuery { IdempotencyKey = "order-a" })).Single();
        var untagged = await _client.GetAsync(_c);

        Assert.That(run!.Tags, Is.EquivalentTo(Tags(("customer", "c-1"), ("region", "eu"))));
        Assert.That(listed.Tags, Is.EquivalentTo(run.Tags));
        Assert.That(untagged!.Tags, Is.Empty);
    }

    [Test]
    public async Task ListAsync_ReturnsRunsHavingAllTags_WhenFilteredByTags()
    {
        Assert.That(await IdsAsync(new WorkflowQuery { Tags = Tags(("customer", "c-1")) }), Is.EquivalentTo(new[] { _a, _failed }));
        Assert.That(await IdsAsync(new WorkflowQuery { Tags = Tags(("region", "eu")) }), Is.EquivalentTo(new[] { _a, _b }));
        Assert.That(await IdsAsync(new WorkflowQuery { Tags = Tags(("customer", "c-1"), ("region", "eu")) }), Is.EqualTo(new[] { _a }));
        Assert.That(await IdsAsync(new WorkflowQuery { Tags = Tags(("customer", "c-9")) }), Is.Empty);
        Assert.That(await IdsAsync(new WorkflowQuery { Tags = Tags(("Customer", "c-1")) }), Is.Empty, "keys are case-sensitive");
    }

    [Test]
    public async Task ListAsync_ReturnsTheRun_WhenFilteredByIdempotencyKey()
    {
        Assert.That(await IdsAsync(new WorkflowQuery { IdempotencyKey = "order-a" }), Is.EqualTo(new[] { _a }));
        Assert.That(await IdsAsync(new WorkflowQuery { IdempotencyKey = "order" }), Is.Empty, "exact, not a prefix");
    }

    [Test]
    public async Task ListAsync_MatchesSubstringIgnoringCase_WhenFilteredByErrorText()
    {
        Assert.That(await IdsAsync(new WorkflowQuery { ErrorContains = "FAILED FOR" }), Is.EqualTo(new[] { _failed }));
        Assert.That(await IdsAsync(new WorkflowQuery { ErrorContains = "100% for" }), Is.EqualTo(new[] { _percent }));
        Assert.That(await IdsAsync(new WorkflowQuery { ErrorContains = "%" }), Is.EqualTo(new[] { _percent }), "% is a character, not a wildcard");
        Assert.That(await IdsAsync(new WorkflowQuery { ErrorContains = "tenant_" }), Is.EqualTo(new[] { _percent }));
        Assert.That(await IdsAsync(new WorkflowQuery { ErrorContains = "t_nant" }), Is.Empty, "_ is a character, not a wildcard");
    }

    [Test]
    public async Task ListAsync_ReturnsRunsInTheRange_WhenFilteredByCreatedTime()
    {
        var january = new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
        var march = new DateTimeOffset(2026, 3, 1, 0, 0, 0, TimeSpan.Zero);

        Assert.That(await IdsAsync(new WorkflowQuery { CreatedBefore = march }), Is.EqualTo(new[] { _b, _a }), "newest first");
        Assert.That(await IdsAsync(new WorkflowQuery { CreatedAfter = january.AddDays(1), CreatedBefore = march }), Is.EqualTo(new[] { _b }));
        Assert.That(await IdsAsync(new WorkflowQuery { CreatedAfter = january, CreatedBefore = january.AddDays(1) }), Is.EqualTo(new[] { _a }), "after is inclusive");
        Assert.That(await IdsAsync(new WorkflowQuery { CreatedAfter = march }),
            Is.SupersetOf(new[] { _c, _percent, _failed, _succeeded }).And.No.Member(_a).And.No.Member(_b), "other tests add runs of today");
        Assert.That(await IdsAsync(new WorkflowQuery { CreatedAfter = new DateTimeOffset(2026, 1, 31, 18, 0, 0, TimeSpan.FromHours(-5)), CreatedBefore = march }),
            Is.EqualTo(new[] { _b }), "an offset is honoured (23:00 UTC on 31 January)");
        Assert.That(await IdsAsync(new WorkflowQuery { CreatedAfter = new DateTimeOffset(2026, 1, 31, 20, 0, 0, TimeSpan.FromHours(-5)), CreatedBefore = march }),
            Is.Empty, "an offset is honoured (01:00 UTC on 1 February)");
    }

    [Test]
    public async Task ListAsync_AppliesEveryFilter_WhenCombined()
    {
        Assert.That(await IdsAsync(new WorkflowQuery { Status = WorkflowStatus.Failed, Tags = Tags(("customer", "c-1")) }), Is.EqualTo(new[] { _failed }));
        Assert.That(await IdsAsync(new WorkflowQuery { Status = WorkflowStatus.Pending, Tags = Tags(("customer", "c-1")) }), Is.EqualTo(new[] { _a }));
        Assert.That(await IdsAsync(new WorkflowQuery { WorkflowName = "no-retry", ErrorContains = "for good", Tags = Tags(("customer", "c-1")) }),
            Is.EqualTo(new[] { _failed }));
        Assert.That(await IdsAsync(new WorkflowQuery { WorkflowName = "add", ErrorContains = "for good" }), Is.Empty);
        Assert.That(await IdsAsync(new WorkflowQuery { IdempotencyKey = "order-a", Tags = Tags(("customer", "c-2")) }), Is.Empty);
        Assert.That(await IdsAsync(new WorkflowQuery { WorkflowName = "add", Tags = Tags(("region", "eu")), CreatedAfter = new DateTimeOffset(2026, 1, 15, 0, 0, 0, TimeSpan.Zero) }),
            Is.EqualTo(new[] { _b }));
    }

    [Test]
    public async Task ListAsync_ReturnsNoInputOrOutputJson_WhileGetAsyncDoes()
    {
        var listed = (await _client.ListAsync(new WorkflowQuery { IdempotencyKey = "order-s", IncludeSteps = true })).Single();
        var got = await _client.GetAsync(_succeeded);

        Assert.Multiple(() =>
        {
            Assert.That(listed.Input.Count, Is.Zero);
            Assert.That(listed.Output, Is.Null);
            Assert.That(listed.Steps, Has.Count.EqualTo(2));
            Assert.That(listed.Steps.Select(s => s.StepName), Is.EqualTo(got!.Steps.Select(s => s.StepName)), "in execution order");
            Assert.That(listed.Steps.All(s => s.Input.Count == 0 && s.Output is null), Is.True);
            Assert.That(listed.CompletedSteps, Is.EqualTo(2));
            Assert.That(got.Input["test_step_input"], Is.Not.Null);
            Assert.That(got.Output!["square_output"]!["result"]!.ToString(), Is.EqualTo("25"));
        });
        var failedListed = (await _client.ListAsync(new WorkflowQuery { Status = WorkflowStatus.Failed })).Single(r => r.Id == _failed);
        Assert.That(failedListed.Output, Is.Null, "no partial output is built from step outputs for a listing");
        Assert.That((await _client.GetAsync(_failed))!.Output, Is.Not.Null, "GetAsync still shows the output so far");
    }

    [Test]
    public async Task EnqueueAsync_ThrowsWithTagPaths_AndCreatesNothing_WhenTagsAreInvalid()
    {
        var before = await CountAsync("SELECT count(*) FROM workflow.workflow_runs");
        var cases = new (Dictionary<string, string> Tags, string Path)[]
        {
            (Tags(("customer", new string('x', 201))), "tags.customer"),
            (Tags((new string('k', 65), "v")), "tags." + new string('k', 65)),
            (Tags(("customer", "c\0-1")), "tags.customer"),
            (Tags(("", "v")), "tags."),
            (Enumerable.Range(0, 21).ToDictionary(i => "k" + i, i => "v"), "tags"),
        };

        foreach (var (tags, path) in cases)
        {
            var error = Assert.ThrowsAsync<WorkflowDataValidationException>(() =>
                _client.EnqueueAsync<AddWorkflow>(new WorkflowInput(new AddInput()), Later with { Tags = tags }));
            Assert.That(error!.Errors.Select(e => e.Path), Does.Contain(path));
        }

        Assert.That(await CountAsync("SELECT count(*) FROM workflow.workflow_runs"), Is.EqualTo(before));
    }

    [Test]
    public async Task EnqueueManyAsync_StoresEachItemsTags_AndReportsBadTagsWithTheItemIndex()
    {
        var input = Newtonsoft.Json.Linq.JObject.Parse("{\"test_step_input\":{\"argument_1\":1,\"argument_2\":2}}");
        var ids = await _client.EnqueueManyAsync("add",
        [
            new WorkflowEnqueueItem(input, Later with { Tags = Tags(("batch", "b-1"), ("item", "0")) }),
            new WorkflowEnqueueItem(input, Later with { Tags = Tags(("batch", "b-1"), ("item", "1")) }),
            new WorkflowEnqueueItem(input, Later),
        ]);

        Assert.That((await _client.GetAsync(ids[1]))!.Tags, Is.EquivalentTo(Tags(("batch", "b-1"), ("item", "1"))));
        Assert.That((await _client.GetAsync(ids[2]))!.Tags, Is.Empty);
        Assert.That(await IdsAsync(new WorkflowQuery { Tags = Tags(("batch", "b-1")) }), Is.EquivalentTo(ids.Take(2)));

        var error = Assert.ThrowsAsync<WorkflowDataValidationException>(() => _client.EnqueueManyAsync("add",
            [new WorkflowEnqueueItem(input, Later), new WorkflowEnqueueItem(input, Later with { Tags = Tags(("batch", new string('v', 201))) })]));
        Assert.That(error!.Errors.Select(e => e.Path), Is.EqualTo(new[] { "[1].tags.batch" }));
    }

    [TestCase("WorkflowName")]
    [TestCase("ErrorContains")]
    [TestCase("IdempotencyKey")]
    [TestCase("RecurringId")]
    [TestCase("Tags")]
    public void ListAsync_ThrowsNamingTheProperty_WhenTextContainsNul(string property)
    {
        var query = property switch
        {
            "WorkflowName" => new WorkflowQuery { WorkflowName = "a\0b" },
            "ErrorContains" => new WorkflowQuery { ErrorContains = "a\0b" },
            "IdempotencyKey" => new WorkflowQuery { IdempotencyKey = "a\0b" },
            "RecurringId" => new WorkflowQuery { RecurringId = "a\0b" },
            _ => new WorkflowQuery { Tags = Tags(("customer", "a\0b")) },
        };

        var error = Assert.ThrowsAsync<ArgumentException>(() => _client.ListAsync(query));

        Assert.That(error!.Message, Does.Contain("WorkflowQuery." + property));
    }

    [Test]
    public async Task CountFailedRuns_CountsFailedRuns_UpToTheCap()
    {
        var store = _host.Services.GetRequiredService<IWorkflowStore>();

        Assert.That(store.CountFailedRuns(100), Is.EqualTo(1));
        await ExecuteAsync($"UPDATE workflow.workflow_runs SET status = 'Failed' WHERE uuid IN ('{_b}', '{_c}')");
        try
        {
            Assert.That(store.CountFailedRuns(100), Is.EqualTo(3));
            Assert.That(store.CountFailedRuns(2), Is.EqualTo(2));
        }
        finally
        {
            await ExecuteAsync($"UPDATE workflow.workflow_runs SET status = 'Pending' WHERE uuid IN ('{_b}', '{_c}')");
        }
    }

    [Test]
    public async Task Migrations_CreateTheSearchIndexes()
    {
        await using var connection = new NpgsqlConnection(_connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(
            "SELECT string_agg(indexname || ' ' || indexdef, E'\\n') FROM pg_indexes WHERE schemaname = 'workflow'", connection);
        var indexes = (string)(await command.ExecuteScalarAsync())!;

        Assert.That(indexes, Does.Contain("ix_workflow_runs_tags").And.Contain("jsonb_path_ops"));
        Assert.That(indexes, Does.Contain("ix_workflow_runs_failed_created").And.Contain("'Failed'"));
        Assert.That(indexes, Does.Contain("ix_workflow_runs_error_trgm").And.Contain("gin_trgm_ops"), "pg_trgm is in the test server's contrib");
    }
}
