using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Workflow.Jobs.EntityFrameworkCore;

/// <summary>A persisted run (the seed's unit-of-work fields plus status, attempts and the definition's steps).</summary>
internal sealed class WorkflowRunEntity
{
    /// <summary>Primary key (<c>uuid</c>).</summary>
    public Guid Id { get; set; }
    /// <summary>Persisted workflow name.</summary>
    public string WorkflowName { get; set; } = "";
    /// <summary>Status.</summary>
    public WorkflowStatus Status { get; set; }
    /// <summary>Composite input (<c>jsonb</c>).</summary>
    public string InputData { get; set; } = "{}";
    /// <summary>Composite output once succeeded (<c>jsonb</c>).</summary>
    public string? OutputData { get; set; }
    /// <summary>Creation time (UTC).</summary>
    public DateTimeOffset Created { get; set; }
    /// <summary>Last change (UTC).</summary>
    public DateTimeOffset Modified { get; set; }
    /// <summary>Soft delete.</summary>
    public bool IsRemoved { get; set; }
    /// <summary>Success time (UTC).</summary>
    public DateTimeOffset? SucceededAt { get; set; }
    /// <summary>Last failure time (UTC).</summary>
    public DateTimeOffset? FailedAt { get; set; }
    /// <summary>Original message of the last failure.</summary>
    public string? ExceptionMessage { get; set; }
    /// <summary>The definition's step names when the run was created.</summary>
    public string[] StepNames { get; set; } = [];
    /// <summary>Succeeded steps.</summary>
    public int CompletedSteps { get; set; }
    /// <summary>Executions started.</summary>
    public int Attempts { get; set; }
    /// <summary>Hangfire job id.</summary>
    public string? JobId { get; set; }
    /// <summary>Idempotency key (unique).</summary>
    public string? IdempotencyKey { get; set; }
    /// <summary>Recurring schedule id.</summary>
    public string? RecurringId { get; set; }
    /// <summary>Hangfire queue.</summary>
    public string? Queue { get; set; }
    /// <summary>The job write (create, requeue, delete) that must follow the run's last committed change; null when none is pending (the outbox).</summary>
    public string? JobRequest { get; set; }
    /// <summary>The earliest time the run's job should run (an enqueue delay).</summary>
    public DateTimeOffset? NotBefore { get; set; }
    /// <summary>The run this one was forked from.</summary>
    public Guid? ForkedFrom { get; set; }
    /// <summary>Tags given at enqueue: a <c>jsonb</c> object of strings, <c>{}</c> when none.</summary>
    public string Tags { get; set; } = "{}";
    /// <summary>What a Waiting run waits for (<c>sleep</c>, an event name, ...); null otherwise.</summary>
    public string? WaitingFor { get; set; }
    /// <summary>When a Waiting run's wait ends by itself; null for no deadline (or not waiting).</summary>
    public DateTimeOffset? WakeAt { get; set; }
    /// <summary>When the run was marked for compensation (UTC); null when never. Once set, only compensations run.</summary>
    public DateTimeOffset? CompensationRequestedAt { get; set; }
    /// <summary>Message of the last compensation failure.</summary>
    public string? CompensationError { get; set; }
    /// <summary>The run whose step started this one as a child run; null otherwise.</summary>
    public Guid? ParentId { get; set; }
    /// <summary>The parent's step that started this child run.</summary>
    public Guid? ParentStepId { get; set; }
    /// <summary>The child run's position among its parent step's inputs.</summary>
    public int? ChildIndex { get; set; }
    /// <summary>The flow-control key given at enqueue, if any.</summary>
    public string? ConcurrencyKey { get; set; }
    /// <summary>Which flow-control group (<c>workflow</c> or <c>key</c>) a run waiting for a slot last found full; meaningful while <c>waiting_for</c> is <c>concurrency</c>.</summary>
    public string? ConcurrencyWait { get; set; }
}

