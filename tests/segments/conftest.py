from __future__ import annotations

import pytest

from culture.segments import services

A_DEALERS = {
    "op": "and",
    "rules": [
        {"field": "tier", "operator": "in", "value": ["A"]},
        {"field": "kind", "operator": "in", "value": ["dealer"]},
    ],
}


@pytest.fixture
def make_segment():
    def _make(
        by, *, rules=None, kind="dynamic", visibility="private", name="A 级经销商"
    ):
        return services.segment_create(
            by=by,
            data={
                "name": name,
                "kind": kind,
                "rules": A_DEALERS if rules is None and kind == "dynamic" else rules,
                "visibility": visibility,
            },
        )

    return _make
