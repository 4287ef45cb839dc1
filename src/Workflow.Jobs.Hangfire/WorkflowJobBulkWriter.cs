using System.Globalization;
using Hangfire;
using Hangfire.Common;
using Hangfire.States;
using Hangfire.Storage;
using Npgsql;
using NpgsqlTypes;

namespace Workflow.Jobs.Hangfire;

/// <summary>
/// Creates the Enqueued jobs of a batch of new runs in one statement on the library's own Hangfire storage: the rows
/// Hangfire's client writes for each job (the job with its invocation data, its parameters, its Enqueued state, its
/// queue row), for all the batch's jobs at once, in the runs' transaction, plus the queue wake-up's notification.
/// <para>
/// Hangfire's client writes them in about ten round trips per job and runs its filters on each. This writer is
/// only used where that makes no difference: the storage is the one the library built on its data source, and every
/// filter of a workflow job is one whose effect on a job created Enqueued is known and reproduced here (Hangfire's
/// default global filters, of which only <see cref="CaptureCultureAttribute"/> writes anything at creation, and the
/// workflow filters, which do nothing then). With any other filter, or a delayed run (Scheduled), jobs are created
/// through Hangfire's client one by one, as before. The payloads are serialized by Hangfire's own public serializers,
/// so a job written here reads back exactly like one created by the client.
/// </para>
/// </summary>
internal sealed class WorkflowJobBulkWriter
{
    private readonly NpgsqlDataSource _dataSource;
    private readonly LibraryJobStorage _library;
    private readonly IJobFilterProvider _filters;
    private readonly string _sql;
    private readonly string? _channel;
    private readonly string _jobIdSql;
    private bool? _filtersKnown;

    public WorkflowJobBulkWriter(NpgsqlDataSource dataSource, LibraryJobStorage library, IJobFilterProvider filters, WorkflowHangfireOptions options)
    {
        _dataSource = dataSource;
        _library = library;
        _filters = filters;
        _channel = options.WakeWorkersOnEnqueue ? NotifyingJobQueueProvider.ChannelName(options.SchemaName) : null;
        var schema = "\"" + options.SchemaName.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";
        // The schema inside a string literal (pg_get_serial_sequence takes the table's name as text).
        var schemaText = schema.Replace("'", "''", StringComparison.Ordinal);
        _jobIdSql = $"currval(pg_get_serial_sequence('{schemaText}.\"job\"', 'id'))::text";
        // Job and state ids are drawn first so that each job row can name its state row (job.stateid) and every
        // child row its job, all in one statement (foreign keys are checked at its end). The sequences are looked up
        // once per statement (seq), not once per row; the wake-up is one notification per queue, not per job.
        _sql = $"""
            WITH seq AS MATERIALIZED (
                SELECT pg_get_serial_sequence('{schemaText}."job"', 'id')::regclass AS job_seq,
                       pg_get_serial_sequence('{schemaText}."state"', 'id')::regclass AS state_seq),
            src AS MATERIALIZED (
                SELECT nextval(seq.job_seq) AS id, nextval(seq.state_seq) AS state_id,
                       t.n, t.invocation, t.arguments, t.queue, t.state_data
                FROM seq, unnest(@invocations, @arguments, @queues, @states) WITH ORDINALITY AS t(invocation, arguments, queue, state_data, n)),
            j AS (
                INSERT INTO {schema}."job" ("id", "stateid", "statename", "invocationdata", "arguments", "createdat", "expireat")
                SELECT id, state_id, 'Enqueued', invocation::jsonb, arguments::jsonb, @created, NULL FROM src),
            s AS (
                INSERT INTO {schema}."state" ("id", "jobid", "name", "reason", "createdat", "data")
                SELECT state_id, id, 'Enqueued', NULL, @created, state_data::jsonb FROM src),
            p AS (
                INSERT INTO {schema}."jobparameter" ("jobid", "name", "value")
                SELECT src.id, p.name, p.value FROM unnest(@parameter_jobs, @parameter_names, @parameter_values) AS p(n, name, value)
                JOIN src ON src.n = p.n),
            q AS (
                INSERT INTO {schema}."jobqueue" ("jobid", "queue") SELECT id, queue FROM src)
            SELECT src.id FROM src{(_channel is null ? "" : " CROSS JOIN (SELECT count(pg_notify(@channel, d.queue)) FROM (SELECT DISTINCT queue FROM src) d) w")} ORDER BY src.n
            """;
    }

