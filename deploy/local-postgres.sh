#!/usr/bin/env bash
# Starts (or stops) a throwaway PostgreSQL cluster for Workflow.Jobs, without Docker.
#
#   deploy/local-postgres.sh start    # idempotent; prints the connection string on its last line
#   deploy/local-postgres.sh stop
#   deploy/local-postgres.sh status
#   deploy/local-postgres.sh restart  # stop + start (used by the reliability run)
#   deploy/local-postgres.sh reset    # stop and delete the cluster's folder (test databases left by
#                                     # killed runs included); the next start makes a new one
#
# Uses the machine's PostgreSQL server binaries (installs Debian's `postgresql` when absent) and runs
# the server as the `postgres` user on its own data folder and port:
#   WORKFLOW_PG_PORT (default 55432), WORKFLOW_PG_DIR (default /var/tmp/workflow-jobs-pg-$PORT).
# Authentication is `trust` on 127.0.0.1 only: a cluster for development and tests, not production.
# A cluster that was not shut down cleanly (machine restarted, server killed) first recovers; that can take
# minutes on a large data folder, so start waits up to WORKFLOW_PG_START_TIMEOUT seconds (default 600).
set -euo pipefail

command_name="${1:-start}"
port="${WORKFLOW_PG_PORT:-55432}"
base="${WORKFLOW_PG_DIR:-/var/tmp/workflow-jobs-pg-$port}"
data="$base/data"
log="$base/server.log"
start_timeout="${WORKFLOW_PG_START_TIMEOUT:-600}"

log_msg() { echo "local-postgres: $*" >&2; }

find_bin() {
  local dir
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k4 -n -r); do
    if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then echo "$dir"; return 0; fi
  done
  if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
    dirname "$(command -v pg_ctl)"; return 0
  fi
  return 1
}

as_postgres() {
  if [ "$(id -u)" = "0" ]; then
    runuser -u postgres -- "$@"
  elif [ "$(id -un)" = "postgres" ]; then
    "$@"
  else
    sudo -u postgres "$@"
  fi
}

ensure_installed() {
  if ! bin="$(find_bin)"; then
    log_msg "PostgreSQL server binaries not found; installing Debian's postgresql package"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq postgresql >&2
    # The package may start its own cluster on 5432; ours is separate and does not need it.
    bin="$(find_bin)" || { log_msg "installation did not provide initdb/pg_ctl"; exit 1; }
  fi
  if ! id postgres >/dev/null 2>&1; then
    useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
  fi
}

connection_string() {
  echo "Host=127.0.0.1;Port=$port;Username=postgres;Database=postgres"
}

port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null
}

is_running() {
  [ -f "$data/postmaster.pid" ] && as_postgres "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1
}

start() {
  ensure_installed
  mkdir -p "$base"
  chown postgres:postgres "$base"
  chmod 700 "$base"
  if [ ! -f "$data/PG_VERSION" ]; then
    log_msg "initialising a cluster in $data"
    as_postgres "$bin/initdb" -D "$data" -U postgres -A trust -E UTF8 --no-locale >/dev/null
    cat >> "$data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$base'
max_connections = 300
shared_buffers = 256MB
max_prepared_transactions = 0
log_min_messages = warning
CONF
  fi
  if is_running; then
    log_msg "already running on port $port"
  else
    if port_in_use; then
      log_msg "port $port is taken by another server; choose another with WORKFLOW_PG_PORT"
      exit 1
    fi
    if ! as_postgres "$bin/pg_ctl" -D "$data" -l "$log" -w -t "$start_timeout" start >/dev/null; then
      log_msg "the server did not start within ${start_timeout} s; the end of $log:"
      tail -n 20 "$log" >&2 || true
      exit 1
    fi
    log_msg "started on port $port (log: $log)"
  fi
  # Wait until it accepts connections.
  for _ in $(seq 1 60); do
    if as_postgres "$bin/pg_isready" -h 127.0.0.1 -p "$port" >/dev/null 2>&1; then
      connection_string
      return 0
    fi
    sleep 0.5
  done
  log_msg "server did not become ready; see $log"
  exit 1
}

stop() {
  if ! bin="$(find_bin)"; then return 0; fi
  if is_running; then
    as_postgres "$bin/pg_ctl" -D "$data" -m fast -w -t 60 stop >/dev/null
    log_msg "stopped"
  else
    log_msg "not running"
  fi
}

reset() {
  stop
  if [ -d "$data" ] && [ ! -f "$data/PG_VERSION" ]; then
    log_msg "$data is not a PostgreSQL data folder; left as it is"
    exit 1
  fi
  rm -rf "$data" "$log" "$base/.s.PGSQL.$port" "$base/.s.PGSQL.$port.lock"
  rmdir "$base" 2>/dev/null || true
  log_msg "deleted the cluster in $data"
}

case "$command_name" in
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  reset) reset ;;
  status) bin="$(find_bin)" && is_running && { log_msg "running on port $port"; connection_string; } || { log_msg "not running"; exit 3; } ;;
  *) echo "usage: $0 start|stop|restart|reset|status" >&2; exit 2 ;;
esac
