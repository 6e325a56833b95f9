"""L3 (bench/l3/run.sh): the L1 mix, unchanged, with each request's start time recorded.

bench/l3/judge.py splits the requests at the moment the heavy jobs started, so L1's p95
without and with them comes from one run on one machine. L3_TIMINGS names the file the
records are written to when Locust quits: [start (epoch s), name, ms, ok] each.
"""

from __future__ import annotations

import json
import os
from typing import Any

from locust import events

from bench.l1.locustfile import SalesUser, ServiceUser  # noqa: F401 - the L1 users

RECORDS: list[tuple[float, str, float, bool]] = []


@events.request.add_listener
def _record(
    name: str, response_time: float, exception: Any, start_time: float, **_: Any
) -> None:
    RECORDS.append((start_time, name, response_time, exception is None))


@events.quitting.add_listener
def _write(**_: Any) -> None:
    path = os.environ.get("L3_TIMINGS", "")
    if path:
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(RECORDS, handle)
