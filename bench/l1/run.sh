#!/usr/bin/env bash
# L1 load smoke (docs/benchmarks.md, "L1 load smoke"); `make load` and CI step h.
#
# Creates the database kehu_l1 on the PostgreSQL of DATABASE_URL (default: the machine's,
# 127.0.0.1:5432), migrates it, seeds it with `seed_demo --customers $L1_CUSTOMERS`,
# serves it with gunicorn on 127.0.0.1 (crm.settings.bench: DEBUG off, production session
# behaviour), runs Locust headless (20 users, 5 per second, $L1_TIME) through
# bench/l1/locustfile.py, judges the run with bench/l1/judge.py, and drops the database.
#
#   L1_CUSTOMERS=5000 L1_TIME=2m bench/l1/run.sh
#   L1_RECORD=1 bench/l1/run.sh      # store this run's figures as the baseline
set -euo pipefail

cd "$(dirname "$0")/../.."
ROOT=$(pwd)
PY=${VENV:-.venv}/bin/python
L1_CUSTOMERS=${L1_CUSTOMERS:-5000}
L1_TIME=${L1_TIME:-2m}
L1_USERS=${L1_USERS:-20}
L1_RATE=${L1_RATE:-5}
L1_WORKERS=${L1_WORKERS:-3}
DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/kehu_l1}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/2}
# Whatever database DATABASE_URL names, L1 works in its own, kehu_l1, on that server.
SERVER_URL=${DATABASE_URL%/*}
L1_DB=kehu_l1
export DATABASE_URL="$SERVER_URL/$L1_DB" BENCH_DATABASE_URL="$SERVER_URL/$L1_DB"
export REDIS_URL DJANGO_SETTINGS_MODULE=crm.settings.bench LOG_LEVEL=WARNING

WORK=$(mktemp -d "${TMPDIR:-/tmp}/kehu-l1.XXXXXX")
GUNICORN_PID=
cleanup() {
  if [ -n "$GUNICORN_PID" ] && kill -0 "$GUNICORN_PID" 2>/dev/null; then
    kill -TERM "$GUNICORN_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$GUNICORN_PID" 2>/dev/null || break; sleep 0.2; done
  fi
  drop_database || true
  [ -n "${L1_KEEP:-}" ] && echo "L1: files kept in $WORK" || rm -rf "$WORK"
}
trap cleanup EXIT

admin_sql() {
  "$PY" - "$SERVER_URL/postgres" "$1" <<'PYEOF'
import sys

import psycopg

with psycopg.connect(sys.argv[1], autocommit=True) as connection:
    connection.execute(sys.argv[2])
PYEOF
}
drop_database() { admin_sql "DROP DATABASE IF EXISTS $L1_DB WITH (FORCE)"; }

free_port() {
  "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

started=$SECONDS
# A copy of the migrated template the test runs use (tests/template_db.py: built here
# when this server has none for these migrations); migrate then has nothing left to do.
"$PY" -m tests.template_db clone "$L1_DB"
"$PY" manage.py migrate --no-input -v 0
echo "L1: database $L1_DB migrated in $((SECONDS - started)) s"
seeding=$SECONDS
"$PY" manage.py seed_demo --customers "$L1_CUSTOMERS" | tail -n 1
echo "L1: seed_demo --customers $L1_CUSTOMERS took $((SECONDS - seeding)) s"

# Real phone numbers for the whole-phone searches (S14 checks they never reach a URL).
"$PY" - "$WORK/phones.txt" <<'PYEOF'
import sys

import django

django.setup()
from customers.models import CustomerPhone

numbers = CustomerPhone.objects.order_by("?").values_list("number", flat=True)[:200]
open(sys.argv[1], "w").write("\n".join(numbers) + "\n")
PYEOF

# The judge skips the latency gate on a busy machine (1-minute load average above the
# cores). Right after CI's test suites the average is still high though nothing else
# runs: wait for it to fall below the cores - 0.5, at most L1_QUIET_WAIT seconds, so
# that the gate is judged instead of skipped.
wait_for_quiet() {
  local cores waited=0 limit=${L1_QUIET_WAIT:-180}
  cores=$(nproc)
  while [ "$waited" -lt "$limit" ] &&
    awk -v l="$(cut -d' ' -f1 /proc/loadavg)" -v c="$cores" 'BEGIN { exit !(l > c - 0.5) }'; do
    sleep 5
    waited=$((waited + 5))
  done
  if [ "$waited" -gt 0 ]; then
    echo "L1: waited $waited s for the load average to fall: $(cut -d' ' -f1 /proc/loadavg)"
  fi
}

# One measurement: gunicorn up, Locust for $L1_TIME, gunicorn down, the judge.
# Sets locust_rc and judge_rc (judge: 1 = errors or PII, 3 = only p95 over the gate).
measure() {
  local attempt=$1
  wait_for_quiet
  PORT=$(free_port)
  "$PY" -m gunicorn crm.wsgi --bind "127.0.0.1:$PORT" --workers "$L1_WORKERS" \
    --access-logfile "$WORK/access.log" --error-logfile "$WORK/gunicorn.log" \
    --pid "$WORK/gunicorn.pid" &
  GUNICORN_PID=$!
  for _ in $(seq 1 60); do
    "$PY" -c "import socket; socket.create_connection(('127.0.0.1', $PORT), 1)" 2>/dev/null && break
    kill -0 "$GUNICORN_PID" 2>/dev/null || { cat "$WORK/gunicorn.log" >&2; exit 1; }
    sleep 0.5
  done
  load_before=$(cut -d' ' -f1 /proc/loadavg)
  echo "L1: gunicorn ($L1_WORKERS workers) on 127.0.0.1:$PORT; load average $load_before on $(nproc) cores (run $attempt)"

  locust_rc=0
  rm -f "$WORK/timings.json"
  (cd bench/l1 && L1_PHONES="$WORK/phones.txt" L1_TIMINGS="$WORK/timings.json" \
    "$ROOT/$PY" -m locust -f locustfile.py --headless -u "$L1_USERS" -r "$L1_RATE" \
    -t "$L1_TIME" -H "http://127.0.0.1:$PORT" --csv "$WORK/l1" --exit-code-on-error 1 \
    --only-summary --loglevel WARNING) || locust_rc=$?
  kill -TERM "$GUNICORN_PID" 2>/dev/null || true
  wait "$GUNICORN_PID" 2>/dev/null || true
  GUNICORN_PID=

  judge_rc=0
  if [ ! -s "$WORK/timings.json" ]; then
    echo "L1: Locust recorded nothing (is it installed? the dev extra has it)" >&2
    echo "L1 FAILED (locust exit $locust_rc)" >&2
    exit 1
  fi
  "$PY" -m bench.l1.judge --timings "$WORK/timings.json" --access-log "$WORK/access.log" \
    --load-before "$load_before" --customers "$L1_CUSTOMERS" \
    ${L1_RECORD:+--record} ${KEHU_L1_NOTE:+--note "$KEHU_L1_NOTE"} || judge_rc=$?
  if grep -qE '\[(ERROR|CRITICAL)\]|Traceback' "$WORK/gunicorn.log"; then
    echo "L1: gunicorn logged errors:" >&2
    grep -E -A3 '\[(ERROR|CRITICAL)\]|Traceback' "$WORK/gunicorn.log" | head -40 >&2
    judge_rc=1
  fi
}

measure 1
if [ "$judge_rc" -eq 3 ] && [ "$locust_rc" -eq 0 ]; then
  # One slow run on a shared two-core machine is noise more often than a regression;
  # a regression is slow twice. Errors and PII are never measured again.
  echo "L1: p95 over the gate; measuring once more before calling it a regression"
  measure 2
fi
echo "L1: total $((SECONDS - started)) s"
if [ "$locust_rc" -ne 0 ] || [ "$judge_rc" -ne 0 ]; then
  echo "L1 FAILED (locust exit $locust_rc, judge exit $judge_rc)" >&2
  exit 1
fi
echo "L1 passed"