/// <summary>A durable wait a step reached, keyed by (step, wait number): re-runs of the step see the same deadline.</summary>
internal sealed class WorkflowStepWaitEntity
{
    /// <summary>The step record (<c>step_uuid</c>).</summary>
    public Guid StepId { get; set; }
    /// <summary>The wait's number within the step body (0 for its first wait).</summary>
    public int WaitNumber { get; set; }
    /// <summary>The run (<c>run_uuid</c>).</summary>
    public Guid RunId { get; set; }
    /// <summary><c>sleep</c> or <c>event</c>.</summary>
    public string Kind { get; set; } = "";
    /// <summary>The event's name (null for a sleep).</summary>
    public string? Name { get; set; }
    /// <summary>The sleep's end or the event's deadline, fixed when the wait was first reached.</summary>
    public DateTimeOffset? Deadline { get; set; }
    /// <summary>The data type an event wait expects (assembly-qualified), to validate signals against.</summary>
    public string? EventType { get; set; }
    /// <summary>When the run was woken while parked on this wait (its time came, or an operator enqueued its job).</summary>
    public DateTimeOffset? WokenAt { get; set; }
    /// <summary>When the wait was first reached (UTC).</summary>
    public DateTimeOffset Created { get; set; }
}

/// <summary>An event sent to a run; consumed by exactly one wait, identified by (step, wait number).</summary>
internal sealed class WorkflowEventEntity
{
    /// <summary>Primary key (<c>uuid</c>).</summary>
    public Guid Id { get; set; }
    /// <summary>The run (<c>run_uuid</c>).</summary>
    public Guid RunId { get; set; }
    /// <summary>The event's name.</summary>
    public string Name { get; set; } = "";
    /// <summary>The payload (<c>jsonb</c>).</summary>
    public string Payload { get; set; } = "{}";
    /// <summary>When it was sent (UTC).</summary>
    public DateTimeOffset Created { get; set; }
    /// <summary>The step whose wait consumed it; null while unconsumed.</summary>
    public Guid? ConsumedStepId { get; set; }
    /// <summary>The number of the wait that consumed it.</summary>
    public int? ConsumedWait { get; set; }
    /// <summary>When it was consumed (UTC).</summary>
    public DateTimeOffset? ConsumedAt { get; set; }
}

/// <summary>A persisted step of a run.</summary>
internal sealed class WorkflowStepEntity
{
    /// <summary>Primary key (<c>uuid</c>), the step's idempotency key.</summary>
    public Guid Id { get; set; }
    /// <summary>The run (<c>workflow_record_uuid</c>).</summary>
    public Guid WorkflowRecordId { get; set; }
    /// <summary>The preceding step record (<c>preceding_step_uuid</c>).</summary>
    public Guid? PrecedingStepId { get; set; }
    /// <summary>Persisted step name.</summary>
    public string StepName { get; set; } = "";
    /// <summary>Status.</summary>
    public WorkflowStatus Status { get; set; }
    /// <summary>Step input (<c>jsonb</c>).</summary>
    public string InputData { get; set; } = "{}";
    /// <summary>Step output (<c>jsonb</c>).</summary>
    public string? OutputData { get; set; }
    /// <summary>Creation time (UTC).</summary>
    public DateTimeOffset Created { get; set; }
    /// <summary>Last change (UTC).</summary>
    public DateTimeOffset Modified { get; set; }
    /// <summary>Start of the latest attempt (UTC).</summary>
    public DateTimeOffset? StartedAt { get; set; }
    /// <summary>Soft delete.</summary>
    public bool IsRemoved { get; set; }
    /// <summary>Success time (UTC).</summary>
    public DateTimeOffset? SucceededAt { get; set; }
    /// <summary>Last failure time (UTC).</summary>
    public DateTimeOffset? FailedAt { get; set; }
    /// <summary>Original message of the last failure.</summary>
    public string? ExceptionMessage { get; set; }
    /// <summary>Attempts started.</summary>
    public int Attempts { get; set; }
    /// <summary>When the step's compensation was checkpointed (UTC).</summary>
    public DateTimeOffset? CompensatedAt { get; set; }
    /// <summary>Message of the step's last compensation failure.</summary>
    public string? CompensationError { get; set; }
}

