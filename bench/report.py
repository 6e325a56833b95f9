"""The generated part of docs/benchmarks.md, from bench/results.json.

    python -m bench.report     # regenerate the table from the last results

Only the text between the markers of the results' size is replaced; everything else in the document is
written by hand and kept.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

REPO_DIR = Path(__file__).resolve().parent.parent


def markers(size: str) -> tuple[str, str]:
    """Each size has its own table, so a quick small run leaves the full figures alone."""
    return (
        f"<!-- bench:{size}:start (generated from bench/results.json; edit outside) -->",
        f"<!-- bench:{size}:end -->",
    )


# What every scenario records; an action's other figures are listed under the table.
STANDARD_KEYS = {
    "goal",
    "role",
    "kind",
    "requests",
    "errors",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "queries",
    "queries_max",
    "sql_ms",
    "cpu_ms",
    "bytes",
    "rps",
    "client_p95_ms",
    "meets_goal",
    "heaviest_query_ms",
    "status",
    "reason",
    "missing",
}


def number(value: Any, digits: int = 1) -> str:
    if value is None:
        return "–"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.{digits}f}"


def verdict(entry: dict[str, Any]) -> str:
    if entry.get("missing"):
        return "missing"
    if entry.get("status") == "failed":
        return "**failed**"
    met = entry.get("meets_goal")
    if met is None:
        return "–"
    return "meets goal" if met else "**misses goal**"


def render(results: dict[str, Any]) -> str:
    git = results["git"]
    machine = results["machine"]
    database = results.get("database", {})
    datasets = results["datasets"]
    build = results["data_build"]
    built = [
        f"{name} {info['rows']:,}"
        for name, info in datasets.items()
        if isinstance(info, dict) and info.get("built")
    ]
    not_built = [
        name
        for name, info in datasets.items()
        if isinstance(info, dict) and not info.get("built")
    ]
    start, end = markers(results["size"])
    lines = [
        start,
        f"Size **{results['size']}**, measured {results['date']} on commit "
        f"`{git['commit'][:12]}`{' (with uncommitted changes)' if git['dirty'] else ''}.",
        f"Machine: {machine['cores']} cores, {machine['memory_gb']} GB, {machine['cpu']}; "
        f"load average at start {machine['load_average_at_start']}; PostgreSQL "
        f"{database.get('postgres', '?')}; gunicorn "
        f"{results['server']['gunicorn_workers']} workers.",
        f"Data: {', '.join(built)}; {datasets.get('salespeople')} salespeople in "
        f"{datasets.get('teams')} teams"
        + (
            f", {datasets['service_agents']} service agents in "
            f"{datasets['service_teams']} teams"
            if datasets.get("service_agents")
            else ""
        )
        + f"; not built yet: {', '.join(not_built) or 'none'}. "
        f"Data step: {build['seconds']:.0f} s "
        f"({'reused' if build['reused'] else 'built'}).",
        "",
        "| scenario | role | goal | p50 ms | p95 ms | p99 ms | queries | SQL ms "
        "| CPU ms | bytes | rps / errors | verdict |",
        "|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|---|",
    ]
    for name, entry in results["scenarios"].items():
        if entry.get("missing"):
            lines.append(
                f"| `{name}` | {entry['role']} | {entry['goal']} | missing: "
                f"{entry['reason']} | | | | | | | | missing |"
            )
            continue
        queries = number(entry.get("queries"))
        if entry.get("queries_max", entry.get("queries")) != entry.get("queries"):
            queries += f" (max {entry['queries_max']})"
        load = (
            f"{number(entry['rps'])} rps / {entry['errors']}"
            if "rps" in entry
            else f"– / {entry.get('errors', 0)}"
        )
        lines.append(
            f"| `{name}` | {entry['role']} | {entry['goal']} | "
            f"{number(entry.get('p50_ms'))} | {number(entry.get('p95_ms'))} | "
            f"{number(entry.get('p99_ms'))} | {queries} | "
            f"{number(entry.get('sql_ms'))} | {number(entry.get('cpu_ms'))} | "
            f"{number(entry.get('bytes'))} | {load} | "
            f"{verdict(entry)} |"
        )
    details = [
        f"`{name}` (median of {entry['requests']} runs): "
        + ", ".join(
            f"{key} {number(value)}"
            for key, value in entry.items()
            if key not in STANDARD_KEYS
        )
        for name, entry in results["scenarios"].items()
        if entry.get("kind") == "action"
    ]
    if details:
        lines += ["", "Actions in detail: " + "; ".join(details) + "."]
    lines.append(end)
    return "\n".join(lines)


def update_doc(doc: Path, results: dict[str, Any]) -> None:
    start, end = markers(results["size"])
    text = doc.read_text() if doc.exists() else "# Benchmarks\n"
    if start not in text or end not in text:
        text = text.rstrip("\n") + f"\n\n{start}\n{end}\n"
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    doc.write_text(head + render(results) + tail)


def main() -> int:
    results = json.loads((REPO_DIR / "bench" / "results.json").read_text())
    update_doc(REPO_DIR / "docs" / "benchmarks.md", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
