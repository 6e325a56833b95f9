"""C5, sweeper double-claim at full size (shared/domain/reliability.md): two beats (two
dispatchers sweeping every second) and three workers over 5,000 actions that fall due
together deliver each exactly once: 5,000 distinct notifications and e-mails, no
duplicate, none lost.

Nightly only: the PR tier has C5-small (tests/reliability/test_pipeline.py, R6: two beats,
two workers, 200 reminders, one beat killed) and the in-process race of two sweepers
(tests/scheduler/test_services.py). KEHU_C5_ACTIONS shrinks it for a quick look.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from django.utils import timezone

from crm.scheduler.testing import celery_beat_argv, celery_worker_argv
from crm.supervisor import Child
from customers import services as customer_services
from tests.reliability.conftest import LEASE_SECONDS, record_figures

ACTIONS = int(os.environ.get("KEHU_C5_ACTIONS", "5000"))


@pytest.mark.nightly
@pytest.mark.reliability
def test_c5_two_dispatchers_three_workers_deliver_5000_actions_once(pipeline, staff):
    rep, customers = staff
    for n in (2, 3):
        pipeline.supervisor.add(
            Child(
                f"worker{n}",
                celery_worker_argv(f"kehu-c5-{n}"),
                pipeline.env,
                pipeline.folder / f"worker{n}.log",
            )
        )
    pipeline.supervisor.add(
        Child(
            "beat2",
            celery_beat_argv(pipeline.folder, "beat2"),
            pipeline.env,
            pipeline.folder / "beat2.log",
        )
    )
    pipeline.wait_ready(rep, customers[0])

    # All due at one moment, after they have all been written: one backlog for both
    # dispatchers to fight over.
    due = timezone.now() + timedelta(seconds=30 + ACTIONS // 50)
    ids = [
        customer_services.followup_create(
            by=rep,
            customer=customers[i % len(customers)],
            assignee=rep,
            due_at=due,
            note=f"C5 回访 #{i}",
        ).pk
        for i in range(ACTIONS)
    ]
    assert timezone.now() < due, "writing the actions took longer than planned"

    delivered = pipeline.wait_delivered(ids, timeout=600 + LEASE_SECONDS)
    figures = pipeline.figures(ids)
    figures.update(
        scenario=f"C5: two beats and three workers over {ACTIONS} actions due at once"
    )
    record_figures("C5", figures)

    assert delivered, pipeline.log_tails()
    assert figures["lost"] == 0, figures
    assert figures["notifications"] == ACTIONS, figures
    assert figures["duplicate_notifications"] == 0, figures
    assert figures["email_attempts"] == ACTIONS, figures
    assert figures["duplicate_email_attempts"] == 0, figures