/// <summary>One attempt of a step: one start of its body, where it ran and how it ended.</summary>
internal sealed class WorkflowStepAttemptEntity
{
    /// <summary>The step (<c>step_uuid</c>); with <see cref="Attempt"/>, the primary key.</summary>
    public Guid StepId { get; set; }
    /// <summary>The attempt's number, from 1.</summary>
    public int Attempt { get; set; }
    /// <summary>Start (UTC).</summary>
    public DateTimeOffset StartedAt { get; set; }
    /// <summary>End (UTC); null while it runs.</summary>
    public DateTimeOffset? FinishedAt { get; set; }
    /// <summary>Running, Succeeded, Failed, or Pending for an attempt that ended without an outcome.</summary>
    public WorkflowStatus Status { get; set; }
    /// <summary>The failure's message, or what ended the attempt without an outcome.</summary>
    public string? ExceptionMessage { get; set; }
    /// <summary>The failure's exception type.</summary>
    public string? ExceptionType { get; set; }
    /// <summary>The failure as .NET prints it (bounded).</summary>
    public string? StackTrace { get; set; }
    /// <summary>The Hangfire job that ran the attempt.</summary>
    public string? JobId { get; set; }
    /// <summary>The Hangfire server (or machine) that ran the attempt.</summary>
    public string? ServerName { get; set; }
}

/// <summary>A fan-out item of a step (<c>StepContext.ForEachAsync</c>): written Pending when the fan-out starts, then its outcome.</summary>
internal sealed class WorkflowStepItemEntity
{
    /// <summary>The step (<c>step_uuid</c>); the item goes with it.</summary>
    public Guid StepId { get; set; }
    /// <summary>Which fan-out of the step, 1 for the first (<c>call_number</c>).</summary>
    public int CallNumber { get; set; }
    /// <summary>The item's position in the fan-out's list (<c>item_index</c>).</summary>
    public int ItemIndex { get; set; }
    /// <summary>Pending, Succeeded or Failed.</summary>
    public WorkflowStatus Status { get; set; }
    /// <summary>The item's result once succeeded (<c>jsonb</c>, any JSON value).</summary>
    public string? OutputData { get; set; }
    /// <summary>The error of the item's last failure.</summary>
    public string? ExceptionMessage { get; set; }
    /// <summary>The step attempt that finished (or last failed) the item.</summary>
    public int? Attempt { get; set; }
    /// <summary>When the item finished or last failed (UTC).</summary>
    public DateTimeOffset? FinishedAt { get; set; }
}

/// <summary>The workflow tables, in schema <c>workflow</c>.</summary>
internal sealed class WorkflowDbContext : DbContext
{
    /// <summary>The schema of the workflow tables.</summary>
    public const string Schema = "workflow";

    /// <summary>Creates the context.</summary>
    public WorkflowDbContext(DbContextOptions<WorkflowDbContext> options) : base(options) { }

    /// <inheritdoc />
    protected override void OnConfiguring(DbContextOptionsBuilder optionsBuilder)
    {
        ArgumentNullException.ThrowIfNull(optionsBuilder);
        // Items belong to a step whose query filter hides soft-deleted steps; items are read by their step's id only
        // (never through EF's filtered navigation), so the model warning about that interaction does not apply.
        optionsBuilder.ConfigureWarnings(w => w.Ignore(Microsoft.EntityFrameworkCore.Diagnostics.CoreEventId.PossibleIncorrectRequiredNavigationWithQueryFilterInteractionWarning));
    }

    /// <summary>Runs (soft-deleted ones are filtered out).</summary>
    public DbSet<WorkflowRunEntity> Runs => Set<WorkflowRunEntity>();

