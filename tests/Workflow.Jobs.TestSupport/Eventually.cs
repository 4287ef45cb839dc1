using NUnit.Framework;

namespace Workflow.Jobs.TestSupport;

/// <summary>Waiting for a condition with a deadline (never a fixed sleep).</summary>
public static class Eventually
{
    private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(20);

    /// <summary>Polls until the condition holds; fails the test, saying what was awaited, when the deadline passes.</summary>
    public static Task UntilAsync(Func<Task<bool>> condition, TimeSpan timeout, string what)
        => UntilAsync(condition, timeout, () => what);

    /// <summary>
    /// Polls until the condition holds; fails the test when the deadline passes, with <paramref name="what"/>
    /// evaluated then (so it can describe the last state seen).
    /// </summary>
    public static async Task UntilAsync(Func<Task<bool>> condition, TimeSpan timeout, Func<string> what)
    {
        ArgumentNullException.ThrowIfNull(condition);
        ArgumentNullException.ThrowIfNull(what);
        var deadline = DateTime.UtcNow + timeout;
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                Assert.Fail($"Timed out after {timeout.TotalSeconds:0.#} s waiting for: {what()}");
            }

            await Task.Delay(PollInterval);
        }
    }
}
