using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Workflow.Jobs.EntityFrameworkCore.Migrations
{
    /// <inheritdoc />
    public partial class RunForks : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<Guid>(
                name: "forked_from",
                schema: "workflow",
                table: "workflow_runs",
                type: "uuid",
                nullable: true);

            migrationBuilder.CreateIndex(
                name: "ix_workflow_runs_forked_from",
                schema: "workflow",
                table: "workflow_runs",
                column: "forked_from",
                filter: "forked_from IS NOT NULL");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "ix_workflow_runs_forked_from",
                schema: "workflow",
                table: "workflow_runs");

            migrationBuilder.DropColumn(
                name: "forked_from",
                schema: "workflow",
                table: "workflow_runs");
        }
    }
}
