#!/usr/bin/env bash
# The one command that runs the Workflow.Jobs sample on a fresh machine:
#
#   deploy/run-sample.sh [--urls http://127.0.0.1:5080] [--no-wait]
#
# 1. starts the project's local PostgreSQL (deploy/local-postgres.sh: the machine's PostgreSQL binaries,
#    installed from Debian's packages when absent; port 55432). Where a Docker engine exists,
#    `docker compose up --build` (docker-compose.yml at the repository root) is the alternative.
# 2. builds the sample host (src/Workflow.Jobs.Sample) and starts it (role All: API, dashboard and a
#    Hangfire server in one process); the workflow tables are migrated when it starts;
# 3. waits for /health, then enqueues demo runs through the HTTP API:
#      - a run that succeeds at once;
#      - a run whose subscription step fails once and is retried automatically;
#      - a run whose admin-users step fails more times than its retries allow, so it ends Failed;
#        the script then calls POST /api/workflows/{id}/retry and the run resumes at the failed step;
#      - a run of customer-provisioning-compensated whose welcome e-mail is rejected for good: its admin
#        users and subscription are undone (compensations, in reverse order) and it ends Compensated;
#      - a run cancelled with {"compensate": true} through POST /api/workflows/{id}/cancel;
#      - an invalid input, to show the 400 answer with every field error;
# 4. prints the dashboard and API URLs and the demo runs with their final status, and keeps the host
#    in the foreground until Ctrl+C. With --no-wait it stops the host after the demo instead (exit code 0
#    only when every demo run ended as expected).
#
# Environment: WORKFLOW_PG_PORT (default 55432), SAMPLE_DATABASE (default workflow_jobs_sample).
# The host's own log goes to artifacts/sample/host.log.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

urls="http://127.0.0.1:5080"
wait_for_ctrl_c=1
while [ $# -gt 0 ]; do
  case "$1" in
    --urls) urls="$2"; shift 2 ;;
    --urls=*) urls="${1#--urls=}"; shift ;;
    --no-wait) wait_for_ctrl_c=0; shift ;;
    -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
done
base="${urls%%;*}"
base="${base%/}"

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
fail() { printf 'run-sample: %s\n' "$*" >&2; exit 1; }

command -v dotnet >/dev/null 2>&1 || fail "the .NET 10 SDK is required (https://dotnet.microsoft.com/download)"
if ! command -v curl >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    say "installing curl"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq curl >/dev/null
  else
    fail "curl is required"
  fi
fi

if curl -fsS -o /dev/null --max-time 2 "$base/health/live" 2>/dev/null; then
  fail "something already answers on $base; stop it or pass --urls http://127.0.0.1:<port>"
fi

say "starting PostgreSQL (deploy/local-postgres.sh)"
server_connection="$(deploy/local-postgres.sh start | tail -n 1)"
database="${SAMPLE_DATABASE:-workflow_jobs_sample}"
# The host creates the database when it is missing, then applies the migrations.
connection="$(printf '%s' "$server_connection" | sed "s/Database=[^;]*/Database=$database/")"

say "building the sample host"
dotnet build src/Workflow.Jobs.Sample/Workflow.Jobs.Sample.csproj -c Release -nologo -v quiet >/dev/null \
  || dotnet build src/Workflow.Jobs.Sample/Workflow.Jobs.Sample.csproj -c Release -nologo -v quiet
bin="$root/src/Workflow.Jobs.Sample/bin/Release/net10.0"

mkdir -p artifacts/sample
log="$root/artifacts/sample/host.log"
say "starting the host on $base (log: artifacts/sample/host.log)"
ConnectionStrings__WorkflowJobs="$connection" \
WorkflowJobs__Role="${WorkflowJobs__Role:-All}" \
WorkflowJobs__Telemetry__Exporter="${WorkflowJobs__Telemetry__Exporter:-Console}" \
DOTNET_ENVIRONMENT=Production ASPNETCORE_ENVIRONMENT=Production \
  dotnet "$bin/Workflow.Jobs.Sample.dll" --urls "$urls" --contentRoot "$bin" >"$log" 2>&1 &
host_pid=$!

stop_host() {
  if kill -0 "$host_pid" 2>/dev/null; then
    kill -TERM "$host_pid" 2>/dev/null || true
    wait "$host_pid" 2>/dev/null || true
  fi
}
trap 'stop_host' EXIT
trap 'echo; say "stopping the host"; stop_host; exit 0' INT TERM

