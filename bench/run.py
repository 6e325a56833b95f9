"""`make bench`: build or reuse the scale data, serve it with gunicorn, measure every
scenario over real HTTP, and write bench/results.json, the table in docs/benchmarks.md
and, for the three slowest scenarios, EXPLAIN (ANALYZE, BUFFERS) of their heaviest query
in bench/explain/.

    python -m bench.run --size small     # about 1 % of full: a few minutes
    python -m bench.run                  # full: 1,000,000 customers
    python -m bench.run --only service.escalation_sweep   # some scenarios, printed

DATABASE_URL names the PostgreSQL server (the bench database `kehu_bench` is created on
it); without it, the embedded server of `make run` is started, and stopped again at the
end if this run started it.
"""

from __future__ import annotations

import argparse
import http.cookiejar
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from crm import embedded, launcher

REPO_DIR = Path(__file__).resolve().parent.parent
RESULTS = REPO_DIR / "bench" / "results.json"
EXPLAIN_DIR = REPO_DIR / "bench" / "explain"
DOC = REPO_DIR / "docs" / "benchmarks.md"
SETTINGS = "crm.settings.bench"
PASSWORD = os.environ.get("KEHU_BENCH_PASSWORD", "kehu-bench")
ANONYMOUS = "anonymous"  # a scenario role: no login (public pages)


@dataclass(frozen=True)
class Plan:
    """How hard to push each size: warm-up, then at least `least` and at most `most`
    requests, stopping once `seconds` have passed with `least` done."""

    warmup: int
    least: int
    most: int
    seconds: float


PLANS = {
    "small": Plan(warmup=5, least=50, most=100, seconds=15),
    "full": Plan(warmup=10, least=50, most=200, seconds=60),
}


def log(message: str) -> None:
    sys.stdout.write(f"[bench] {message}\n")
    sys.stdout.flush()


# --- the backing servers and the application server -----------------------------------


class Servers:
    """PostgreSQL and Redis: the ones DATABASE_URL/REDIS_URL name, else the embedded."""

    def __init__(self) -> None:
        self.started: list[Any] = []
        folder = launcher.data_dir()
        self.database_url = os.environ.get("DATABASE_URL", "")
        self.redis_url = os.environ.get("REDIS_URL", "")
        if not self.database_url:
            pg = embedded.postgres_for(folder, REPO_DIR, 55432)
            self._start(pg)
            self.database_url = pg.url
        if not self.redis_url:
            redis = embedded.redis_for(folder, 56379, persistent=True)
            self._start(redis)
            self.redis_url = redis.url

    def _start(self, server: Any) -> None:
        if not server.is_running():
            self.started.append(server)
        server.start()

    def stop(self) -> None:
        for server in reversed(self.started):
            server.stop()


