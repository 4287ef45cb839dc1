using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Workflow.Jobs.EntityFrameworkCore.Migrations
{
    /// <inheritdoc />
    public partial class ChildWorkflows : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<int>(
                name: "child_index",
                schema: "workflow",
                table: "workflow_runs",
                type: "integer",
                nullable: true);

            migrationBuilder.AddColumn<Guid>(
                name: "parent_step_uuid",
                schema: "workflow",
                table: "workflow_runs",
                type: "uuid",
                nullable: true);

            migrationBuilder.AddColumn<Guid>(
                name: "parent_uuid",
                schema: "workflow",
                table: "workflow_runs",
                type: "uuid",
                nullable: true);

            migrationBuilder.CreateIndex(
                name: "ix_workflow_runs_parent",
                schema: "workflow",
                table: "workflow_runs",
                columns: new[] { "parent_uuid", "status" },
                filter: "parent_uuid IS NOT NULL");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "ix_workflow_runs_parent",
                schema: "workflow",
                table: "workflow_runs");

            migrationBuilder.DropColumn(
                name: "child_index",
                schema: "workflow",
                table: "workflow_runs");

            migrationBuilder.DropColumn(
                name: "parent_step_uuid",
                schema: "workflow",
                table: "workflow_runs");

            migrationBuilder.DropColumn(
                name: "parent_uuid",
                schema: "workflow",
                table: "workflow_runs");
        }
    }
}