    /// <summary>Steps (soft-deleted ones are filtered out).</summary>
    public DbSet<WorkflowStepEntity> Steps => Set<WorkflowStepEntity>();

    /// <summary>Step attempts (deleted with their step).</summary>
    public DbSet<WorkflowStepAttemptEntity> StepAttempts => Set<WorkflowStepAttemptEntity>();

    /// <summary>Durable waits reached by steps.</summary>
    public DbSet<WorkflowStepWaitEntity> StepWaits => Set<WorkflowStepWaitEntity>();

    /// <summary>Events sent to runs.</summary>
    public DbSet<WorkflowEventEntity> Events => Set<WorkflowEventEntity>();

    /// <summary>Fan-out items of steps.</summary>
    public DbSet<WorkflowStepItemEntity> StepItems => Set<WorkflowStepItemEntity>();

    /// <inheritdoc />
    protected override void OnModelCreating(ModelBuilder modelBuilder)
    {
        ArgumentNullException.ThrowIfNull(modelBuilder);
        modelBuilder.HasDefaultSchema(Schema);
        ConfigureRuns(modelBuilder.Entity<WorkflowRunEntity>());
        ConfigureSteps(modelBuilder.Entity<WorkflowStepEntity>());
        ConfigureStepAttempts(modelBuilder.Entity<WorkflowStepAttemptEntity>());
        ConfigureWaits(modelBuilder.Entity<WorkflowStepWaitEntity>());
        ConfigureEvents(modelBuilder.Entity<WorkflowEventEntity>());
        ConfigureStepItems(modelBuilder.Entity<WorkflowStepItemEntity>());
    }

    private static void ConfigureWaits(EntityTypeBuilder<WorkflowStepWaitEntity> wait)
    {
        wait.ToTable("workflow_step_waits");
        wait.HasKey(w => new { w.StepId, w.WaitNumber });
        wait.Property(w => w.StepId).HasColumnName("step_uuid");
        wait.Property(w => w.WaitNumber).HasColumnName("wait_number");
        wait.Property(w => w.RunId).HasColumnName("run_uuid");
        wait.Property(w => w.Kind).HasColumnName("kind").HasMaxLength(16).IsRequired();
        wait.Property(w => w.Name).HasColumnName("name").HasMaxLength(200);
        wait.Property(w => w.Deadline).HasColumnName("deadline");
        wait.Property(w => w.EventType).HasColumnName("event_type").HasMaxLength(1000);
        wait.Property(w => w.WokenAt).HasColumnName("woken_at");
        wait.Property(w => w.Created).HasColumnName("created");
        wait.HasOne<WorkflowRunEntity>().WithMany().HasForeignKey(w => w.RunId).OnDelete(DeleteBehavior.Cascade);
        // A wake marks the run's open waits; a signal reads the open wait's expected type.
        wait.HasIndex(w => w.RunId).HasDatabaseName("ix_workflow_step_waits_run");
    }

    private static void ConfigureEvents(EntityTypeBuilder<WorkflowEventEntity> evt)
    {
        evt.ToTable("workflow_events");
        evt.HasKey(e => e.Id);
        evt.Property(e => e.Id).HasColumnName("uuid").ValueGeneratedNever();
        evt.Property(e => e.RunId).HasColumnName("run_uuid");
        evt.Property(e => e.Name).HasColumnName("name").HasMaxLength(200).IsRequired();
        evt.Property(e => e.Payload).HasColumnName("payload").HasColumnType("jsonb").IsRequired();
        evt.Property(e => e.Created).HasColumnName("created");
        evt.Property(e => e.ConsumedStepId).HasColumnName("consumed_step_uuid");
        evt.Property(e => e.ConsumedWait).HasColumnName("consumed_wait");
        evt.Property(e => e.ConsumedAt).HasColumnName("consumed_at");
        evt.HasOne<WorkflowRunEntity>().WithMany().HasForeignKey(e => e.RunId).OnDelete(DeleteBehavior.Cascade);
        // All of a run's events, consumed or not: the cascade when a run is deleted (purge, retention) finds them by this
        // index instead of scanning the table once per deleted run.
        evt.HasIndex(e => e.RunId).HasDatabaseName("ix_workflow_events_run");
        // The unconsumed events of a run, oldest first (what a wait consumes).
        evt.HasIndex(e => new { e.RunId, e.Name, e.Created }).HasDatabaseName("ix_workflow_events_pending").HasFilter("consumed_step_uuid IS NULL");
        // A wait consumes at most one event, and a re-run of its step finds it.
        evt.HasIndex(e => new { e.ConsumedStepId, e.ConsumedWait }).HasDatabaseName("ux_workflow_events_consumed_by").IsUnique()
            .HasFilter("consumed_step_uuid IS NOT NULL");
    }