class Gunicorn:
    def __init__(self, env: dict[str, str], workers: int, log_path: Path) -> None:
        self.port = embedded.free_port()
        self.log_path = log_path
        argv = [sys.executable, "-m", "gunicorn", "crm.wsgi:application"]
        argv += ["--chdir", str(REPO_DIR), "--bind", f"127.0.0.1:{self.port}"]
        argv += ["--workers", str(workers), "--timeout", "120"]
        argv += ["--log-level", "warning", "--error-logfile", "-"]
        self.log_file = log_path.open("w")
        self.proc = subprocess.Popen(  # noqa: S603 - our own server
            argv,
            cwd=REPO_DIR,
            env=env,
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.base = f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited; see {self.log_path}")
            try:
                with urllib.request.urlopen(self.base + "/accounts/login/", timeout=5):  # noqa: S310 - loopback
                    return
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(
            f"gunicorn not ready after {timeout:.0f} s; see {self.log_path}"
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log_file.close()


# --- an HTTP client with a session, as a browser would be -----------------------------


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a redirect is an answer to measure, not to follow


@dataclass
class Sample:
    path: str
    status: int
    server_ms: float
    client_ms: float
    queries: int
    sql_ms: float
    cpu_ms: float
    size: int


class Client:
    def __init__(self, base: str) -> None:
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}),  # loopback only, whatever http_proxy says
            urllib.request.HTTPCookieProcessor(self.jar),
            NoRedirect(),
        )

    def login(self, username: str, password: str) -> None:
        page = self.request("/accounts/login/")[1].decode()
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        if not token:
            raise RuntimeError("no CSRF token in the login form")
        form = {
            "username": username,
            "password": password,
            "csrfmiddlewaretoken": token.group(1),
        }
        status, _, _ = self.request("/accounts/login/", data=form)
        if status != 302 or not any(c.name == "sessionid" for c in self.jar):
            raise RuntimeError(f"login as {username} failed (HTTP {status})")

    def request(
        self,
        path: str,
        data: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes, Any]:
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        req = urllib.request.Request(self.base + path, data=body, headers=headers or {})  # noqa: S310
        try:
            with self.opener.open(req, timeout=120) as response:
                return response.status, response.read(), response.headers
        except urllib.error.HTTPError as error:
            return error.code, error.read(), error.headers

    def sample(self, path: str, headers: dict[str, str] | None = None) -> Sample:
        start = time.perf_counter()
        status, body, head = self.request(path, headers=headers)
        client_ms = (time.perf_counter() - start) * 1000
        return Sample(
            path=path,
            status=status,
            server_ms=float(head.get("X-Kehu-Server-Ms", "nan")),
            client_ms=client_ms,
            queries=int(head.get("X-Kehu-Queries", "-1")),
            sql_ms=float(head.get("X-Kehu-Sql-Ms", "nan")),
            cpu_ms=float(head.get("X-Kehu-Cpu-Ms", "nan")),
            size=len(body),
        )


# --- measuring ------------------------------------------------------------------------


def percentiles(values: list[float]) -> tuple[float, float, float]:
    if len(values) == 1:
        return values[0], values[0], values[0]
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[49], cuts[94], cuts[98]


def summarise(samples: list[Sample]) -> dict[str, Any]:
    good = [s for s in samples if 200 <= s.status < 300]
    result: dict[str, Any] = {
        "requests": len(samples),
        "errors": len(samples) - len(good),
    }
    if not good:
        result["status"] = "failed"
        return result
    p50, p95, p99 = percentiles([s.server_ms for s in good])
    queries = [s.queries for s in good]
    result.update(
        p50_ms=round(p50, 1),
        p95_ms=round(p95, 1),
        p99_ms=round(p99, 1),
        queries=int(statistics.median(queries)),
        queries_max=max(queries),
        sql_ms=round(statistics.median(s.sql_ms for s in good), 1),
        cpu_ms=round(statistics.median(s.cpu_ms for s in good), 1),
        bytes=int(statistics.median(s.size for s in good)),
        client_p95_ms=round(percentiles([s.client_ms for s in good])[1], 1),
    )
    terms = by_request(samples)
    if terms:
        result["terms"] = terms
    return result


def request_label(path: str) -> str:
    """What a request of a scenario is reported under: its search term, else its
    filters (the query string), else "(page)"."""
    query = urllib.parse.urlsplit(path).query
    params = urllib.parse.parse_qs(query, keep_blank_values=True)
    if params.get("q"):
        return params["q"][0]
    return urllib.parse.unquote(query) or "(page)"


def by_request(samples: list[Sample]) -> dict[str, dict[str, Any]]:
    """p50/p95/p99 and the slowest of each term (or filter) of a scenario that asks
    for more than one: a slow term cannot hide in the scenario's percentiles."""
    groups: dict[str, list[float]] = {}
    for sample in samples:
        if 200 <= sample.status < 300:
            groups.setdefault(request_label(sample.path), []).append(sample.server_ms)
    if len(groups) < 2:
        return {}
    figures = {}
    for label, times in groups.items():
        p50, p95, p99 = percentiles(times)
        figures[label] = {
            "requests": len(times),
            "p50_ms": round(p50, 1),
            "p95_ms": round(p95, 1),
            "p99_ms": round(p99, 1),
            "max_ms": round(float(max(times)), 1),
        }
    return figures


