using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Workflow.Jobs.EntityFrameworkCore.Migrations
{
    /// <inheritdoc />
    public partial class RetentionCascadeIndexes : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.CreateIndex(
                name: "ix_workflow_steps_run",
                schema: "workflow",
                table: "workflow_steps",
                column: "workflow_record_uuid");

            migrationBuilder.CreateIndex(
                name: "ix_workflow_events_run",
                schema: "workflow",
                table: "workflow_events",
                column: "run_uuid");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "ix_workflow_steps_run",
                schema: "workflow",
                table: "workflow_steps");

            migrationBuilder.DropIndex(
                name: "ix_workflow_events_run",
                schema: "workflow",
                table: "workflow_events");
        }
    }
}
