"""How long a burst of due actions takes to go out through the real pipeline.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/kehu_burst \\
        .venv/bin/python -m bench.sweep_burst --count 5000

Starts what `make run` starts for the pipeline (a Redis of its own, the Celery worker
with its two processes, beat sweeping every KEHU_SWEEP_SECONDS, 15 s unless
`--sweep-seconds` says otherwise; crm.scheduler.testing.start_pipeline), waits for the
worker to be ready, then writes `--count` follow-ups whose reminders fell due a minute
ago, all at once, and polls the database until every reminder is done. Reports the
time from that write to the first and to the last reminder done. E-mails go to an
append-only file. Migrates the database first if needed; what it wrote is deleted at
the end. Not `bench.sweep`'s figure, which times the sweep and
delivery code without beat's pacing (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings.test")


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--sweep-seconds", type=float, default=15)
    parser.add_argument("--timeout", type=float, default=900)
    args = parser.parse_args()

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)

    from bench.delivery_rate import reminders_due
    from crm.accounts.models import User
    from crm.notifications.models import Notification
    from crm.scheduler import testing
    from crm.scheduler.models import ScheduledAction
    from customers.models import Customer

    folder = Path(tempfile.mkdtemp(prefix="kehu-burst-"))
    running = testing.start_pipeline(
        folder,
        testing.database_url(connection.settings_dict),
        sweep_seconds=args.sweep_seconds,
        lease_seconds=60,
    )
    rep, _ = User.objects.get_or_create(
        username="bench_burst", defaults={"email": "burst@example.com"}
    )
    customer = Customer.objects.create(owner=rep, name="突发客户")
    keys: list[str] = []
    try:
        time.sleep(10)  # the worker boots (about 2 s) and beat's first sweeps run
        _followups, keys = reminders_due(args.count, owner=rep, customer=customer)
        written = time.perf_counter()
        actions = ScheduledAction.objects.filter(idempotency_key__in=keys)
        first = None
        while time.perf_counter() - written < args.timeout:
            done = actions.filter(state="done").count()
            if done and first is None:
                first = time.perf_counter() - written
            if done == args.count:
                break
            time.sleep(0.2)
        last = time.perf_counter() - written
        done = actions.filter(state="done").count()
        sent = Notification.objects.filter(
            idempotency_key__in=keys, emailed_at__isnull=False
        ).count()
        say(
            f"{args.count} due at once, sweep every {args.sweep_seconds:g} s: "
            f"{done} done, {sent} e-mailed; first done after {first or 0:.1f} s, "
            f"all after {last:.1f} s" + ("" if done == args.count else " (timed out)")
        )
        say(f"load average: {os.getloadavg()}")
    finally:
        testing.stop_pipeline(running)
        Notification.objects.filter(idempotency_key__in=keys).delete()
        ScheduledAction.objects.filter(idempotency_key__in=keys).delete()
        customer.delete()
        rep.delete()


if __name__ == "__main__":
    main()
