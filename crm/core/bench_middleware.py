"""Per-request server time and SQL figures for `make bench` (crm.settings.bench only).

Every response carries:
    Server-Timing: app;dur=12.3, sql;dur=4.5, cpu;dur=6.1
    X-Kehu-Server-Ms, X-Kehu-Queries, X-Kehu-Sql-Ms, X-Kehu-Cpu-Ms
The CPU time is this worker thread's own (Python) work: unlike the wall time it hardly
moves when other processes compete for the cores, so it tells a slower page from a
busier machine.
A request with the header `X-Kehu-Bench-Capture: <scenario>` also has its heaviest query
written, with its parameters bound, to KEHU_BENCH_CAPTURE_DIR/<scenario>.json, so the
runner can EXPLAIN it. Never installed outside the bench settings: the headers reveal
timings, and the capture file holds real parameters.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse

SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]")


class QueryStats:
    """An execute_wrapper that counts queries, sums their time and keeps the slowest."""

    def __init__(self) -> None:
        self.count = 0
        self.seconds = 0.0
        self.slowest: tuple[float, str, Any] = (-1.0, "", None)

    def __call__(
        self, execute: Callable, sql: str, params: Any, many: bool, context: Any
    ) -> Any:
        start = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            elapsed = time.perf_counter() - start
            self.count += 1
            self.seconds += elapsed
            if elapsed > self.slowest[0] and not many:
                self.slowest = (elapsed, sql, params)


class QueryTimingMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        stats = QueryStats()
        start = time.perf_counter()
        cpu_start = time.thread_time()
        with connection.execute_wrapper(stats):
            response = self.get_response(request)
        cpu_ms = (time.thread_time() - cpu_start) * 1000
        total_ms = (time.perf_counter() - start) * 1000
        sql_ms = stats.seconds * 1000
        response["Server-Timing"] = (
            f"app;dur={total_ms:.2f}, sql;dur={sql_ms:.2f}, cpu;dur={cpu_ms:.2f}"
        )
        response["X-Kehu-Server-Ms"] = f"{total_ms:.3f}"
        response["X-Kehu-Queries"] = str(stats.count)
        response["X-Kehu-Sql-Ms"] = f"{sql_ms:.3f}"
        response["X-Kehu-Cpu-Ms"] = f"{cpu_ms:.3f}"
        scenario = request.headers.get("X-Kehu-Bench-Capture")
        if scenario and settings.KEHU_BENCH_CAPTURE_DIR and stats.slowest[1]:
            self._capture(SAFE_NAME.sub("_", scenario), request, stats)
        return response

    def _capture(self, name: str, request: HttpRequest, stats: QueryStats) -> None:
        elapsed, sql, params = stats.slowest
        # Bound client-side with psycopg's own quoting, so EXPLAIN sees exactly this query.
        bound = connection.ops.compose_sql(sql, params) if params else sql
        record = {
            "path": request.get_full_path(),
            "ms": round(elapsed * 1000, 3),
            "queries": stats.count,
            "sql": bound,
        }
        folder = Path(settings.KEHU_BENCH_CAPTURE_DIR)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{name}.json").write_text(
            json.dumps(record, ensure_ascii=False, indent=1)
        )
