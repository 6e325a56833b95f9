#!/usr/bin/env bash
# L2 ceiling (docs/reliability.md §3.4, "L2 and L3"): wrk on the login page against
# gunicorn on 127.0.0.1, $L2_THREADS threads, $L2_CONNECTIONS connections, $L2_TIME.
# Required: 0 socket errors and 0 answers other than 2xx. Requests/s and the latency
# percentiles are reported, not judged: a ceiling measurement, not a goal.
#
# Creates the database $L2_DB (default kehu_l2) on the server of DATABASE_URL (default:
# the machine's, 127.0.0.1:5432), migrates it, serves it as bench/l1/run.sh does
# (crm.settings.bench, $L2_WORKERS sync workers), runs wrk, drops the database.
# Installs Debian's wrk when it is missing (as root, as .ci/run installs chromium).
#
#   bench/l2/run.sh                 # make load-l2
#   L2_DB=kehu_load L2_TIME=10s bench/l2/run.sh
set -euo pipefail

cd "$(dirname "$0")/../.."
PY=${VENV:-.venv}/bin/python
L2_TIME=${L2_TIME:-30s}
L2_THREADS=${L2_THREADS:-2}
L2_CONNECTIONS=${L2_CONNECTIONS:-50}
L2_WORKERS=${L2_WORKERS:-3}
L2_DB=${L2_DB:-kehu_l2}
DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/kehu_l2}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/2}
SERVER_URL=${DATABASE_URL%/*}
export DATABASE_URL="$SERVER_URL/$L2_DB" BENCH_DATABASE_URL="$SERVER_URL/$L2_DB"
export REDIS_URL DJANGO_SETTINGS_MODULE=crm.settings.bench LOG_LEVEL=WARNING

if ! command -v wrk >/dev/null; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "L2: wrk is missing; install it with: sudo apt-get install -y wrk" >&2
    exit 1
  fi
  echo "L2: installing wrk from Debian"
  apt-get update -q && apt-get install -y -q wrk
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/kehu-l2.XXXXXX")
GUNICORN_PID=
admin_sql() {
  "$PY" -c 'import sys, psycopg
with psycopg.connect(sys.argv[1], autocommit=True) as c: c.execute(sys.argv[2])' \
    "$SERVER_URL/postgres" "$1"
}
cleanup() {
  if [ -n "$GUNICORN_PID" ] && kill -0 "$GUNICORN_PID" 2>/dev/null; then
    kill -TERM "$GUNICORN_PID" 2>/dev/null || true
    wait "$GUNICORN_PID" 2>/dev/null || true
  fi
  admin_sql "DROP DATABASE IF EXISTS $L2_DB WITH (FORCE)" || true
  rm -rf "$WORK"
}
trap cleanup EXIT

admin_sql "DROP DATABASE IF EXISTS $L2_DB WITH (FORCE)"
admin_sql "CREATE DATABASE $L2_DB"
"$PY" manage.py migrate --no-input -v 0

PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
URL="http://127.0.0.1:$PORT/accounts/login/"
"$PY" -m gunicorn crm.wsgi --bind "127.0.0.1:$PORT" --workers "$L2_WORKERS" \
  --error-logfile "$WORK/gunicorn.log" --pid "$WORK/gunicorn.pid" &
GUNICORN_PID=$!
for _ in $(seq 1 60); do
  "$PY" -c "import urllib.request as u; u.urlopen('$URL', timeout=2)" 2>/dev/null && break
  kill -0 "$GUNICORN_PID" 2>/dev/null || { cat "$WORK/gunicorn.log" >&2; exit 1; }
  sleep 0.5
done
echo "L2: gunicorn ($L2_WORKERS workers) on 127.0.0.1:$PORT; load average" \
  "$(cut -d' ' -f1 /proc/loadavg) on $(nproc) cores; $(wrk --version 2>&1 | head -n 1 | cut -d' ' -f1-2)"
echo "L2: wrk -t$L2_THREADS -c$L2_CONNECTIONS -d$L2_TIME --latency $URL"
wrk -t"$L2_THREADS" -c"$L2_CONNECTIONS" -d"$L2_TIME" --latency \
  -s bench/l2/report.lua "$URL" | tee "$WORK/wrk.txt"

"$PY" - "$WORK/wrk.txt" "$WORK/gunicorn.log" <<'PYEOF'
import json
import re
import sys

text = open(sys.argv[1], encoding="utf-8").read()
line = re.search(r"^L2-JSON (.*)$", text, re.M)
if line is None:
    sys.exit("L2 FAILED: wrk printed no summary")
r = json.loads(line.group(1))
sockets = r["connect"] + r["read"] + r["write"] + r["timeout"]
print(
    f"L2: {r['requests']} requests in {r['seconds']:.1f} s = "
    f"{r['requests'] / r['seconds']:.0f} requests/s; latency mean {r['mean_ms']:.0f}, "
    f"p50 {r['p50_ms']:.0f}, p90 {r['p90_ms']:.0f}, p95 {r['p95_ms']:.0f}, "
    f"p99 {r['p99_ms']:.0f}, max {r['max_ms']:.0f} ms"
)
print(
    f"L2: socket errors {sockets} (connect {r['connect']}, read {r['read']}, "
    f"write {r['write']}, timeout {r['timeout']}); answers other than 2xx {r['non2xx']}"
)
log = open(sys.argv[2], encoding="utf-8", errors="replace").read()
problems = []
if not r["requests"]:
    problems.append("no request was answered")
if sockets:
    problems.append(f"{sockets} socket errors (L2 requires 0)")
if r["non2xx"]:
    problems.append(f"{r['non2xx']} answers other than 2xx (L2 requires 0)")
if re.search(r"\[(ERROR|CRITICAL)\]|Traceback|WORKER TIMEOUT", log):
    problems.append("gunicorn logged errors:\n" + log[-3000:])
for problem in problems:
    print(f"L2 FAILED: {problem}", file=sys.stderr)
sys.exit(1 if problems else 0)
PYEOF
echo "L2 passed"
