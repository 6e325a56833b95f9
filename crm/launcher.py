"""`make run` and `make test`: start what Kehu needs, then supervise or test it.

    python -m crm.launcher run     # PostgreSQL, Redis, web, Celery worker and beat
    python -m crm.launcher test    # the pytest suite against real PostgreSQL and Redis
    python -m crm.launcher env     # start the embedded servers, print their URLs

DATABASE_URL / REDIS_URL, when set, point at real servers and nothing is embedded.
The web server, worker and beat run under crm/supervisor.py, which restarts one that
dies and stops them all on Ctrl-C.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from crm import embedded
from crm.supervisor import Backoff, Child, Supervisor

REPO_DIR = Path(__file__).resolve().parent.parent
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
        pg = embedded.postgres_for(folder, REPO_DIR, pg_port or 0)
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
                ["nice", "-n", "10", *celery, "worker", "-l", "info", "-c", "2"]
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
