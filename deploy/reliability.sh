#!/usr/bin/env bash
# The reliability suite: killed workers, duplicate delivery and a database restart, measured.
#
#   deploy/reliability.sh [--runs N] [--workers K] [--kills M] [--no-db-restart] [options]
#
# Starts the project's local PostgreSQL (deploy/local-postgres.sh; WORKFLOW_PG_PORT selects the port),
# builds tests/Workflow.Jobs.Reliability, and runs it: K separate worker processes (each a generic host
# with AddWorkflowJobs + AddHangfireJobs and --workers-per-process Hangfire workers) work through N runs
# of a 5-step workflow enqueued at a steady rate over --load-seconds (some runs sleep durably, some wait
# for an event that this driver process signals); M times a random busy worker
# process is killed with SIGKILL and replaced; PostgreSQL is restarted once in the middle. When every
# run has finished (or the deadline passed) the database is checked and the last line is
#
#   reliability: runs=N steps=S kills=M db_restarts=R lost=0 duplicate_checkpoints=0 overlapping_executions=0 reexecuted_steps=X p99_recovery_s=Y waiting_runs=W events_sent=E events_consumed=E double_consumed_events=0
#
# The exit status is non-zero when a run was lost, a step was checkpointed (or its body run) again after
# its checkpoint, two executions of one run overlapped, a run and its job were not written together, or an
# event was not consumed exactly once.
# Definitions: docs/reliability.md. Worker logs: artifacts/reliability/.
#
# Options (defaults in brackets):
#   --runs N [300]  --workers K [3]  --kills M [4]  --workers-per-process W [4]
#   --load-seconds S [90]  --deadline-seconds S [300]  --max-work-ms MS [300]  --failure-percent P [8]
#   --sleep-percent P [20]  --event-percent P [20]  --max-sleep-ms MS [3000]  --max-signal-delay-ms MS [4000]
#   --invisibility-seconds S [library default, 60]  --seed N [random]  --no-db-restart
set -euo pipefail
cd "$(dirname "$0")/.."

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
export WORKFLOW_PG_PORT="${WORKFLOW_PG_PORT:-55432}"

restart=1
passthrough=()
while [ $# -gt 0 ]; do
  case "$1" in
    --no-db-restart) restart=0; shift ;;
    --runs|--workers|--kills|--workers-per-process|--load-seconds|--deadline-seconds|--max-work-ms|--failure-percent|--sleep-percent|--event-percent|--max-sleep-ms|--max-signal-delay-ms|--invisibility-seconds|--seed)
      [ $# -ge 2 ] || { echo "reliability: $1 needs a value" >&2; exit 2; }
      passthrough+=("$1" "$2"); shift 2 ;;
    -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
    *) echo "reliability: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

connection="$(deploy/local-postgres.sh start | tail -n 1)"
dotnet build tests/Workflow.Jobs.Reliability/Workflow.Jobs.Reliability.csproj -c Release -warnaserror -nologo -v quiet >&2

restart_command="none"
if [ "$restart" = 1 ]; then
  restart_command="WORKFLOW_PG_PORT=$WORKFLOW_PG_PORT $(pwd)/deploy/local-postgres.sh restart"
fi

rm -rf artifacts/reliability
exec dotnet tests/Workflow.Jobs.Reliability/bin/Release/net10.0/Workflow.Jobs.Reliability.dll run \
  --connection "$connection" --database workflow_reliability \
  --db-restart-command "$restart_command" --log-dir artifacts/reliability "${passthrough[@]}"
