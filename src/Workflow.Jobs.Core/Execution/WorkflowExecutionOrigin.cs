namespace Workflow.Jobs;

/// <summary>
/// The job and server of the execution running on the current asynchronous flow, recorded with each step attempt.
/// A job scheduler's integration sets it around each job it performs (a server filter), so the job method's
/// signature stays as it is; an execution outside any job has no job id and this machine's name.
/// </summary>
/// <remarks>A singleton of the host's container (not static): each host has its own.</remarks>
internal sealed class WorkflowExecutionOrigin
{
    private readonly AsyncLocal<Origin?> _current = new();

    /// <summary>The job performing the current execution, if any.</summary>
    public string? JobId => _current.Value?.JobId;

    /// <summary>The server performing the current execution, or this machine's name.</summary>
    public string ServerName => _current.Value?.ServerName ?? Environment.MachineName;

    /// <summary>Sets the job and server for the current flow and the work it starts, until <see cref="Clear"/>.</summary>
    public void Set(string? jobId, string? serverName) => _current.Value = new Origin(jobId, serverName);

    /// <summary>Forgets the current flow's job and server.</summary>
    public void Clear() => _current.Value = null;

    private sealed record Origin(string? JobId, string? ServerName);
}
