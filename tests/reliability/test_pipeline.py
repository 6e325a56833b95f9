"""The pipeline's configuration (R7) and its dispatchers under duplication (R6, C5-small).

R7 reads the Celery configuration the worker really gets. R6/C5 runs two beats and two
workers against the same due rows, kills one beat with SIGKILL midway, and checks that
every reminder is delivered exactly once.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from crm.celery import app
from crm.scheduler import tasks
from crm.scheduler.testing import celery_beat_argv, celery_worker_argv
from crm.supervisor import Child
from customers import services as customer_services
from tests.reliability.conftest import (
    LEASE_SECONDS,
    SWEEP_SECONDS,
    record_figures,
    sleep_until,
)

MAX_COUNTDOWN = 300  # D4: nothing waits in the broker longer than this


def test_r7_celery_is_configured_for_at_least_once_delivery():
    conf = app.conf
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.worker_eta_task_limit
    assert conf.worker_soft_shutdown_timeout > 0
    visibility = conf.broker_transport_options["visibility_timeout"]
    assert visibility >= 2 * (MAX_COUNTDOWN + settings.KEHU_ACTION_LEASE_SECONDS)

    for task in (
        tasks.actions_sweep_task,
        tasks.action_deliver_task,
        tasks.action_deliver_many_task,
    ):
        assert task.acks_late is True
        assert task.reject_on_worker_lost is True

    sweep = next(
        entry
        for entry in conf.beat_schedule.values()
        if entry["task"] == tasks.actions_sweep_task.name
    )
    assert sweep["schedule"] == settings.KEHU_SWEEP_SECONDS
    # A sweep that waited longer than an interval is dropped: the next one comes.
    assert sweep["options"]["expires"] <= settings.KEHU_SWEEP_SECONDS
    assert settings.KEHU_SWEEP_SECONDS < settings.KEHU_ACTION_LEASE_SECONDS


@pytest.mark.reliability
def test_r6_two_beats_and_two_workers_deliver_each_reminder_once(pipeline, staff):
    rep, customers = staff
    pipeline.supervisor.add(
        Child(
            "worker2",
            celery_worker_argv("kehu-reliability-2"),
            pipeline.env,
            pipeline.folder / "worker2.log",
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

    count, window = 200, 10
    t0 = timezone.now() + timedelta(seconds=6)
    ids = [
        customer_services.followup_create(
            by=rep,
            customer=customers[i % len(customers)],
            assignee=rep,
            due_at=t0 + timedelta(seconds=window * i / count),
            note=f"R6 回访 #{i}",
        ).pk
        for i in range(count)
    ]
    sleep_until(t0 + timedelta(seconds=window / 2))
    done_at_kill = pipeline.done_count(ids)
    assert pipeline.supervisor.kill9("beat"), pipeline.log_tails()

    delivered = pipeline.wait_delivered(ids, timeout=window + LEASE_SECONDS + 60)
    figures = pipeline.figures(ids)
    figures.update(
        scenario="R6/C5-small: two beats and two workers (4 pool processes); "
        "one beat killed with SIGKILL midway",
        done_at_beat_kill=done_at_kill,
        beats_alive_at_end=[
            pipeline.supervisor.alive("beat"),
            pipeline.supervisor.alive("beat2"),
        ],
    )
    record_figures("R6", figures)

    assert delivered, pipeline.log_tails()
    assert 0 < done_at_kill < count, figures
    assert figures["lost"] == 0, figures
    assert figures["notifications"] == count, figures
    assert figures["duplicate_notifications"] == 0, figures
    # Nobody was killed mid-delivery, so not even the mail gateway sees a resend.
    assert figures["email_attempts"] == count, figures
    assert figures["duplicate_email_attempts"] == 0, figures
    assert figures["restarts"]["beat"] >= 1, figures
    # Sweeps resumed at once: the second beat kept ticking.
    assert figures["max_lateness_s"] <= 2 * SWEEP_SECONDS + 10, figures
