using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Workflow.Jobs.EntityFrameworkCore.Migrations
{
    /// <inheritdoc />
    public partial class StepItems : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.CreateTable(
                name: "workflow_step_items",
                schema: "workflow",
                columns: table => new
                {
                    step_uuid = table.Column<Guid>(type: "uuid", nullable: false),
                    call_number = table.Column<int>(type: "integer", nullable: false),
                    item_index = table.Column<int>(type: "integer", nullable: false),
                    status = table.Column<string>(type: "character varying(16)", maxLength: 16, nullable: false),
                    output_data = table.Column<string>(type: "jsonb", nullable: true),
                    exception_message = table.Column<string>(type: "text", nullable: true),
                    attempt = table.Column<int>(type: "integer", nullable: true),
                    finished_at = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: true)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_workflow_step_items", x => new { x.step_uuid, x.call_number, x.item_index });
                    table.ForeignKey(
                        name: "FK_workflow_step_items_workflow_steps_step_uuid",
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
                name: "workflow_step_items",
                schema: "workflow");
        }
    }
}
