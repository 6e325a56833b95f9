"""The two parts of `make test` (crm/launcher.py runs one pytest for each).

- `--kehu-part=parallel`: every test but the browser and reliability ones, spread over
  pytest-xdist workers (`-n 2 --dist loadfile`). Each worker has its own test database
  (pytest-django) and Redis database (crm/settings/test.py).
- `--kehu-part=serial`: the browser and reliability tests (SERIAL_MARKERS), one after
  the other in one process, alone on the machine as before: they start Chromium, Celery
  workers, beat and Redis servers and wait on real time.

Without the option every selected test runs, as plain `pytest` always did.

The parallel part runs with `--dist loadfile`: each test module goes whole to one
worker, so a module's fixtures (a world of records, a crawl of every page) are set up
once per module as before. (`loadgroup` with xdist_group marks would let modules share a
worker, but pytest-xdist 3.8 cannot group under pytest 9: its rewrite of the node ids
no longer takes effect, and every test would go alone.)

The part that runs tells the launcher what it counted in the file KEHU_TEST_SUMMARY
names (JSON): pytest's closing-line counts, and how many tests of the other part the
same selection (-m, -k, paths) holds, so that the launcher skips a part with none.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

SERIAL_MARKERS = ("browser", "reliability")
PARTS = ("parallel", "serial")
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
_OTHER_PART = pytest.StashKey[int]()


def is_serial(item: pytest.Item) -> bool:
    return any(item.get_closest_marker(name) for name in SERIAL_MARKERS)


def add_options(parser: pytest.Parser) -> None:
    parser.addoption(
        "--kehu-part",
        choices=PARTS,
        default=None,
        help="run only the tests that may run in parallel, or only the browser and "
        "reliability tests (crm/launcher.py runs both, one after the other)",
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
        serial = part == "serial"
        other = [item for item in items if is_serial(item) != serial]
        config.stash[_OTHER_PART] = len(other)
        if hasattr(config, "workeroutput"):
            config.workeroutput["kehu_other_part"] = len(other)
        if other:
            config.hook.pytest_deselected(items=other)
            items[:] = [item for item in items if is_serial(item) == serial]

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        # On the xdist controller: what the workers counted (they collect the same).
        output = getattr(node, "workeroutput", None) or {}
        if "kehu_other_part" in output:
            node.config.stash[_OTHER_PART] = output["kehu_other_part"]

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
        other = config.stash.get(_OTHER_PART, None)
        # The other part's tests are not deselected from the whole run.
        counts["deselected"] -= other or 0
        with open(path, "w", encoding="utf-8") as out:
            json.dump({"counts": counts, "other_part": other}, out)


def register(config: pytest.Config) -> None:
    config.pluginmanager.register(Parts(), "kehu-parts")