for _ in $(seq 1 240); do
  if ! kill -0 "$host_pid" 2>/dev/null; then
    tail -n 40 "$log" >&2
    fail "the host exited during start-up (log above: $log)"
  fi
  if [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$base/health" || true)" = "200" ] \
     && curl -s --max-time 2 "$base/health" | grep -q '"status":"Healthy"'; then
    break
  fi
  sleep 0.5
done
curl -s --max-time 2 "$base/health" | grep -q '"status":"Healthy"' || { tail -n 40 "$log" >&2; fail "the host did not become healthy in 120 s"; }
say "host healthy: $(curl -s "$base/health")"

json_field() { sed -n "s/^{\"$1\":\"\([^\"]*\)\".*/\1/p"; }
run_status() { curl -s "$base/api/workflows/$1" | grep -o '"status":"[A-Za-z]*"' | head -n 1 | cut -d'"' -f4; }

enqueue() { # name, json -> run id
  local answer
  answer="$(curl -s -X POST "$base/api/workflows/$1" -H 'Content-Type: application/json' -d "$2")"
  printf '%s' "$answer" | json_field id | grep . || fail "enqueue refused: $answer"
}

wait_status() { # id, wanted status -> final status
  local status=""
  for _ in $(seq 1 240); do
    status="$(run_status "$1")"
    [ "$status" = "$2" ] && break
    case "$status" in Succeeded|Cancelled|Compensated) break ;; esac
    sleep 0.5
  done
  printf '%s' "$status"
}

# A run also reads Failed for a moment between a failed attempt and its automatic retry: wait until it has
# failed after its last retry (3 executions: the first one and 2 retries).
wait_final_failure() { # id -> final status
  local answer=""
  for _ in $(seq 1 240); do
    answer="$(curl -s "$base/api/workflows/$1")"
    if printf '%s' "$answer" | grep -q '"status":"Failed","completedSteps":[0-9]*,"stepCount":[0-9]*,"attempts":3'; then
      break
    fi
    sleep 0.5
  done
  printf '%s' "$answer" | grep -o '"status":"[A-Za-z]*"' | head -n 1 | cut -d'"' -f4
}

provisioning() { # company, subscription failures, admin failures[, seats]
  cat <<JSON
{
  "customer_input": { "name": "$1", "email": "billing@$(echo "$1" | tr 'A-Z ' 'a-z-').example", "country": "US" },
  "subscription_input": { "plan": "business", "seats": ${4:-25}, "simulate_failures": $2 },
  "admin_users_input": { "admins": [
    { "email": "ada@$(echo "$1" | tr 'A-Z ' 'a-z-').example", "name": "Ada" },
    { "email": "grace@$(echo "$1" | tr 'A-Z ' 'a-z-').example", "name": "Grace" } ], "simulate_failures": $3 },
  "welcome_input": { "subject": "Welcome to $1" }
}
JSON
}

say "enqueuing demo runs through POST /api/workflows/customer-provisioning"
ok_id="$(enqueue customer-provisioning "$(provisioning "Acme Corp" 0 0)")"
retried_id="$(enqueue customer-provisioning "$(provisioning "Globex" 1 0)")"
resumed_id="$(enqueue customer-provisioning "$(provisioning "Initech" 0 3)")"
echo "  $ok_id  succeeds at once"
echo "  $retried_id  create-subscription fails once, retried automatically"
echo "  $resumed_id  create-admin-users fails 3 times (more than the 2 retries): ends Failed, then resumed"

invalid="$(curl -s -X POST "$base/api/workflows/customer-provisioning" -H 'Content-Type: application/json' \
  -d '{"customer_input":{"name":"","email":"not-an-email"},"admin_users_input":{"admins":[]}}' -w ' (HTTP %{http_code})')"
echo "  an invalid input is refused, nothing is stored: $invalid"

