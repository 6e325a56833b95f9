"""The processes of a chaos or soak run, and the hands that break them.

One run owns everything it starts: a PostgreSQL (embedded, or a database of its own on
the server DATABASE_URL names), a Redis on a port of its own (R2 shuts it down), and a
Celery worker (prefork, -c 2), one beat and gunicorn under crm/supervisor.py (the
supervisor of `make run` and the reliability tests), which restarts them. Every child
writes a pidfile into the run folder; the chaos hands read the pidfile and signal that
process id, its process group (a worker and its pool) or its direct children
(gunicorn's workers) -- never anything found by name.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from crm import embedded
from crm.scheduler.testing import MAIL_LOG_ENV, RedisServer, celery_worker_argv
from crm.supervisor import Child, Supervisor, wait_for

REPO_DIR = Path(__file__).resolve().parents[2]
# Short pipeline settings, as the reliability tests use (reliability §3.3).
SWEEP_SECONDS = 1
LEASE_SECONDS = 15


def log(message: str) -> None:
    sys.stdout.write(f"[chaos {time.strftime('%H:%M:%S', time.gmtime())}Z] {message}\n")
    sys.stdout.flush()


# --- supervised children with pidfiles -----------------------------------------------


@dataclass
class PidfileChild(Child):
    """A supervised child that writes its process id to `<pid_dir>/<name>.pid`."""

    pid_dir: Path = field(default_factory=Path)

    @property
    def pidfile(self) -> Path:
        return self.pid_dir / f"{self.name}.pid"

    def start(self) -> None:
        super().start()
        assert self.proc is not None
        self.pidfile.write_text(f"{self.proc.pid}\n")


class RunSupervisor(Supervisor):
    """The shared supervisor, plus pidfiles and gunicorn's workers."""

    def pid_from_file(self, name: str) -> int:
        """The pid in the child's pidfile, checked to be the child we started."""
        child = self.children[name]
        assert isinstance(child, PidfileChild)
        pid = int(child.pidfile.read_text().strip())
        if child.pid != pid:
            raise RuntimeError(f"{child.pidfile} names {pid}, not our {name}")
        return pid

    def kill9_from_pidfile(self, name: str) -> int | None:
        """`kill -9` the process the pidfile names, with its pool children (its group)."""
        self.pid_from_file(name)
        return self.kill9(name)

    def child_pids(self, name: str) -> list[int]:
        return children_of(self.pid_from_file(name))

    def started_at(self, name: str) -> float:
        return self.children[name].started_at


