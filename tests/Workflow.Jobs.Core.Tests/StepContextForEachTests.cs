using Moq;
using Newtonsoft.Json.Linq;

namespace Workflow.Jobs.Core.Tests;

/// <summary>The fan-out's own logic (validation, order, failures, what it writes), with the execution mocked.</summary>
public class StepContextForEachTests
{
    private static StepContext Context(IRunExecution? execution = null, int attempt = 1)
    {
        var stepId = Guid.Parse("0193a000-0000-7000-8000-000000000001");
        return new StepContext(Guid.NewGuid(), stepId, attempt, new WorkflowOutput())
        {
            StepName = "fan-out",
            Items = execution is null ? null : new RunExecutionStepItems(execution, stepId, attempt, TimeProvider.System),
        };
    }

    [Test]
    public void ForEachOptions_Throws_WhenMaxDegreeOfParallelismIsBelowOne()
    {
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => _ = new ForEachOptions { MaxDegreeOfParallelism = 0 });

        Assert.That(ex!.ParamName, Is.EqualTo(nameof(ForEachOptions.MaxDegreeOfParallelism)));
        Assert.That(ex.Message, Does.Contain("ForEachOptions.MaxDegreeOfParallelism must be at least 1 but was 0"));
        Assert.That(new ForEachOptions().MaxDegreeOfParallelism, Is.EqualTo(4));
    }

    [Test]
    public void ForEachAsync_Throws_WhenItemsOrBodyAreNull()
    {
        var context = Context();

        Assert.That(() => context.ForEachAsync<int, int>(null!, (i, _) => Task.FromResult(i)),
            Throws.ArgumentNullException.With.Property(nameof(ArgumentException.ParamName)).EqualTo("items"));
        Assert.That(() => context.ForEachAsync<int, int>([1], (Func<int, CancellationToken, Task<int>>)null!),
            Throws.ArgumentNullException.With.Property(nameof(ArgumentException.ParamName)).EqualTo("body"));
    }

    [Test]
    public async Task ForEachAsync_ReturnsResultsInInputOrder_WithoutCheckpoints_WhenTheContextWasCreatedByHand()
    {
        var results = await Context().ForEachAsync(Enumerable.Range(0, 50).ToList(), async (i, ct) =>
        {
            await Task.Yield();
            return i * 2;
        }, new ForEachOptions { MaxDegreeOfParallelism = 7 });

        Assert.That(results, Is.EqualTo(Enumerable.Range(0, 50).Select(i => i * 2)));
    }

    [Test]
    public async Task ForEachAsync_RunsOnlyItemsWithoutAStoredResult_AndWritesEachFinishedItem()
    {
        var execution = new Mock<IRunExecution>();
        var stored = new Dictionary<int, JToken> { [0] = new JValue("stored-0"), [2] = new JValue("stored-2") };
        execution.Setup(e => e.BeginItemsAsync(It.IsAny<Guid>(), 1, 4, It.IsAny<DateTimeOffset>(), It.IsAny<CancellationToken>()))
            .ReturnsAsync(new ItemCallState(4, stored));
        var written = new List<ItemOutcome>();
        execution.Setup(e => e.SaveItemsAsync(It.IsAny<Guid>(), 1, It.IsAny<IReadOnlyList<ItemOutcome>>(), 1, It.IsAny<DateTimeOffset>(), It.IsAny<CancellationToken>()))
            .Callback((Guid _, int _, IReadOnlyList<ItemOutcome> outcomes, int _, DateTimeOffset _, CancellationToken _) => { lock (written) { written.AddRange(outcomes); } })
            .Returns(Task.CompletedTask);
        var ran = new List<int>();

        var results = await Context(execution.Object).ForEachAsync(new[] { "a", "b", "c", "d" }, item =>
        {
            lock (ran)
            {
                ran.Add(item.Index);
            }

            return Task.FromResult($"ran-{item.Index}");
        });

        Assert.That(results, Is.EqualTo(new[] { "stored-0", "ran-1", "stored-2", "ran-3" }));
        Assert.That(ran.Order(), Is.EqualTo(new[] { 1, 3 }));
        Assert.That(written.OrderBy(o => o.Index).Select(o => (o.Index, o.Output!.Value<string>(), o.Error)),
            Is.EqualTo(new[] { (1, "ran-1", (string?)null), (3, "ran-3", (string?)null) }));
    }

    [Test]
    public async Task ForEachAsync_WritesNothing_WhenThereAreNoItems()
    {
        var execution = new Mock<IRunExecution>(MockBehavior.Strict);

        var results = await Context(execution.Object).ForEachAsync(Array.Empty<int>(), (i, _) => Task.FromResult(i));

        Assert.That(results, Is.Empty);
        execution.VerifyNoOtherCalls();
    }

    [Test]
    public void ForEachAsync_ThrowsWithTheFailedIndexes_AfterRunningEveryOtherItem()
    {
        var ran = 0;
        var ex = Assert.ThrowsAsync<ForEachItemFailedException>(() => Context().ForEachAsync(Enumerable.Range(0, 10).ToList(), (i, _) =>
        {
            Interlocked.Increment(ref ran);
            return i is 3 or 7 ? Task.FromException<int>(new InvalidOperationException($"no {i}")) : Task.FromResult(i);
        }));

        Assert.That(ran, Is.EqualTo(10), "a failing item does not stop the others");
        Assert.That(ex!.Message, Is.EqualTo("2 of 10 items failed (indexes 3, 7); item 3: no 3"));
        Assert.That(ex.Index, Is.EqualTo(3));
        Assert.That(ex.FailedIndexes, Is.EqualTo(new[] { 3, 7 }));
        Assert.That(ex.InnerException!.Message, Is.EqualTo("no 3"));
    }

    [Test]
    public void ForEachAsync_CarriesANonRetryableItemError_SoTheStepFailsForGood()
    {
        var ex = Assert.ThrowsAsync<ForEachItemFailedException>(() => Context().ForEachAsync(Enumerable.Range(0, 5).ToList(), (i, _) => i switch
        {
            1 => Task.FromException<int>(new InvalidOperationException("transient")),
            4 => Task.FromException<int>(new NonRetryableException("for good")),
            _ => Task.FromResult(i),
        }));

        Assert.That(ex!.Index, Is.EqualTo(4));
        Assert.That(WorkflowFailures.IsFinal(ex), Is.True);
    }

    [Test]
    public void ForEachAsync_ThrowsNonRetryable_WhenTheRecordedItemCountDiffers()
    {
        var execution = new Mock<IRunExecution>();
        execution.Setup(e => e.BeginItemsAsync(It.IsAny<Guid>(), 1, 3, It.IsAny<DateTimeOffset>(), It.IsAny<CancellationToken>()))
            .ReturnsAsync(new ItemCallState(2, new Dictionary<int, JToken>()));

        var ex = Assert.ThrowsAsync<NonRetryableException>(() => Context(execution.Object).ForEachAsync(new[] { 1, 2, 3 }, (i, _) => Task.FromResult(i)));

        Assert.That(ex!.Message, Does.Contain("ForEachAsync call 1 of step 'fan-out' was given 3 items, but its checkpoints were written for 2"));
    }

    [Test]
    public async Task ThrowIfInsideForEach_Throws_OnlyWhileAFanOutRuns()
    {
        var context = Context();
        Exception? inside = null;

        await context.ForEachAsync(new[] { 1 }, (i, _) =>
        {
            inside = Assert.Throws<InvalidOperationException>(() => context.ThrowIfInsideForEach("SleepAsync"));
            return Task.FromResult(i);
        });

        Assert.That(inside!.Message, Does.Contain("SleepAsync cannot be used while ForEachAsync runs in step 'fan-out'"));
        Assert.DoesNotThrow(() => context.ThrowIfInsideForEach("SleepAsync"));
    }
}