    private static void ConfigureStepItems(EntityTypeBuilder<WorkflowStepItemEntity> item)
    {
        item.ToTable("workflow_step_items");
        // Keyed by (step, call, index): a step's items are one range of the primary key, read and counted by its prefix.
        item.HasKey(i => new { i.StepId, i.CallNumber, i.ItemIndex }).HasName("pk_workflow_step_items");
        item.Property(i => i.StepId).HasColumnName("step_uuid");
        item.Property(i => i.CallNumber).HasColumnName("call_number");
        item.Property(i => i.ItemIndex).HasColumnName("item_index");
        item.Property(i => i.Status).HasColumnName("status").HasConversion<string>().HasMaxLength(16).IsRequired();
        item.Property(i => i.OutputData).HasColumnName("output_data").HasColumnType("jsonb");
        item.Property(i => i.ExceptionMessage).HasColumnName("exception_message");
        item.Property(i => i.Attempt).HasColumnName("attempt");
        item.Property(i => i.FinishedAt).HasColumnName("finished_at");
        // Deleted with their step (and so with their run).
        item.HasOne<WorkflowStepEntity>().WithMany().HasForeignKey(i => i.StepId).OnDelete(DeleteBehavior.Cascade);
    }

    private static void ConfigureRuns(EntityTypeBuilder<WorkflowRunEntity> run)
    {
        run.ToTable("workflow_runs");
        run.HasKey(r => r.Id);
        run.Property(r => r.Id).HasColumnName("uuid").ValueGeneratedNever();
        run.Property(r => r.WorkflowName).HasColumnName("workflow_name").HasMaxLength(200).IsRequired();
        run.Property(r => r.Status).HasColumnName("status").HasConversion<string>().HasMaxLength(16).IsRequired();
        run.Property(r => r.InputData).HasColumnName("input_data").HasColumnType("jsonb").IsRequired();
        run.Property(r => r.OutputData).HasColumnName("output_data").HasColumnType("jsonb");
        run.Property(r => r.Created).HasColumnName("created");
        run.Property(r => r.Modified).HasColumnName("modified");
        run.Property(r => r.IsRemoved).HasColumnName("is_removed");
        run.Property(r => r.SucceededAt).HasColumnName("succeeded_at");
        run.Property(r => r.FailedAt).HasColumnName("failed_at");
        run.Property(r => r.ExceptionMessage).HasColumnName("exception_message");
        run.Property(r => r.StepNames).HasColumnName("step_names").IsRequired();
        run.Property(r => r.CompletedSteps).HasColumnName("completed_steps");
        run.Property(r => r.Attempts).HasColumnName("attempts");
        run.Property(r => r.JobId).HasColumnName("job_id").HasMaxLength(100);
        run.Property(r => r.IdempotencyKey).HasColumnName("idempotency_key").HasMaxLength(200);
        run.Property(r => r.RecurringId).HasColumnName("recurring_id").HasMaxLength(200);
        run.Property(r => r.Queue).HasColumnName("queue").HasMaxLength(50);
        run.Property(r => r.JobRequest).HasColumnName("job_request").HasMaxLength(16);
        run.Property(r => r.NotBefore).HasColumnName("not_before");
        run.Property(r => r.ForkedFrom).HasColumnName("forked_from");
        run.Property(r => r.Tags).HasColumnName("tags").HasColumnType("jsonb").HasDefaultValueSql("'{}'::jsonb").IsRequired();
        run.Property(r => r.WaitingFor).HasColumnName("waiting_for").HasMaxLength(200);
        run.Property(r => r.WakeAt).HasColumnName("wake_at");
        run.Property(r => r.CompensationRequestedAt).HasColumnName("compensation_requested_at");
        run.Property(r => r.CompensationError).HasColumnName("compensation_error");
        run.Property(r => r.ParentId).HasColumnName("parent_uuid");
        run.Property(r => r.ParentStepId).HasColumnName("parent_step_uuid");
        run.Property(r => r.ChildIndex).HasColumnName("child_index");
        // A run's children: the sibling check when a child finishes, the parent step's reload, the page's summary.
        run.HasIndex(r => new { r.ParentId, r.Status }).HasDatabaseName("ix_workflow_runs_parent").HasFilter("parent_uuid IS NOT NULL");
        run.Property(r => r.ConcurrencyKey).HasColumnName("concurrency_key").HasMaxLength(200);
        run.Property(r => r.ConcurrencyWait).HasColumnName("concurrency_wait").HasMaxLength(16);
        run.HasQueryFilter(r => !r.IsRemoved);
        // Waiting runs by workflow (the waiting gauge, the page's Waiting filter).
        run.HasIndex(r => new { r.WorkflowName, r.Created }, "ix_workflow_runs_waiting").HasFilter("status = 'Waiting' AND NOT is_removed");
        // Flow control's queues: the runs waiting for a slot (or offered one) by workflow and key, oldest first.
        run.HasIndex(r => new { r.WorkflowName, r.ConcurrencyKey, r.Created }, "ix_workflow_runs_concurrency_queue")
            .HasFilter("waiting_for = 'concurrency' AND NOT is_removed");
        // The concurrency-key filter of listings.
        run.HasIndex(r => new { r.ConcurrencyKey, r.Created }, "ix_workflow_runs_concurrency_key_created").HasFilter("concurrency_key IS NOT NULL");
        run.HasIndex(r => r.Created).HasDatabaseName("ix_workflow_runs_created");
        run.HasIndex(r => new { r.Status, r.Created }).HasDatabaseName("ix_workflow_runs_status_created");
        run.HasIndex(r => new { r.WorkflowName, r.Created }).HasDatabaseName("ix_workflow_runs_name_created");
        run.HasIndex(r => new { r.RecurringId, r.Created }).HasDatabaseName("ix_workflow_runs_recurring_created").HasFilter("recurring_id IS NOT NULL");
        // A run's forks, for the link back from the original.
        run.HasIndex(r => r.ForkedFrom).HasDatabaseName("ix_workflow_runs_forked_from").HasFilter("forked_from IS NOT NULL");
        // The outbox reads only runs with a pending job write: a small partial index, empty when all is done.
        run.HasIndex(r => r.Modified).HasDatabaseName("ix_workflow_runs_job_request").HasFilter("job_request IS NOT NULL");
        run.HasIndex(r => r.IdempotencyKey).HasDatabaseName("ux_workflow_runs_idempotency_key").IsUnique().HasFilter("idempotency_key IS NOT NULL");
        // Tag filters are containment (tags @> '{"customer":"c-42"}'): jsonb_path_ops is the smaller, faster GIN for that operator.
        run.HasIndex(r => r.Tags).HasDatabaseName("ix_workflow_runs_tags").HasMethod("gin").HasOperators("jsonb_path_ops");
        // The dashboard's Failed badge counts this small partial index; listing Failed runs newest first reads it too.
        run.HasIndex(r => r.Created, "ix_workflow_runs_failed_created").HasFilter("status = 'Failed' AND NOT is_removed");
    }

