"""The rollups: a hand-computed day, and incremental refreshes equal a full rebuild."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.management import call_command
from django.db import connection

from crm.scheduler.models import ScheduledAction
from culture.dashboards import rollups, tasks
from culture.dashboards.models import (
    CoverageSnapshot,
    DailyActivity,
    PipelineSnapshot,
    RollupState,
)
from customers.models import Customer, FollowUp
from tests.dashboards.conftest import make_deal, pay
from tests.factories import (
    ContactLogFactory,
    CustomerFactory,
    FollowUpFactory,
    TicketFactory,
    UserFactory,
)

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 6, 15, 10, 0, tzinfo=SH)


def at(day: int, hour: int = 10) -> datetime:
    return datetime(2026, 6, day, hour, 0, tzinfo=SH)


def _rows(table: str) -> list[tuple]:
    """Every row but its refresh stamp, in key order."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT * FROM {table} ORDER BY 2, 3, 4, 5"  # noqa: S608 - fixed names
        )
        names = [c.name for c in cursor.description]
        keep = [i for i, n in enumerate(names) if n not in ("id", "refreshed_at")]
        return [tuple(row[i] for i in keep) for row in cursor.fetchall()]


def _monthly() -> list[tuple]:
    """The monthly table, and the daily rows summed per month the same way: the
    monthly table must always equal the latter."""
    metrics = ", ".join(rollups.METRICS)
    sums = ", ".join(f"sum({m})" for m in rollups.METRICS)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT month, owner_id, team_id, {metrics} "  # noqa: S608 - fixed names
            "FROM dashboards_monthlyactivity ORDER BY 1, 2, 3"
        )
        kept = cursor.fetchall()
        cursor.execute(
            f"SELECT date_trunc('month', day)::date, owner_id, team_id, {sums} "  # noqa: S608 - fixed names
            "FROM dashboards_dailyactivity GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
        )
        assert cursor.fetchall() == kept
    return kept


def _snapshot() -> dict[str, list[tuple]]:
    return {
        **{
            t: _rows(t)
            for t in (
                "dashboards_dailyactivity",
                "dashboards_pipelinesnapshot",
                "dashboards_coveragesnapshot",
            )
        },
        "dashboards_monthlyactivity": _monthly(),
    }


def _set_created(model, pk, when):
    model.objects.filter(pk=pk).update(created_at=when)


@pytest.fixture(autouse=True)
def _no_lag(monkeypatch):
    # A test is one transaction, so every event has the same time: with no lag the
    # watermark moves to the newest event and the refresh reads only later ones.
    monkeypatch.setattr(rollups, "LAG", timedelta(0))


@pytest.fixture
def world(sales_rep, teammate, stages):
    """Two salespeople of one team with customers, contacts, follow-ups, deals,
    payments and tickets on 10 and 11 June 2026."""
    alice = CustomerFactory(owner=sales_rep, tier="A")
    bob = CustomerFactory(owner=teammate, tier="A")
    carol = CustomerFactory(owner=sales_rep, tier="B")
    _set_created(Customer, alice.pk, at(10))
    _set_created(Customer, bob.pk, at(10, 23))  # still 10 June in Shanghai
    _set_created(Customer, carol.pk, at(11))
    ContactLogFactory(customer=alice, occurred_at=at(10))
    ContactLogFactory(customer=alice, occurred_at=at(11))
    ContactLogFactory(customer=bob, occurred_at=datetime(2026, 5, 1, tzinfo=SH))
    Customer.objects.filter(pk=alice.pk).update(last_contacted_at=at(11))
    Customer.objects.filter(pk=bob.pk).update(
        last_contacted_at=datetime(2026, 5, 1, tzinfo=SH)
    )
    # Due 10 June: one done on time, one done late, one still open (overdue by NOW).
    FollowUpFactory(
        customer=alice, due_at=at(10, 12), status="done", done_at=at(10, 11)
    )
    FollowUpFactory(customer=alice, due_at=at(10, 12), status="done", done_at=at(11))
    FollowUpFactory(customer=alice, due_at=at(10, 15))
    FollowUpFactory(customer=alice, due_at=at(10, 16), status="cancelled")
    won = make_deal(alice, amount="800000", stage="sign", status="won")
    won.closed_on = at(11).date()
    won.save()
    _set_created(type(won), won.pk, at(10))
    open_deal = make_deal(bob, amount="500000", stage="subscribe")
    _set_created(type(open_deal), open_deal.pk, at(11))
    pay(won, "300000", at(11).date())
    pay(won, "200000", at(11).date())
    t1 = TicketFactory(customer=alice, ticket_type="complaint")
    t2 = TicketFactory(customer=alice, ticket_type="repair")
    type(t1).objects.filter(pk=t1.pk).update(
        created_at=at(10), resolution_due_at=at(11), status="resolved"
    )
    type(t2).objects.filter(pk=t2.pk).update(
        created_at=at(10), resolution_due_at=at(11), resolution_breached=True
    )
    return {"alice": alice, "bob": bob, "carol": carol, "won": won, "open": open_deal}


