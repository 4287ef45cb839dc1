using System.Text;
using Npgsql;
using NpgsqlTypes;

namespace Workflow.Jobs.EntityFrameworkCore;

/// <summary>
/// The SQL condition of a <see cref="WorkflowQuery"/>'s filters over <c>workflow_runs</c> (alias <c>r</c>), with its
/// parameters; shared by listings, counts and bulk actions so they select exactly the same runs. Every filter is
/// backed by an index (see <see cref="WorkflowDbContext"/> and the migrations): status, name, recurring id and the
/// created range by b-tree indexes on (column, created), tags by a GIN index (<c>jsonb_path_ops</c>, containment),
/// the idempotency key by its unique index, the parent by the children's partial index (parent, status), the error text by a trigram index when <c>pg_trgm</c> is installed.
/// </summary>
internal static class WorkflowQuerySql
{
    /// <summary>The WHERE condition (never empty: soft-removed runs are never selected) and adds its parameters to <paramref name="command"/>.</summary>
    public static string Where(WorkflowQuery query, NpgsqlCommand command)
    {
        var where = new StringBuilder("NOT r.is_removed");
        if (query.WorkflowName is not null)
        {
            where.Append(" AND r.workflow_name = @q_name");
            command.Parameters.Add(NpgsqlWorkflowStore.Text("q_name", query.WorkflowName));
        }

        if (query.Status is { } status)
        {
            where.Append(" AND r.status = @q_status");
            command.Parameters.Add(NpgsqlWorkflowStore.Text("q_status", status.ToString()));
        }

        if (query.RecurringId is not null)
        {
            where.Append(" AND r.recurring_id = @q_recurring");
            command.Parameters.Add(NpgsqlWorkflowStore.Text("q_recurring", query.RecurringId));
        }

        if (query.IdempotencyKey is not null)
        {
            where.Append(" AND r.idempotency_key = @q_key");
            command.Parameters.Add(NpgsqlWorkflowStore.Text("q_key", query.IdempotencyKey));
        }

        if (query.ConcurrencyKey is not null)
        {
            where.Append(" AND r.concurrency_key = @q_concurrency_key");
            command.Parameters.Add(NpgsqlWorkflowStore.Text("q_concurrency_key", query.ConcurrencyKey));
        }

        if (query.ParentId is { } parent)
        {
            where.Append(" AND r.parent_uuid = @q_parent");
            command.Parameters.Add(new NpgsqlParameter("q_parent", NpgsqlDbType.Uuid) { Value = parent });
        }

        if (query.CreatedAfter is { } after)
        {
            where.Append(" AND r.created >= @q_after");
            command.Parameters.Add(new NpgsqlParameter("q_after", NpgsqlDbType.TimestampTz) { Value = after.ToUniversalTime() });
        }

        if (query.CreatedBefore is { } before)
        {
            where.Append(" AND r.created < @q_before");
            command.Parameters.Add(new NpgsqlParameter("q_before", NpgsqlDbType.TimestampTz) { Value = before.ToUniversalTime() });
        }

        if (!string.IsNullOrEmpty(query.ErrorContains))
        {
            // ILIKE with the wildcards of the text escaped: a plain substring match, served by the trigram index.
            where.Append(" AND r.exception_message ILIKE @q_error ESCAPE '\\'");
            command.Parameters.Add(NpgsqlWorkflowStore.Text("q_error", "%" + EscapeLike(query.ErrorContains) + "%"));
        }

        if (query.Tags is { Count: > 0 } tags)
        {
            where.Append(" AND r.tags @> @q_tags");
            command.Parameters.Add(new NpgsqlParameter("q_tags", NpgsqlDbType.Jsonb) { Value = WorkflowTags.ToJson(tags) });
        }

        return where.ToString();
    }

    internal static string EscapeLike(string text)
        => text.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("%", "\\%", StringComparison.Ordinal).Replace("_", "\\_", StringComparison.Ordinal);
}
