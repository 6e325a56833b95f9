"""Create one slice of a run's follow-ups through `customers.services.followup_create`.

    python -m bench.chaos.load --slice K --slices P --count N --t0 EPOCH --window S
        [--label R1] [--poison-every 100 --poison-label PX]

Follow-up i (for i = K, K + P, K + 2P, ... < N) falls due at t0 + S * i / N and belongs to
customer i mod (number of customers), assigned to that customer's owner. The driver starts
P of these processes side by side (Django setup once per process, own connection each)
and waits for them; each prints one JSON line with what it created.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import UTC, datetime, timedelta

BATCH = 25
# The label of poisoned follow-ups (notes "PX 回访 #i"; bench/chaos/poison.py).
POISON_LABEL = "PX"


def label_of(i: int, args: argparse.Namespace) -> str:
    every = args.poison_every
    return args.poison_label if every and i % every == every // 2 else args.label


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--slice", type=int, required=True)
    parser.add_argument("--slices", type=int, required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--t0", type=float, required=True)
    parser.add_argument("--window", type=float, required=True)
    parser.add_argument("--label", default="R1")
    # Every Nth follow-up (i % N == N // 2) gets --poison-label instead (the poison
    # scenario: bench/chaos/poison.py makes its reminder fail every time).
    parser.add_argument("--poison-every", type=int, default=0)
    parser.add_argument("--poison-label", default=POISON_LABEL)
    args = parser.parse_args(argv)

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings.dev")
    import django

    django.setup()
    from django.db import transaction

    from customers import services
    from customers.models import Customer

    customers = list(
        Customer.objects.filter(owner__username__startswith="chaos_")
        .select_related("owner")
        .order_by("pk")
    )
    t0 = datetime.fromtimestamp(args.t0, tz=UTC)
    began = time.monotonic()
    created = late = 0
    mine = list(range(args.slice, args.count, args.slices))
    # Batches of BATCH in one transaction: each follow-up and its action still commit
    # together, but a busy machine pays one WAL flush per batch, not per follow-up.
    for start in range(0, len(mine), BATCH):
        with transaction.atomic():
            for i in mine[start : start + BATCH]:
                customer = customers[i % len(customers)]
                due_at = t0 + timedelta(seconds=args.window * i / args.count)
                if due_at.timestamp() < time.time():
                    late += 1
                services.followup_create(
                    by=customer.owner,
                    customer=customer,
                    assignee=customer.owner,
                    due_at=due_at,
                    note=f"{label_of(i, args)} 回访 #{i}",
                )
                created += 1
    sys.stdout.write(
        json.dumps(
            {
                "slice": args.slice,
                "created": created,
                "created_after_due": late,
                "seconds": round(time.monotonic() - began, 2),
            }
        )
        + "\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
