using Newtonsoft.Json.Linq;

namespace Workflow.Jobs;

/// <summary>One run to enqueue with <see cref="IWorkflowClient.EnqueueManyAsync"/>: its composite input and options.</summary>
/// <param name="Input">The composite input JSON, as for <see cref="IWorkflowClient.EnqueueAsync(string, JObject, EnqueueOptions?, CancellationToken)"/>.</param>
/// <param name="Options">Idempotency key, queue, delay of this run.</param>
public sealed record WorkflowEnqueueItem(JObject Input, EnqueueOptions? Options = null);
