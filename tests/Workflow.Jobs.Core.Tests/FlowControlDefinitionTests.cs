namespace Workflow.Jobs.Core.Tests;

/// <summary>Flow-control limits of definitions, checked when the registry is built (host start).</summary>
public class FlowControlDefinitionTests
{
    private sealed class ZeroLimitWorkflow : WorkflowDefinition
    {
        public override IReadOnlyList<Type> Steps { get; } = [typeof(AddStep)];

        public override int? MaxConcurrency => 0;
    }

    private sealed class KeyLimitedWorkflow : WorkflowDefinition
    {
        public override IReadOnlyList<Type> Steps { get; } = [typeof(AddStep)];

        public override int? MaxConcurrencyPerKey => 3;
    }

    [Test]
    public void Registry_RejectsTheDefinition_WhenALimitIsBelowOne()
    {
        var ex = Assert.Throws<WorkflowDefinitionException>(() => _ = new WorkflowRegistry([new WorkflowRegistration(typeof(ZeroLimitWorkflow))]));
        Assert.That(ex!.Message, Does.Contain(nameof(ZeroLimitWorkflow)).And.Contain("MaxConcurrency = 0"));
    }

    [Test]
    public void RequestFor_LimitsOnlyRunsWithAKey_WhenOnlyThePerKeyLimitIsSet()
    {
        var workflow = new WorkflowRegistry([new WorkflowRegistration(typeof(KeyLimitedWorkflow))]).Get(typeof(KeyLimitedWorkflow));
        var keyed = new RunRecord(Guid.NewGuid(), workflow.Name, WorkflowStatus.Pending, [], null, workflow.StepNames, 0) { ConcurrencyKey = "k" };
        var unkeyed = keyed with { ConcurrencyKey = null };

        Assert.That(FlowControl.RequestFor(workflow, keyed), Is.EqualTo(new SlotRequest(workflow.Name, "k", null, 3, default, Offered: false)));
        Assert.That(FlowControl.RequestFor(workflow, unkeyed), Is.Null, "a run without a key is not limited by the per-key limit");
    }

    [Test]
    public void ValidateKey_NamesTheField_WhenTheKeyIsBlank()
    {
        var ex = Assert.Throws<WorkflowDataValidationException>(() => FlowControl.ValidateKey("  "));
        Assert.That(ex!.Errors.Single().Path, Is.EqualTo("concurrency_key"));
    }
}
