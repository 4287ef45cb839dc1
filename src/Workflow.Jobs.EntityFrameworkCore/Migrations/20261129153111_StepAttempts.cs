using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Workflow.Jobs.EntityFrameworkCore.Migrations
{
    /// <inheritdoc />
    public partial class StepAttempts : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.CreateTable(
                name: "workflow_step_attempts",
                schema: "workflow",
                columns: table => new
                {
                    step_uuid = table.Column<Guid>(type: "uuid", nullable: false),
                    attempt = table.Column<int>(type: "integer", nullable: false),
                    started_at = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false),
                    finished_at = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: true),
                    status = table.Column<string>(type: "character varying(16)", maxLength: 16, nullable: false),
                    exception_message = table.Column<string>(type: "text", nullable: true),
                    exception_type = table.Column<string>(type: "character varying(500)", maxLength: 500, nullable: true),
                    stack_trace = table.Column<string>(type: "text", nullable: true),
                    job_id = table.Column<string>(type: "character varying(100)", maxLength: 100, nullable: true),
                    server_name = table.Column<string>(type: "character varying(200)", maxLength: 200, nullable: true)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_workflow_step_attempts", x => new { x.step_uuid, x.attempt });
                    table.ForeignKey(
                        name: "FK_workflow_step_attempts_workflow_steps_step_uuid",
                        column: x => x.step_uuid,
                        principalSchema: "workflow",
                        principalTable: "workflow_steps",
                        principalColumn: "uuid",
                        onDelete: ReferentialAction.Cascade);
                });
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "workflow_step_attempts",
                schema: "workflow");
        }
    }
}
