namespace Workflow.Jobs.Hangfire.Tests;

/// <summary>The queue poll's defaults with and without the wake-up, and the wake-up's channel name.</summary>
public class WorkflowHangfireOptionsTests
{
    [Test]
    public void EffectiveQueuePollInterval_IsAFiveSecondFallback_WhenTheWakeUpIsOn()
    {
        var options = new WorkflowHangfireOptions();

        Assert.That(options.WakeWorkersOnEnqueue, Is.True);
        Assert.That(options.EffectiveQueuePollInterval, Is.EqualTo(TimeSpan.FromSeconds(5)));
    }

    [Test]
    public void EffectiveQueuePollInterval_Is50Milliseconds_WhenTheWakeUpIsOff()
    {
        var options = new WorkflowHangfireOptions { WakeWorkersOnEnqueue = false };

        Assert.That(options.EffectiveQueuePollInterval, Is.EqualTo(TimeSpan.FromMilliseconds(50)));
    }

    [Test]
    public void EffectiveQueuePollInterval_IsTheSetInterval_WhenOneIsSet()
    {
        var options = new WorkflowHangfireOptions { QueuePollInterval = TimeSpan.FromMilliseconds(200) };

        Assert.That(options.EffectiveQueuePollInterval, Is.EqualTo(TimeSpan.FromMilliseconds(200)));
    }

    [Test]
    public void Validate_Throws_WhenTheQueuePollIntervalIsNotPositive()
    {
        var options = new WorkflowHangfireOptions { QueuePollInterval = TimeSpan.Zero };

        Assert.That(options.Validate, Throws.InvalidOperationException.With.Message.Contains("QueuePollInterval"));
    }

    [Test]
    public void ChannelName_NamesTheSchema_WhenItIsAPlainIdentifier()
        => Assert.That(NotifyingJobQueueProvider.ChannelName("hangfire"), Is.EqualTo("workflow_jobs_hangfire"));

    [Test]
    public void ChannelName_IsAStableLowerCaseDigest_WhenTheSchemaNameIsLongQuotedOrUpperCase()
    {
        var longName = NotifyingJobQueueProvider.ChannelName(new string('s', 63));
        var quoted = NotifyingJobQueueProvider.ChannelName("my \"jobs\"");
        var upper = NotifyingJobQueueProvider.ChannelName("HangFire");

        Assert.That(longName, Has.Length.LessThanOrEqualTo(63).And.StartsWith("workflow_jobs_"));
        Assert.That(quoted, Has.Length.LessThanOrEqualTo(63).And.Match("^[a-z0-9_]+$"));
        Assert.That(NotifyingJobQueueProvider.ChannelName("my \"jobs\""), Is.EqualTo(quoted), "stable");
        Assert.That(upper, Does.Match("^[a-z0-9_]+$").And.Not.EqualTo(NotifyingJobQueueProvider.ChannelName("hangfire")));
        Assert.That(longName, Is.Not.EqualTo(quoted));
    }
}
