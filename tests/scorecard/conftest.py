"""A small hand-counted world for the scorecard's figures: four customers, six tickets,
six surveys, two recoveries, four work orders, three contacts and three assets on
10–13 June 2026 (Shanghai), the snapshot taken on 15 June. Every figure's expected
value is worked out in test_figures.py from the rows below."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine

from crm.core.models import AccessLog
from culture.satisfaction.models import RecoveryTask, Survey
from culture.scorecard import rollups
from culture.segments.models import Segment, SegmentMember
from customers.models import Customer, CustomerProfile
from service.models import Ticket, TicketTransition, WorkOrder
from tests.factories import (
    AssetFactory,
    ContactLogFactory,
    CustomerFactory,
    DepartmentFactory,
    TicketFactory,
    TicketMessageFactory,
    WorkOrderFactory,
)

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 6, 15, 10, 0, tzinfo=SH)
START, END = date(2026, 6, 10), date(2026, 6, 15)


def at(day: int, hour: int = 10, minute: int = 0) -> datetime:
    return datetime(2026, 6, day, hour, minute, tzinfo=SH)


def make_survey(
    ticket: Ticket,
    kind: str,
    score: int | None,
    *,
    sent: datetime,
    answered: datetime | None = None,
    team: Any = None,
) -> Survey:
    survey = Survey.objects.create(
        source="ticket",
        kind=kind,
        customer=ticket.customer,
        ticket=ticket,
        team=team or ticket.team,
        status="answered" if answered else "sent",
        expires_at=sent + timedelta(days=7),
        sent_at=sent,
        answered_at=answered,
        score=score if answered else None,
    )
    Survey.objects.filter(pk=survey.pk).update(created_at=sent)
    return survey


def transition(ticket: Ticket, frm: str, to: str, when: datetime) -> None:
    row = TicketTransition.objects.create(ticket=ticket, from_status=frm, to_status=to)
    TicketTransition.objects.filter(pk=row.pk).update(created_at=when)


@pytest.fixture(autouse=True)
def _no_lag(monkeypatch):
    # A test is one transaction: with no lag the watermark moves to the newest event.
    monkeypatch.setattr(rollups, "LAG", timedelta(0))


@pytest.fixture
def world(sales_rep, teammate, team_a, team_b) -> dict[str, Any]:
    alice = CustomerFactory(owner=sales_rep, tier="A", province="浙江省")
    bob = CustomerFactory(owner=teammate, tier="A", province="广东省")
    carol = CustomerFactory(owner=None, team=team_a, tier="B", stage="dormant")
    dave = CustomerFactory(owner=sales_rep, tier="C", kind="dealer", province="浙江")
    Customer.objects.filter(pk=alice.pk).update(last_contacted_at=at(13))
    CustomerProfile.objects.create(
        customer=alice, preferred_channel="phone", interests="钓鱼"
    )
    CustomerProfile.objects.create(customer=bob, preferred_channel="phone")

    def ticket(customer, team=team_a, **fields):
        return TicketFactory(customer=customer, team=team, **fields)

    # t1: met, one reply (first contact). t2: resolution breached, two replies.
    t1 = ticket(
        alice, status="resolved", resolution_due_at=at(10, 18), resolved_at=at(10, 12)
    )
    TicketMessageFactory(ticket=t1, kind="reply")
    t2 = ticket(
        bob,
        team=team_b,
        status="resolved",
        resolution_due_at=at(10, 15),
        resolved_at=at(10, 20),
        resolution_breached=True,
    )
    TicketMessageFactory(ticket=t2, kind="reply")
    TicketMessageFactory(ticket=t2, kind="call")
    # t3 (a dealer's): both clocks breached, reopened within the day, resolved again.
    t3 = ticket(
        dave,
        status="closed",
        resolution_due_at=at(11, 18),
        resolved_at=at(11, 12),
        first_response_breached=True,
        resolution_breached=True,
    )
    transition(t3, "in_progress", "resolved", at(11, 9))
    transition(t3, "resolved", "in_progress", at(11, 10))
    transition(t3, "in_progress", "resolved", at(11, 12))
    # t4: still running, not breached (not counted yet).
    t4 = ticket(alice, status="in_progress", resolution_due_at=at(11, 18))
    # t5: a repair of an asset under warranty.
    unit = AssetFactory(customer=alice, warranty_until=date(2027, 1, 1))
    AssetFactory(customer=bob, warranty_until=date(2027, 1, 1))
    AssetFactory(customer=bob, warranty_until=date(2025, 1, 1))
    t5 = ticket(alice, ticket_type="repair", asset=unit)
    Ticket.objects.filter(pk=t5.pk).update(created_at=at(11, 8))
    t6 = ticket(alice)
    for t in (t1, t2, t3, t4, t6):
        Ticket.objects.filter(pk=t.pk).update(created_at=at(9))

    s1 = make_survey(t1, "csat", 5, sent=at(10, 13), answered=at(10, 14))
    s2 = make_survey(t2, "csat", 2, sent=at(10, 21), answered=at(10, 22))
    s3 = make_survey(t3, "csat", 4, sent=at(11, 13), answered=at(11, 14))
    s4 = make_survey(t5, "nps", 3, sent=at(11, 13), answered=at(11, 15))
    make_survey(t4, "csat", None, sent=at(11, 13))
    make_survey(t6, "nps", 9, sent=at(11, 13), answered=at(11, 16))

    r1 = RecoveryTask.objects.create(
        survey=s2,
        customer=bob,
        team=team_b,
        due_at=at(11, 22),
        status="done",
        called_back_at=at(11, 8),
        closed_at=at(11, 8),
        outcome="resolved",
    )
    RecoveryTask.objects.filter(pk=r1.pk).update(created_at=at(10, 22))
    r2 = RecoveryTask.objects.create(
        survey=s4, customer=alice, team=team_a, due_at=at(12, 15)
    )
    RecoveryTask.objects.filter(pk=r2.pk).update(created_at=at(11, 15))

    works = DepartmentFactory(name="工程部")
    WorkOrderFactory(
        ticket=t1,
        department=works,
        due_at=at(10, 12),
        status="done",
        completed_at=at(10, 11),
        rating=5,
    )
    WorkOrderFactory(
        ticket=t2,
        department=works,
        due_at=at(10, 12),
        status="done",
        completed_at=at(10, 14),
        rating=3,
    )
    WorkOrderFactory(ticket=t3, department=works, due_at=at(11, 12))
    WorkOrderFactory(ticket=t3, department=works, due_at=at(11, 12), status="rejected")

    ContactLogFactory(customer=alice, author=sales_rep, occurred_at=at(12, 10))
    ContactLogFactory(customer=alice, author=sales_rep, occurred_at=at(13, 10))
    ContactLogFactory(customer=dave, author=sales_rep, occurred_at=at(12, 10))
    with time_machine.travel(at(12, 9, 30), tick=False):  # the log is append-only
        AccessLog.objects.create(
            user=sales_rep,
            username=sales_rep.username,
            action="customer_viewed",
            object_type="customer",
            object_id=alice.pk,
        )

    segment = Segment.objects.create(name="浙江大客户", owner=sales_rep)
    SegmentMember.objects.create(segment=segment, customer=alice, since=at(1))
    return {
        "alice": alice,
        "bob": bob,
        "carol": carol,
        "dave": dave,
        "tickets": [t1, t2, t3, t4, t5, t6],
        "surveys": [s1, s2, s3, s4],
        "recoveries": [r1, r2],
        "segment": segment,
        "works": works,
        "work_orders": list(WorkOrder.objects.order_by("pk")),
    }
