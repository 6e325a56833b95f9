# ruff: noqa: T201 - a command-line report
"""Judge an L3 run (bench/l3/run.sh).

    python -m bench.l3.judge --timings T.json --heavy H.json --access-log LOG \
        --gunicorn-log G --worker-log W

Checks, each printed with its figure:
* the export file holds exactly --rows rows, all of the tagged customers;
* the import accounts for all --rows rows: imported, or listed in the report with a
  reason;
* each job finished in < 60 s (export: approval to file built; import: upload to
  导入完成, the preview confirmed at once);
* no request held a gunicorn worker for 30 s or more (the access log's request times,
  every user's requests), and gunicorn logged no WORKER TIMEOUT;
* the L1 mix ran with 0 failed requests, and its p95 while the heavy jobs ran is at
  most 1.5 × its p95 before they started (sign-in excluded, as L1 does).
Exit 1 when any check fails.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from bench.l1.judge import machine_kinds, percentile

JOB_LIMIT_S = 60
WORKER_LIMIT_S = 30
P95_FACTOR = 1.5
# gunicorn's access log with " %(L)s" appended: the request time in seconds.
REQUEST_TIME = re.compile(r'"[A-Z]+ (\S+) HTTP/[\d.]+" (\d{3}) .* ([\d.]+)$')


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--timings", type=Path, required=True)
    parser.add_argument("--heavy", type=Path, required=True)
    parser.add_argument("--access-log", type=Path, required=True)
    parser.add_argument("--gunicorn-log", type=Path, required=True)
    parser.add_argument("--worker-log", type=Path, required=True)
    args = parser.parse_args(argv)

    heavy = json.loads(args.heavy.read_text(encoding="utf-8"))
    rows, imp, exp = heavy["rows"], heavy["import"], heavy["export"]
    checks: list[tuple[bool, str]] = []

    def check(ok: bool, text: str) -> None:
        checks.append((ok, text))
        print(f"L3: {'ok  ' if ok else 'FAIL'} {text}")

    print(f"L3: machine {machine_kinds()[0]}")
    for error in heavy["errors"]:
        check(False, f"heavy job did not complete: {error}")
    if "file_rows" in exp:
        check(
            exp["file_rows"] == rows == exp["file_rows_with_tag"],
            f"export file: {exp['file_rows']} rows ({exp['file_rows_with_tag']} tagged),"
            f" {rows} expected; confirm page said {exp['rows_on_confirm_page']}",
        )
        check(
            exp["built_s"] < JOB_LIMIT_S,
            f"export built {exp['built_s']} s after approval (< {JOB_LIMIT_S} s); "
            f"request to download {exp['total_s']} s",
        )
    if "report_rows" in imp:
        accounted = imp["imported"] + imp["bad_rows_with_reason"]
        check(
            accounted == rows == imp["report_rows"]
            and not imp["bad_rows_without_reason"],
            f"import: {imp['imported']} imported, {imp['bad_rows_with_reason']} bad rows "
            f"with their reason in the report, of {rows}",
        )
        check(
            imp["total_s"] < JOB_LIMIT_S,
            f"import done {imp['total_s']} s after upload (< {JOB_LIMIT_S} s): "
            f"preview {imp['validated_s']} s, import {imp['executed_s']} s",
        )

    times = []
    for line in args.access_log.read_text(
        encoding="utf-8", errors="replace"
    ).splitlines():
        match = REQUEST_TIME.search(line)
        if match:
            times.append((float(match.group(3)), match.group(1)))
    longest = max(times, default=(0.0, "-"))
    timeouts = args.gunicorn_log.read_text(errors="replace").count("WORKER TIMEOUT")
    check(
        longest[0] < WORKER_LIMIT_S and not timeouts,
        f"longest request {longest[0]:.2f} s ({longest[1]}) of {len(times)} "
        f"(< {WORKER_LIMIT_S} s); {timeouts} worker timeouts",
    )
    worker_log = args.worker_log.read_text(errors="replace")
    check(
        "Traceback" not in worker_log and "ERROR/" not in worker_log,
        "Celery worker logged no error",
    )

    records = json.loads(args.timings.read_text())
    failed = [r for r in records if not r[3]]
    work = [r for r in records if r[1] != "login"]
    start, end = heavy["heavy_start"], heavy["heavy_end"]
    before = [r[2] for r in work if r[0] < start]
    during = [r[2] for r in work if start <= r[0] <= end]
    check(not failed, f"L1 mix: {len(records)} requests, {len(failed)} failed")
    p95_before, p95_during = percentile(before, 95), percentile(during, 95)
    print(
        f"L3: L1 mix before the heavy jobs: {len(before)} requests, "
        f"p50 {percentile(before, 50):.0f} ms, p95 {p95_before:.0f} ms; "
        f"during them ({end - start:.0f} s): {len(during)} requests, "
        f"p50 {percentile(during, 50):.0f} ms, p95 {p95_during:.0f} ms"
    )
    check(
        bool(before and during) and p95_during <= P95_FACTOR * p95_before,
        f"L1 p95 during / before = {p95_during / max(p95_before, 1):.2f} "
        f"(≤ {P95_FACTOR})",
    )
    failures = [text for ok, text in checks if not ok]
    print(f"L3: {len(checks) - len(failures)} of {len(checks)} checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