def measure_http(client: Client, paths: list[str], plan: Plan) -> list[Sample]:
    for n in range(plan.warmup):
        client.sample(paths[n % len(paths)])
    samples: list[Sample] = []
    start = time.monotonic()
    while len(samples) < plan.most:
        samples.append(client.sample(paths[len(samples) % len(paths)]))
        if len(samples) >= plan.least and time.monotonic() - start > plan.seconds:
            break
    return samples


def measure_concurrent(
    clients: list[Client], paths: list[str], plan: Plan
) -> tuple[list[Sample], float]:
    """Every client sends its share at once; returns the samples and requests/second."""
    for n, client in enumerate(clients[: plan.warmup]):
        client.sample(paths[n % len(paths)])
    total = max(plan.most, len(clients) * 4)
    counter = iter(range(total))
    lock = threading.Lock()
    samples: list[Sample] = []

    def work(client: Client) -> None:
        while True:
            with lock:
                n = next(counter, None)
            if n is None:
                return
            sample = client.sample(paths[n % len(paths)])
            with lock:
                samples.append(sample)

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=len(clients)) as pool:
        list(pool.map(work, clients))
    return samples, len(samples) / (time.perf_counter() - start)


def measure_action(scenario: Any, fixtures: Any, plan: Plan) -> dict[str, Any]:
    """An in-process action (a sweep, a rebuild): wall time, queries and SQL time.

    Each repetition runs the scenario's setup first and its teardown after, neither
    timed. An action may return extra figures (their median is recorded); its
    `elapsed_ms`, when given, is the repetition's time instead of the call's.
    """
    from django.db import connection

    from crm.core.bench_middleware import QueryStats

    times, stats_list, cpu, extras = [], [], [], []
    for _ in range(scenario.repeat or max(3, plan.least // 10)):
        if scenario.setup:
            scenario.setup(fixtures)
        try:
            stats = QueryStats()
            cpu_start = time.thread_time()
            start = time.perf_counter()
            with connection.execute_wrapper(stats):
                extra = scenario.action(fixtures) or {}
            elapsed = (time.perf_counter() - start) * 1000
            cpu.append((time.thread_time() - cpu_start) * 1000)
        finally:
            if scenario.teardown:
                scenario.teardown(fixtures)
        times.append(extra.pop("elapsed_ms", elapsed))
        stats_list.append(stats)
        extras.append(extra)
    p50, p95, p99 = percentiles(times)
    result = {
        "kind": "action",
        "requests": len(times),
        "errors": 0,
        "p50_ms": round(p50, 1),
        "p95_ms": round(p95, 1),
        "p99_ms": round(p99, 1),
        "queries": int(statistics.median(s.count for s in stats_list)),
        "sql_ms": round(statistics.median(s.seconds * 1000 for s in stats_list), 1),
        "cpu_ms": round(statistics.median(cpu), 1),
        "bytes": 0,
    }
    for key in extras[0] if extras else ():
        values = [e[key] for e in extras if key in e]
        median = statistics.median(values)
        result[key] = round(median, 1) if isinstance(median, float) else median
    return result


# --- EXPLAIN of the heaviest query ----------------------------------------------------


def explain(
    name: str,
    result: dict[str, Any],
    client: Client,
    path: str,
    capture: Path,
    meta: dict,
    folder: Path = EXPLAIN_DIR,
) -> None:
    """Replay `path` (the scenario's slowest request) capturing its heaviest query, and
    write that query's EXPLAIN (ANALYZE, BUFFERS)."""
    from django.db import connection, transaction

    client.sample(path, headers={"X-Kehu-Bench-Capture": name})
    record_file = capture / f"{name}.json"
    if not record_file.exists():
        log(f"{name}: no query captured")
        return
    record = json.loads(record_file.read_text())
    # A page may ask for a plan's estimate (EXPLAIN without ANALYZE): analyze the
    # statement it explains.
    statement = re.sub(r"^EXPLAIN\s*(\([^)]*\))?\s*", "", record["sql"])
    with transaction.atomic(), connection.cursor() as cursor:
        # ANALYZE really runs the statement: roll back whatever it might write.
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement.replace("%", "%%"), [])
        plan = "\n".join(row[0] for row in cursor.fetchall())
        transaction.set_rollback(True)
    result["heaviest_query_ms"] = record["ms"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.txt").write_text(
        f"scenario: {name}  (size {meta['size']}, commit {meta['git']['commit'][:12]}, "
        f"{meta['date']})\n"
        f"request:  GET {record['path']}  ({record['queries']} queries; "
        f"this one took {record['ms']} ms in the request; scenario p95 "
        f"{result.get('p95_ms')} ms)\n\n"
        f"-- heaviest query\n{record['sql']}\n\n"
        f"-- EXPLAIN (ANALYZE, BUFFERS)\n{plan}\n"
    )
    log(f"{name}: EXPLAIN written to {folder / (name + '.txt')}")


# --- facts about this run ------------------------------------------------------------


def git_facts() -> dict[str, Any]:
    def git(*args: str) -> str:
        done = subprocess.run(  # noqa: S603
            ["git", *args],  # noqa: S607
            cwd=REPO_DIR,
            capture_output=True,
            text=True,
            check=False,
        )
        return done.stdout.strip()

    return {
        "commit": git("rev-parse", "HEAD") or "unknown",
        # The run's own outputs do not make the measured code dirty.
        "dirty": bool(
            git(
                "status",
                "--porcelain",
                "--untracked-files=no",
                "--",
                ".",
                ":!docs/benchmarks.md",
                ":!bench/results.json",
            )
        ),
    }


def machine_facts() -> dict[str, Any]:
    memory_kb = 0
    cpu = platform.processor()
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_kb = int(line.split()[1])
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "memory_gb": round(memory_kb / 1024 / 1024, 1),
        "cpu": cpu,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
    }