def test_a_hand_computed_day(world, sales_rep, teammate):
    rollups.rebuild(now=NOW)

    day10 = DailyActivity.objects.get(day=at(10).date(), owner=sales_rep)
    assert (day10.new_customers, day10.contacts) == (1, 1)
    assert (day10.followups_due, day10.followups_on_time) == (3, 1)
    assert (day10.followups_late, day10.followups_overdue) == (1, 1)
    assert (day10.deals_created, day10.deals_created_amount) == (1, Decimal("800000"))
    assert (day10.tickets_opened, day10.complaints_opened) == (2, 1)
    bob10 = DailyActivity.objects.get(day=at(10).date(), owner=teammate)
    assert bob10.new_customers == 1  # 23:00 in Shanghai is still the 10th

    day11 = DailyActivity.objects.get(day=at(11).date(), owner=sales_rep)
    assert (day11.new_customers, day11.contacts) == (1, 1)
    assert (day11.deals_won, day11.deals_won_amount) == (1, Decimal("800000"))
    assert (day11.payments, day11.revenue) == (2, Decimal("500000"))
    assert (day11.sla_met, day11.sla_breached) == (1, 1)

    pipeline = PipelineSnapshot.objects.get()
    assert pipeline.day == NOW.date()
    assert (pipeline.open_count, pipeline.open_amount) == (1, Decimal("500000"))
    assert pipeline.weighted_amount == Decimal("300000.00")  # 认购 60 %

    mine = CoverageSnapshot.objects.get(owner=sales_rep)
    assert (mine.a_customers, mine.contacted_7, mine.contacted_30) == (1, 1, 1)
    theirs = CoverageSnapshot.objects.get(owner=teammate)
    assert (theirs.a_customers, theirs.contacted_30, theirs.contacted_90) == (1, 0, 1)


def test_incremental_refresh_equals_a_full_rebuild(world, sales_rep, teammate):
    rollups.rebuild(now=NOW)
    later = NOW + timedelta(hours=2)

    # A sequence of changes of every kind the daily table counts.
    alice, bob = world["alice"], world["bob"]
    Customer.objects.filter(pk=alice.pk).update(owner=teammate)  # reassigned
    ContactLogFactory(customer=bob, occurred_at=at(12))
    FollowUp.objects.filter(customer=alice, status="open").update(
        status="done", done_at=at(12)
    )
    pay(world["won"], "100000", at(12).date())
    moved = make_deal(bob, amount="90000", stage="visit")
    _set_created(type(moved), moved.pk, at(9))
    type(moved).objects.filter(pk=moved.pk).update(status="lost", lost_reason="预算")
    type(world["open"]).objects.filter(pk=world["open"].pk).update(
        stage=world["open"].stage.__class__.objects.get(code="pledge")
    )
    newcomer = CustomerFactory(owner=UserFactory(team=sales_rep.team))
    _set_created(Customer, newcomer.pk, at(12))
    TicketFactory(customer=bob, ticket_type="complaint")

    result = rollups.refresh(now=later)
    # 9 to 12 June (the reassigned customer's days among them) and the new ticket's day.
    assert result["days"] == 5
    incremental = _snapshot()
    assert rollups.refresh(now=later)  # a second run changes nothing
    assert _snapshot() == incremental

    rollups.rebuild(now=later)
    assert _snapshot() == incremental


def test_a_deleted_row_leaves_its_day(world, sales_rep):
    rollups.rebuild(now=NOW)
    world["carol"].contacts.all().delete()
    type(world["carol"]).objects.filter(pk=world["carol"].pk).update(
        merged_into=world["alice"]
    )
    rollups.refresh(now=NOW)
    day11 = DailyActivity.objects.get(day=at(11).date(), owner=sales_rep)
    assert day11.new_customers == 0  # merged away
    refreshed = _snapshot()
    rollups.rebuild(now=NOW)
    assert _snapshot() == refreshed


def test_the_monthly_rows_follow_the_touched_months(world, sales_rep):
    """A contact in March: March gets its monthly row; deleted, the refresh takes the
    month's row away again; in between and after, refresh equals rebuild."""
    from culture.dashboards.models import MonthlyActivity

    march = datetime(2026, 3, 31, 23, 30, tzinfo=SH)  # local March, UTC March too
    rollups.rebuild(now=NOW)
    contact = ContactLogFactory(customer=world["bob"], occurred_at=march)
    rollups.refresh(now=NOW)
    row = MonthlyActivity.objects.get(month=march.date().replace(day=1))
    assert row.contacts == 1
    refreshed = _snapshot()
    rollups.rebuild(now=NOW)
    assert _snapshot() == refreshed
    june = MonthlyActivity.objects.filter(month=NOW.date().replace(day=1))
    assert sum(june.values_list("contacts", flat=True)) == sum(
        DailyActivity.objects.filter(day__month=6).values_list("contacts", flat=True)
    )
    contact.delete()
    rollups.refresh(now=NOW)
    assert not MonthlyActivity.objects.filter(month=march.date().replace(day=1))
    refreshed = _snapshot()
    rollups.rebuild(now=NOW)
    assert _snapshot() == refreshed


def test_freshness_is_recorded_per_table(db):
    rollups.rebuild(now=NOW)
    fresh = rollups.freshness()
    assert set(fresh) == {"daily_activity", "pipeline", "coverage"}
    assert all(fresh.values())
    assert RollupState.objects.get(name="daily_activity").last_rebuilt_at


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
    assert RollupState.objects.get(name="daily_activity").last_updated_at


def test_rebuild_command(db, capsys):
    call_command("rollups_rebuild")
    assert "rollups rebuilt" in capsys.readouterr().out
