namespace Workflow.Jobs;

/// <summary>Which failures are final (never retried).</summary>
internal static class WorkflowFailures
{
    private static readonly HashSet<string> FinalCodes = new(StringComparer.Ordinal)
    {
        WorkflowDataValidationException.ValidationFailedCode, UnitOfWorkException.DefinitionMismatchCode, UnitOfWorkException.UnknownWorkflowCode,
        UnitOfWorkException.NotFoundCode, UnitOfWorkException.CancelledCode, UnitOfWorkException.RunFinishedCode,
        WorkflowEventTimeoutException.EventTimeoutCode,
    };

    /// <summary>
    /// A <see cref="NonRetryableException"/> anywhere in the chain, invalid data, a definition mismatch, an
    /// unknown workflow or run, a cancelled run, or an event wait past its deadline (it would time out again).
    /// </summary>
    public static bool IsFinal(Exception? exception)
    {
        for (var e = exception; e is not null; e = e.InnerException)
        {
            if (e is NonRetryableException or WorkflowDataValidationException || (e is UnitOfWorkException u && FinalCodes.Contains(u.Code)))
            {
                return true;
            }
        }

        return false;
    }
}