def database_facts() -> dict[str, Any]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        version = cursor.fetchone()[0]
        cursor.execute(
            # current_setting() gives "1GB"; setting || unit gave "131072" || "8kB".
            "SELECT name, current_setting(name) FROM pg_settings WHERE name IN "
            "('shared_buffers', 'work_mem', 'effective_cache_size', "
            "'max_parallel_workers_per_gather', 'random_page_cost')"
        )
        return {"postgres": version, "settings": dict(cursor.fetchall())}


def dataset_facts() -> dict[str, Any]:
    from crm.core import scale, seeding

    state = scale.read_state()
    facts: dict[str, Any] = {
        "salespeople": scale.SALESPEOPLE,
        "teams": len(scale.SALES_TEAMS),
        "service_agents": scale.AGENTS_PER_TEAM * len(scale.SERVICE_TEAMS),
        "service_teams": len(scale.SERVICE_TEAMS),
    }
    for dataset in seeding.datasets():
        row = state.get(dataset.name, {})
        if row.get("missing") or not row:
            facts[dataset.name] = {
                "built": False,
                "rows": 0,
                "note": row.get("missing", "not recorded"),
            }
        else:
            facts[dataset.name] = {
                "built": True,
                "rows": row["rows"],
                "build_seconds": round(row["seconds"], 1),
            }
    return facts