def children_of(pid: int) -> list[int]:
    """Direct children of `pid`, from /proc (no process is looked up by name)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: fields follow the last ')'.
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def rss_kb(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total


# --- the backing servers -------------------------------------------------------------


@dataclass
class Backing:
    folder: Path
    database_url: str
    redis: RedisServer
    pg: embedded.Postgres | None = None
    # With DATABASE_URL: the server's URL with the maintenance database, to drop ours.
    admin_url: str | None = None
    db_name: str = embedded.DB_NAME

    @property
    def pg_log(self) -> Path | None:
        return self.pg.home / "pg.log" if self.pg else None

    def pg_bin(self, tool: str) -> str:
        assert self.pg is not None
        return str(embedded._pg_bin_dir(self.pg.home) / tool)

    def pg_crash(self) -> None:
        """`pg_ctl stop -m immediate`: no checkpoint, recovery at the next start."""
        assert self.pg is not None
        self.pg._run(
            [self.pg_bin("pg_ctl"), "-D", str(self.pg.data_dir)]
            + ["-m", "immediate", "-w", "stop"],
            stdout=subprocess.DEVNULL,
        )

    def pg_start(self) -> None:
        assert self.pg is not None
        self.pg.start()

    def stop(self) -> None:
        self.redis.stop()
        if self.pg is not None:
            try:
                self.pg.stop()
            except subprocess.CalledProcessError:
                pass
        elif self.admin_url:
            _drop_database(self.admin_url, self.db_name)


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def _create_database(admin_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def _drop_database(admin_url: str, name: str) -> None:
    import psycopg

    try:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    except psycopg.Error as error:
        log(f"could not drop database {name}: {error}")


def start_backing(folder: Path) -> Backing:
    """PostgreSQL (embedded unless DATABASE_URL is set) and a Redis of our own.

    Redis is always ours, whatever REDIS_URL says: R2 shuts it down and restarts it
    empty, which must never happen to a server someone else uses.
    """
    redis = RedisServer(folder=folder / "redis")
    redis.start()
    external = os.environ.get("DATABASE_URL", "")
    if external:
        name = f"kehu_chaos_{os.getpid()}"
        admin_url = _with_database(external, "postgres")
        _create_database(admin_url, name)
        return Backing(
            folder=folder,
            database_url=_with_database(external, name),
            redis=redis,
            admin_url=admin_url,
            db_name=name,
        )
    pg = embedded.postgres_for(folder, REPO_DIR, 0)
    pg.start()
    # Lock waits and deadlocks go to the server log, which the run reads at the end (C6).
    import psycopg

    with psycopg.connect(pg.url, autocommit=True) as conn:
        conn.execute("ALTER SYSTEM SET log_lock_waits = on")
        conn.execute("ALTER SYSTEM SET deadlock_timeout = '200ms'")
        conn.execute("SELECT pg_reload_conf()")
    return Backing(folder=folder, database_url=pg.url, redis=redis, pg=pg)


# --- the application processes -------------------------------------------------------


def app_env(backing: Backing, mail_log: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=backing.database_url,
        REDIS_URL=backing.redis.url,
        DJANGO_SETTINGS_MODULE="crm.settings.dev",
        DEBUG="0",
        LOG_LEVEL="WARNING",
        EMAIL_BACKEND="crm.scheduler.testing.AttemptLogEmailBackend",
        KEHU_SWEEP_SECONDS=str(SWEEP_SECONDS),
        KEHU_ACTION_LEASE_SECONDS=str(LEASE_SECONDS),
        KEHU_DATA_DIR=str(backing.folder),
        PYTHONUNBUFFERED="1",
    )
    env[MAIL_LOG_ENV] = str(mail_log)
    return env


def beat_argv(folder: Path, name: str) -> Any:
    """Beat logging each sweep it sends (R6 reads the gaps); a fresh schedule per start."""

    def argv(start: int) -> list[str]:
        return [sys.executable, "-m", "celery", "-A", "crm", "beat", "-l", "info"] + [
            "-s",
            str(folder / f"{name}-schedule-{start}"),
        ]

    return argv


def gunicorn_argv(port: int, pid_dir: Path, log_dir: Path) -> Any:
    def argv(_: int) -> list[str]:
        return [sys.executable, "-m", "gunicorn", "crm.wsgi:application"] + [
            "--chdir",
            str(REPO_DIR),
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
            "--threads",
            "4",
            "--timeout",
            "30",
            "--graceful-timeout",
            "5",
            "--log-level",
            "warning",
            "--access-logfile",
            str(log_dir / "access.log"),
            # gunicorn's own pidfile holds the arbiter, which R5 asks for its workers.
            "--pid",
            str(pid_dir / "gunicorn-arbiter.pid"),
        ]

    return argv


@dataclass
class Stack:
    """Everything one run started; `stop()` undoes it, also after a failure or Ctrl-C."""

    folder: Path
    backing: Backing
    env: dict[str, str]
    mail_log: Path
    http_port: int
    supervisor: RunSupervisor | None = None
    pid_dir: Path = field(default_factory=Path)
    worker_include: tuple[str, ...] = ()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def child(self, name: str, argv: Any) -> PidfileChild:
        return PidfileChild(
            name, argv, self.env, self.folder / f"{name}.log", pid_dir=self.pid_dir
        )

    def start_apps(self) -> None:
        self.supervisor = RunSupervisor(
            [
                self.child(
                    "worker", celery_worker_argv("kehu-chaos", self.worker_include)
                ),
                self.child("beat", beat_argv(self.folder, "beat")),
                self.child(
                    "web", gunicorn_argv(self.http_port, self.pid_dir, self.folder)
                ),
            ]
        )
        self.supervisor.start()

    def add_second_beat(self) -> None:
        assert self.supervisor is not None
        self.supervisor.add(self.child("beat2", beat_argv(self.folder, "beat2")))

    def gunicorn_workers(self) -> list[int]:
        assert self.supervisor is not None
        return self.supervisor.child_pids("web")

    def kill_gunicorn_worker(self) -> int | None:
        """SIGKILL one gunicorn worker, a direct child of the arbiter in our pidfile."""
        workers = self.gunicorn_workers()
        if not workers:
            return None
        victim = max(workers)
        try:
            os.kill(victim, signal.SIGKILL)
        except ProcessLookupError:
            return None
        return victim

    def worker_rss_kb(self) -> int:
        assert self.supervisor is not None
        if not self.supervisor.alive("worker"):
            return 0
        pid = self.supervisor.pid_from_file("worker")
        return rss_kb([pid, *children_of(pid)])

    def log_tails(self, lines: int = 30) -> str:
        parts = []
        for path in sorted(self.folder.glob("*.log")):
            tail = path.read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"==> {path.name} <==\n" + "\n".join(tail))
        return "\n".join(parts)

    def keep_logs(self, target: Path) -> None:
        target.mkdir(parents=True, exist_ok=True)
        for path in self.folder.glob("*.log"):
            shutil.copy(path, target / path.name)
        if self.backing.pg_log and self.backing.pg_log.exists():
            shutil.copy(self.backing.pg_log, target / "postgres.log")
        if (self.folder / "redis" / "redis.log").exists():
            shutil.copy(self.folder / "redis" / "redis.log", target / "redis.log")

    def stop(self) -> None:
        if self.supervisor is not None:
            self.supervisor.stop()
        self.backing.stop()


def start_stack(folder: Path) -> Stack:
    folder.chmod(0o755)  # the unprivileged PostgreSQL user must reach it when root
    pid_dir = folder / "pids"
    pid_dir.mkdir()
    backing = start_backing(folder)
    mail_log = folder / "mail-attempts.jsonl"
    env = app_env(backing, mail_log)
    return Stack(
        folder=folder,
        backing=backing,
        env=env,
        mail_log=mail_log,
        http_port=embedded.free_port(),
        pid_dir=pid_dir,
    )


def manage(env: dict[str, str], *args: str, timeout: float = 600) -> None:
    subprocess.run(  # noqa: S603 - fixed argv
        [sys.executable, "manage.py", *args],
        cwd=REPO_DIR,
        env=env,
        check=True,
        timeout=timeout,
    )


class Ticker(threading.Thread):
    """Runs `fn` every `interval` seconds until stopped; exceptions are counted."""

    def __init__(self, name: str, interval: float, fn: Any) -> None:
        super().__init__(name=name, daemon=True)
        self.interval = interval
        self.fn = fn
        self.errors: list[str] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self.interval):
            try:
                self.fn()
            except Exception as error:  # noqa: BLE001 - a sampler must not die mid-run
                self.errors.append(f"{type(error).__name__}: {error}")

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=30)


__all__ = ["Stack", "start_stack", "manage", "wait_for", "log", "Ticker"]
