namespace Workflow.Jobs.EntityFrameworkCore;

/// <summary>
/// Flow control's slots in PostgreSQL. Slot <c>i</c> of a group is the session-level advisory lock
/// <c>hashtextextended(group, i)</c> (the one-key form, like the runs' guards): an execution takes it with
/// <c>pg_try_advisory_lock</c> on its guard connection, so it is released with the guard, and by PostgreSQL when the
/// process or the connection dies (no lease to expire). Two servers can never hold the same slot, so a group never has
/// more executions than slots. An offer counts the held slots of a group in <c>pg_locks</c>.
/// </summary>
internal static class NpgsqlFlowControl
{
    /// <summary>The group text of a workflow's slots.</summary>
    public static string WorkflowGroup(string workflowName) => "workflow-slot\u001f" + workflowName;

    /// <summary>The prefix of the group text of a key's slots (the key follows it).</summary>
    public static string KeyGroupPrefix(string workflowName) => "key-slot\u001f" + workflowName + "\u001f";

    /// <summary>The group text of a key's slots.</summary>
    public static string KeyGroup(string workflowName, string key) => KeyGroupPrefix(workflowName) + key;

    /// <summary>The stored name of a group (<c>concurrency_wait</c>).</summary>
    public static string? GroupText(SlotGroup group) => group switch
    {
        SlotGroup.Workflow => "workflow",
        SlotGroup.Key => "key",
        _ => null,
    };

    /// <summary>A group from its stored name.</summary>
    public static SlotGroup ParseGroup(string? text) => text switch
    {
        "workflow" => SlotGroup.Workflow,
        "key" => SlotGroup.Key,
        _ => SlotGroup.None,
    };

    /// <summary>
    /// The admission, one statement: the queue check (an older run of the same key, or an older run waiting for a workflow
    /// slot, still waits: this one queues behind it; a run offered a slot is passed only by older runs still Waiting), then a
    /// key slot, then a workflow slot, each the first free of its group. CASE keeps every lock attempt behind its
    /// condition, and LIMIT 1 stops at the first slot taken.
    /// </summary>
    public static readonly string AdmitSql =
        $"""
        WITH gate AS (
            SELECT CASE
                WHEN @ignore_queue THEN NULL
                WHEN @n_k > 0 AND EXISTS (
                    SELECT 1 FROM {NpgsqlWorkflowStore.RunsTable} w
                    WHERE w.workflow_name = @name AND w.concurrency_key = @key AND w.waiting_for = '{FlowControl.WaitingFor}' AND NOT w.is_removed
                      AND (w.status = 'Waiting' OR (NOT @offered AND w.status = 'Pending'))
                      AND (w.created, w.uuid) < (@created, @run)) THEN 'key'
                WHEN @n_w > 0 AND EXISTS (
                    SELECT 1 FROM {NpgsqlWorkflowStore.RunsTable} w
                    WHERE w.workflow_name = @name AND w.waiting_for = '{FlowControl.WaitingFor}' AND w.concurrency_wait = 'workflow' AND NOT w.is_removed
                      AND (w.status = 'Waiting' OR (NOT @offered AND w.status = 'Pending'))
                      AND (w.created, w.uuid) < (@created, @run)) THEN 'workflow'
            END AS queued
        )
        SELECT g.queued, ks.k, ws.k
        FROM gate g
        LEFT JOIN LATERAL (
            SELECT hashtextextended(@k_group, i) AS k FROM generate_series(0, @n_k - 1) AS i
            WHERE CASE WHEN g.queued IS NULL THEN pg_try_advisory_lock(hashtextextended(@k_group, i)) ELSE false END
            LIMIT 1) ks ON true
        LEFT JOIN LATERAL (
            SELECT hashtextextended(@w_group, i) AS k FROM generate_series(0, @n_w - 1) AS i
            WHERE CASE WHEN g.queued IS NULL AND (@n_k = 0 OR ks.k IS NOT NULL) THEN pg_try_advisory_lock(hashtextextended(@w_group, i)) ELSE false END
            LIMIT 1) ws ON true
        """;

