using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Workflow.Jobs.EntityFrameworkCore.Migrations
{
    /// <inheritdoc />
    public partial class Compensation : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<DateTimeOffset>(
                name: "compensated_at",
                schema: "workflow",
                table: "workflow_steps",
                type: "timestamp with time zone",
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "compensation_error",
                schema: "workflow",
                table: "workflow_steps",
                type: "text",
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "compensation_error",
                schema: "workflow",
                table: "workflow_runs",
                type: "text",
                nullable: true);

            migrationBuilder.AddColumn<DateTimeOffset>(
                name: "compensation_requested_at",
                schema: "workflow",
                table: "workflow_runs",
                type: "timestamp with time zone",
                nullable: true);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropColumn(
                name: "compensated_at",
                schema: "workflow",
                table: "workflow_steps");

            migrationBuilder.DropColumn(
                name: "compensation_error",
                schema: "workflow",
                table: "workflow_steps");

            migrationBuilder.DropColumn(
                name: "compensation_error",
                schema: "workflow",
                table: "workflow_runs");

            migrationBuilder.DropColumn(
                name: "compensation_requested_at",
                schema: "workflow",
                table: "workflow_runs");
        }
    }
}