ok_status="$(wait_status "$ok_id" Succeeded)"
retried_status="$(wait_status "$retried_id" Succeeded)"
failed_status="$(wait_final_failure "$resumed_id")"
echo "  $resumed_id is $failed_status: $(curl -s "$base/api/workflows/$resumed_id" | grep -o '"exceptionMessage":"[^"]*"' | head -n 1)"
say "resuming it: POST /api/workflows/$resumed_id/retry"
curl -s -X POST "$base/api/workflows/$resumed_id/retry" -H 'Content-Type: application/json' -w ' (HTTP %{http_code})\n'
resumed_status="$(wait_status "$resumed_id" Succeeded)"

say "compensation: customer-provisioning-compensated undoes its steps when the welcome e-mail is rejected for good"
undo_input="$(provisioning "Cyberdyne" 0 0 | sed 's/"welcome_input": { "subject": "Welcome to Cyberdyne" }/"welcome_input": { "subject": "Welcome", "simulate_rejection": true }/')"
undo_id="$(enqueue customer-provisioning-compensated "$undo_input")"
undo_status="$(wait_status "$undo_id" Compensated)"
echo "  $undo_id is $undo_status; fake API now: $(curl -s "$base/api/fake-api" | grep -o '"subscriptions":[0-9]*,"users":[0-9]*')"
cancel_id="$(enqueue customer-provisioning "$(provisioning "Soylent" 0 20)")"
# Its admin-users step keeps failing (20 simulated failures): cancel it once the subscription exists.
for _ in $(seq 1 120); do curl -s "$base/api/workflows/$cancel_id" | grep -q '"completedSteps":2' && break; sleep 0.5; done
say "cancelling $cancel_id with compensation: POST /api/workflows/$cancel_id/cancel {\"compensate\": true}"
curl -s -X POST "$base/api/workflows/$cancel_id/cancel" -H 'Content-Type: application/json' -d '{"compensate": true}' -w ' (HTTP %{http_code})\n'
cancel_status="$(wait_status "$cancel_id" Compensated)"

say "forking the first run from its last step: POST /api/workflows/$ok_id/fork"
fork_answer="$(curl -s -X POST "$base/api/workflows/$ok_id/fork" -H 'Content-Type: application/json' -d '{"fromStep":"send-welcome"}')"
fork_id="$(printf '%s' "$fork_answer" | json_field id | grep .)" || fail "fork refused: $fork_answer"
fork_status="$(wait_status "$fork_id" Succeeded)"

say "enqueuing three runs in one call: POST /api/workflows/customer-provisioning/batch"
batch_answer="$(curl -s -X POST "$base/api/workflows/customer-provisioning/batch" -H 'Content-Type: application/json' \
  -d "{\"items\":[{\"input\":$(provisioning "Umbrella" 0 0)},{\"input\":$(provisioning "Hooli" 0 0)},{\"input\":$(provisioning "Stark" 0 0)}]}")"
echo "  $batch_answer"
batch_ids="$(printf '%s' "$batch_answer" | grep -o '[0-9a-f]\{8\}-[0-9a-f-]\{27\}' | awk '!seen[$0]++' || true)"
[ "$(printf '%s\n' "$batch_ids" | grep -c .)" = 3 ] || fail "batch refused: $batch_answer"
batch_status=""
for id in $batch_ids; do batch_status="$batch_status $(wait_status "$id" Succeeded)"; done

say "child workflows: provision-subsidiaries provisions each subsidiary as its own customer-provisioning run"
group_id="$(enqueue provision-subsidiaries '{"subsidiaries_input":{"subsidiaries":[{"name":"Wayne North","email":"north@wayne.example"},{"name":"Wayne South","email":"south@wayne.example"},{"name":"Wayne East","email":"east@wayne.example"}]}}')"
group_status="$(wait_status "$group_id" Succeeded)"
group_children="$(curl -s "$base/api/workflows?parentId=$group_id" | grep -o '"parentId":"'"$group_id"'"' | wc -l | tr -d ' ')"
echo "  $group_id is $group_status; GET /api/workflows?parentId=$group_id lists $group_children children"

say "flow control: three runs with the same Concurrency-Key run one at a time (customer-provisioning allows 1 per key)"
key_answer="$(curl -s -X POST "$base/api/workflows/customer-provisioning/batch" -H 'Content-Type: application/json' \
  -d "{\"items\":[{\"input\":$(provisioning "Tyrell" 0 0),\"concurrencyKey\":\"account-7\"},{\"input\":$(provisioning "Tyrell Labs" 0 0),\"concurrencyKey\":\"account-7\"},{\"input\":$(provisioning "Tyrell Retail" 0 0),\"concurrencyKey\":\"account-7\"}]}")"
key_ids="$(printf '%s' "$key_answer" | grep -o '[0-9a-f]\{8\}-[0-9a-f-]\{27\}' | awk '!seen[$0]++' || true)"
[ "$(printf '%s\n' "$key_ids" | grep -c .)" = 3 ] || fail "batch with a concurrency key refused: $key_answer"
key_status=""
for id in $key_ids; do key_status="$key_status $(wait_status "$id" Succeeded)"; done
key_parked="$(grep -c 'concurrency key account-7) waits for a Key slot' "$log" || true)"
echo "  statuses:$key_status; runs that waited for the key's slot (from the log): $key_parked"

say "a large subscription (250 seats) waits durably for an approval: the run is Waiting, no worker held"
approval_id="$(enqueue customer-provisioning "$(provisioning "Massive Dynamic" 0 0 250)")"
approval_waiting="$(wait_status "$approval_id" Waiting)"
echo "  $approval_id is $approval_waiting: $(curl -s "$base/api/workflows/$approval_id" | grep -o '"waitingFor":"[^"]*","wakeAt":"[^"]*"' | head -n 1)"
say "approving it: POST /api/workflows/$approval_id/events/subscription-approval (or the Send event form of its page)"
curl -s -X POST "$base/api/workflows/$approval_id/events/subscription-approval" -H 'Content-Type: application/json' \
  -d '{"approved": true, "approver": "Olivia"}' -w ' (HTTP %{http_code})\n'
approval_status="$(wait_status "$approval_id" Succeeded)"

# Attempts of each step, in order, e.g. "1 1 4 1".
attempts() { curl -s "$base/api/workflows/$1" | grep -o '"status":"[A-Za-z]*","attempts":[0-9]*' | sed 's/.*"attempts":\([0-9]*\)/\1/' | tail -n +1 | paste -sd ' ' -; }

cat <<TEXT

Workflow.Jobs sample is running (role All; log: artifacts/sample/host.log)

  Dashboard        $base/hangfire              (Hangfire; local requests only)
  Workflows page   $base/hangfire/workflows
  Runs (API)       $base/api/workflows
  Definitions      $base/api/workflow-definitions
  Health           $base/health
  Fake API state   $base/api/fake-api

Demo runs (GET $base/api/workflows/<id>; attempts of steps customer, subscription, admin users, welcome):
  $ok_id  $ok_status              attempts $(attempts "$ok_id")  succeeded at once
  $retried_id  $retried_status              attempts $(attempts "$retried_id")  subscription step retried automatically
  $resumed_id  $failed_status -> $resumed_status  attempts $(attempts "$resumed_id")  resumed at the failed step by POST .../retry
  $fork_id  $fork_status              attempts $(attempts "$fork_id")  fork of the first run from send-welcome (earlier steps copied, never run)
  batch of 3:$batch_status
  $group_id  $group_status              provision-subsidiaries: 3 child runs (GET /api/workflows?parentId=...: $group_children)
  account-7:$key_status  three runs of one concurrency key, one at a time ($key_parked waited for the slot)
  $approval_id  $approval_waiting -> $approval_status  attempts $(attempts "$approval_id")  250 seats: waited for subscription-approval, approved through the API
  $undo_id  $undo_status              compensated steps $(curl -s "$base/api/workflows/$undo_id" | grep -o '"compensatedAt":"[^"]*"' | wc -l | tr -d ' ')  welcome rejected for good: admin users deleted, subscription cancelled (the customer is kept)
  $cancel_id  $cancel_status              cancelled with {"compensate": true}: its succeeded steps undone

Try:
  curl -s -X POST $base/api/workflows/customer-provisioning -H 'Content-Type: application/json' \\
       -d '{"customer_input":{"name":"You","email":"you@example.com"},"admin_users_input":{"admins":[{"email":"you@example.com"}]}}'
  curl -s '$base/api/workflows?status=Failed'
TEXT

expected=0
[ "$ok_status" = Succeeded ] && [ "$retried_status" = Succeeded ] && [ "$failed_status" = Failed ] && [ "$resumed_status" = Succeeded ] \
  && [ "$approval_waiting" = Waiting ] && [ "$approval_status" = Succeeded ] || expected=1
[ "$undo_status" = Compensated ] && [ "$cancel_status" = Compensated ] || expected=1
[ "$group_status" = Succeeded ] && [ "$group_children" = 3 ] && [ "$key_status" = " Succeeded Succeeded Succeeded" ] || expected=1
[ "$expected" = 0 ] || echo "run-sample: a demo run did not end as expected (see above and $log)" >&2

if [ "$wait_for_ctrl_c" = 1 ]; then
  echo
  say "the host keeps running; press Ctrl+C to stop it"
  wait "$host_pid" || true
  exit "$expected"
fi
say "stopping the host (--no-wait)"
stop_host
trap - EXIT
exit "$expected"