    /// <summary>
    /// The offer for one workflow (the leader's pass, or an execution's hand-off of the slots it gave back), one statement: the free slots of each full group (its limit minus the slots
    /// held in <c>pg_locks</c> minus the runs already offered one and not started) go to the oldest runs Waiting for that
    /// group, which are woken (Waiting → Pending, a wake job write) keeping <c>waiting_for</c> until they start. A group
    /// whose limit was removed from the definition releases all its waiting runs.
    /// </summary>
    public static string OfferSql(WorkflowTransition wake, string wakeRequest) =>
        $"""
        WITH queue AS (
            SELECT uuid, status, concurrency_key, concurrency_wait, created FROM {NpgsqlWorkflowStore.RunsTable}
            WHERE workflow_name = @name AND waiting_for = '{FlowControl.WaitingFor}' AND NOT is_removed AND status IN ('Waiting', 'Pending')
        ),
        held AS (
            SELECT (l.classid::bigint << 32) | l.objid::bigint AS k FROM pg_locks l
            WHERE l.locktype = 'advisory' AND l.objsubid = 1 AND l.granted
              AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
        ),
        workflow_free AS (
            SELECT CASE WHEN @n_w = 0 THEN @batch ELSE @n_w
                     - (SELECT count(*) FROM held WHERE k IN (SELECT hashtextextended(@w_group, i) FROM generate_series(0, @n_w - 1) AS i))
                     - (SELECT count(*) FROM queue WHERE status = 'Pending' AND concurrency_wait = 'workflow') END AS free
            WHERE EXISTS (SELECT 1 FROM queue WHERE status = 'Waiting' AND concurrency_wait = 'workflow')
        ),
        key_free AS (
            SELECT g.key, CASE WHEN @n_k = 0 THEN @batch ELSE @n_k
                     - (SELECT count(*) FROM held WHERE k IN (SELECT hashtextextended(@k_prefix || g.key, i) FROM generate_series(0, @n_k - 1) AS i))
                     - (SELECT count(*) FROM queue p WHERE p.status = 'Pending' AND p.concurrency_key = g.key AND p.concurrency_wait = 'key') END AS free
            FROM (SELECT DISTINCT concurrency_key AS key FROM queue WHERE status = 'Waiting' AND concurrency_wait = 'key' AND concurrency_key IS NOT NULL) g
        ),
        chosen AS (
            SELECT q.uuid FROM (
                SELECT uuid, row_number() OVER (ORDER BY created, uuid) AS n FROM queue WHERE status = 'Waiting' AND concurrency_wait = 'workflow') q
            JOIN workflow_free f ON q.n <= f.free
            UNION
            SELECT q.uuid FROM (
                SELECT uuid, concurrency_key, row_number() OVER (PARTITION BY concurrency_key ORDER BY created, uuid) AS n
                FROM queue WHERE status = 'Waiting' AND concurrency_wait = 'key') q
            JOIN key_free f ON f.key = q.concurrency_key AND q.n <= f.free
            UNION
            SELECT uuid FROM queue WHERE status = 'Waiting' AND (concurrency_wait IS NULL OR (concurrency_wait = 'key' AND concurrency_key IS NULL))
        ),
        locked AS (
            SELECT r.uuid FROM {NpgsqlWorkflowStore.RunsTable} r JOIN chosen c ON c.uuid = r.uuid
            WHERE r.status IN {wake.SqlFrom} AND r.waiting_for = '{FlowControl.WaitingFor}'
            FOR UPDATE OF r SKIP LOCKED
        )
        UPDATE {NpgsqlWorkflowStore.RunsTable} r
        SET status = '{wake.To}', modified = @now, job_request = '{wakeRequest}'
        FROM locked
        WHERE r.uuid = locked.uuid
        RETURNING r.uuid, r.workflow_name, r.queue, r.job_id, r.not_before
        """;
}
