"""The real pipeline as separate processes, for the crash/restart tests (R1-R3).

A private Redis (no persistence, restartable on its port), a Celery worker (prefork, -c 2)
and one beat run under a supervisor that restarts them when they die, all pointed at
pytest-django's test database. Sweep every second, lease 10 s. E-mails go to an
append-only attempt log, so duplicates are counted per idempotency key.
"""

from __future__ import annotations

import json
import statistics
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from crm.accounts.roles import Role
from crm.notifications.models import Notification
from crm.scheduler.models import ScheduledAction
from crm.scheduler.testing import (
    RedisServer,
    database_url,
    read_mail_log,
    start_pipeline,
    stop_pipeline,
)
from crm.supervisor import Supervisor, wait_for
from customers import services as customer_services
from customers.models import Customer, FollowUp
from tests.factories import CustomerFactory, UserFactory

SWEEP_SECONDS = 1
LEASE_SECONDS = 10
REPO_DIR = Path(__file__).resolve().parents[2]
ARTIFACT = REPO_DIR / "test-artifacts" / "reliability.json"
State = ScheduledAction.State
_FIGURES: dict[str, dict[str, Any]] = {}


def reminder_key(followup_id: int) -> str:
    return f"followup:{followup_id}:remind"


def sleep_until(moment: datetime) -> None:
    """Wait for a wall-clock moment (real processes run on real time)."""
    delay = (moment - timezone.now()).total_seconds()
    if delay > 0:
        time.sleep(delay)


@dataclass
class Pipeline:
    folder: Path
    redis: RedisServer
    supervisor: Supervisor
    env: dict[str, str]
    mail_log: Path
    started_at: float = field(default_factory=time.monotonic)
    ready_seconds: float | None = None

    def open_actions(self, followup_ids: list[int]) -> int:
        return (
            ScheduledAction.objects.filter(
                kind=customer_services.FOLLOWUP_REMINDER, target_id__in=followup_ids
            )
            .exclude(state__in=[State.DONE, State.NEEDS_REVIEW, State.CANCELLED])
            .count()
        )

    def done_count(self, followup_ids: list[int]) -> int:
        return ScheduledAction.objects.filter(
            kind=customer_services.FOLLOWUP_REMINDER,
            target_id__in=followup_ids,
            state=State.DONE,
        ).count()

    def wait_delivered(self, followup_ids: list[int], timeout: float) -> bool:
        return wait_for(
            lambda: self.open_actions(followup_ids) == 0, timeout=timeout, interval=0.5
        )

    def wait_ready(self, by: Any, customer: Customer, timeout: float = 90) -> None:
        """A canary follow-up due now must come through beat, sweep and worker."""
        canary = customer_services.followup_create(
            by=by, customer=customer, assignee=by, due_at=timezone.now(), note="canary"
        )
        began = time.monotonic()
        if not self.wait_delivered([canary.pk], timeout):
            raise AssertionError(
                f"pipeline not ready after {timeout} s\n{self.log_tails()}"
            )
        self.ready_seconds = round(time.monotonic() - began, 1)

    def log_tails(self, lines: int = 40) -> str:
        parts = []
        for path in sorted(self.folder.glob("*.log")):
            tail = path.read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"==> {path.name} <==\n" + "\n".join(tail))
        return "\n".join(parts)

    def figures(self, followup_ids: list[int]) -> dict[str, Any]:
        """The invariant checker: lost, duplicated, late (docs: reliability §3.3)."""
        keys = {reminder_key(pk) for pk in followup_ids}
        actions = {
            action.target_id: action
            for action in ScheduledAction.objects.filter(
                kind=customer_services.FOLLOWUP_REMINDER, target_id__in=followup_ids
            )
        }
        due = dict(
            FollowUp.objects.filter(pk__in=followup_ids).values_list("pk", "due_at")
        )
        states = Counter(action.state for action in actions.values())
        not_done = [
            pk
            for pk in followup_ids
            if pk not in actions or actions[pk].state != State.DONE
        ]
        notifications = Counter(
            Notification.objects.filter(idempotency_key__in=keys).values_list(
                "idempotency_key", flat=True
            )
        )
        attempts, torn = read_mail_log(self.mail_log)
        emails = Counter(record["key"] for record in attempts if record["key"] in keys)
        lateness = sorted(
            (actions[pk].done_at - due[pk]).total_seconds()
            for pk in followup_ids
            if pk in actions and actions[pk].done_at is not None
        )
        reminded = FollowUp.objects.filter(
            pk__in=followup_ids, reminded_at__isnull=False
        ).count()
        return {
            "followups": len(followup_ids),
            "actions": len(actions),
            "states": dict(states),
            "lost": len(not_done),
            "lost_ids": not_done[:20],
            "notifications": sum(notifications.values()),
            "missing_notifications": len(keys - set(notifications)),
            "duplicate_notifications": sum(n - 1 for n in notifications.values()),
            "not_emailed": Notification.objects.filter(
                idempotency_key__in=keys, emailed_at__isnull=True
            ).count(),
            "reminded": reminded,
            "email_attempts": sum(emails.values()),
            "missing_emails": len(keys - set(emails)),
            "duplicate_email_attempts": sum(n - 1 for n in emails.values()),
            "keys_emailed_twice": sum(1 for n in emails.values() if n > 1),
            "torn_mail_log_lines": torn,
            "redeliveries": sum(max(a.attempts - 1, 0) for a in actions.values()),
            "max_lateness_s": round(lateness[-1], 2) if lateness else None,
            "p50_lateness_s": round(statistics.median(lateness), 2)
            if lateness
            else None,
            "p95_lateness_s": round(lateness[int(0.95 * (len(lateness) - 1))], 2)
            if lateness
            else None,
            "kills": len(self.supervisor.kills),
            "restarts": dict(self.supervisor.restarts),
            "restart_latency_max_s": round(max(self.supervisor.restart_latencies), 2)
            if self.supervisor.restart_latencies
            else None,
            "pipeline_ready_s": self.ready_seconds,
            "sweep_s": SWEEP_SECONDS,
            "lease_s": LEASE_SECONDS,
        }


