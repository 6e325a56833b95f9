"""In-process delivery rate of follow-up reminders: one by one against in chunks.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/kehu_rate \\
        .venv/bin/python -m bench.delivery_rate --count 2000

Creates the database's schema if needed (migrate), one salesperson and customer, and
`--count` open follow-ups with their reminder actions due a minute ago; then, for each
way, sweeps them (publishing replaced by collecting the ids, so no broker is touched),
and times the delivery in this one process: `action_deliver` per id (what a worker did
per Celery message before) and `actions_deliver` per chunk of DELIVERY_CHUNK ids (what
`action_deliver_many_task` does now). E-mails go to the chaos runs' append-only attempt
log in a temporary file. Everything it made is deleted at the end.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import timedelta
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings.test")


def say(line: str) -> None:
    sys.stdout.write(line + "\n")


def reminders_due(count: int, *, owner: Any, customer: Any) -> tuple[list, list[str]]:
    """`count` open follow-ups of `customer` whose reminder actions fell due a minute
    ago, written at once; the follow-ups and their actions' keys."""
    from django.utils import timezone

    from crm.scheduler.models import ScheduledAction
    from customers.models import FollowUp
    from customers.services import FOLLOWUP_REMINDER

    due = timezone.now() - timedelta(minutes=1)
    followups = FollowUp.objects.bulk_create(
        FollowUp(
            customer=customer,
            assignee=owner,
            created_by=owner,
            due_at=due,
            note=f"回访 {i}",
        )
        for i in range(count)
    )
    keys = [f"followup:{f.pk}:remind" for f in followups]
    ScheduledAction.objects.bulk_create(
        ScheduledAction(
            kind=FOLLOWUP_REMINDER, target_id=f.pk, due_at=due, idempotency_key=key
        )
        for f, key in zip(followups, keys, strict=True)
    )
    return followups, keys


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=2000)
    args = parser.parse_args()
    log = tempfile.NamedTemporaryFile(suffix=".jsonl", delete=False)  # noqa: SIM115
    os.environ["KEHU_TEST_MAIL_LOG"] = log.name

    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    settings.EMAIL_BACKEND = "crm.scheduler.testing.AttemptLogEmailBackend"
    call_command("migrate", verbosity=0)

    from crm.accounts.models import User
    from crm.notifications.models import Notification
    from crm.scheduler import services
    from crm.scheduler.models import ScheduledAction
    from customers.models import Customer, FollowUp

    services._publish = lambda ids, **_: None  # do not publish
    rep, _ = User.objects.get_or_create(
        username="bench_rate", defaults={"email": "bench@example.com"}
    )
    customer = Customer.objects.create(owner=rep, name="基准客户")
    followups, keys = reminders_due(args.count, owner=rep, customer=customer)
    actions = ScheduledAction.objects.filter(idempotency_key__in=keys)

    def sweep() -> list[int]:
        ids: list[int] = []
        while claimed := services.actions_sweep():
            ids += claimed
        return ids

    def reset() -> None:
        Notification.objects.filter(idempotency_key__in=keys).delete()
        FollowUp.objects.filter(pk__in=[f.pk for f in followups]).update(
            reminded_at=None
        )
        actions.update(state="pending", attempts=0, lease_until=None, done_at=None)

    try:
        results = {}
        for way in ("one by one", "chunks"):
            reset()
            ids = sweep()
            assert len(ids) == args.count, len(ids)
            started = time.perf_counter()
            if way == "one by one":
                for action_id in ids:
                    services.action_deliver(action_id=action_id)
            else:
                step = services.DELIVERY_CHUNK
                for start in range(0, len(ids), step):
                    services.actions_deliver(action_ids=ids[start : start + step])
            elapsed = time.perf_counter() - started
            done = actions.filter(state="done").count()
            sent = Notification.objects.filter(
                idempotency_key__in=keys, emailed_at__isnull=False
            ).count()
            assert done == sent == args.count, (done, sent)
            results[way] = elapsed
            say(
                f"{way:>10}: {args.count} delivered in {elapsed:.2f} s = "
                f"{args.count / elapsed:.0f}/s ({1000 * elapsed / args.count:.2f} ms each)"
            )
        say(f"speed-up: {results['one by one'] / results['chunks']:.1f}x")
        say(f"load average: {os.getloadavg()}")
    finally:
        reset()
        actions.delete()
        customer.delete()
        rep.delete()
        os.unlink(log.name)


if __name__ == "__main__":
    main()
