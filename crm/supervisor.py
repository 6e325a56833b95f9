"""The one process supervisor: `make run`, the reliability tests and `make chaos`.

A `Child` is a command started in its own session, so its pid is also its process
group id and a signal to the group reaches what it forked (a Celery worker's pool,
runserver's reloader). A `Supervisor` starts children, restarts one that dies (after
an optional back-off), lets a test add, remove or `kill -9` a child while it runs and
counts restarts and their latency, and on stop signals every group: SIGTERM, a grace
period, then SIGKILL, so no grandchild outlives the group.

    supervisor = Supervisor([Child("worker", argv, env)], backoff=Backoff(...))
    supervisor.serve()   # `make run`: until SIGINT/SIGTERM, then stop the group
    supervisor.start()   # tests: watch from a thread; supervisor.stop() at the end

Why not a library: honcho 2.0 stops every process when one exits (Foreman's rule),
where Kehu must restart a worker killed by a Redis restart or a test. circus 0.19
restarts children, but runs an arbiter with its own event loop controlled over
ZeroMQ (pyzmq, tornado): adding a second beat at run time from a test thread, a
`kill -9` of a worker with its pool, and the restart counts and kill-to-respawn
latency the tests and the chaos report assert on would all go through that control
channel. What the tests need fits in one module that uses only the standard library.

Signals go only to processes started here, by process id or process group, never to a
process found by name. This is platform code: it imports no app and no Django.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_DIR = Path(__file__).resolve().parent.parent


def wait_for(
    predicate: Callable[[], bool], *, timeout: float, interval: float = 0.2
) -> bool:
    """Poll `predicate` until it is true or `timeout` seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def _exited_unreaped(pid: int) -> bool:
    """True when `pid` has exited; leaves it a zombie so its process group id stays ours
    until what is left of the group has been killed."""
    try:
        info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return True
    return info is not None


