"""Personal figures (个人指标) on the home page: each figure against a hand-computed
example, per role (sales, service desk, manager), the period switch, and the records
behind each figure."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from crm.accounts.roles import Role
from culture.satisfaction.models import RecoveryTask, Survey
from culture.scorecard import personal
from customers.models import ContactLog, Customer, FollowUp
from service.models import Ticket
from tests.factories import (
    ContactLogFactory,
    CustomerFactory,
    FollowUpFactory,
    TicketFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

DAY = timedelta(days=1)
HOUR = timedelta(hours=1)


def followup(assignee, due, *, status="open", done=None):
    return FollowUpFactory(
        customer=CustomerFactory(owner=assignee),
        assignee=assignee,
        due_at=due,
        status=status,
        done_at=done,
    )


def survey(staff, *, score=None, answered=None, created=None, kind="csat", sent=True):
    customer = CustomerFactory(owner=staff)
    row = Survey.objects.create(
        source=Survey.Source.TICKET,
        kind=kind,
        customer=customer,
        ticket=TicketFactory(customer=customer, assignee=staff),
        team=staff.team,
        staff=staff,
        status=Survey.Status.ANSWERED if answered else Survey.Status.SENT,
        expires_at=timezone.now() + 30 * DAY,
        sent_at=(created or answered or timezone.now()) if sent else None,
        answered_at=answered,
        score=score,
        comment="服务很好" if score and score >= 4 else "",
    )
    if created is not None:
        Survey.objects.filter(pk=row.pk).update(created_at=created)
    return row


def recovery(assignee, due, *, closed=None, team=None):
    s = survey(assignee, score=2, answered=due - 24 * HOUR)
    return RecoveryTask.objects.create(
        survey=s,
        customer=s.customer,
        team=team or assignee.team,
        assignee=assignee,
        due_at=due,
        status=RecoveryTask.Status.DONE if closed else RecoveryTask.Status.OPEN,
        called_back_at=closed,
        closed_at=closed,
        outcome=RecoveryTask.Outcome.RESOLVED if closed else "",
        note="已回访，客户认可处理结果" if closed else "",
    )


def ticket(assignee, due, *, status="resolved", first=False, resolution=False, **kw):
    return TicketFactory(
        assignee=assignee,
        team=assignee.team,
        status=status,
        resolution_due_at=due,
        first_response_due_at=due - 2 * HOUR,
        first_response_breached=first,
        resolution_breached=resolution,
        **kw,
    )


@pytest.fixture
def now():
    return timezone.now()


@pytest.fixture
def sales_world(now, sales_rep, teammate, outsider):
    """The sales rep's 30 days, written out below (hand-computed in the tests)."""
    # Follow-ups: on time, late, overdue (open), old, future, cancelled.
    followup(sales_rep, now - 2 * DAY, status="done", done=now - 3 * DAY)
    followup(sales_rep, now - 5 * DAY, status="done", done=now - 4 * DAY)
    followup(sales_rep, now - DAY)
    followup(sales_rep, now - 40 * DAY, status="done", done=now - 41 * DAY)
    followup(sales_rep, now + DAY)
    followup(sales_rep, now - 3 * DAY, status="cancelled")
    followup(teammate, now - 2 * DAY, status="done", done=now - 2 * DAY)
    followup(outsider, now - DAY, status="done", done=now - 2 * DAY)  # other team
    # Contacts: c1 twice and c2 in the period, c3 40 days ago; the teammate c1 and c4.
    c1 = CustomerFactory(owner=sales_rep, last_contacted_at=now - DAY)
    c2 = CustomerFactory(owner=sales_rep, last_contacted_at=now - 10 * DAY)
    c3 = CustomerFactory(owner=sales_rep, last_contacted_at=now - 40 * DAY)
    c4 = CustomerFactory(owner=teammate, last_contacted_at=now - 5 * DAY)
    for customer, author, ago in [
        (c1, sales_rep, DAY),
        (c1, sales_rep, 2 * DAY),
        (c2, sales_rep, 10 * DAY),
        (c3, sales_rep, 40 * DAY),
        (c1, teammate, DAY),
        (c4, teammate, 5 * DAY),
        (c4, outsider, DAY),
    ]:
        ContactLogFactory(customer=customer, author=author, occurred_at=now - ago)
    # CSAT: 5, 4, 2 answered in the period; 1 answered 40 days ago; an NPS 10; one
    # sent and not answered; the teammate's 5.
    survey(sales_rep, score=5, answered=now - DAY, created=now - 2 * DAY)
    survey(sales_rep, score=4, answered=now - 3 * DAY, created=now - 4 * DAY)
    survey(sales_rep, score=2, answered=now - 5 * DAY, created=now - 6 * DAY)
    survey(sales_rep, score=1, answered=now - 40 * DAY, created=now - 41 * DAY)
    survey(sales_rep, score=10, answered=now - DAY, created=now - 2 * DAY, kind="nps")
    survey(sales_rep, created=now - 3 * DAY)
    survey(teammate, score=5, answered=now - DAY, created=now - 2 * DAY)


