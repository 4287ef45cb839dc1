#!/usr/bin/env bash
# The one command that runs every test on a fresh machine:
#   deploy/test.sh [extra dotnet test arguments]
# Starts the project's local PostgreSQL (deploy/local-postgres.sh), points the tests at it through
# WORKFLOW_JOBS_TEST_CONNECTION, builds with warnings as errors, runs the whole solution's tests and
# ends with the line "N passed, N failed, N skipped".
set -uo pipefail
cd "$(dirname "$0")/.."

export DOTNET_CLI_TELEMETRY_OPTOUT=1
export DOTNET_NOLOGO=1
export DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

if [ -z "${WORKFLOW_JOBS_TEST_CONNECTION:-}" ]; then
  if ! connection="$(deploy/local-postgres.sh start | tail -n 1)"; then
    echo "could not start the local PostgreSQL" >&2
    echo "0 passed, 1 failed"
    exit 1
  fi
  export WORKFLOW_JOBS_TEST_CONNECTION="$connection"
fi

# The dashboard's browser test drives Debian's Chromium (Playwright never downloads a browser here).
if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = "0" ]; then
  echo "installing chromium for the browser test" >&2
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } >&2 \
    || echo "could not install chromium: the browser test will fail" >&2
fi

results="artifacts/test-results"
rm -rf "$results"
mkdir -p "$results"

status=0
if ! dotnet build Workflow.Jobs.sln -c Release -warnaserror -nologo -v quiet; then
  echo "build failed" >&2
  echo "0 passed, 1 failed"
  exit 1
fi

dotnet test Workflow.Jobs.sln -c Release --no-build --nologo \
  --logger "trx" --logger "console;verbosity=normal" --results-directory "$results" "$@" || status=$?

passed=0; failed=0; skipped=0; found=0
for trx in "$results"/*.trx; do
  [ -f "$trx" ] || continue
  found=1
  counters="$(grep -o '<Counters [^>]*>' "$trx" | head -n 1)"
  get() { echo "$counters" | sed -n "s/.* $1=\"\([0-9]*\)\".*/\1/p"; }
  total=$(get total); executed=$(get executed); p=$(get passed); f=$(get failed); e=$(get error); t=$(get timeout); a=$(get aborted)
  passed=$((passed + ${p:-0}))
  failed=$((failed + ${f:-0} + ${e:-0} + ${t:-0} + ${a:-0}))
  skipped=$((skipped + ${total:-0} - ${executed:-0}))
done
# The failed tests again, last, with the first lines of their messages: a log read from its end shows them.
for trx in "$results"/*.trx; do
  [ -f "$trx" ] || continue
  python3 - "$trx" <<'PY' || true
import sys, xml.etree.ElementTree as ET
ns = {"t": "http://microsoft.com/schemas/VisualStudio/TeamTest/2010"}
root = ET.parse(sys.argv[1]).getroot()
for r in root.iterfind(".//t:UnitTestResult", ns):
    if r.get("outcome") in ("Passed", "NotExecuted", "Inconclusive"):
        continue
    print(f"FAILED {r.get('testName')} ({r.get('outcome')}, {r.get('duration')})")
    msg = r.find(".//t:ErrorInfo/t:Message", ns)
    trace = r.find(".//t:ErrorInfo/t:StackTrace", ns)
    for text, limit in ((msg, 12), (trace, 8)):
        if text is not None and text.text:
            for line in text.text.strip().splitlines()[:limit]:
                print("    " + line)
PY
done

if [ "$found" = 0 ] || { [ "$status" != 0 ] && [ "$failed" = 0 ]; }; then
  # The runner failed without reporting a failed test (crash, no tests found): count it as one.
  failed=$((failed + 1))
  [ "$status" != 0 ] || status=1
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ] || [ "$status" != 0 ] || status=1
exit "$status"