@dataclass
class Child:
    """A command started in its own session; its pid is also its process group id.

    `argv` is a list, or a function of the start number (1, 2, ...) when each start
    needs something fresh (beat's schedule file, which a kill -9 may leave torn).
    Without `log_path` the child writes to the supervisor's own stdout and stderr.
    """

    name: str
    argv: list[str] | Callable[[int], list[str]]
    env: dict[str, str] | None = None
    log_path: Path | None = None
    cwd: Path = REPO_DIR
    proc: subprocess.Popen | None = None
    starts: int = 0
    started_at: float = 0.0
    exits: list[tuple[float, int | None]] = field(default_factory=list)

    def command(self) -> list[str]:
        return self.argv(self.starts) if callable(self.argv) else list(self.argv)

    def start(self) -> None:
        self.starts += 1
        argv = self.command()
        if self.log_path is None:
            self.proc = subprocess.Popen(  # noqa: S603 - argv built by our callers
                argv, cwd=self.cwd, env=self.env, start_new_session=True
            )
        else:
            with self.log_path.open("ab") as log:
                log.write(f"\n--- start {self.starts} at {time.time():.3f}\n".encode())
                log.flush()
                self.proc = subprocess.Popen(  # noqa: S603 - argv built by our callers
                    argv,
                    cwd=self.cwd,
                    env=self.env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
        self.started_at = time.monotonic()

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def has_exited(self) -> bool:
        return self.proc is not None and _exited_unreaped(self.proc.pid)

    def is_running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    def signal_group(self, sig: int) -> None:
        """Signal the child and everything it forked (same process group)."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def reap(self) -> int | None:
        """Kill what is left of the group (orphaned pool children), then reap the leader."""
        assert self.proc is not None
        self.signal_group(signal.SIGKILL)
        code = self.proc.wait(timeout=10)
        self.exits.append((time.monotonic(), code))
        return code

    def stop(self, grace: float = 5) -> None:
        """SIGTERM to the group, SIGKILL to what is left after `grace` seconds."""
        if not self.is_running():
            return
        self.signal_group(signal.SIGTERM)
        wait_for(self.has_exited, timeout=grace, interval=0.05)
        self.reap()


@dataclass(frozen=True)
class Backoff:
    """How long to wait before restarting a child that died.

    A child that ran longer than `healthy_after` seconds comes back after `settled`
    seconds; one that died sooner waits `step` seconds per restart so far, at most
    `cap`, so a broken configuration does not spin. The default restarts at once.
    """

    settled: float = 0
    step: float = 0
    cap: float = 0
    healthy_after: float = 30

    def delay(self, *, lived: float, restarts: int) -> float:
        if lived > self.healthy_after:
            return self.settled
        return min(self.step * restarts, self.cap)


class Supervisor:
    """Restarts children that die; counts kills, restarts and kill-to-respawn latency."""

    def __init__(
        self,
        children: list[Child],
        *,
        poll: float = 0.1,
        backoff: Backoff = Backoff(),  # noqa: B008 - frozen, shared safely
        say: Callable[[str], Any] | None = None,
    ) -> None:
        self.children = {child.name: child for child in children}
        self.poll = poll
        self.backoff = backoff
        self.say = say
        self.restarts: dict[str, int] = dict.fromkeys(self.children, 0)
        self.kills: list[dict[str, Any]] = []
        self.restart_latencies: list[float] = []
        self._pending_kill_at: dict[str, float] = {}
        self._restart_at: dict[str, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- running -------------------------------------------------------------------

    def start(self) -> None:
        """Start the children and watch them from a background thread."""
        self._start_children()
        self._thread = threading.Thread(
            target=self._watch, name="supervisor", daemon=True
        )
        self._thread.start()

    def serve(self, *, grace: float = 15) -> None:
        """Start the children and watch them in this (main) thread until SIGINT or
        SIGTERM, then stop the whole group. The children run in sessions of their own,
        so a Ctrl-C in the terminal reaches only this process, which stops them in
        order instead of each dying mid-write."""
        previous = {
            sig: signal.signal(sig, self.request_stop)
            for sig in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            self._start_children()
            self._watch()
        finally:
            if self.say:
                self.say(f"stopping {', '.join(self.children)} ...")
            try:
                self.stop(grace=grace)
            finally:
                # Restored only now: a second Ctrl-C during the grace period must not
                # abandon the children half-stopped.
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

    def request_stop(self, *_: object) -> None:
        self._stop.set()

    def _start_children(self) -> None:
        with self._lock:
            for child in self.children.values():
                child.start()

    def _watch(self) -> None:
        while not self._stop.wait(self.poll):
            with self._lock:
                for child in list(self.children.values()):
                    if self._stop.is_set():
                        break
                    self._check(child)

    def _check(self, child: Child) -> None:
        name = child.name
        if name in self._restart_at:
            if time.monotonic() >= self._restart_at[name]:
                del self._restart_at[name]
                self._restart(child)
            return
        if not child.has_exited():
            return
        lived = time.monotonic() - child.started_at
        code = child.reap()
        delay = self.backoff.delay(lived=lived, restarts=self.restarts[name] + 1)
        if self.say:
            self.say(f"{name} exited ({code}); restarting in {delay:g} s")
        if delay > 0:
            # Waiting here, not sleeping: the other children stay watched and a
            # Ctrl-C during the back-off still stops everything at once.
            self._restart_at[name] = time.monotonic() + delay
        else:
            self._restart(child)

    def _restart(self, child: Child) -> None:
        child.start()
        self.restarts[child.name] += 1
        killed_at = self._pending_kill_at.pop(child.name, None)
        if killed_at is not None:
            self.restart_latencies.append(time.monotonic() - killed_at)

    # --- what tests and the chaos harness do while it runs ---------------------------

    def add(self, child: Child) -> None:
        """Start one more supervised child (a second worker, a second beat)."""
        with self._lock:
            self.children[child.name] = child
            self.restarts[child.name] = 0
            child.start()

    def remove(self, name: str, *, grace: float = 5) -> None:
        """Stop a child for good (the second beat of a test)."""
        with self._lock:
            child = self.children.pop(name)
            self._restart_at.pop(name, None)
        child.stop(grace=grace)

    def kill9(self, name: str) -> int | None:
        """`kill -9` the child's whole process group (a worker and its pool children)."""
        with self._lock:
            child = self.children[name]
            pid = child.pid
            if pid is None or child.has_exited():
                return None
            self._pending_kill_at[name] = time.monotonic()
            child.signal_group(signal.SIGKILL)
            self.kills.append({"name": name, "pid": pid, "at": time.time()})
            return pid

    def alive(self, name: str) -> bool:
        child = self.children[name]
        return child.proc is not None and not child.has_exited()

    # --- stopping --------------------------------------------------------------------

    def stop(self, grace: float = 5) -> None:
        """Stop watching, then SIGTERM every group at once and SIGKILL what is left
        after `grace` seconds; every leader is reaped."""
        self._stop.set()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout=10)
        with self._lock:
            running = [c for c in self.children.values() if c.is_running()]
            for child in running:
                child.signal_group(signal.SIGTERM)
            wait_for(
                lambda: all(c.has_exited() for c in running),
                timeout=grace,
                interval=0.05,
            )
            for child in running:
                child.reap()