# --- main -----------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    plan = PLANS[args.size]
    servers = Servers()
    capture = Path(tempfile.mkdtemp(prefix="kehu-bench-"))
    env = launcher.child_env(
        launcher.Backing(servers.database_url, servers.redis_url), SETTINGS
    )
    env["KEHU_BENCH_CAPTURE_DIR"] = str(capture)
    env["KEHU_BENCH_PASSWORD"] = PASSWORD
    # The data is built and migrated in the generated tables, never in a shape's copy.
    env["KEHU_BENCH_SHAPE"] = ""
    os.environ.update(env)
    try:
        log(f"seeding size {args.size} into the bench database ...")
        t0 = time.monotonic()
        seeded = subprocess.run(  # noqa: S603
            [sys.executable, "manage.py", "seed_scale", "--size", args.size]
            + (["--rebuild"] if args.rebuild else []),
            cwd=REPO_DIR,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        sys.stdout.write(seeded.stdout + seeded.stderr)
        if seeded.returncode:
            log("seed_scale failed")
            return 1
        seed_seconds = time.monotonic() - t0

        import django

        django.setup()
        from bench import shapes
        from bench.scenarios import SCENARIOS

        meta = {
            "size": args.size,
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "git": git_facts(),
            "machine": machine_facts(),
            "database": database_facts(),
            "datasets": dataset_facts(),
            "data_build": {
                "seconds": round(seed_seconds, 1),
                "reused": " reused " in seeded.stdout,
            },
        }
        workers = args.workers or min(4, max(2, (os.cpu_count() or 2) + 1))
        meta["server"] = {"gunicorn_workers": workers, "settings": SETTINGS}
        names = args.scenario or []
        if not args.shape:
            scenarios = [s for s in SCENARIOS if not names or s.name in names]
            results = measure_pass(scenarios, env, workers, capture, plan, meta)
            output = {**meta, "scenarios": results}
            if names:
                sys.stdout.write(json.dumps(results, ensure_ascii=False, indent=2))
                return 0
            # A shape's figures stay until its next run (each says when and at what
            # size it was run).
            old = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
            if old.get("shapes"):
                output["shapes"] = old["shapes"]
            write_results(output)
            return 0
        wanted = names or list(shapes.SCENARIOS)
        scenarios = [s for s in SCENARIOS if s.name in wanted]
        measured: dict[str, Any] = {}
        for shape in shapes.SHAPES if args.shape == "all" else [args.shape]:
            shapes.use(None)
            built = shapes.prepare(shape, log=log)
            shape_env = {**env, **shapes.use(shape)}
            os.environ.update(shape_env)
            try:
                results = measure_pass(
                    scenarios, shape_env, workers, capture, plan, meta, shape=shape
                )
            finally:
                os.environ.update(shapes.use(None))
            measured[shape] = {**built, "scenarios": results}
        if names:
            sys.stdout.write(json.dumps(measured, ensure_ascii=False, indent=2))
            return 0
        # The shapes go beside the last run's figures, whatever size those are of.
        output = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
        for shape, figures in measured.items():
            output.setdefault("shapes", {})[shape] = {
                "size": args.size,
                "date": meta["date"],
                "git": meta["git"],
                "load_average_at_start": meta["machine"]["load_average_at_start"],
                **figures,
            }
        write_results(output, shapes_only=True)
        return 0
    finally:
        servers.stop()


def write_results(output: dict[str, Any], *, shapes_only: bool = False) -> None:
    from bench import report

    RESULTS.write_text(json.dumps(output, ensure_ascii=False, indent=2) + "\n")
    report.update_doc(DOC, output, shapes_only=shapes_only)
    log(f"wrote {RESULTS.relative_to(REPO_DIR)} and {DOC.relative_to(REPO_DIR)}")


def measure_pass(
    scenarios: list[Any],
    env: dict[str, str],
    workers: int,
    capture: Path,
    plan: Plan,
    meta: dict[str, Any],
    shape: str = "",
) -> dict[str, Any]:
    """Serve the bench data (or a shape of it) with gunicorn and measure `scenarios`;
    EXPLAIN the three slowest (bench/explain/, or bench/explain/<shape>/)."""
    from bench.scenarios import Fixtures
    from crm.core import scale

    logins = {role.value: name for role, name in scale.LOGINS.items()}
    fixtures = Fixtures(logins, size=meta["size"])
    gunicorn = Gunicorn(env, workers, capture / "gunicorn.log")
    try:
        gunicorn.wait_ready()
        log(
            f"gunicorn with {workers} workers on {gunicorn.base}"
            + (f", shape {shape}" if shape else "")
        )
        clients: dict[str, Client] = {}
        fixtures.base = gunicorn.base

        def client_for(role: str) -> Client:
            if role not in clients:
                clients[role] = Client(gunicorn.base)
                # Public pages (an owner's link) are measured without a session.
                if role != ANONYMOUS:
                    clients[role].login(logins[role], PASSWORD)
            return clients[role]

        results: dict[str, Any] = {}
        slowest_path: dict[str, str] = {}
        for scenario in scenarios:
            entry: dict[str, Any] = {"goal": scenario.goal.text, "role": scenario.role}
            reason = scenario.why_missing()
            if reason:
                entry.update(missing=True, reason=reason)
                results[scenario.name] = entry
                log(f"{scenario.name}: missing ({reason})")
                continue
            t1 = time.monotonic()
            if scenario.action is not None:
                entry.update(measure_action(scenario, fixtures, plan))
            else:
                paths = list(scenario.requests(fixtures))
                if not paths:
                    entry.update(status="failed", reason="no bench data to request")
                    results[scenario.name] = entry
                    continue
                if scenario.concurrency > 1:
                    group = [Client(gunicorn.base) for _ in range(scenario.concurrency)]
                    for c in group:
                        c.login(logins[scenario.role], PASSWORD)
                    samples, rps = measure_concurrent(group, paths, plan)
                    entry.update(summarise(samples), concurrency=scenario.concurrency)
                    entry["rps"] = round(rps, 1)
                else:
                    samples = measure_http(client_for(scenario.role), paths, plan)
                    entry.update(summarise(samples))
                slowest_path[scenario.name] = max(
                    samples, key=lambda s: s.server_ms if s.status < 300 else -1
                ).path
            met = scenario.goal.met(entry)
            if met is not None:
                entry["meets_goal"] = met
            results[scenario.name] = entry
            log(
                f"{scenario.name}: p50 {entry.get('p50_ms')} ms, p95 "
                f"{entry.get('p95_ms')} ms, p99 {entry.get('p99_ms')} ms, "
                f"{entry.get('queries')} queries, "
                f"{entry.get('requests')} requests in {time.monotonic() - t1:.0f} s"
            )
            terms = entry.get("terms", {})
            for label in sorted(terms, key=lambda t: -terms[t]["p99_ms"])[:3]:
                figures = terms[label]
                log(
                    f"  {label}: p50 {figures['p50_ms']}, p95 {figures['p95_ms']}, "
                    f"p99 {figures['p99_ms']} ms ({figures['requests']} requests)"
                )

        folder = EXPLAIN_DIR / shape if shape else EXPLAIN_DIR
        for stale in folder.glob("*.txt"):
            stale.unlink()
        measured = sorted(
            (n for n in slowest_path if "p95_ms" in results[n]),
            key=lambda n: results[n]["p95_ms"],
            reverse=True,
        )
        for name in measured[:3]:
            scenario = next(s for s in scenarios if s.name == name)
            client = client_for(scenario.role)
            explain(
                name, results[name], client, slowest_path[name], capture, meta, folder
            )
        return results
    finally:
        gunicorn.stop()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--size", choices=sorted(PLANS), default="full")
    parser.add_argument("--workers", type=int, default=0, help="gunicorn workers")
    parser.add_argument(
        "--rebuild", action="store_true", help="rebuild the data even if reusable"
    )
    parser.add_argument(
        "--scenario",
        action="append",
        help="only this scenario (repeatable); results are printed, not written",
    )
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAMES",
        help="only these scenarios, comma-separated (as --scenario)",
    )
    parser.add_argument(
        "--shape",
        choices=["orgs_first", "same_updated_at", "all"],
        help="measure the customer list on this data shape (bench/shapes.py) instead; "
        "its figures go under `shapes` in bench/results.json",
    )
    args = parser.parse_args(argv)
    names = [n.strip() for value in args.only for n in value.split(",") if n.strip()]
    if names:
        from bench.scenarios import SCENARIOS

        unknown = sorted(set(names) - {s.name for s in SCENARIOS})
        if unknown:
            parser.error(f"unknown scenario: {', '.join(unknown)}")
        args.scenario = [*(args.scenario or []), *names]
    return run(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