    /// <summary>
    /// Whether <paramref name="storage"/> is the library's own and a workflow job has only filters whose effect at
    /// creation this writer reproduces (decided once: filters are registered when the host is built).
    /// </summary>
    public bool CanWrite(JobStorage storage)
    {
        if (!_library.Owns(storage))
        {
            return false;
        }

        return _filtersKnown ??= _filters.GetFilters(SampleJob).All(f => IsKnown(f.Instance));
    }

    /// <summary>
    /// The statement creating the job of one new run (its result: the job id), for the run's insert to carry in the same
    /// round trip; the job id is then <see cref="InlineJobWrite.JobIdSql"/> (the job sequence's value in that session).
    /// </summary>
    public InlineJobWrite CreateInline(string workflowName, RunJob run)
    {
        var command = new NpgsqlBatchCommand(_sql);
        AddParameters(command.Parameters, workflowName, [run]);
        return new InlineJobWrite(command, _jobIdSql);
    }

    /// <summary>Creates the jobs, in the caller's ambient transaction; returns their ids in the order of <paramref name="runs"/>.</summary>
    public IReadOnlyList<string> Write(string workflowName, IReadOnlyList<RunJob> runs)
    {
        // In the runs' transaction scope, this is the scope's one enlisted connector (the runs' insert, before or after
        // this statement, uses it too).
        using var connection = _dataSource.OpenConnection();
        using var command = new NpgsqlCommand(_sql, connection);
        AddParameters(command.Parameters, workflowName, runs);
        var ids = new List<string>(runs.Count);
        using (var reader = command.ExecuteReader())
        {
            while (reader.Read())
            {
                ids.Add(reader.GetInt64(0).ToString(CultureInfo.InvariantCulture));
            }
        }

        if (ids.Count != runs.Count)
        {
            throw new InvalidOperationException($"Created {ids.Count} jobs for {runs.Count} runs.");
        }

        return ids;
    }

