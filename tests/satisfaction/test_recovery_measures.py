"""The recovery figures (docs/satisfaction.md, "服务补救 / Recovery") against a world
counted by hand.

Period 2026-03-01 – 03-08 (Asia/Shanghai), measured at 03-08 12:00. Team A:
1. opened 03-02 10:00, recorded 14:00 (4 h, in time)
2. opened 03-03 10:00, recorded 03-04 16:00 (30 h, late)
3. opened 03-05 10:00, recorded 20:00 (10 h, in time)
4. opened 03-06 10:00, open, due 03-07 10:00 (overdue: settled, not in time)
5. opened 03-07 23:00, open, due 03-08 23:00 (not yet due: not settled)
6. opened 02-20 10:00 (before the period), open, overdue
Team B:
7. opened 03-02 10:00, recorded 12:00 (2 h, in time)

Team A: opened 5, done 3 (rate 60 %), in time 2 of 4 settled (50 %), mean
(4 + 30 + 10) / 3 = 14.67 h, median 10 h, open now 3 (4, 5, 6), overdue now 2 (4, 6).
All: opened 6, done 4, in time 3 of 5 settled, mean (4 + 30 + 10 + 2) / 4 = 11.5 h,
median of 2, 4, 10, 30 = 7 h, open now 3, overdue now 2.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from culture.satisfaction import recovery
from culture.satisfaction.models import RecoveryTask
from culture.satisfaction.recovery_selectors import (
    recovery_figures,
    recovery_figures_by_team,
)
from tests.factories import TeamFactory
from tests.satisfaction.recovery_builders import answered_survey

SH = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 3, 1, tzinfo=SH)
END = datetime(2026, 3, 8, tzinfo=SH) + timedelta(days=1)
NOW = datetime(2026, 3, 8, 12, 0, tzinfo=SH)


def at(day: int, hour: int, month: int = 3) -> datetime:
    return datetime(2026, month, day, hour, 0, tzinfo=SH)


def task(team, opened: datetime, hours_to_record: float | None) -> RecoveryTask:
    made = recovery.recovery_open_for(
        answered_survey(team=team, answered_at=opened), now=opened
    )
    changes = {"created_at": opened, "due_at": opened + timedelta(hours=24)}
    if hours_to_record is not None:
        closed = opened + timedelta(hours=hours_to_record)
        changes.update(
            status="done",
            called_back_at=closed,
            closed_at=closed,
            outcome="resolved",
            note="已回访",
        )
    RecoveryTask.objects.filter(pk=made.pk).update(**changes)
    return made


@pytest.fixture
def world(db):
    team_a, team_b = TeamFactory(name="客服一组"), TeamFactory(name="客服二组")
    task(team_a, at(2, 10), 4)
    task(team_a, at(3, 10), 30)
    task(team_a, at(5, 10), 10)
    task(team_a, at(6, 10), None)
    task(team_a, at(7, 23), None)
    task(team_a, at(20, 10, month=2), None)
    task(team_b, at(2, 10), 2)
    return team_a, team_b


def test_one_teams_figures(world):
    team_a, _team_b = world
    figures = recovery_figures(start=START, end=END, team_id=team_a.pk, now=NOW)

    assert (figures.opened, figures.done, figures.done_in_time, figures.settled) == (
        5,
        3,
        2,
        4,
    )
    assert figures.rate == pytest.approx(0.6)
    assert figures.within_share == pytest.approx(0.5)
    assert figures.mean_hours == pytest.approx(44 / 3)
    assert figures.median_hours == pytest.approx(10)
    assert (figures.open_now, figures.overdue_now) == (3, 2)


def test_every_teams_figures(world):
    figures = recovery_figures(start=START, end=END, now=NOW)

    assert (figures.opened, figures.done, figures.done_in_time, figures.settled) == (
        6,
        4,
        3,
        5,
    )
    assert figures.rate == pytest.approx(4 / 6)
    assert figures.within_share == pytest.approx(3 / 5)
    assert figures.mean_hours == pytest.approx(11.5)
    assert figures.median_hours == pytest.approx(7)
    assert (figures.open_now, figures.overdue_now) == (3, 2)


def test_figures_by_team_in_one_query(world, django_assert_num_queries):
    team_a, team_b = world
    with django_assert_num_queries(1):
        by_team = recovery_figures_by_team(start=START, end=END, now=NOW)

    assert set(by_team) == {team_a.pk, team_b.pk}
    assert by_team[team_a.pk] == recovery_figures(
        start=START, end=END, team_id=team_a.pk, now=NOW
    )
    b = by_team[team_b.pk]
    assert (b.opened, b.done, b.done_in_time, b.mean_hours, b.open_now) == (
        1,
        1,
        1,
        pytest.approx(2),
        0,
    )


@pytest.mark.django_db
def test_an_empty_period_has_no_rates():
    figures = recovery_figures(start=START, end=END, now=NOW)

    assert figures.opened == 0
    assert figures.rate is None and figures.within_share is None
    assert figures.mean_hours is None and figures.median_hours is None
