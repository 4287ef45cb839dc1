#!/usr/bin/env bash
# The benchmark of docs/benchmarks.md, measured in one run on one PostgreSQL:
#
#   deploy/benchmark.sh [--rounds N] [--smoke] [other options of tests/Workflow.Jobs.Benchmarks]
#
# Starts the project's local PostgreSQL on the benchmark's own port (deploy/local-postgres.sh;
# WORKFLOW_PG_PORT, default 55433, so it never shares a cluster with a test run), builds the benchmark in
# Release and runs it: raw commits, empty Hangfire jobs, Hangfire continuations (one job per step),
# 1-step and 10-step workflows, enqueue-to-success latency from a separate process, the idle server's
# commits per second, stranded dequeues, CPU per step, batch enqueue against single enqueues, and per-step
# cost with 1,000,000 historical step rows. It prints a table (figures, targets, verdicts) and writes bench-results.json at the repository root. Definitions and figures: docs/benchmarks.md.
#
# Options (defaults in brackets): --rounds N [3]  --workers N [8]  --poll-ms MS [library default: 5000 with the wake-up, 50 without]
#   --history-steps N [1000000]  --output PATH [bench-results.json]  --keep (keep the databases)
#   --only raw,empty,continuations,one,ten,latency,idle,stranded,batch,history  --profile (needs pg_stat_statements)
#   --dequeues N [20000]  --batch-runs N [5000]  --idle-seconds N [30]  --schedule-ms MS [library default, 1000]
#   --queue notify|poll|longpoll [notify: the library's default wake-up on enqueue; poll: the wake-up off (50 ms poll);
#     longpoll: Hangfire.PostgreSql's long polling, for comparison]
#   --smoke (tiny counts: checks that the benchmark works; its figures mean nothing)
set -euo pipefail
cd "$(dirname "$0")/.."

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
export WORKFLOW_PG_PORT="${WORKFLOW_PG_PORT:-55433}"

case "${1:-}" in
  -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
esac

connection="$(deploy/local-postgres.sh start | tail -n 1)"
dotnet build tests/Workflow.Jobs.Benchmarks/Workflow.Jobs.Benchmarks.csproj -c Release -nologo -v quiet
exec dotnet tests/Workflow.Jobs.Benchmarks/bin/Release/net10.0/Workflow.Jobs.Benchmarks.dll \
  --connection "$connection" --output "$PWD/bench-results.json" "$@"
