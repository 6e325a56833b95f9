"""The escalation sweep's batch path stores exactly what the one-by-one path stores.

tests/service/test_escalation.py's desk and day, for four tickets (one without an
assignee, one whose first-response deadline moved after its actions were scheduled, so
they are stale) and one poison action among them (a key the handler cannot read). The
day's actions are carried out twice from the same state: once one by one
(`action_deliver`, the single handler `sla_escalate`), then -- after that is rolled
back -- in chunks (`actions_deliver`, the batch handler `sla_escalate_many`). Every
stored row they touch must come out the same: tickets, their history (pghistory
events), notifications with their grouping, the actions' states and errors, and the
e-mails. Real PostgreSQL, Django's in-memory outbox.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import time_machine
from django.core import mail
from django.db import connection, transaction

from crm.notifications.models import Notification
from crm.scheduler import services as scheduler
from crm.scheduler.models import ScheduledAction
from service import services
from service.models import Ticket
from tests.service import test_escalation as day

desk = day.desk  # the SLA day's desk: agent, lead, managers, policy

State = ScheduledAction.State
MON, TUE, at = day.MON, day.TUE, day.at
# The beats of the day at which SLA actions fall due (and one in between).
BEATS = [
    at(MON, 10, 30),
    at(MON, 11),
    at(MON, 11, 30),
    at(MON, 11, 45),
    at(TUE, 10),
    at(TUE, 10, 30),
]


class _RolledBack(Exception):
    pass


def day_of_tickets(desk: SimpleNamespace) -> list[Ticket]:
    made = day.complaint_tickets(desk, 4)
    # Nobody picked it up: only the team lead hears of its breaches.
    Ticket.objects.filter(pk=made[1].pk).update(assignee=None)
    # Its deadline moved and its old actions were not cancelled: they are stale.
    Ticket.objects.filter(pk=made[2].pk).update(first_response_due_at=at(MON, 12, 30))
    # A row the handler cannot read: it fails alone, the rest of its chunk goes.
    scheduler.action_schedule(
        kind=services.SLA_BREACH,
        target_id=made[3].pk,
        due_at=at(MON, 11),
        key=f"ticket:{made[3].pk}:first_response:breach",
    )
    return made


def carry_out_the_day(*, in_chunks: bool) -> list[int]:
    """Every beat: the sweep, then its ids delivered as one chunk or one by one."""
    delivered: list[int] = []
    for when in BEATS:
        with time_machine.travel(when, tick=False):
            ids = scheduler.actions_sweep(now=when)
            if in_chunks:
                delivered += scheduler.actions_deliver(action_ids=ids, now=when)
            else:
                delivered += [
                    pk for pk in ids if scheduler.action_deliver(action_id=pk, now=when)
                ]
    return sorted(delivered)


def stored(tickets: list[Ticket]) -> dict[str, Any]:
    """What the escalations left in the database and the outbox, without the
    sequence-given ids of the rows they created (a rolled-back run used up some)."""
    ids = [t.pk for t in tickets]
    notes = Notification.objects.filter(idempotency_key__startswith="ticket:").order_by(
        "idempotency_key"
    )
    key_of = dict(notes.values_list("pk", "idempotency_key"))
    with connection.cursor() as cursor:
        # Each ticket's history in order (a chunk flags its tickets kind by kind, so
        # tickets' events interleave differently). pgh_created_at is the database's
        # now(), not the travelled clock.
        cursor.execute(
            "SELECT pgh_obj_id, pgh_label, first_response_breached, "
            "resolution_breached, escalation_level, status, assignee_id "
            "FROM service_ticketevent WHERE pgh_obj_id = ANY(%s) ORDER BY pgh_obj_id, pgh_id",
            [ids],
        )
        events = cursor.fetchall()
    return {
        "tickets": list(Ticket.objects.filter(pk__in=ids).order_by("pk").values()),
        "events": events,
        "notifications": [
            {
                **row,
                "grouped_into_id": key_of.get(row["grouped_into_id"]),
            }
            for row in notes.values(
                "recipient_id",
                "title",
                "body",
                "url",
                "reason",
                "group_key",
                "grouped_into_id",
                "idempotency_key",
                "emailed_at",
                "created_at",
                "read_at",
            )
        ],
        "actions": list(
            ScheduledAction.objects.filter(target_id__in=ids)
            .order_by("idempotency_key")
            .values(
                "kind",
                "target_id",
                "idempotency_key",
                "state",
                "attempts",
                "due_at",
                "done_at",
                "lease_until",
                "last_error",
            )
        ),
        "emails": sorted(
            (
                tuple(m.to),
                m.subject,
                m.body,
                m.from_email,
                tuple(sorted(m.extra_headers.items())),
            )
            for m in mail.outbox
        ),
    }


@pytest.mark.django_db
def test_the_batch_path_stores_the_same_as_one_by_one(
    desk: SimpleNamespace, caplog: Any
) -> None:
    made = day_of_tickets(desk)
    mail.outbox.clear()

    try:
        with transaction.atomic():
            single_delivered = carry_out_the_day(in_chunks=False)
            one_by_one = stored(made)
            raise _RolledBack
    except _RolledBack:
        pass
    mail.outbox.clear()
    assert "again in halves" not in caplog.text
    chunk_delivered = carry_out_the_day(in_chunks=True)
    in_chunks = stored(made)

    assert chunk_delivered == single_delivered
    for part in one_by_one:
        assert in_chunks[part] == one_by_one[part], part
    # The comparison is about something: the day escalated, e-mailed and grouped.
    notes = [n for n in in_chunks["notifications"] if n["group_key"].endswith(":sla")]
    assert len(notes) == 22
    assert len(in_chunks["emails"]) == 22
    assert all(note["emailed_at"] is not None for note in notes)
    assert any(note["grouped_into_id"] for note in notes)
    levels = {t["id"]: t["escalation_level"] for t in in_chunks["tickets"]}
    assert levels == {made[0].pk: 2, made[1].pk: 2, made[2].pk: 1, made[3].pk: 2}
    assert [t["first_response_breached"] for t in in_chunks["tickets"]] == [
        True,
        True,
        False,
        True,
    ]
    assert len(in_chunks["events"]) > len(made)  # the insert and the flags
    # The poison failed alone on each of the five beats from 11:00, in both, and was
    # backed off the same way.
    poison = next(
        a for a in in_chunks["actions"] if a["idempotency_key"].count(":") == 3
    )
    assert poison["state"] == State.PENDING and poison["attempts"] == 5
    assert poison["last_error"].startswith("ValueError")
    assert poison["due_at"] == at(TUE, 10, 30) + scheduler.retry_delay(5)
    assert "again in halves" in caplog.text
    due = [a for a in in_chunks["actions"] if a["due_at"] <= BEATS[-1]]
    assert {a["state"] for a in due} == {State.DONE}  # the managers' next is later


@pytest.mark.django_db
def test_a_poison_in_a_chunk_of_breaches_holds_back_none_of_the_others(
    desk: SimpleNamespace,
) -> None:
    made = day_of_tickets(desk)
    with time_machine.travel(BEATS[0], tick=False):
        scheduler.actions_deliver(
            action_ids=scheduler.actions_sweep(now=BEATS[0]), now=BEATS[0]
        )
    when = BEATS[1]
    with time_machine.travel(when, tick=False):
        ids = scheduler.actions_sweep(now=when)
        delivered = scheduler.actions_deliver(action_ids=ids, now=when)

    actions = ScheduledAction.objects.filter(pk__in=ids)
    assert len(ids) == 5  # four breaches (one stale) and the poison
    poison = actions.get(idempotency_key__endswith=":breach")
    assert sorted(delivered) == sorted(a.pk for a in actions if a.pk != poison.pk)
    assert poison.state == State.PENDING
    assert poison.due_at == when + scheduler.retry_delay(1)
    assert poison.last_error.startswith("ValueError")
    breached = Ticket.objects.filter(
        pk__in=[t.pk for t in made], first_response_breached=True, escalation_level=1
    )
    # The stale one is left alone; the poison's ticket escalates on its own breach.
    assert sorted(breached.values_list("pk", flat=True)) == sorted(
        [made[0].pk, made[1].pk, made[3].pk]
    )
    assert (
        Notification.objects.filter(
            idempotency_key__contains=":first_response:breach:",
            emailed_at__isnull=False,
        ).count()
        == 5
    )  # lead and agent, lead alone, lead and agent