def figures_by_key(user, days, now):
    data = personal.personal_figures(user=user, days=days, now=now)
    return data, {f["key"]: f for f in data["figures"]}


def test_the_sales_reps_figures_and_their_teams_as_computed_by_hand(
    now, sales_world, sales_rep
):
    data, f = figures_by_key(sales_rep, 30, now)
    assert data["team_name"] == "销售一组"
    # Follow-ups due in 30 days, not cancelled: on time, late, overdue -> 1 of 3; the
    # teammate's on-time one makes the team's 2 of 4 (the other team's is not counted).
    assert f["followups"]["mine"] == personal.Share(1, 3)
    assert f["followups"]["mine"].percent == 33
    assert f["followups"]["team"] == personal.Share(2, 4)
    # Distinct customers contacted: c1, c2 (c3 was 40 days ago); team: c1, c2, c4.
    assert f["contacts"]["mine"] == 2
    assert f["contacts"]["team"] == 3
    # Owned customers contacted in the period: c1, c2 of c1-c3, plus every survey's
    # customer (owned by the rep, never contacted) in the denominator.
    owned_mine = Customer.objects.filter(owner=sales_rep).count()
    assert f["contacts"]["owned_mine"] == personal.Share(2, owned_mine)
    owned_team = Customer.objects.filter(owner__team=sales_rep.team).count()
    assert f["contacts"]["owned_team"] == personal.Share(3, owned_team)
    # CSAT answers in the period: 5, 4, 2 -> 2 of 3 satisfied (67 %); the NPS answer and
    # the one of 40 days ago are not counted. Team: + the teammate's 5 -> 3 of 4.
    assert f["csat"]["mine"] == personal.Share(2, 3)
    assert f["csat"]["mine"].percent == 67
    assert f["csat"]["team"] == personal.Share(3, 4)
    # Sent in the period: the three answered and the unanswered one -> 3 of 4.
    assert f["csat"]["response_mine"] == personal.Share(3, 4)
    assert f["csat"]["response_team"] == personal.Share(4, 5)
    # No tickets assigned to the rep, no recoveries: nothing to count.
    assert f["sla"]["mine"] == personal.Share(0, 0)
    assert f["sla"]["mine"].percent is None
    assert f["recoveries"]["mine"] == personal.Share(0, 0)


def test_a_shorter_period_counts_only_its_days(now, sales_world, sales_rep):
    _data, f = figures_by_key(sales_rep, 7, now)
    # 7 days: the late one (due 5 days ago) and the others stay; same as 30 here.
    assert f["followups"]["mine"] == personal.Share(1, 3)
    assert f["contacts"]["mine"] == 1  # c2 was contacted 10 days ago
    assert f["csat"]["mine"] == personal.Share(2, 3)
    _data, f = figures_by_key(sales_rep, 90, now)
    # 90 days: the old follow-up (on time), c3, and the CSAT 1 come in.
    assert f["followups"]["mine"] == personal.Share(2, 4)
    assert f["contacts"]["mine"] == 3
    assert f["csat"]["mine"] == personal.Share(2, 4)


def test_recoveries_within_24_hours_mine_and_the_teams(now, sales_rep, teammate):
    recovery(sales_rep, now - 2 * DAY, closed=now - 3 * DAY)  # on time
    recovery(sales_rep, now - DAY, closed=now - 12 * HOUR)  # late
    recovery(sales_rep, now - HOUR)  # open, overdue
    recovery(sales_rep, now + 10 * HOUR)  # open, not yet due: not in the period
    recovery(sales_rep, now - 40 * DAY, closed=now - 41 * DAY)  # before the period
    recovery(teammate, now - 2 * DAY, closed=now - 2 * DAY - HOUR)  # the team's
    _data, f = figures_by_key(sales_rep, 30, now)
    r = f["recoveries"]
    assert r["mine"] == personal.Share(1, 3)
    assert (r["open_mine"], r["overdue_mine"]) == (2, 1)
    assert r["team"] == personal.Share(2, 4)
    assert (r["open_team"], r["overdue_team"]) == (2, 1)


@pytest.fixture
def desk_mate(service_agent):
    return UserFactory(username="service_b", team=service_agent.team, role=Role.SERVICE)


def test_the_desk_agents_sla_compliance(now, service_agent, desk_mate):
    met = ticket(service_agent, now - DAY)
    ticket(service_agent, now - 2 * DAY, resolution=True)  # resolved late
    ticket(service_agent, now - 3 * DAY, status="in_progress", first=True)  # breached
    ticket(service_agent, now - HOUR, status="in_progress")  # not marked: not counted
    ticket(service_agent, now - 40 * DAY)  # before the period
    ticket(service_agent, now - DAY, merged_into=met)  # merged: not counted
    ticket(desk_mate, now - DAY)  # the team's
    _data, f = figures_by_key(service_agent, 30, now)
    assert f["sla"]["mine"] == personal.Share(1, 3)
    assert f["sla"]["mine"].percent == 33
    assert f["sla"]["team"] == personal.Share(2, 4)


