"""`make run` and `make test`: start what Kehu needs, then supervise or test it.

    python -m crm.launcher run     # PostgreSQL, Redis, web, Celery worker and beat
    python -m crm.launcher test    # the pytest suite against real PostgreSQL and Redis
    python -m crm.launcher env     # start the embedded servers, print their URLs

DATABASE_URL / REDIS_URL, when set, point at real servers and nothing is embedded.
The web server, worker and beat run under crm/supervisor.py, which restarts one that
dies and stops them all on Ctrl-C.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from crm import embedded
from crm.supervisor import Backoff, Child, Supervisor

REPO_DIR = Path(__file__).resolve().parent.parent
# The Celery worker's processes (`-c`): delivery messages are taken this many at once
# (bench/sweep.py measures the escalation sweep with as many).
WORKER_PROCESSES = 2
# A child that dies within 30 s of starting waits 2 s per restart so far (at most
# 10 s), so a broken configuration does not spin; one that ran longer (a worker that
# exited when Redis restarted) comes back after 1 s.
RESTART_BACKOFF = Backoff(settled=1, step=2, cap=10, healthy_after=30)
DEMO_USERS = (
    "admin",
    "manager1",
    "sales1",
    "sales2",
    "service1",
    "service2",
    "engineer1",
)


def data_dir() -> Path:
    path = Path(os.environ.get("KEHU_DATA_DIR", REPO_DIR / "var")).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass
class Backing:
    """The database and broker in use, and the embedded ones to stop afterwards."""

    database_url: str
    redis_url: str
    owned: list = field(default_factory=list)

    def stop(self) -> None:
        for server in reversed(self.owned):
            server.stop()


def start_backing(
    folder: Path, *, persistent: bool, pg_port: int | None, redis_port: int | None
) -> Backing:
    owned: list = []
    database_url = os.environ.get("DATABASE_URL", "")
    redis_url = os.environ.get("REDIS_URL", "")
    if not database_url:
        pg = embedded.postgres_for(folder, REPO_DIR, pg_port or 0, durable=persistent)
        pg.start()
        owned.append(pg)
        database_url = pg.url
    if not redis_url:
        redis = embedded.redis_for(folder, redis_port or 0, persistent=persistent)
        redis.start()
        owned.append(redis)
        redis_url = redis.url
    return Backing(database_url=database_url, redis_url=redis_url, owned=owned)


def child_env(backing: Backing, settings: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=backing.database_url,
        REDIS_URL=backing.redis_url,
        DJANGO_SETTINGS_MODULE=settings,
        KEHU_DATA_DIR=str(data_dir()),
        PYTHONUNBUFFERED="1",
    )
    return env


def manage(env: dict[str, str], *args: str) -> None:
    subprocess.run(
        [sys.executable, "manage.py", *args], cwd=REPO_DIR, env=env, check=True
    )


def cmd_run() -> int:
    port = int(os.environ.get("PORT", "8000"))
    if embedded.port_in_use(port):
        print(f"[kehu] port {port} is taken; set PORT to another one", file=sys.stderr)
        return 1
    folder = data_dir()
    print("[kehu] starting PostgreSQL and Redis ...", flush=True)
    backing = start_backing(folder, persistent=True, pg_port=55432, redis_port=56379)
    env = child_env(
        backing, os.environ.get("DJANGO_SETTINGS_MODULE", "crm.settings.dev")
    )
    try:
        manage(env, "migrate", "--no-input", "-v", "0")
        manage(env, "seed_demo", "--if-empty")
        python = sys.executable
        celery = [python, "-m", "celery", "-A", "crm"]
        children = [
            Child("web", [python, "manage.py", "runserver", f"127.0.0.1:{port}"], env),
            # The worker yields the cores to the web server: an import or export
            # must not slow the pages (docs/reliability.md, L3).
            Child(
                "worker",
                ["nice", "-n", "10", *celery, "worker", "-l", "info"]
                + ["-c", str(WORKER_PROCESSES)]
                + ["-n", "kehu-worker@%h", "-Q", "celery,sweep"],
                env,
            ),
            Child(
                "beat",
                [
                    *celery,
                    "beat",
                    "-l",
                    "info",
                    "-s",
                    str(folder / "celerybeat-schedule"),
                ],
                env,
            ),
        ]
        supervisor = Supervisor(
            children,
            poll=0.5,
            backoff=RESTART_BACKOFF,
            say=lambda line: print(f"[kehu] {line}", flush=True),
        )
        password = os.environ.get("CRM_DEMO_PASSWORD", "kehu-demo")
        print(
            f"\n[kehu] Kehu CRM is starting at http://127.0.0.1:{port}/\n"
            f"[kehu] demo logins (password: {password}): {', '.join(DEMO_USERS)}\n"
            f"[kehu] database {backing.database_url}\n"
            f"[kehu] redis    {backing.redis_url}\n"
            "[kehu] Ctrl-C stops everything.\n",
            flush=True,
        )
        # Until Ctrl-C or SIGTERM; then every child's process group is stopped.
        supervisor.serve(grace=15)
    finally:
        print("\n[kehu] stopping ...", flush=True)
        backing.stop()
        print("[kehu] stopped; data kept in", folder, flush=True)
    return 0


def _exit_on_sigterm(signum: int, _frame: object) -> None:
    # A timed-out CI step sends SIGTERM; leave through `finally` so the embedded
    # servers are stopped instead of being orphaned.
    sys.exit(128 + signum)


def xdist_workers() -> int:
    """How many pytest-xdist workers run the parallel part: KEHU_TEST_WORKERS, else
    one per core (at most 4; each has its own test database and Redis database)."""
    configured = os.environ.get("KEHU_TEST_WORKERS", "").strip()
    if configured:
        return max(int(configured), 0)
    return min(os.cpu_count() or 1, 4)


# pytest options with which the launcher runs the arguments as given, in one pytest
# (the caller chose the workers, or debugs a test).
_AS_GIVEN = ("-n", "--numprocesses", "--dist", "--kehu-part", "--pdb", "--trace")


def split_in_parts(pytest_args: list[str], workers: int) -> bool:
    if workers < 2:
        return False
    try:
        import xdist  # noqa: F401 - only whether it is installed
    except ImportError:
        return False
    for arg in pytest_args:
        if arg in ("no:xdist", "-pno:xdist") or arg.startswith("--collect-only"):
            return False
        if arg == "--co" or (arg.startswith("-n") and not arg.startswith("--")):
            return False
        if any(arg == name or arg.startswith(name + "=") for name in _AS_GIVEN):
            return False
    return True


# pytest's closing-line words, in its order, and their plural (tests/parts.py).
_COUNTED = (
    ("failed", "failed"),
    ("passed", "passed"),
    ("skipped", "skipped"),
    ("deselected", "deselected"),
    ("xfailed", "xfailed"),
    ("xpassed", "xpassed"),
    ("warnings", "warnings"),
    ("error", "errors"),
)


def closing_line(counts: dict[str, int], seconds: float) -> str:
    """The closing line pytest would print for the parts as one run."""
    words = []
    for key, plural in _COUNTED:
        count = counts.get(key, 0)
        if count:
            singular = {"warnings": "warning"}.get(key, key)
            words.append(f"{count} {plural if count != 1 else singular}")
    line = ", ".join(words) if words else "no tests ran"
    return f"{'=' * 20} {line} in {seconds:.2f}s {'=' * 20}"


def run_parts(pytest_args: list[str], env: dict[str, str], workers: int) -> int:
    """The whole suite as three pytest runs (tests/parts.py): the tests that may run
    in parallel and then the browser tests, each over `workers` pytest-xdist workers,
    then the reliability tests one by one, alone on the machine. All run even when an
    earlier one fails; the exit status is the first failure's, 5 only when none ran a
    test."""
    folder = Path(tempfile.mkdtemp(prefix="kehu-parts-"))
    # Modules go out in the order the workers collected them: the slowest first
    # (tests/parts.py), not xdist's most-tests-first.
    spread = ["-n", str(workers), "--dist", "loadfile", "--no-loadscope-reorder"]
    runs = [
        ("parallel", [*spread, "--kehu-part=parallel"]),
        ("browser", [*spread, "--kehu-part=browser"]),
        ("serial", ["--kehu-part=serial"]),
    ]
    started = time.monotonic()
    codes: dict[str, int] = {}
    summaries: list[dict] = []
    try:
        for part, options in runs:
            sizes = summaries[0].get("part_sizes") if summaries else None
            if sizes is not None and not sizes.get(part):
                # The selection holds no test of this part (CI's second run has no
                # browser or reliability test): no pytest for it.
                continue
            summary = folder / f"{part}.json"
            print(
                f"[kehu] {part} part: pytest {' '.join([*options, *pytest_args])}",
                flush=True,
            )
            result = subprocess.run(
                [sys.executable, "-m", "pytest", *options, *pytest_args],
                cwd=REPO_DIR,
                env={**env, "KEHU_TEST_SUMMARY": str(summary)},
                check=False,
            )
            codes[part] = result.returncode
            summaries.append(_read(summary))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    seconds = time.monotonic() - started
    totals: dict[str, int] = {}
    for summary in summaries:
        for key, count in summary.get("counts", {}).items():
            # Both parts deselect what the selection leaves out: count it once.
            merge = max if key == "deselected" else int.__add__
            totals[key] = merge(totals.get(key, 0), count)
    ran = sum(totals.get(key, 0) for key in ("failed", "passed", "xfailed", "xpassed"))
    failures = [code for code in codes.values() if code not in (0, 5)]
    code = failures[0] if failures else (0 if ran or 0 in codes.values() else 5)
    parts = ", ".join(f"{part} exit {c}" for part, c in codes.items())
    print(f"\n[kehu] the parts together ({parts}):", flush=True)
    print(closing_line(totals, seconds), flush=True)
    return code


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def cmd_test(pytest_args: list[str]) -> int:
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    folder = Path(tempfile.mkdtemp(prefix="kehu-test-"))
    folder.chmod(0o755)  # the unprivileged PostgreSQL user must reach it when root
    backing = start_backing(folder, persistent=False, pg_port=None, redis_port=None)
    try:
        env = child_env(backing, "crm.settings.test")
        env["KEHU_DATA_DIR"] = str(folder)
        print(
            f"[kehu] testing against {backing.database_url} and {backing.redis_url}",
            flush=True,
        )
        workers = xdist_workers()
        if split_in_parts(pytest_args, workers):
            return run_parts(pytest_args, env, workers)
        result = subprocess.run(
            [sys.executable, "-m", "pytest", *pytest_args],
            cwd=REPO_DIR,
            env=env,
            check=False,
        )
        return result.returncode
    finally:
        backing.stop()
        shutil.rmtree(folder, ignore_errors=True)


def cmd_env() -> int:
    backing = start_backing(
        data_dir(), persistent=True, pg_port=55432, redis_port=56379
    )
    print(f"DATABASE_URL={backing.database_url}")
    print(f"REDIS_URL={backing.redis_url}")
    return 0


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"run", "test", "env"}:
        print(__doc__, file=sys.stderr)
        return 2
    if argv[0] == "run":
        return cmd_run()
    if argv[0] == "test":
        return cmd_test(argv[1:])
    return cmd_env()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
