"""crm/supervisor.py, the one supervisor of `make run`, the reliability tests and
`make chaos`: a dead child comes back, and stopping kills every process of a child's
group, also a grandchild that ignores SIGTERM (a Celery pool process left behind)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from crm.supervisor import REPO_DIR, Backoff, Child, Supervisor, wait_for

SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]

# A leader that dies on SIGTERM and a grandchild that ignores it; the grandchild writes
# its pid once SIGTERM is ignored, so the test knows only SIGKILL can end it.
PARENT_WITH_STUBBORN_CHILD = textwrap.dedent(
    """
    import subprocess, sys, time
    subprocess.Popen([sys.executable, "-c", (
        "import os, signal, sys, time\\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\\n"
        "open(sys.argv[1], 'w').write(str(os.getpid()))\\n"
        "time.sleep(120)\\n"
    ), sys.argv[1]])
    time.sleep(120)
    """
)


def is_alive(pid: int) -> bool:
    """Running, not a zombie (PID 1 of a container may never reap an orphan)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in {"Z", "X"}


def stubborn_family(tmp_path: Path, name: str) -> tuple[Child, Path]:
    pidfile = tmp_path / f"{name}-grandchild.pid"
    argv = [sys.executable, "-c", PARENT_WITH_STUBBORN_CHILD, str(pidfile)]
    return Child(name, argv, log_path=tmp_path / f"{name}.log"), pidfile


def grandchild_pid(pidfile: Path) -> int:
    assert wait_for(lambda: pidfile.exists() and pidfile.read_text(), timeout=15)
    return int(pidfile.read_text())


def test_a_killed_child_and_one_added_later_are_restarted_and_counted(tmp_path):
    supervisor = Supervisor(
        [Child("first", SLEEPER, log_path=tmp_path / "first.log")], poll=0.05
    )
    supervisor.start()
    try:
        supervisor.add(Child("second", SLEEPER, log_path=tmp_path / "second.log"))
        for name in ("first", "second"):
            old_pid = supervisor.kill9(name)
            assert old_pid
            assert wait_for(
                lambda name=name: (
                    supervisor.restarts[name] == 1 and supervisor.alive(name)
                ),
                timeout=10,
            ), supervisor.restarts
            child = supervisor.children[name]
            assert child.pid != old_pid
            assert child.starts == 2
            assert child.exits[0][1] == -signal.SIGKILL
        assert len(supervisor.kills) == 2
        assert len(supervisor.restart_latencies) == 2
        assert max(supervisor.restart_latencies) < 3
    finally:
        supervisor.stop(grace=1)
    assert not supervisor.alive("first") and not supervisor.alive("second")


def test_a_crashing_child_is_restarted_with_back_off(tmp_path):
    crasher = Child(
        "crasher",
        [sys.executable, "-c", "raise SystemExit(3)"],
        log_path=tmp_path / "crasher.log",
    )
    supervisor = Supervisor(
        [crasher], poll=0.05, backoff=Backoff(step=1, cap=1, healthy_after=30)
    )
    supervisor.start()
    try:
        assert wait_for(lambda: supervisor.restarts["crasher"] >= 1, timeout=10)
        began, restarts = crasher.started_at, supervisor.restarts["crasher"]
        assert wait_for(lambda: supervisor.restarts["crasher"] > restarts, timeout=10)
        # Without the back-off it would be back within a poll (0.05 s).
        assert crasher.started_at - began >= 0.9
        assert [code for _, code in crasher.exits][:2] == [3, 3]
    finally:
        supervisor.stop(grace=1)


def test_stop_kills_the_whole_group_even_a_grandchild_that_ignores_sigterm(tmp_path):
    child, pidfile = stubborn_family(tmp_path, "family")
    supervisor = Supervisor([child], poll=0.05)
    supervisor.start()
    try:
        grandchild = grandchild_pid(pidfile)
        assert is_alive(grandchild)
    finally:
        supervisor.stop(grace=1)
    assert wait_for(lambda: not is_alive(grandchild), timeout=5)
    assert not is_alive(child.proc.pid)


def test_sigint_to_a_serving_supervisor_stops_every_child_and_grandchild(tmp_path):
    """What Ctrl-C does to `make run`: serve() in the main thread of its own process."""
    pidfiles = [tmp_path / f"child{i}-grandchild.pid" for i in (1, 2)]
    script = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        from crm.supervisor import Child, Supervisor
        folder = Path({str(tmp_path)!r})
        children = [
            Child(
                f"child{{i}}",
                [sys.executable, "-c", {PARENT_WITH_STUBBORN_CHILD!r},
                 str(folder / f"child{{i}}-grandchild.pid")],
                log_path=folder / f"child{{i}}.log",
            )
            for i in (1, 2)
        ]
        Supervisor(children, poll=0.05, say=print).serve(grace=1)
        print("served", flush=True)
        """
    )
    server = subprocess.Popen(  # noqa: S603 - fixed argv
        [sys.executable, "-c", script],
        cwd=REPO_DIR,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        grandchildren = [grandchild_pid(path) for path in pidfiles]
        assert all(is_alive(pid) for pid in grandchildren)
        os.kill(server.pid, signal.SIGINT)
        out, _ = server.communicate(timeout=20)
    finally:
        if server.poll() is None:
            server.kill()
    assert server.returncode == 0, out
    assert "stopping child1, child2 ..." in out and "served" in out, out
    assert wait_for(
        lambda: not any(is_alive(pid) for pid in grandchildren), timeout=5
    ), grandchildren