def test_someone_without_a_team_has_no_team_column(now, sales_rep):
    sales_rep.team = None
    sales_rep.save()
    followup(sales_rep, now - DAY, status="done", done=now - 2 * DAY)
    data, f = figures_by_key(sales_rep, 30, now)
    assert data["team_name"] is None
    assert f["followups"]["mine"] == personal.Share(1, 1)
    assert f["followups"]["team"] is None


# --- the home pages ----------------------------------------------------------------------


def row_text(html: str, key: str) -> str:
    start = html.index(f'data-figure="{key}"')
    return html[start : html.index("</tr>", start)]


def test_the_sales_home_shows_the_panel_with_a_period_switch(
    login, sales_world, sales_rep
):
    client = login(sales_rep)
    html = client.get(reverse("home")).content.decode()
    assert 'data-testid="personal-figures"' in html
    assert "近 30 天" in html
    followups = row_text(html, "followups")
    assert "33%" in followups and "1/3" in followups
    assert "50%" in followups and "2/4" in followups  # the team's
    csat = row_text(html, "csat")
    assert "67%" in csat and "回复率 75%" in csat
    assert "销售一组" in html
    # Every figure says what it counts (a tooltip and the 指标说明 list) and links to
    # its records.
    for key in personal.FIGURES:
        assert f'data-definition="{key}"' in html
        assert f'data-testid="personal-link-{key}"' in html
    assert "到期前完成的比例" in html
    html = client.get(reverse("home"), {"days": "90"}).content.decode()
    assert "近 90 天" in html
    assert "2/4" in row_text(html, "followups")
    # Anything but 7, 30 or 90 is the default 30.
    html = client.get(reverse("home"), {"days": "100000"}).content.decode()
    assert "近 30 天" in html


def test_the_desk_agents_home_shows_the_panel(login, now, service_agent):
    ticket(service_agent, now - DAY)
    html = login(service_agent).get(reverse("home")).content.decode()
    assert 'data-testid="personal-figures"' in html
    assert "100%" in row_text(html, "sla")
    assert "客服组" in html


def test_a_managers_home_has_no_personal_panel(login, manager):
    html = login(manager).get(reverse("home")).content.decode()
    assert 'data-testid="personal-figures"' not in html


# --- the records behind a figure ---------------------------------------------------------


def test_the_records_behind_the_follow_up_figure_are_the_reps_own(
    login, now, sales_world, sales_rep, teammate
):
    client = login(sales_rep)
    url = reverse("scorecard_personal:detail", args=["followups"])
    html = client.get(url, {"days": "30"}).content.decode()
    verdicts = {
        "yes": html.count('data-ok="yes"'),
        "no": html.count('data-ok="no"'),
    }
    assert verdicts == {"yes": 1, "no": 2}
    assert "逾期完成" in html and "逾期未完成" in html and "按时完成" in html
    teammates = FollowUp.objects.filter(assignee=teammate).get()
    assert teammates.note not in html


def test_the_records_behind_each_figure_open(login, now, sales_world, sales_rep):
    client = login(sales_rep)
    recovery(sales_rep, now - HOUR)
    for key in personal.FIGURES:
        response = client.get(reverse("scorecard_personal:detail", args=[key]))
        assert response.status_code == 200, key
    html = client.get(
        reverse("scorecard_personal:detail", args=["contacts"]), {"days": "7"}
    ).content.decode()
    assert (
        html.count("<tr>") - 1
        == ContactLog.objects.filter(
            author=sales_rep, occurred_at__gte=now - 7 * DAY
        ).count()
    )
    html = client.get(
        reverse("scorecard_personal:detail", args=["csat"])
    ).content.decode()
    assert "5 分" in html and "2 分" in html and "10 分" not in html
    assert client.get("/scorecard/me/nonsense/").status_code == 404
    html = client.get(
        reverse("scorecard_personal:detail", args=["recoveries"])
    ).content.decode()
    task = RecoveryTask.objects.get(assignee=sales_rep)
    assert reverse("recovery:task_detail", args=[task.pk]) in html
    assert "已超时，未完成" in html


def test_the_detail_list_of_sla_tickets(login, now, service_agent):
    ticket(service_agent, now - DAY, subject="空调不制冷")
    ticket(service_agent, now - 2 * DAY, resolution=True, subject="漏水")
    client = login(service_agent)
    html = client.get(
        reverse("scorecard_personal:detail", args=["sla"])
    ).content.decode()
    assert "空调不制冷" in html and "漏水" in html
    assert html.count('data-ok="yes"') == 1 and html.count('data-ok="no"') == 1


def test_the_sql_names_the_models_tables():
    from django.apps import apps

    for label in [
        "customers.FollowUp",
        "customers.ContactLog",
        "customers.Customer",
        "satisfaction.Survey",
        "satisfaction.RecoveryTask",
        "service.Ticket",
        "accounts.User",
        "accounts.Team",
    ]:
        assert apps.get_model(label)._meta.db_table in personal._SQL


def test_the_sql_has_no_unknown_ticket_status():
    assert {"resolved", "closed"} <= set(Ticket.Status.values)