    private static void ConfigureSteps(EntityTypeBuilder<WorkflowStepEntity> step)
    {
        step.ToTable("workflow_steps");
        step.HasKey(s => s.Id);
        step.Property(s => s.Id).HasColumnName("uuid").ValueGeneratedNever();
        step.Property(s => s.WorkflowRecordId).HasColumnName("workflow_record_uuid");
        step.Property(s => s.PrecedingStepId).HasColumnName("preceding_step_uuid");
        step.Property(s => s.StepName).HasColumnName("step_name").HasMaxLength(200).IsRequired();
        step.Property(s => s.Status).HasColumnName("status").HasConversion<string>().HasMaxLength(16).IsRequired();
        step.Property(s => s.InputData).HasColumnName("input_data").HasColumnType("jsonb").IsRequired();
        step.Property(s => s.OutputData).HasColumnName("output_data").HasColumnType("jsonb");
        step.Property(s => s.Created).HasColumnName("created");
        step.Property(s => s.Modified).HasColumnName("modified");
        step.Property(s => s.StartedAt).HasColumnName("started_at");
        step.Property(s => s.IsRemoved).HasColumnName("is_removed");
        step.Property(s => s.SucceededAt).HasColumnName("succeeded_at");
        step.Property(s => s.FailedAt).HasColumnName("failed_at");
        step.Property(s => s.ExceptionMessage).HasColumnName("exception_message");
        step.Property(s => s.Attempts).HasColumnName("attempts");
        step.Property(s => s.CompensatedAt).HasColumnName("compensated_at");
        step.Property(s => s.CompensationError).HasColumnName("compensation_error");
        step.HasQueryFilter(s => !s.IsRemoved);
        step.HasOne<WorkflowRunEntity>().WithMany().HasForeignKey(s => s.WorkflowRecordId).OnDelete(DeleteBehavior.Cascade);
        // One live record per (run, step), enforced by the database.
        step.HasIndex(s => new { s.WorkflowRecordId, s.StepName }).HasDatabaseName("ux_workflow_steps_run_step").IsUnique().HasFilter("NOT is_removed");
        // All of a run's steps, removed or not: the cascade when a run is deleted (purge, retention) cannot use the partial
        // unique index above, and without this one it scans the whole steps table once per deleted run.
        step.HasIndex(s => s.WorkflowRecordId).HasDatabaseName("ix_workflow_steps_run");
    }

