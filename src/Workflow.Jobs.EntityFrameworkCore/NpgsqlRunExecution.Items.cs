using System.Data;
using Newtonsoft.Json;
using Newtonsoft.Json.Linq;
using Npgsql;
using NpgsqlTypes;

namespace Workflow.Jobs.EntityFrameworkCore;

/// <summary>
/// Fan-out item checkpoints. They are written on the guard's connection, so only the execution that holds the run's guard
/// writes them, and they run while the step body runs: each takes its turn with the guard watch's probes.
/// </summary>
internal sealed partial class NpgsqlRunExecution
{
    internal const string ItemsTable = "workflow.workflow_step_items";

    // The fan-out's items are written Pending once (a later run of the step finds them and keeps the first count); in the
    // same round trip and transaction, the count and the results of the items already done.
    private static readonly string BeginItemsSql =
        $"""
        INSERT INTO {ItemsTable} (step_uuid, call_number, item_index, status)
        SELECT @step, @call, i, 'Pending' FROM generate_series(0, @count - 1) AS i
        WHERE NOT EXISTS (SELECT 1 FROM {ItemsTable} WHERE step_uuid = @step AND call_number = @call);
        """;

    private static readonly string CountItemsSql =
        $"SELECT count(*)::int FROM {ItemsTable} WHERE step_uuid = @step AND call_number = @call;";

    private static readonly string DoneItemsSql =
        $"SELECT item_index, output_data::text FROM {ItemsTable} WHERE step_uuid = @step AND call_number = @call AND status = 'Succeeded';";

    // One statement for a group of finished items, whatever their outcomes.
    private static readonly string SaveItemsSql =
        $"""
        UPDATE {ItemsTable} AS i
        SET status = u.status, output_data = u.output::jsonb, exception_message = u.error, attempt = @attempt, finished_at = @now
        FROM unnest(@indexes, @statuses, @outputs, @errors) AS u(item_index, status, output, error)
        WHERE i.step_uuid = @step AND i.call_number = @call AND i.item_index = u.item_index;
        """;

    public async Task<ItemCallState> BeginItemsAsync(Guid stepId, int call, int count, DateTimeOffset now, CancellationToken cancellationToken)
    {
        await _connectionTurn.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await using var batch = NewBatch();
            NpgsqlParameter[] Key() => [new("step", stepId), new("call", call)];
            batch.BatchCommands.Add(Command(BeginItemsSql, [.. Key(), new NpgsqlParameter("count", count)]));
            batch.BatchCommands.Add(Command(CountItemsSql, Key()));
            batch.BatchCommands.Add(Command(DoneItemsSql, Key()));
            // The reader starts at the count (the insert returns no result set).
            await using var reader = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            var recorded = reader.GetInt32(0);
            await reader.NextResultAsync(cancellationToken).ConfigureAwait(false);
            var results = new Dictionary<int, JToken>();
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                results[reader.GetInt32(0)] = await reader.IsDBNullAsync(1, cancellationToken).ConfigureAwait(false)
                    ? JValue.CreateNull()
                    : ParseValue(reader.GetString(1));
            }

            return new ItemCallState(recorded, results);
        }
        catch (Exception ex) when (ConnectionLost())
        {
            await MarkGuardLostAsync(ex).ConfigureAwait(false);
            throw;
        }
        finally
        {
            _connectionTurn.Release();
        }
    }

    public async Task SaveItemsAsync(Guid stepId, int call, IReadOnlyList<ItemOutcome> outcomes, int attempt, DateTimeOffset now,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(outcomes);
        await _connectionTurn.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await using var batch = NewBatch();
            batch.BatchCommands.Add(Command(SaveItemsSql,
                new NpgsqlParameter("step", stepId),
                new NpgsqlParameter("call", call),
                new NpgsqlParameter("attempt", attempt),
                Now(now),
                new NpgsqlParameter("indexes", NpgsqlDbType.Array | NpgsqlDbType.Integer) { Value = outcomes.Select(o => o.Index).ToArray() },
                new NpgsqlParameter("statuses", NpgsqlDbType.Array | NpgsqlDbType.Text)
                {
                    Value = outcomes.Select(o => (o.Succeeded ? WorkflowStatus.Succeeded : WorkflowStatus.Failed).ToString()).ToArray(),
                },
                new NpgsqlParameter("outputs", NpgsqlDbType.Array | NpgsqlDbType.Text)
                {
                    Value = outcomes.Select(o => o.Succeeded ? (o.Output ?? JValue.CreateNull()).ToString(Formatting.None) : null).ToArray(),
                },
                new NpgsqlParameter("errors", NpgsqlDbType.Array | NpgsqlDbType.Text) { Value = outcomes.Select(o => o.Error).ToArray() }));
            await batch.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ConnectionLost())
        {
            await MarkGuardLostAsync(ex).ConfigureAwait(false);
            throw;
        }
        finally
        {
            _connectionTurn.Release();
        }
    }

    /// <summary>Whether the guard's connection is gone (and the guard with it).</summary>
    private bool ConnectionLost()
        => _connection.FullState.HasFlag(ConnectionState.Broken) || _connection.State == ConnectionState.Closed;

    private async Task MarkGuardLostAsync(Exception reason)
    {
        if (_watch is { } watch)
        {
            await watch.LoseAsync(reason).ConfigureAwait(false);
        }
    }

    /// <summary>Parses a JSON value this library wrote (any JSON value, not only objects).</summary>
    private static JToken ParseValue(string json)
    {
        using var reader = new JsonTextReader(new StringReader(json))
        {
            DateParseHandling = DateParseHandling.None,
            FloatParseHandling = FloatParseHandling.Decimal,
            MaxDepth = WorkflowJson.MaxDepth,
        };
        return JToken.ReadFrom(reader);
    }
}
