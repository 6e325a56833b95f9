"""The order in which `make test` hands test modules to its xdist workers
(tests/parts.py): the slowest first, each whole, the crawl's readers together."""

from __future__ import annotations

from types import SimpleNamespace

from tests import parts


def _items(*nodeids: str) -> list[SimpleNamespace]:
    return [SimpleNamespace(nodeid=nodeid) for nodeid in nodeids]


def test_the_slowest_modules_go_first_each_whole_and_in_its_own_order(monkeypatch):
    monkeypatch.setattr(parts, "MODULE_SECONDS", {"tests/slow.py": 100})
    items = _items(
        "tests/few.py::one",
        "tests/many.py::a",
        "tests/slow.py::a",
        "tests/many.py::b",
        "tests/slow.py::b",
        "tests/many.py::c",
    )
    parts.slowest_modules_first(items)
    # slow.py by its measured seconds; then the rest by their number of tests.
    assert [item.nodeid for item in items] == [
        "tests/slow.py::a",
        "tests/slow.py::b",
        "tests/many.py::a",
        "tests/many.py::b",
        "tests/many.py::c",
        "tests/few.py::one",
    ]


def test_the_modules_reading_the_crawl_are_one_unit_of_work():
    headers = parts.unit_of("tests/security/test_headers_sweep.py::test_x[a]")
    pii = parts.unit_of("tests/security/test_pii_scan.py::test_y")
    assert headers == pii == "tests/security/test_pii_scan.py"
    assert (
        parts.unit_of("tests/core/test_parts.py::test_z") == "tests/core/test_parts.py"
    )
