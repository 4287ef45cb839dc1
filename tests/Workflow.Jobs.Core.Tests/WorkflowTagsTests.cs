using Microsoft.Extensions.Logging.Abstractions;
using Moq;
using Newtonsoft.Json.Linq;

namespace Workflow.Jobs.Core.Tests;

/// <summary>Tag rules at enqueue and query checks, before anything reaches storage.</summary>
public class WorkflowTagsTests
{
    private static readonly JObject ValidInput = JObject.Parse("{\"test_step_input\":{\"argument_1\":2,\"argument_2\":3}}");

    private Mock<IWorkflowStore> _store = null!;
    private WorkflowClient _client = null!;

    [SetUp]
    public void SetUp()
    {
        _store = new Mock<IWorkflowStore>(MockBehavior.Strict);
        var dispatcher = new Mock<IWorkflowJobDispatcher>(MockBehavior.Strict);
        dispatcher.SetupGet(d => d.JoinsRunTransaction).Returns(true);
        var registry = new WorkflowRegistry([new WorkflowRegistration(typeof(AddThenSquareWorkflow))]);
        var jobs = new WorkflowJobRequests(_store.Object, TimeProvider.System, NullLogger<WorkflowJobRequests>.Instance, dispatcher.Object);
        _client = new WorkflowClient(_store.Object, registry, jobs, new WorkflowMetrics(), TimeProvider.System, NullLogger<WorkflowClient>.Instance,
            dispatcher.Object);
    }

    [Test]
    public async Task EnqueueAsync_StoresACopyOfTheTags_WhenValid()
    {
        NewRunRecord? stored = null;
        _store.Setup(s => s.CreateRunAsync(It.IsAny<NewRunRecord>(), It.IsAny<Func<Guid, string?>?>(), It.IsAny<CancellationToken>()))
            .Callback((NewRunRecord run, Func<Guid, string?>? _, CancellationToken _) => stored = run)
            .ReturnsAsync((NewRunRecord run, Func<Guid, string?>? _, CancellationToken _) => new CreateRunResult(run.Id, true, null));
        var tags = new Dictionary<string, string> { ["customer"] = "c-1" };

        await _client.EnqueueAsync("add-then-square", ValidInput, new EnqueueOptions { Tags = tags });
        tags["customer"] = "changed later";

        Assert.That(stored!.Tags, Is.EquivalentTo(new Dictionary<string, string> { ["customer"] = "c-1" }));
    }

    [Test]
    public void EnqueueAsync_ReportsEveryBadTagWithItsPath_AndPersistsNothing()
    {
        var ex = Assert.ThrowsAsync<WorkflowDataValidationException>(() => _client.EnqueueAsync("add-then-square", ValidInput,
            new EnqueueOptions { Tags = new Dictionary<string, string> { ["customer"] = new string('v', 201), ["re\0gion"] = "eu", ["ok"] = "fine" } }));

        Assert.That(ex!.Errors.Select(e => e.Path), Is.EquivalentTo(new[] { "tags.customer", "tags.re\uFFFDgion" }));
        _store.Verify(s => s.CreateRunAsync(It.IsAny<NewRunRecord>(), It.IsAny<Func<Guid, string?>?>(), It.IsAny<CancellationToken>()), Times.Never);
    }

    [Test]
    public void ToJsonAndFromJson_RoundTrip_WithKeysInOrdinalOrder()
    {
        var json = WorkflowTags.ToJson(new Dictionary<string, string> { ["b"] = "2", ["a"] = "1 \"quoted\"" });

        Assert.That(json, Is.EqualTo("{\"a\":\"1 \\\"quoted\\\"\",\"b\":\"2\"}"));
        Assert.That(WorkflowTags.FromJson(json), Is.EquivalentTo(new Dictionary<string, string> { ["a"] = "1 \"quoted\"", ["b"] = "2" }));
        Assert.That(WorkflowTags.FromJson("{}"), Is.Empty);
    }

    [TestCase(0, 50)]
    [TestCase(1001, 0)]
    [TestCase(50, -1)]
    public void ListAsync_ThrowsOutOfRange_WhenPagingIsOutOfBounds(int limit, int offset)
        => Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => _client.ListAsync(new WorkflowQuery { Limit = limit, Offset = offset }));

    [Test]
    public void ListAsync_ThrowsNamingErrorContains_WhenItIsTooLong()
    {
        var ex = Assert.ThrowsAsync<ArgumentException>(() => _client.ListAsync(new WorkflowQuery { ErrorContains = new string('e', 501) }));

        Assert.That(ex!.Message, Does.Contain("WorkflowQuery.ErrorContains"));
    }

    [Test]
    public void ListAsync_ThrowsNamingTags_WhenATagKeyIsEmpty()
    {
        var ex = Assert.ThrowsAsync<ArgumentException>(() => _client.ListAsync(new WorkflowQuery { Tags = new Dictionary<string, string> { [""] = "x" } }));

        Assert.That(ex!.Message, Does.Contain("WorkflowQuery.Tags"));
    }

    [Test]
    public void ListAsync_ThrowsNamingStatus_WhenStatusIsNotDefined()
    {
        var ex = Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => _client.ListAsync(new WorkflowQuery { Status = (WorkflowStatus)42 }));

        Assert.That(ex!.Message, Does.Contain("WorkflowQuery.Status"));
    }
}