    private static void ConfigureStepAttempts(EntityTypeBuilder<WorkflowStepAttemptEntity> attempt)
    {
        attempt.ToTable("workflow_step_attempts");
        // The key (step, attempt) is also the index a run's history is read by.
        attempt.HasKey(a => new { a.StepId, a.Attempt }).HasName("pk_workflow_step_attempts");
        attempt.Property(a => a.StepId).HasColumnName("step_uuid");
        attempt.Property(a => a.Attempt).HasColumnName("attempt").ValueGeneratedNever();
        attempt.Property(a => a.StartedAt).HasColumnName("started_at");
        attempt.Property(a => a.FinishedAt).HasColumnName("finished_at");
        attempt.Property(a => a.Status).HasColumnName("status").HasConversion<string>().HasMaxLength(16).IsRequired();
        attempt.Property(a => a.ExceptionMessage).HasColumnName("exception_message");
        attempt.Property(a => a.ExceptionType).HasColumnName("exception_type").HasMaxLength(500);
        attempt.Property(a => a.StackTrace).HasColumnName("stack_trace");
        attempt.Property(a => a.JobId).HasColumnName("job_id").HasMaxLength(100);
        attempt.Property(a => a.ServerName).HasColumnName("server_name").HasMaxLength(200);
        // Deleted with their step, which is deleted with its run (purge, retention).
        attempt.HasOne<WorkflowStepEntity>().WithMany().HasForeignKey(a => a.StepId).OnDelete(DeleteBehavior.Cascade);
    }
}
