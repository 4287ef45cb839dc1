using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Workflow.Jobs.EntityFrameworkCore.Migrations
{
    /// <inheritdoc />
    public partial class InitialCreate : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.EnsureSchema(
                name: "workflow");

            migrationBuilder.CreateTable(
                name: "workflow_runs",
                schema: "workflow",
                columns: table => new
                {
                    uuid = table.Column<Guid>(type: "uuid", nullable: false),
                    workflow_name = table.Column<string>(type: "character varying(200)", maxLength: 200, nullable: false),
                    status = table.Column<string>(type: "character varying(16)", maxLength: 16, nullable: false),
                    input_data = table.Column<string>(type: "jsonb", nullable: false),
                    output_data = table.Column<string>(type: "jsonb", nullable: true),
                    created = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false),
                    modified = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false),
                    is_removed = table.Column<bool>(type: "boolean", nullable: false),
                    succeeded_at = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: true),
                    failed_at = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: true),
                    exception_message = table.Column<string>(type: "text", nullable: true),
                    step_names = table.Column<string[]>(type: "text[]", nullable: false),
                    completed_steps = table.Column<int>(type: "integer", nullable: false),
                    attempts = table.Column<int>(type: "integer", nullable: false),
                    job_id = table.Column<string>(type: "character varying(100)", maxLength: 100, nullable: true),
                    idempotency_key = table.Column<string>(type: "character varying(200)", maxLength: 200, nullable: true),
                    recurring_id = table.Column<string>(type: "character varying(200)", maxLength: 200, nullable: true),
                    queue = table.Column<string>(type: "character varying(50)", maxLength: 50, nullable: true)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_workflow_runs", x => x.uuid);
                });

            migrationBuilder.CreateTable(
                name: "workflow_steps",
                schema: "workflow",
                columns: table => new
                {
                    uuid = table.Column<Guid>(type: "uuid", nullable: false),
                    workflow_record_uuid = table.Column<Guid>(type: "uuid", nullable: false),
                    preceding_step_uuid = table.Column<Guid>(type: "uuid", nullable: true),
                    step_name = table.Column<string>(type: "character varying(200)", maxLength: 200, nullable: false),
                    status = table.Column<string>(type: "character varying(16)", maxLength: 16, nullable: false),
                    input_data = table.Column<string>(type: "jsonb", nullable: false),
                    output_data = table.Column<string>(type: "jsonb", nullable: true),
                    created = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false),
                    modified = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false),
                    started_at = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: true),
                    is_removed = table.Column<bool>(type: "boolean", nullable: false),
                    succeeded_at = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: true),
                    failed_at = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: true),
                    exception_message = table.Column<string>(type: "text", nullable: true),
                    attempts = table.Column<int>(type: "integer", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_workflow_steps", x => x.uuid);
                    table.ForeignKey(
                        name: "FK_workflow_steps_workflow_runs_workflow_record_uuid",
                        column: x => x.workflow_record_uuid,
                        principalSchema: "workflow",
                        principalTable: "workflow_runs",
                        principalColumn: "uuid",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateIndex(
                name: "ix_workflow_runs_created",
                schema: "workflow",
                table: "workflow_runs",
                column: "created");

            migrationBuilder.CreateIndex(
                name: "ix_workflow_runs_name_created",
                schema: "workflow",
                table: "workflow_runs",
                columns: new[] { "workflow_name", "created" });

            migrationBuilder.CreateIndex(
                name: "ix_workflow_runs_recurring_created",
                schema: "workflow",
                table: "workflow_runs",
                columns: new[] { "recurring_id", "created" },
                filter: "recurring_id IS NOT NULL");

            migrationBuilder.CreateIndex(
                name: "ix_workflow_runs_status_created",
                schema: "workflow",
                table: "workflow_runs",
                columns: new[] { "status", "created" });

            migrationBuilder.CreateIndex(
                name: "ux_workflow_runs_idempotency_key",
                schema: "workflow",
                table: "workflow_runs",
                column: "idempotency_key",
                unique: true,
                filter: "idempotency_key IS NOT NULL");

            migrationBuilder.CreateIndex(
                name: "ux_workflow_steps_run_step",
                schema: "workflow",
                table: "workflow_steps",
                columns: new[] { "workflow_record_uuid", "step_name" },
                unique: true,
                filter: "NOT is_removed");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "workflow_steps",
                schema: "workflow");

            migrationBuilder.DropTable(
                name: "workflow_runs",
                schema: "workflow");
        }
    }
}
