using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Workflow.Jobs.EntityFrameworkCore.Migrations
{
    /// <inheritdoc />
    public partial class OutboxJobRequests : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<string>(
                name: "job_request",
                schema: "workflow",
                table: "workflow_runs",
                type: "character varying(16)",
                maxLength: 16,
                nullable: true);

            migrationBuilder.AddColumn<DateTimeOffset>(
                name: "not_before",
                schema: "workflow",
                table: "workflow_runs",
                type: "timestamp with time zone",
                nullable: true);

            migrationBuilder.CreateIndex(
                name: "ix_workflow_runs_job_request",
                schema: "workflow",
                table: "workflow_runs",
                column: "modified",
                filter: "job_request IS NOT NULL");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "ix_workflow_runs_job_request",
                schema: "workflow",
                table: "workflow_runs");

            migrationBuilder.DropColumn(
                name: "job_request",
                schema: "workflow",
                table: "workflow_runs");

            migrationBuilder.DropColumn(
                name: "not_before",
                schema: "workflow",
                table: "workflow_runs");
        }
    }
}
