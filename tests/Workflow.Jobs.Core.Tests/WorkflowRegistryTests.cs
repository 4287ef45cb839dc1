namespace Workflow.Jobs.Core.Tests;

public class WorkflowRegistryTests
{
    private sealed class NotAStep;

    private sealed class NotAStepWorkflow : WorkflowDefinition
    {
        public override IReadOnlyList<Type> Steps { get; } = [typeof(NotAStep)];
    }

    private sealed class NoKeyStep : WorkflowStep<NoKeyData, AddOutput>
    {
        protected override Task<AddOutput> ProcessInputAsync(NoKeyData input, StepContext context, CancellationToken cancellationToken)
            => Task.FromResult(new AddOutput());
    }

    private sealed class NoKeyWorkflow : WorkflowDefinition
    {
        public override IReadOnlyList<Type> Steps { get; } = [typeof(NoKeyStep)];
    }

    private sealed class OtherAddStep : WorkflowStep<AddInput, SquareOutput>
    {
        protected override Task<SquareOutput> ProcessInputAsync(AddInput input, StepContext context, CancellationToken cancellationToken)
            => Task.FromResult(new SquareOutput());
    }

    private sealed class SharedInputKeyWorkflow : WorkflowDefinition
    {
        public override IReadOnlyList<Type> Steps { get; } = [typeof(AddStep), typeof(OtherAddStep)];
    }

    private sealed class OtherSquareStep : WorkflowStep<DupeInput, AddOutput>
    {
        protected override Task<AddOutput> ProcessInputAsync(DupeInput input, StepContext context, CancellationToken cancellationToken)
            => Task.FromResult(new AddOutput());
    }

    private sealed class SharedOutputKeyWorkflow : WorkflowDefinition
    {
        public override IReadOnlyList<Type> Steps { get; } = [typeof(AddStep), typeof(OtherSquareStep)];
    }

    [WorkflowName("add-then-square")]
    private sealed class SameNameWorkflow : WorkflowDefinition
    {
        public override IReadOnlyList<Type> Steps { get; } = [typeof(AddStep)];
    }

    private sealed class EmptyWorkflow : WorkflowDefinition
    {
        public override IReadOnlyList<Type> Steps { get; } = [];
    }

    private static WorkflowRegistry Build(params Type[] types) => new(types.Select(t => new WorkflowRegistration(t)));

    [Test]
    public void Registry_DescribesWorkflow_WithNamesKeysAndOrder()
    {
        var registry = Build(typeof(AddThenSquareWorkflow));
        var workflow = registry.Find("add-then-square")!;
        Assert.That(workflow.StepNames, Is.EqualTo(new[] { "AddStep", "SquareStep" }));
        Assert.That(workflow.Steps[0].InputKey, Is.EqualTo("test_step_input"));
        Assert.That(workflow.Steps[1].OutputKey, Is.EqualTo("square_output"));
        Assert.That(registry.Get(typeof(AddThenSquareWorkflow)), Is.SameAs(workflow));
    }

    [TestCase(typeof(NotAStepWorkflow), nameof(NotAStep))]
    [TestCase(typeof(NoKeyWorkflow), nameof(NoKeyData))]
    [TestCase(typeof(SharedInputKeyWorkflow), "test_step_input")]
    [TestCase(typeof(SharedOutputKeyWorkflow), "test_step_output")]
    [TestCase(typeof(EmptyWorkflow), nameof(EmptyWorkflow))]
    public void Registry_Throws_NamingTheProblem_ForInvalidDefinition(Type workflow, string named)
    {
        var ex = Assert.Throws<WorkflowDefinitionException>(() => Build(workflow));
        Assert.That(ex!.Message, Does.Contain(named));
    }

    [Test]
    public void Registry_Throws_ForDuplicateWorkflowName()
    {
        var ex = Assert.Throws<WorkflowDefinitionException>(() => Build(typeof(AddThenSquareWorkflow), typeof(SameNameWorkflow)));
        Assert.That(ex!.Message, Does.Contain("add-then-square").And.Contain(nameof(SameNameWorkflow)));
    }

    [Test]
    public void Validator_ReportsEveryPartError_AndUnknownKeys()
    {
        var workflow = Build(typeof(AddThenSquareWorkflow)).Find("add-then-square")!;
        var input = WorkflowJson.ParseObject("""{"test_step_input":{"argument_1":"x"},"square_input":{"offset":"y"},"bogus":{}}""");
        var ex = Assert.Throws<WorkflowDataValidationException>(() => WorkflowInputValidator.Validate(workflow, input));
        Assert.That(ex!.Errors.Select(e => e.Path), Is.EquivalentTo(new[] { "bogus", "test_step_input.argument_1", "square_input.offset" }));
    }

    [Test]
    public void Validator_AcceptsAbsentParts_AsDefaults()
    {
        var workflow = Build(typeof(AddThenSquareWorkflow)).Find("add-then-square")!;
        Assert.DoesNotThrow(() => WorkflowInputValidator.Validate(workflow, []));
    }
}
