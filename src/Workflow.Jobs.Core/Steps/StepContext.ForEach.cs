using System.Globalization;
using System.Runtime.ExceptionServices;
using Newtonsoft.Json.Linq;

namespace Workflow.Jobs;

/// <summary>Fan-out inside a step: a body per item, bounded parallelism, a checkpoint per finished item.</summary>
public sealed partial class StepContext
{
    private static readonly ForEachOptions DefaultForEachOptions = new();

    // Fan-out calls made by this execution of the step (numbers them 1, 2, ... in call order) and those still running.
    private int _forEachCalls;
    private int _forEachRunning;

    /// <summary>
    /// Where the fan-outs of this step checkpoint their items (set by the engine); null for a context created by hand,
    /// whose fan-outs run without checkpoints.
    /// </summary>
    internal RunExecutionStepItems? Items { get; init; }

    /// <summary>
    /// Runs <paramref name="body"/> for each item, at most <see cref="ForEachOptions.MaxDegreeOfParallelism"/> at once,
    /// and checkpoints each item's result (as JSON) as soon as it finishes. When the step runs again (a retry after a
    /// failure, a resume after a crash), items whose result was checkpointed are not run again: their stored results are
    /// used. Results come back in the order of <paramref name="items"/>.
    /// </summary>
    /// <remarks>
    /// Items are matched by position, so a step must fan out over the same list every time it runs; several fan-outs in one
    /// step are numbered in call order and kept apart. A failing item does not stop the others: every item runs, the
    /// finished ones are checkpointed, and then the fan-out throws <see cref="ForEachItemFailedException"/> (the failed
    /// item's index in its message), so the step fails and its retry runs only the unfinished items. A body runs at least
    /// once per item (a crash between its side effect and its checkpoint runs it again): use the overload with
    /// <see cref="ForEachItem{TItem}.IdempotencyKey"/> for external calls. Results must round-trip through JSON. No waits
    /// inside bodies.
    /// </remarks>
    /// <typeparam name="TItem">The item type.</typeparam>
    /// <typeparam name="TResult">The result type, stored as JSON.</typeparam>
    /// <param name="items">The items.</param>
    /// <param name="body">The work of one item; its token is cancelled with the step.</param>
    /// <param name="options">Parallelism; default 4 bodies at once.</param>
    /// <param name="cancellationToken">Cancels the fan-out (pass the step's token).</param>
    /// <returns>The results, in the order of <paramref name="items"/>.</returns>
    /// <exception cref="ForEachItemFailedException">Items failed; the others finished and were checkpointed.</exception>
    /// <exception cref="NonRetryableException">The step fanned out over a different number of items than when its checkpoints were written.</exception>
    public Task<IReadOnlyList<TResult>> ForEachAsync<TItem, TResult>(IReadOnlyList<TItem> items, Func<TItem, CancellationToken, Task<TResult>> body,
        ForEachOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(body);
        return ForEachAsync(items, item => body(item.Item, item.CancellationToken), options, cancellationToken);
    }

