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


def markers(size: str, part: str = "") -> tuple[str, str]:
    """Each size has its own table, so a quick small run leaves the full figures alone;
    the data shapes' tables (part "shapes") have their own markers too."""
    name = f"{size}:{part}" if part else size
    return (
        f"<!-- bench:{name}:start (generated from bench/results.json; edit outside) -->",
        f"<!-- bench:{name}:end -->",
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
    "terms",
}
# A scenario asking for more terms (or filters) than this lists its slowest only.
TERMS_LISTED = 12
SLOWEST_TERMS = 5


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
        *scenario_table(results["scenarios"]),
    ]
    lines.append(end)
    return "\n".join(lines)


def render_shapes(results: dict[str, Any], size: str) -> str:
    """The tables of the data shapes (bench/shapes.py) measured at `size`."""
    start, end = markers(size, "shapes")
    lines = [start]
    for name, shape in results.get("shapes", {}).items():
        if shape.get("size") != size:
            continue
        copy = (
            "reused"
            if shape.get("reused")
            else f"built in {number(shape.get('seconds'))} s"
        )
        lines += [
            "",
            f"**Shape `{name}`** ({shape.get('text', '')}; bench/shapes.py), size "
            f"{size}, measured {shape['date']} on commit "
            f"`{shape['git']['commit'][:12]}`"
            f"{' (with uncommitted changes)' if shape['git']['dirty'] else ''}; load "
            f"average at start {shape.get('load_average_at_start')}; its copy of the "
            f"customers {copy}.",
            "",
            *scenario_table(shape["scenarios"]),
        ]
    lines.append(end)
    return "\n".join(lines)


def scenario_table(scenarios: dict[str, Any]) -> list[str]:
    """The table of one run's scenarios, then the actions' other figures and the
    figures of each search term (or filter) of the scenarios that ask for several."""
    lines = [
        "| scenario | role | goal | p50 ms | p95 ms | p99 ms | queries | SQL ms "
        "| CPU ms | bytes | rps / errors | verdict |",
        "|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|---|",
    ]
    for name, entry in scenarios.items():
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
        for name, entry in scenarios.items()
        if entry.get("kind") == "action"
    ]
    if details:
        lines += ["", "Actions in detail: " + "; ".join(details) + "."]
    terms = term_table(scenarios)
    if terms:
        lines += ["", *terms]
    return lines


def term_table(scenarios: dict[str, Any]) -> list[str]:
    """Per search term (or filter): a scenario with few lists each, one with many
    (a sample of real names) its SLOWEST_TERMS slowest by p99."""
    rows = []
    for name, entry in scenarios.items():
        terms = entry.get("terms") or {}
        ranked = sorted(terms.items(), key=lambda item: item[1]["p99_ms"], reverse=True)
        shown = ranked if len(ranked) <= TERMS_LISTED else ranked[:SLOWEST_TERMS]
        for term, figures in shown:
            cell = term.replace("|", "\\|")  # a filter's value may hold one
            rows.append(
                f"| `{name}` | {cell} | {figures['requests']} | "
                f"{number(figures['p50_ms'])} | {number(figures['p95_ms'])} | "
                f"{number(figures['p99_ms'])} | {number(figures['max_ms'])} |"
            )
        if len(shown) < len(ranked):
            rest = ranked[len(shown)]
            rows.append(
                f"| `{name}` | {len(ranked) - len(shown)} other terms, p99 at most "
                f"{number(rest[1]['p99_ms'])} ms | | | | | |"
            )
    if not rows:
        return []
    return [
        "Per search term (or filter), slowest first:",
        "",
        "| scenario | term | requests | p50 ms | p95 ms | p99 ms | max ms |",
        "|---|---|--:|--:|--:|--:|--:|",
        *rows,
    ]


def update_doc(
    doc: Path, results: dict[str, Any], *, shapes_only: bool = False
) -> None:
    """The table of the results' own size (unless `shapes_only`: a shapes run leaves
    it as it is), and the shapes' tables of every size they were measured at (each
    after its size's table)."""
    text = doc.read_text() if doc.exists() else "# Benchmarks\n"
    if results.get("scenarios") and not shapes_only:
        text = _replace(text, markers(results["size"]), render(results), after=None)
    sizes = {shape.get("size") for shape in results.get("shapes", {}).values()}
    for size in sorted(s for s in sizes if s):
        text = _replace(
            text,
            markers(size, "shapes"),
            render_shapes(results, size),
            after=markers(size)[1],
        )
    doc.write_text(text)


def _replace(text: str, marks: tuple[str, str], block: str, after: str | None) -> str:
    start, end = marks
    if start not in text or end not in text:
        if after and after in text:
            head, tail = text.split(after, 1)
            return f"{head}{after}\n\n{block}{tail}"
        return text.rstrip("\n") + f"\n\n{block}\n"
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return head + block + tail


def main() -> int:
    results = json.loads((REPO_DIR / "bench" / "results.json").read_text())
    update_doc(REPO_DIR / "docs" / "benchmarks.md", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
