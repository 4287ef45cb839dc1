using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Workflow.Jobs.EntityFrameworkCore.Migrations
{
    /// <inheritdoc />
    public partial class FlowControl : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<string>(
                name: "concurrency_key",
                schema: "workflow",
                table: "workflow_runs",
                type: "character varying(200)",
                maxLength: 200,
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "concurrency_wait",
                schema: "workflow",
                table: "workflow_runs",
                type: "character varying(16)",
                maxLength: 16,
                nullable: true);

            migrationBuilder.CreateIndex(
                name: "ix_workflow_runs_concurrency_key_created",
                schema: "workflow",
                table: "workflow_runs",
                columns: new[] { "concurrency_key", "created" },
                filter: "concurrency_key IS NOT NULL");

            migrationBuilder.CreateIndex(
                name: "ix_workflow_runs_concurrency_queue",
                schema: "workflow",
                table: "workflow_runs",
                columns: new[] { "workflow_name", "concurrency_key", "created" },
                filter: "waiting_for = 'concurrency' AND NOT is_removed");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "ix_workflow_runs_concurrency_key_created",
                schema: "workflow",
                table: "workflow_runs");

            migrationBuilder.DropIndex(
                name: "ix_workflow_runs_concurrency_queue",
                schema: "workflow",
                table: "workflow_runs");

            migrationBuilder.DropColumn(
                name: "concurrency_key",
                schema: "workflow",
                table: "workflow_runs");

            migrationBuilder.DropColumn(
                name: "concurrency_wait",
                schema: "workflow",
                table: "workflow_runs");
        }
    }
}