    private void AddParameters(NpgsqlParameterCollection parameters, string workflowName, IReadOnlyList<RunJob> runs)
    {
        var created = DateTime.UtcNow;
        var invocations = new string[runs.Count];
        var arguments = new string[runs.Count];
        var queues = new string[runs.Count];
        var states = new string[runs.Count];
        var parameterJobs = new List<long>();
        var parameterNames = new List<string>();
        var parameterValues = new List<string>();
        var culture = CultureInfo.CurrentCulture.Name;
        var uiCulture = CultureInfo.CurrentUICulture.Name;
        // The same for every job of the call: serialized once.
        var nameValue = SerializationHelper.Serialize(workflowName, SerializationOption.User);
        var cultureValue = SerializationHelper.Serialize(culture, SerializationOption.User);
        var uiCultureValue = string.Equals(uiCulture, culture, StringComparison.Ordinal) ? null : SerializationHelper.Serialize(uiCulture, SerializationOption.User);
        // The payloads of a batch's jobs differ only by the run id: serialized once per queue with a placeholder id,
        // then the run's id put in its place (a Guid serializes as its "D" text, which occurs nowhere else).
        var templates = new Dictionary<string, Payload>(StringComparer.Ordinal);
        for (var i = 0; i < runs.Count; i++)
        {
            var run = runs[i];
            var queue = run.Queue ?? EnqueuedState.DefaultQueue;
            var runId = run.RunId.ToString();
            if (!templates.TryGetValue(run.Queue ?? "", out var payload))
            {
                templates[run.Queue ?? ""] = payload = Payload.Create(run.Queue, queue);
            }

            invocations[i] = payload.Invocation.Replace(Placeholder, runId, StringComparison.Ordinal);
            arguments[i] = payload.Arguments.Replace(Placeholder, runId, StringComparison.Ordinal);
            queues[i] = queue;
            states[i] = payload.State;
            // What the client writes: the dispatcher's parameters, then CaptureCultureAttribute's (the UI culture only
            // when it differs, as under the compatibility level the library configures).
            AddParameter(i, WorkflowJobParameters.WorkflowName, nameValue);
            AddParameter(i, "CurrentCulture", cultureValue);
            if (uiCultureValue is not null)
            {
                AddParameter(i, "CurrentUICulture", uiCultureValue);
            }
        }

        parameters.Add(new NpgsqlParameter("invocations", NpgsqlDbType.Array | NpgsqlDbType.Text) { Value = invocations });
        parameters.Add(new NpgsqlParameter("arguments", NpgsqlDbType.Array | NpgsqlDbType.Text) { Value = arguments });
        parameters.Add(new NpgsqlParameter("queues", NpgsqlDbType.Array | NpgsqlDbType.Text) { Value = queues });
        parameters.Add(new NpgsqlParameter("states", NpgsqlDbType.Array | NpgsqlDbType.Text) { Value = states });
        parameters.Add(new NpgsqlParameter("created", NpgsqlDbType.TimestampTz) { Value = created });
        parameters.Add(new NpgsqlParameter("parameter_jobs", NpgsqlDbType.Array | NpgsqlDbType.Bigint) { Value = parameterJobs.ToArray() });
        parameters.Add(new NpgsqlParameter("parameter_names", NpgsqlDbType.Array | NpgsqlDbType.Text) { Value = parameterNames.ToArray() });
        parameters.Add(new NpgsqlParameter("parameter_values", NpgsqlDbType.Array | NpgsqlDbType.Text) { Value = parameterValues.ToArray() });
        if (_channel is not null)
        {
            parameters.Add(new NpgsqlParameter("channel", NpgsqlDbType.Text) { Value = _channel });
        }

        void AddParameter(int index, string name, string serializedValue)
        {
            parameterJobs.Add(index + 1);
            parameterNames.Add(name);
            parameterValues.Add(serializedValue);
        }
    }

    private static readonly Job SampleJob = Job.FromExpression<WorkflowJob>(j => j.ExecuteAsync(Guid.Empty, CancellationToken.None));

    private static readonly Guid PlaceholderId = new("5f1e7a3c-0b9d-4c2e-8a61-d3f4b2c7e9a0");

    private static readonly string Placeholder = PlaceholderId.ToString();

    /// <summary>A job's serialized invocation, arguments and Enqueued state, for the placeholder run id.</summary>
    private sealed record Payload(string Invocation, string Arguments, string State)
    {
        public static Payload Create(string? jobQueue, string queue)
        {
            var job = Job.FromExpression<WorkflowJob>(j => j.ExecuteAsync(PlaceholderId, CancellationToken.None), jobQueue);
            var invocation = InvocationData.SerializeJob(job);
            return new Payload(SerializationHelper.Serialize(invocation), invocation.Arguments ?? "[]",
                SerializationHelper.Serialize(new EnqueuedState(queue).SerializeData()));
        }
    }

    // Hangfire's default global filters and the workflow filters: none acts on a job created Enqueued except
    // CaptureCultureAttribute (its default settings: it writes the culture parameters above).
    private static bool IsKnown(object filter) => filter switch
    {
        CaptureCultureAttribute capture => capture.CaptureDefault,
        AutomaticRetryAttribute or StatisticsHistoryAttribute or ContinuationsSupportAttribute => true,
        // The workflow filters: none writes anything when a job is created (the wait filter elects only for a parked
        // execution's failure, the origin filter acts only while a server performs the job).
        WorkflowRetryFilter or WorkflowStateSyncFilter or WorkflowWaitFilter or WorkflowJobOriginFilter => true,
        _ => false,
    };
}
