using Npgsql;

namespace Workflow.Jobs.Reliability;

/// <summary>How a step body ended, as written in the ledger (no end at all: the process died).</summary>
public enum LedgerOutcome
{
    Succeeded,
    Failed,
    Cancelled,
}

/// <summary>One open ledger row: a step body that has started.</summary>
public sealed record LedgerEntry(long Id);

/// <summary>
/// The execution ledger: every step body writes a row when it starts and closes it when it ends, with
/// the database's clock (one clock for every process). This is the side effect the suite measures.
/// </summary>
public sealed class Ledger(NpgsqlDataSource dataSource, WorkerIdentity identity)
{
    /// <summary>Tables of the suite, beside the library's. The trigger records every write that marks a step Succeeded (a checkpoint).</summary>
    public const string SchemaSql =
        """
        CREATE SCHEMA IF NOT EXISTS reliability;
        CREATE TABLE IF NOT EXISTS reliability.ledger (
            id bigserial PRIMARY KEY,
            run_id uuid NOT NULL,
            step_name text NOT NULL,
            step_id uuid NOT NULL,
            attempt int NOT NULL,
            worker text NOT NULL,
            pid int NOT NULL,
            started_at timestamptz NOT NULL DEFAULT clock_timestamp(),
            ended_at timestamptz,
            outcome text);
        CREATE INDEX IF NOT EXISTS ledger_run ON reliability.ledger (run_id, step_name);
        CREATE TABLE IF NOT EXISTS reliability.checkpoints (
            id bigserial PRIMARY KEY,
            step_id uuid NOT NULL,
            run_id uuid NOT NULL,
            step_name text NOT NULL,
            at timestamptz NOT NULL DEFAULT clock_timestamp());
        CREATE TABLE IF NOT EXISTS reliability.received (
            id bigserial PRIMARY KEY,
            run_id uuid NOT NULL,
            step_id uuid NOT NULL,
            nonce text NOT NULL,
            worker text NOT NULL,
            at timestamptz NOT NULL DEFAULT clock_timestamp());
        CREATE TABLE IF NOT EXISTS reliability.signals (
            run_id uuid NOT NULL,
            nonce text PRIMARY KEY,
            sent_at timestamptz NOT NULL DEFAULT clock_timestamp());
        CREATE TABLE IF NOT EXISTS reliability.kills (worker text NOT NULL, pid int NOT NULL, killed_at timestamptz NOT NULL);
        CREATE OR REPLACE FUNCTION reliability.record_checkpoint() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO reliability.checkpoints (step_id, run_id, step_name) VALUES (NEW.uuid, NEW.workflow_record_uuid, NEW.step_name);
            RETURN NULL;
        END $$;
        DROP TRIGGER IF EXISTS reliability_checkpoint ON workflow.workflow_steps;
        CREATE TRIGGER reliability_checkpoint AFTER INSERT OR UPDATE ON workflow.workflow_steps
            FOR EACH ROW WHEN (NEW.status = 'Succeeded') EXECUTE FUNCTION reliability.record_checkpoint();
        """;

    private static readonly TimeSpan EndRetryWindow = TimeSpan.FromSeconds(120);

    /// <summary>The worker process's label.</summary>
    public string Worker => identity.Label;

    /// <summary>Writes the start row. A failure (database down) fails the step before any work: nothing ran.</summary>
    public async Task<LedgerEntry> StartAsync(StepContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        await using var command = dataSource.CreateCommand(
            "INSERT INTO reliability.ledger (run_id, step_name, step_id, attempt, worker, pid) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id");
        command.Parameters.Add(new NpgsqlParameter { Value = context.WorkflowId });
        command.Parameters.Add(new NpgsqlParameter { Value = context.StepName });
        command.Parameters.Add(new NpgsqlParameter { Value = context.StepId });
        command.Parameters.Add(new NpgsqlParameter { Value = context.Attempt });
        command.Parameters.Add(new NpgsqlParameter { Value = identity.Label });
        command.Parameters.Add(new NpgsqlParameter { Value = Environment.ProcessId });
        var id = (long)(await command.ExecuteScalarAsync(cancellationToken))!;
        return new LedgerEntry(id);
    }

    /// <summary>Records which event a wait returned (every time it returns: a re-run of the step must get the same one).</summary>
    public async Task RecordEventAsync(StepContext context, string nonce, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        await using var command = dataSource.CreateCommand("INSERT INTO reliability.received (run_id, step_id, nonce, worker) VALUES ($1, $2, $3, $4)");
        command.Parameters.Add(new NpgsqlParameter { Value = context.WorkflowId });
        command.Parameters.Add(new NpgsqlParameter { Value = context.StepId });
        command.Parameters.Add(new NpgsqlParameter { Value = nonce });
        command.Parameters.Add(new NpgsqlParameter { Value = identity.Label });
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>
    /// Closes the row. The body's work is done, so the end is written even through a database restart
    /// (retried for two minutes); only a killed process leaves a row open.
    /// </summary>
    public async Task EndAsync(LedgerEntry entry, LedgerOutcome outcome)
    {
        ArgumentNullException.ThrowIfNull(entry);
        var deadline = DateTime.UtcNow + EndRetryWindow;
        while (true)
        {
            try
            {
                await using var command = dataSource.CreateCommand("UPDATE reliability.ledger SET ended_at = clock_timestamp(), outcome = $2 WHERE id = $1");
                command.Parameters.Add(new NpgsqlParameter { Value = entry.Id });
                command.Parameters.Add(new NpgsqlParameter { Value = outcome.ToString() });
                await command.ExecuteNonQueryAsync(CancellationToken.None);
                return;
            }
            catch (NpgsqlException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(250, CancellationToken.None);
            }
        }
    }
}

/// <summary>Who this worker process is: a label unique in the run (index, generation, pid).</summary>
public sealed record WorkerIdentity(string Label);
