# ruff: noqa: T201 - a command-line report
"""Judge an L1 run (bench/l1/run.sh): errors, latency against the stored baseline, and
personal data in the access log's URLs.

    python -m bench.l1.judge --timings T.json --access-log LOG [--record]

Exit 1 when any request failed or a phone or ID number appears in a logged URL (S14);
exit 3 when the only problem is p95 above the baseline for this machine kind + 20 %
(run.sh then measures once more, and fails if the second run is slow too). The latency
gate is skipped, and says so, when there is no baseline for this machine kind or when the
machine was busy before the run started (1-minute load average above the core count):
figures from a shared 2-core box are not comparable with a quiet one. --record stores
this run's figures as the baseline for this machine kind.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
from pathlib import Path

BASELINE = Path(__file__).with_name("baseline.json")
TOLERANCE = 1.20  # L1: no worse than the stored baseline + 20 %
# S14: an 11-digit mainland mobile, an 18-character resident ID number.
PII_PATTERNS = {
    "mobile": re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)"),
    "id_number": re.compile(r"(?<!\d)\d{17}[\dXx](?!\d)"),
}
# gunicorn's access log: `... "GET /path?query HTTP/1.1" 200 ... "<referer>" "<agent>"`
REQUEST_LINE = re.compile(r'"[A-Z]+ (\S+) HTTP/[\d.]+"')


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def _cpuinfo() -> dict[str, str]:
    fields: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            name, colon, value = line.partition(":")
            if not colon:
                break  # the first processor's block ends at a blank line
            fields.setdefault(name.strip(), value.strip())
    except OSError:
        pass
    return fields


def machine_kinds() -> tuple[str, str]:
    """This machine's baseline keys: exact (with the CPU's family and model) and coarse.

    The model name alone ("AMD EPYC") named two machines whose L1 p95 differed about
    twofold in December 2026, so a baseline is recorded under the exact key; the coarse
    one is only read, for baselines recorded before the exact key existed.
    """
    info = _cpuinfo()
    model = info.get("model name", "unknown cpu")
    coarse = f"{os.cpu_count()} cores, {model}, {platform.machine()}"
    if "cpu family" not in info:
        return coarse, coarse
    exact = (
        f"{os.cpu_count()} cores, {model} (family {info['cpu family']}, "
        f"model {info.get('model', '?')}), {platform.machine()}"
    )
    return exact, coarse


def pii_in_urls(log: Path) -> list[str]:
    hits = []
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        # The whole line: the request URL and the Referer (a page address) both count.
        match = REQUEST_LINE.search(line)
        for kind, pattern in PII_PATTERNS.items():
            if pattern.search(line):
                hits.append(f"{kind}: {match.group(1) if match else line}")
    return hits


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--timings", type=Path, required=True)
    parser.add_argument("--access-log", type=Path, required=True)
    parser.add_argument("--load-before", type=float, default=0.0)
    parser.add_argument("--customers", type=int, default=0)
    parser.add_argument("--record", action="store_true")
    parser.add_argument("--note", type=Path)
    args = parser.parse_args(argv)

    timings = json.loads(args.timings.read_text())
    work = [t for t in timings if t[1] != "login"]
    failed = [t for t in timings if not t[3]]
    times = [t[2] for t in work]
    p50, p95, p99 = (round(percentile(times, q)) for q in (50, 95, 99))
    by_name: dict[str, list[float]] = {}
    for _, name, ms, _ok in work:
        by_name.setdefault(name, []).append(ms)
    print(
        f"L1: {len(timings)} requests ({len(work)} after sign-in), {len(failed)} failed"
    )
    print(f"L1: p50 {p50} ms, p95 {p95} ms, p99 {p99} ms (sign-in excluded)")
    for name in sorted(by_name):
        values = by_name[name]
        print(
            f"    {name:32} {len(values):6} req  p50 {percentile(values, 50):7.0f}"
            f"  p95 {percentile(values, 95):7.0f}  p99 {percentile(values, 99):7.0f} ms"
        )
    problems: list[str] = []
    latency_problems: list[str] = []
    if not work:
        problems.append("no request was made after sign-in")
    if failed:
        problems.append(f"{len(failed)} requests failed (L1 requires 0 %)")
    hits = pii_in_urls(args.access_log)
    for hit in hits[:10]:
        print(f"  S14: personal data in a logged URL: {hit}", file=sys.stderr)
    if hits:
        problems.append(f"{len(hits)} access-log URLs carry a phone or ID number (S14)")
    else:
        print("L1: access log: 0 URLs with a phone or ID number (S14)")
    if work and p99 > 3 * p95:
        print(f"L1: note: p99 {p99} ms is more than 3 × p95 (L1 asks p99 ≤ 3 × p95)")

    kind, coarse_kind = machine_kinds()
    baselines = json.loads(BASELINE.read_text()) if BASELINE.exists() else {}
    baseline = baselines.get(kind) or baselines.get(coarse_kind)
    cores = os.cpu_count() or 1
    gate = "recorded as the baseline"
    if args.record:
        baselines[kind] = {
            "p50_ms": p50,
            "p95_ms": p95,
            "p99_ms": p99,
            "requests": len(work),
            "customers": args.customers,
            "load_before": args.load_before,
        }
        BASELINE.write_text(json.dumps(baselines, indent=2, ensure_ascii=False) + "\n")
        print(f"L1: baseline for {kind!r} recorded in {BASELINE}")
    elif baseline is None:
        print(f"L1: latency gate SKIPPED: no baseline for {kind!r} (run with --record)")
        gate = "no baseline"
    elif args.load_before > cores:
        print(
            f"L1: latency gate SKIPPED: load average {args.load_before:.1f} > {cores} "
            "cores before the run (a busy machine's figures are not comparable)"
        )
        gate = "busy machine"
    else:
        limit = round(baseline["p95_ms"] * TOLERANCE)
        print(
            f"L1: p95 {p95} ms against baseline {baseline['p95_ms']} ms (+20 %: {limit})"
        )
        gate = f"p95 ≤ {limit}"
        if p95 > limit:
            latency_problems.append(
                f"p95 {p95} ms > baseline {baseline['p95_ms']} ms + 20 %"
            )
            problems += latency_problems
    if args.note:
        summary = (
            f"{len(work)} req, {len(failed)} errors, p50/p95/p99 {p50}/{p95}/{p99} ms"
        )
        if not args.record:
            summary += f"; latency gate: {gate}"
        args.note.write_text(summary)
    for problem in problems:
        print(f"L1 FAILED: {problem}", file=sys.stderr)
    if not problems:
        return 0
    # 3: latency alone (run.sh measures once more); 1: errors or PII, final.
    return 3 if problems == latency_problems else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