def record_figures(scenario: str, figures: dict[str, Any]) -> None:
    """Print the figures and merge them into test-artifacts/reliability.json."""
    figures = {"recorded_at": timezone.now().isoformat(), **figures}
    _FIGURES[scenario] = figures
    print(f"[reliability] {scenario}: {json.dumps(figures, ensure_ascii=False)}")  # noqa: T201 - the figures are the output
    ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
    try:
        stored = json.loads(ARTIFACT.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        stored = {}
    stored[scenario] = figures
    ARTIFACT.write_text(
        json.dumps(stored, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _FIGURES:
        return
    terminalreporter.section("reliability figures")
    for scenario, figures in _FIGURES.items():
        shown = {
            k: figures.get(k)
            for k in (
                "followups",
                "lost",
                "duplicate_notifications",
                "duplicate_email_attempts",
                "redeliveries",
                "max_lateness_s",
                "p95_lateness_s",
                "kills",
                "restarts",
                "restart_latency_max_s",
                "downtime_after_each_kill_s",
                "within_spec_bound",
                "delivered_after_redis_back_s",
            )
            if k in figures
        }
        terminalreporter.write_line(f"{scenario}: {json.dumps(shown)}")
    terminalreporter.write_line(f"written to {ARTIFACT}")


@pytest.fixture
def staff(transactional_db) -> tuple[Any, list[Customer]]:
    """A salesperson with an e-mail address and a few customers of theirs."""
    rep = UserFactory(
        username="rel_sales", email="rel_sales@example.com", role=Role.SALES
    )
    customers = [CustomerFactory(owner=rep) for _ in range(5)]
    return rep, customers


@pytest.fixture
def pipeline(transactional_db, tmp_path: Path) -> Iterator[Pipeline]:
    running = start_pipeline(
        tmp_path,
        database_url(connection.settings_dict),
        sweep_seconds=SWEEP_SECONDS,
        lease_seconds=LEASE_SECONDS,
    )
    pipe = Pipeline(
        folder=tmp_path,
        redis=running.redis,
        supervisor=running.supervisor,
        env=running.env,
        mail_log=running.mail_log,
    )
    try:
        yield pipe
    finally:
        stop_pipeline(running)
        print(pipe.log_tails())  # noqa: T201 - shown when the test fails