    /// <summary>
    /// As <see cref="ForEachAsync{TItem, TResult}(IReadOnlyList{TItem}, Func{TItem, CancellationToken, Task{TResult}}, ForEachOptions?, CancellationToken)"/>,
    /// with a body that receives the item's context: its index, the item, a stable idempotency key and the cancellation token.
    /// </summary>
    /// <typeparam name="TItem">The item type.</typeparam>
    /// <typeparam name="TResult">The result type, stored as JSON.</typeparam>
    /// <param name="items">The items.</param>
    /// <param name="body">The work of one item.</param>
    /// <param name="options">Parallelism; default 4 bodies at once.</param>
    /// <param name="cancellationToken">Cancels the fan-out (pass the step's token).</param>
    /// <returns>The results, in the order of <paramref name="items"/>.</returns>
    /// <exception cref="ForEachItemFailedException">Items failed; the others finished and were checkpointed.</exception>
    /// <exception cref="NonRetryableException">The step fanned out over a different number of items than when its checkpoints were written.</exception>
    public async Task<IReadOnlyList<TResult>> ForEachAsync<TItem, TResult>(IReadOnlyList<TItem> items, Func<ForEachItem<TItem>, Task<TResult>> body,
        ForEachOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(items);
        ArgumentNullException.ThrowIfNull(body);
        var parallelism = (options ?? DefaultForEachOptions).MaxDegreeOfParallelism;
        var call = Interlocked.Increment(ref _forEachCalls);
        Interlocked.Increment(ref _forEachRunning);
        try
        {
            return await RunForEachAsync(items, body, parallelism, call, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            Interlocked.Decrement(ref _forEachRunning);
        }
    }

    /// <summary>Throws when a fan-out of this step is running: bodies must not wait (a wait re-runs the whole step).</summary>
    internal void ThrowIfInsideForEach(string operation)
    {
        if (Volatile.Read(ref _forEachRunning) > 0)
        {
            throw new InvalidOperationException($"{operation} cannot be used while ForEachAsync runs in step '{StepName}': item bodies must not wait.");
        }
    }

    /// <summary>The idempotency key of an item: the same on every run of the step.</summary>
    internal string ItemKey(int call, int index) => string.Create(CultureInfo.InvariantCulture, $"{StepId:D}:{call}:{index}");

    private async Task<IReadOnlyList<TResult>> RunForEachAsync<TItem, TResult>(IReadOnlyList<TItem> items, Func<ForEachItem<TItem>, Task<TResult>> body,
        int parallelism, int call, CancellationToken cancellationToken)
    {
        var count = items.Count;
        if (count == 0)
        {
            // Nothing to run or to record.
            return [];
        }

        var results = new TResult[count];
        var finished = new bool[count];
        if (Items is { } store)
        {
            var state = await store.BeginAsync(call, count, cancellationToken).ConfigureAwait(false);
            if (state.Count != count)
            {
                throw new NonRetryableException(string.Create(CultureInfo.InvariantCulture,
                    $"ForEachAsync call {call} of step '{StepName}' was given {count} items, but its checkpoints were written for {state.Count}: a step must fan out over the same items every time it runs."));
            }

            foreach (var (index, json) in state.Results)
            {
                results[index] = json.Type == JTokenType.Null ? default! : json.ToObject<TResult>(WorkflowJson.Serializer)!;
                finished[index] = true;
            }
        }

        var todo = Enumerable.Range(0, count).Where(i => !finished[i]).ToArray();
        if (todo.Length == 0)
        {
            return results;
        }

        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var writer = Items is { } checkpoints ? new ItemCheckpointWriter(checkpoints, call, stop) : null;
        var failures = new List<(int Index, Exception Error)>();
        var next = -1;
        var ran = 0;

        async Task WorkAsync()
        {
            while (!stop.IsCancellationRequested)
            {
                var position = Interlocked.Increment(ref next);
                if (position >= todo.Length)
                {
                    return;
                }

                var index = todo[position];
                try
                {
                    var result = await body(new ForEachItem<TItem>(index, items[index], ItemKey(call, index), stop.Token)).ConfigureAwait(false);
                    var json = result is null ? JValue.CreateNull() : JToken.FromObject(result, WorkflowJson.Serializer);
                    results[index] = result;
                    writer?.Add(new ItemOutcome(index, json, null));
                }
                catch (OperationCanceledException) when (stop.IsCancellationRequested)
                {
                    // Cancelled with the step: the item is not finished (neither done nor failed).
                    return;
                }
                catch (Exception ex)
                {
                    lock (failures)
                    {
                        failures.Add((index, ex));
                    }

                    writer?.Add(new ItemOutcome(index, null, ex.Message));
                }

                Interlocked.Increment(ref ran);
            }
        }

        var workers = Enumerable.Range(0, Math.Min(parallelism, todo.Length)).Select(_ => Task.Run(WorkAsync, CancellationToken.None)).ToList();
        try
        {
            await Task.WhenAll(workers).ConfigureAwait(false);
        }
        finally
        {
            if (writer is not null)
            {
                // Every finished item is committed (or its write failed) before the fan-out returns or throws.
                await writer.DrainAsync().ConfigureAwait(false);
            }
        }

        if (writer?.Error is { } writeError)
        {
            // The storage's own error (an outage, a lost guard): the engine and the job scheduler treat it as such.
            ExceptionDispatchInfo.Capture(writeError).Throw();
        }

        if (ran < todo.Length)
        {
            cancellationToken.ThrowIfCancellationRequested();
        }

        if (failures.Count > 0)
        {
            throw Failed(failures, count, call);
        }

        return results;
    }

    private static ForEachItemFailedException Failed(List<(int Index, Exception Error)> failures, int count, int call)
    {
        var sorted = failures.OrderBy(f => f.Index).ToList();
        // A final error (never retried) of any item makes the step's failure final: it is the one carried.
        var carried = sorted.FirstOrDefault(f => WorkflowFailures.IsFinal(f.Error));
        if (carried.Error is null)
        {
            carried = sorted[0];
        }

        var where = call == 1 ? "" : string.Create(CultureInfo.InvariantCulture, $" (ForEachAsync call {call})");
        var message = sorted.Count == 1
            ? string.Create(CultureInfo.InvariantCulture, $"Item {carried.Index} of {count}{where} failed: {carried.Error.Message}")
            : string.Create(CultureInfo.InvariantCulture,
                $"{sorted.Count} of {count} items{where} failed (indexes {string.Join(", ", sorted.Take(10).Select(f => f.Index))}{(sorted.Count > 10 ? ", ..." : "")}); item {carried.Index}: {carried.Error.Message}");
        return new ForEachItemFailedException(message, carried.Error)
        {
            Index = carried.Index,
            FailedIndexes = sorted.Select(f => f.Index).ToList(),
            ItemCount = count,
        };
    }

    /// <summary>
    /// Writes finished items in groups: one write at a time; the items that finish while it is in flight go in the next
    /// one. A failed write stops the fan-out (its token is cancelled) and nothing more is written.
    /// </summary>
    private sealed class ItemCheckpointWriter(RunExecutionStepItems store, int call, CancellationTokenSource stop)
    {
        private readonly Lock _lock = new();
        private List<ItemOutcome> _queue = [];
        private Task _flush = Task.CompletedTask;
        private bool _flushing;

        public Exception? Error { get; private set; }

        public void Add(ItemOutcome outcome)
        {
            lock (_lock)
            {
                if (Error is not null)
                {
                    return;
                }

                _queue.Add(outcome);
                if (!_flushing)
                {
                    _flushing = true;
                    _flush = Task.Run(FlushAsync, CancellationToken.None);
                }
            }
        }

        /// <summary>Completes when everything added so far has been written (or a write failed).</summary>
        public Task DrainAsync()
        {
            lock (_lock)
            {
#pragma warning disable VSTHRD003 // _flush is this writer's own write loop, started by Add; no JoinableTaskFactory context exists to deadlock.
                return _flush;
#pragma warning restore VSTHRD003
            }
        }

        private async Task FlushAsync()
        {
            while (true)
            {
                List<ItemOutcome> batch;
                lock (_lock)
                {
                    if (_queue.Count == 0)
                    {
                        _flushing = false;
                        return;
                    }

                    batch = _queue;
                    _queue = [];
                }

                try
                {
                    // Not cancellable: a finished item is written even while the step is being cancelled (shutdown).
                    await store.SaveAsync(call, batch, CancellationToken.None).ConfigureAwait(false);
                }
                catch (Exception ex)
                {
                    lock (_lock)
                    {
                        Error = ex;
                        _queue.Clear();
                        _flushing = false;
                    }

                    await stop.CancelAsync().ConfigureAwait(false);
                    return;
                }
            }
        }
    }
}
