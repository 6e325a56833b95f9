"""The scorecard's rollups: incremental refreshes equal a full rebuild, the refresh
is a scheduled action that re-arms itself, and the rebuild command."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from crm.scheduler.models import ScheduledAction
from culture.satisfaction.models import RecoveryTask, Survey
from culture.scorecard import rollups, tasks
from culture.scorecard.models import ScorecardState
from culture.segments.models import SegmentMember, SegmentMembershipEvent
from customers.models import ContactLog, Customer
from service.models import Ticket, WorkOrder
from tests.factories import ContactLogFactory, TicketFactory
from tests.scorecard.conftest import at, make_survey


def _rows(table: str) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {table}")  # noqa: S608 - fixed names
        names = [c.name for c in cursor.description]
        keep = [i for i, n in enumerate(names) if n not in ("id", "refreshed_at")]
        return sorted(
            (tuple(row[i] for i in keep) for row in cursor.fetchall()),
            key=repr,
        )


def _tables() -> dict[str, list[tuple]]:
    return {
        t: _rows(t) for t in ("scorecard_scorecarddaily", "scorecard_scorecardsnapshot")
    }


@pytest.mark.django_db
def test_incremental_refresh_equals_a_rebuild(world, team_b, teammate):
    rollups.refresh()  # the first run is a rebuild
    assert _rows("scorecard_scorecarddaily")
    before = _tables()
    rollups.refresh()
    assert _tables() == before  # running it again changes nothing

    now = timezone.now()
    bob, dave = world["bob"], world["dave"]
    t1, _t2, t3, t4, _t5, _t6 = world["tickets"]
    # Bob moves team and region (his surveys, tickets, work orders, contacts move).
    customer = Customer.objects.get(pk=bob.pk)
    customer.team = team_b
    customer.province = "北京市"
    customer.save()
    # t4 breaches and is resolved; t1 moves to team b (its work order with it).
    ticket = Ticket.objects.get(pk=t4.pk)
    ticket.resolution_breached = True
    ticket.status = "resolved"
    ticket.resolved_at = at(12)
    ticket.save()
    ticket = Ticket.objects.get(pk=t1.pk)
    ticket.team = team_b
    ticket.save()
    # The open recovery is recorded; the pending survey is answered now.
    recovery = RecoveryTask.objects.get(pk=world["recoveries"][1].pk)
    recovery.status = "done"
    recovery.called_back_at = recovery.closed_at = now
    recovery.outcome = "partly"
    recovery.save()
    Survey.objects.filter(ticket=t4).update(status="answered", answered_at=now, score=1)
    # A new survey with an earlier send time, a new contact, a deleted contact.
    t7 = TicketFactory(customer=dave, team=team_b)
    make_survey(t7, "csat", 3, sent=at(12), answered=at(12, 11))
    ContactLogFactory(customer=bob, author=teammate, occurred_at=at(14))
    ContactLog.objects.filter(customer=dave).delete()
    # The open work order is done, late.
    work = WorkOrder.objects.get(ticket=t3, status="open")
    work.status = "done"
    work.completed_at = now
    work.rating = 2
    work.save()
    # Bob joins the segment.
    SegmentMember.objects.create(segment=world["segment"], customer=bob, since=now)
    SegmentMembershipEvent.objects.create(
        segment=world["segment"], customer=bob, action="entered", at=now
    )

    result = rollups.refresh()
    assert result["days"] < 30  # only the touched days, not all history
    incremental = _tables()
    assert incremental != before
    rollups.rebuild()
    assert _tables() == incremental


def test_the_refresh_is_a_scheduled_action_that_arms_the_next(db):
    tasks.rollups_arm_task()
    tasks.rollups_arm_task()  # a second beat tick in the same slot adds nothing
    first = ScheduledAction.objects.get(kind=rollups.REFRESH_KIND)
    following = ScheduledAction.objects.filter(
        kind=rollups.REFRESH_KIND, state="pending"
    ).exclude(pk=first.pk)
    with time_machine.travel(first.due_at + timedelta(seconds=5), tick=False):
        rollups.refresh_handler(first)
        assert following.count() == 1
        assert following.get().due_at == first.due_at + rollups.interval()
        rollups.refresh_handler(first)  # redelivered: nothing scheduled twice
        assert following.count() == 1
    assert ScorecardState.objects.get(name="daily").last_updated_at


def test_rebuild_command(db, capsys):
    call_command("scorecard_rebuild")
    assert "scorecard rollups rebuilt" in capsys.readouterr().out
    assert set(rollups.freshness()) == {"daily", "snapshot"}
    assert all(rollups.freshness().values())
