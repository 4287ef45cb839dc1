using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Workflow.Jobs.EntityFrameworkCore.Migrations
{
    /// <inheritdoc />
    public partial class DurableWaitsAndEvents : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<string>(
                name: "waiting_for",
                schema: "workflow",
                table: "workflow_runs",
                type: "character varying(200)",
                maxLength: 200,
                nullable: true);

            migrationBuilder.AddColumn<DateTimeOffset>(
                name: "wake_at",
                schema: "workflow",
                table: "workflow_runs",
                type: "timestamp with time zone",
                nullable: true);

            migrationBuilder.CreateTable(
                name: "workflow_events",
                schema: "workflow",
                columns: table => new
                {
                    uuid = table.Column<Guid>(type: "uuid", nullable: false),
                    run_uuid = table.Column<Guid>(type: "uuid", nullable: false),
                    name = table.Column<string>(type: "character varying(200)", maxLength: 200, nullable: false),
                    payload = table.Column<string>(type: "jsonb", nullable: false),
                    created = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false),
                    consumed_step_uuid = table.Column<Guid>(type: "uuid", nullable: true),
                    consumed_wait = table.Column<int>(type: "integer", nullable: true),
                    consumed_at = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: true)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_workflow_events", x => x.uuid);
                    table.ForeignKey(
                        name: "FK_workflow_events_workflow_runs_run_uuid",
                        column: x => x.run_uuid,
                        principalSchema: "workflow",
                        principalTable: "workflow_runs",
                        principalColumn: "uuid",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateTable(
                name: "workflow_step_waits",
                schema: "workflow",
                columns: table => new
                {
                    step_uuid = table.Column<Guid>(type: "uuid", nullable: false),
                    wait_number = table.Column<int>(type: "integer", nullable: false),
                    run_uuid = table.Column<Guid>(type: "uuid", nullable: false),
                    kind = table.Column<string>(type: "character varying(16)", maxLength: 16, nullable: false),
                    name = table.Column<string>(type: "character varying(200)", maxLength: 200, nullable: true),
                    deadline = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: true),
                    event_type = table.Column<string>(type: "character varying(1000)", maxLength: 1000, nullable: true),
                    woken_at = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: true),
                    created = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_workflow_step_waits", x => new { x.step_uuid, x.wait_number });
                    table.ForeignKey(
                        name: "FK_workflow_step_waits_workflow_runs_run_uuid",
                        column: x => x.run_uuid,
                        principalSchema: "workflow",
                        principalTable: "workflow_runs",
                        principalColumn: "uuid",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateIndex(
                name: "ix_workflow_runs_waiting",
                schema: "workflow",
                table: "workflow_runs",
                columns: new[] { "workflow_name", "created" },
                filter: "status = 'Waiting' AND NOT is_removed");

            migrationBuilder.CreateIndex(
                name: "ix_workflow_events_pending",
                schema: "workflow",
                table: "workflow_events",
                columns: new[] { "run_uuid", "name", "created" },
                filter: "consumed_step_uuid IS NULL");

            migrationBuilder.CreateIndex(
                name: "ux_workflow_events_consumed_by",
                schema: "workflow",
                table: "workflow_events",
                columns: new[] { "consumed_step_uuid", "consumed_wait" },
                unique: true,
                filter: "consumed_step_uuid IS NOT NULL");

            migrationBuilder.CreateIndex(
                name: "ix_workflow_step_waits_run",
                schema: "workflow",
                table: "workflow_step_waits",
                column: "run_uuid");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "workflow_events",
                schema: "workflow");

            migrationBuilder.DropTable(
                name: "workflow_step_waits",
                schema: "workflow");

            migrationBuilder.DropIndex(
                name: "ix_workflow_runs_waiting",
                schema: "workflow",
                table: "workflow_runs");

            migrationBuilder.DropColumn(
                name: "waiting_for",
                schema: "workflow",
                table: "workflow_runs");

            migrationBuilder.DropColumn(
                name: "wake_at",
                schema: "workflow",
                table: "workflow_runs");
        }
    }
}
