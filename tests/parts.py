"""The three parts of `make test` (crm/launcher.py runs one pytest for each).

- `--kehu-part=parallel`: every test but the browser and reliability ones, spread over
  pytest-xdist workers (`-n 2 --dist loadfile`). Each worker has its own test database
  (pytest-django) and Redis database (crm/settings/test.py).
- `--kehu-part=browser`: the browser tests, also over the xdist workers (each test
  starts its own live server and Chromium, on ports of its own; a worker's Celery
  processes use its own Redis database). Measured on 2 cores: 40 tests in 370 s one
  after the other, 225 s on two workers (docs/benchmarks.md, "CI time (session 12)").
- `--kehu-part=serial`: the reliability tests (crash/restart of real Celery workers,
  beat and Redis servers, wall-clock bounds under 30 threads), one after the other in
  one process, alone on the machine.

Without the option every selected test runs, as plain `pytest` always did.

The parallel parts run with `--dist loadfile`: each test module goes whole to one
worker, so a module's fixtures (a world of records, a crawl of every page) are set up
once per module as before. (`loadgroup` with xdist_group marks would let modules share a
worker, but pytest-xdist 3.8 cannot group under pytest 9: its rewrite of the node ids
no longer takes effect, and every test would go alone.)

xdist hands the modules out in the order the workers collected them
(`--no-loadscope-reorder`, crm/launcher.py), and on a worker that order is the slowest
first (MODULE_SECONDS): xdist's own order, the most tests first, left modules of a few
slow tests (seeding the demo, a crawl of every page) for the end, where one worker
went on alone for minutes while the other had finished.

The part that runs tells the launcher what it counted in the file KEHU_TEST_SUMMARY
names (JSON): pytest's closing-line counts, and how many tests of each part the same
selection (-m, -k, paths) holds, so that the launcher skips a part with none.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

PARTS = ("parallel", "browser", "serial")
# pytest's closing line, in its order (_pytest.terminal.KNOWN_TYPES).
COUNTED = (
    "failed",
    "passed",
    "skipped",
    "deselected",
    "xfailed",
    "xpassed",
    "warnings",
    "error",
)
_PART_SIZES = pytest.StashKey[dict]()
# Test-seconds of the slowest modules of the parallel part, from a `--durations=0` run
# on 2 busy cores (docs/benchmarks.md, "CI time (session 14)"; the modules made faster
# that session as measured after); only their order matters. Any other module counts
# SECONDS_PER_TEST a test (the median).
SECONDS_PER_TEST = 0.4
MODULE_SECONDS = {
    "tests/accounts/test_access_matrix.py": 365,
    "tests/security/test_param_fuzz.py": 238,
    "tests/core/test_seed_demo.py": 120,
    "tests/security/test_pii_scan.py": 106,
    "tests/customers/test_list_plans.py": 80,
    "tests/security/test_bad_input.py": 74,
    "tests/security/test_form_fuzz.py": 56,
    "tests/service/test_views.py": 49,
    "tests/security/test_xss.py": 42,
    "tests/handover/test_unit_booking.py": 40,
    "tests/customers/test_search.py": 35,
    "tests/core/test_demo_registry.py": 33,
    "tests/accounts/test_mfa.py": 32,
    "tests/core/test_healthz.py": 32,
    "tests/defects/test_views.py": 26,
    "tests/handover/test_capacity.py": 26,
    "tests/security/test_csrf.py": 24,
    "tests/security/test_injection.py": 24,
    "tests/core/test_query_budget.py": 21,
    "tests/handover/test_demo_day.py": 20,
    "tests/handover/test_board.py": 20,
    "tests/handover/test_notice_views.py": 19,
    "tests/concurrency/test_limits.py": 19,
    "tests/deals/test_views.py": 18,
    "tests/handover/test_owner_pages.py": 18,
    "tests/customers/test_export_approval.py": 18,
    "tests/handover/test_scope.py": 18,
    "tests/handover/test_captures.py": 17,
    "tests/handover/test_reports.py": 17,
    "tests/dashboards/test_dashboard_views.py": 16,
    "tests/service/test_tickets.py": 16,
    "tests/property/test_views.py": 15,
    "tests/customers/test_customer_page.py": 15,
    "tests/handover/test_call_list.py": 15,
    "tests/customers/test_customer_views.py": 15,
    "tests/handover/test_outcomes.py": 14,
    "tests/defects/test_services.py": 13,
    "tests/security/test_scope_leaks.py": 13,
    "tests/handover/test_stations.py": 12,
    "tests/segments/test_views.py": 12,
    "tests/handover/test_fee_void_and_signature.py": 12,
    "tests/value/test_views.py": 11,
    "tests/service/test_admin_settings.py": 11,
    "tests/security/test_uploads.py": 11,
    "tests/core/test_backup_restore.py": 10,
    "tests/customers/test_duplicates_merge.py": 10,
    "tests/core/test_submit_once_more.py": 10,
}


def part_of(item: pytest.Item) -> str:
    """reliability tests run alone (serial), browser tests side by side, the rest in
    the parallel part."""
    if item.get_closest_marker("reliability"):
        return "serial"
    if item.get_closest_marker("browser"):
        return "browser"
    return "parallel"


# Modules that share a session fixture go to one worker, which pays for it once: the
# crawl of every page (tests/security/conftest.py, ~50 s on 2 cores) that both read.
SAME_WORKER = {
    "tests/security/test_headers_sweep.py": "tests/security/test_pii_scan.py"
}


def unit_of(nodeid: str) -> str:
    """What the scheduler below sends whole to one worker: the test's module, or the
    module SAME_WORKER sends it with."""
    module = nodeid.split("::", 1)[0]
    return SAME_WORKER.get(module, module)


def slowest_modules_first(items: list[Any]) -> None:
    """Modules in the order of their expected time, slowest first (each module's
    tests stay together and in their order): given out in this order, the last
    modules are short ones, and the workers finish close together."""
    counts: dict[str, int] = {}
    for item in items:
        counts[unit_of(item.nodeid)] = counts.get(unit_of(item.nodeid), 0) + 1

    def expected(module: str) -> float:
        return MODULE_SECONDS.get(module, counts[module] * SECONDS_PER_TEST)

    rank = {m: n for n, m in enumerate(sorted(counts, key=expected, reverse=True))}
    items.sort(key=lambda item: rank[unit_of(item.nodeid)])


def add_options(parser: pytest.Parser) -> None:
    parser.addoption(
        "--kehu-part",
        choices=PARTS,
        default=None,
        help="run only the tests of one part: parallel, browser (both over xdist "
        "workers) or serial (reliability, alone); crm/launcher.py runs the three in turn",
    )


class Parts:
    """Keeps the part that --kehu-part names and reports what it counted."""

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(
        self, config: pytest.Config, items: list[Any]
    ) -> None:
        # After -m, -k and the other plugins: what is left of the selection.
        part = config.getoption("kehu_part")
        if part is None:
            return
        sizes = {name: 0 for name in PARTS}
        for item in items:
            sizes[part_of(item)] += 1
        config.stash[_PART_SIZES] = sizes
        if hasattr(config, "workeroutput"):
            config.workeroutput["kehu_part_sizes"] = sizes
        other = [item for item in items if part_of(item) != part]
        if other:
            config.hook.pytest_deselected(items=other)
            items[:] = [item for item in items if part_of(item) == part]
        if hasattr(config, "workerinput"):
            slowest_modules_first(items)

    @pytest.hookimpl(optionalhook=True, tryfirst=True)
    def pytest_xdist_make_scheduler(self, config: pytest.Config, log: Any) -> Any:
        if config.getvalue("dist") != "loadfile":
            return None
        from xdist.scheduler import LoadFileScheduling

        class Scheduling(LoadFileScheduling):
            """By module, SAME_WORKER's together."""

            def _split_scope(self, nodeid: str) -> str:
                return unit_of(nodeid)

        return Scheduling(config, log)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        # On the xdist controller: what the workers counted (they collect the same).
        output = getattr(node, "workeroutput", None) or {}
        if "kehu_part_sizes" in output:
            node.config.stash[_PART_SIZES] = output["kehu_part_sizes"]

    def pytest_terminal_summary(
        self, terminalreporter: Any, config: pytest.Config
    ) -> None:
        path = os.environ.get("KEHU_TEST_SUMMARY")
        if not path or hasattr(config, "workerinput"):
            return
        counts = {
            key: len(
                [
                    report
                    for report in terminalreporter.stats.get(key, [])
                    if getattr(report, "count_towards_summary", True)
                ]
            )
            for key in COUNTED
        }
        sizes = config.stash.get(_PART_SIZES, None)
        part = config.getoption("kehu_part")
        if sizes is not None and part is not None:
            # The other parts' tests are not deselected from the whole run.
            counts["deselected"] -= sum(n for name, n in sizes.items() if name != part)
        with open(path, "w", encoding="utf-8") as out:
            json.dump({"counts": counts, "part_sizes": sizes}, out)


def register(config: pytest.Config) -> None:
    config.pluginmanager.register(Parts(), "kehu-parts")
