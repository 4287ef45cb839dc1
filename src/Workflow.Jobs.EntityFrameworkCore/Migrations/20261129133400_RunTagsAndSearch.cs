using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Workflow.Jobs.EntityFrameworkCore.Migrations
{
    /// <inheritdoc />
    public partial class RunTagsAndSearch : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<string>(
                name: "tags",
                schema: "workflow",
                table: "workflow_runs",
                type: "jsonb",
                nullable: false,
                defaultValueSql: "'{}'::jsonb");

            migrationBuilder.CreateIndex(
                name: "ix_workflow_runs_failed_created",
                schema: "workflow",
                table: "workflow_runs",
                column: "created",
                filter: "status = 'Failed' AND NOT is_removed");

            migrationBuilder.CreateIndex(
                name: "ix_workflow_runs_tags",
                schema: "workflow",
                table: "workflow_runs",
                column: "tags")
                .Annotation("Npgsql:IndexMethod", "gin")
                .Annotation("Npgsql:IndexOperators", new[] { "jsonb_path_ops" });

            // WorkflowQuery.ErrorContains (ILIKE '%text%') is served by a trigram index when pg_trgm can be installed:
            // it ships with PostgreSQL's contrib modules and is a trusted extension (PostgreSQL 13+), so a role that may
            // create objects in the database installs it. Without it the filter still works, by scanning.
            migrationBuilder.Sql("""
                DO $$
                BEGIN
                    CREATE EXTENSION IF NOT EXISTS pg_trgm;
                EXCEPTION WHEN OTHERS THEN
                    RAISE NOTICE 'pg_trgm could not be installed (%); error text filters will scan', SQLERRM;
                END $$;
                """);
            migrationBuilder.Sql("""
                DO $$
                DECLARE trgm_schema name;
                BEGIN
                    SELECT n.nspname INTO trgm_schema FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_trgm';
                    IF trgm_schema IS NOT NULL THEN
                        EXECUTE format('CREATE INDEX IF NOT EXISTS ix_workflow_runs_error_trgm ON workflow.workflow_runs '
                            'USING gin (exception_message %I.gin_trgm_ops) WHERE exception_message IS NOT NULL', trgm_schema);
                    END IF;
                END $$;
                """);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.Sql("DROP INDEX IF EXISTS workflow.ix_workflow_runs_error_trgm;");

            migrationBuilder.DropIndex(
                name: "ix_workflow_runs_failed_created",
                schema: "workflow",
                table: "workflow_runs");

            migrationBuilder.DropIndex(
                name: "ix_workflow_runs_tags",
                schema: "workflow",
                table: "workflow_runs");

            migrationBuilder.DropColumn(
                name: "tags",
                schema: "workflow",
                table: "workflow_runs");
        }
    }
}
