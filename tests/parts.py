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


def part_of(item: pytest.Item) -> str:
    """reliability tests run alone (serial), browser tests side by side, the rest in
    the parallel part."""
    if item.get_closest_marker("reliability"):
        return "serial"
    if item.get_closest_marker("browser"):
        return "browser"
    return "parallel"


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
