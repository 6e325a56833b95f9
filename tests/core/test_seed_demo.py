"""`seed_demo`: the demo logins `make run` prints work, and running it again is harmless.

Seeding takes seconds (customers, their activity and the service desk demo), so each
test seeds as few times as its story needs.
"""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from crm.accounts.models import Department, Team, User
from customers.models import Customer
from service.property import demo as property_demo
from tests.factories import UserFactory

DEMO_PASSWORD = "kehu-demo"  # what `make run` prints when CRM_DEMO_PASSWORD is unset
# username: (group, home page title)
DEMO_USERS = {
    "admin": ("admin", "系统管理"),
    "manager1": ("manager", "部门概览"),
    "sales1": ("sales", "我的一天"),
    "sales2": ("sales", "我的一天"),
    "service1": ("service", "客服工作台"),
}


@pytest.fixture
def seed(db, monkeypatch):
    monkeypatch.delenv("CRM_DEMO_PASSWORD", raising=False)
    # The demo project in two buildings (200 units) rather than ten: the same path,
    # a fifth of the time (the 1,000-unit seed is timed in docs/handover.md).
    monkeypatch.setattr(property_demo, "BUILDINGS", 2)

    def _seed(**options: object) -> str:
        out = StringIO()
        call_command("seed_demo", stdout=out, **options)
        return out.getvalue()

    return _seed


def _counts() -> dict[str, int]:
    return {
        "users": User.objects.count(),
        "teams": Team.objects.count(),
        "departments": Department.objects.count(),
        "customers": Customer.objects.count(),
    }


def _logs_in_to(username: str, password: str) -> str | None:
    """The home page a fresh browser reaches with the login form, or None."""
    browser = Client()
    response = browser.post(
        reverse("login"), {"username": username, "password": password}
    )
    if response.status_code != 302:
        return None
    assert response["Location"] == reverse("home")
    home = browser.get(reverse("home"))
    assert home.status_code == 200
    return home.content.decode()


def test_seed_demo_twice_gives_every_role_a_working_login_and_adds_nothing(seed):
    first = seed(customers=30)
    after_first = _counts()
    # The demo project's owners are customers too (service/property/demo.py).
    assert after_first["customers"] == 30 + property_demo.owner_count()
    assert "30 customers added" in first

    users = {u.username: u for u in User.objects.filter(username__in=DEMO_USERS)}
    assert set(users) == set(DEMO_USERS)
    for username, (group, _) in DEMO_USERS.items():
        assert set(users[username].groups.values_list("name", flat=True)) == {group}
    assert users["admin"].is_superuser and users["admin"].is_staff
    assert not users["sales1"].is_staff
    assert users["sales1"].team.name == "销售一组"
    assert users["sales2"].team.name == "销售二组"
    assert users["sales1"].team.department == users["sales2"].team.department

    # Someone changed a demo password in between: the second run keeps it.
    users["sales2"].set_password("my-own-secret-9")
    users["sales2"].save()

    second = seed(customers=30)
    assert _counts() == after_first
    assert "0 customers added" in second

    for username, (_, title) in DEMO_USERS.items():
        password = "my-own-secret-9" if username == "sales2" else DEMO_PASSWORD
        home = _logs_in_to(username, password)
        assert home is not None, f"{username} cannot log in"
        assert title in home
    assert _logs_in_to("sales2", DEMO_PASSWORD) is None

    browser = Client()
    browser.login(username="sales1", password=DEMO_PASSWORD)
    listing = browser.get(reverse("customers:customer_list")).content.decode()
    assert 'data-testid="customer-table"' in listing


def test_crm_demo_password_sets_the_demo_password(seed, monkeypatch):
    monkeypatch.setenv("CRM_DEMO_PASSWORD", "another-demo-pw-7")
    seed(customers=0)
    assert _logs_in_to("manager1", "another-demo-pw-7") is not None
    assert _logs_in_to("manager1", DEMO_PASSWORD) is None


def test_if_empty_leaves_an_existing_installation_alone(seed):
    UserFactory(username="admin", team=None)
    before = _counts()
    out = seed(customers=50, if_empty=True)
    assert _counts() == before
    assert "already present" in out


def test_every_demo_phone_number_is_one_the_customer_form_accepts(seed):
    """A demo customer whose number the form refuses cannot be edited at all."""
    from customers.phones import normalise_phone

    seed(customers=400)
    numbers = list(Customer.objects.values_list("phone", flat=True))
    # The demo project's owners are customers too, and checked with the rest.
    assert len(numbers) == 400 + property_demo.owner_count()
    refused = []
    for number in numbers:
        try:
            normalise_phone(number)
        except Exception:  # noqa: BLE001 - any refusal is what this test counts
            refused.append(number)
    assert refused == []


def test_the_demo_reads_like_real_work(seed):
    """Tickets, replies, work orders and sales contacts come from the scenario templates
    (service/demo_texts.py, customers/demo_texts.py), each coherent with its ticket, and
    engineer1 lands on 工程部's work orders and is told of them by the pipeline."""
    from crm.notifications.models import Notification
    from crm.scheduler import services as scheduler
    from customers import demo_texts as sales_texts
    from customers.models import ContactLog, FollowUp
    from service import demo_texts
    from service.handover import calls
    from service.models import Ticket, TicketMessage, WorkOrder

    seed(customers=60)
    stories = {story.subject: story for story in demo_texts.STORIES}
    tickets = list(Ticket.objects.select_related("customer"))
    assert len(tickets) > 30
    for ticket in tickets:
        story = stories[ticket.subject]
        assert story.description in ticket.description
        messages = list(ticket.messages.order_by("created_at", "pk"))
        if ticket.merged_into_id is None and messages:
            assert messages[0].body == story.caller
        for reply in messages:
            if reply.kind in (TicketMessage.Kind.REPLY, TicketMessage.Kind.CALL):
                assert ticket.customer.name in reply.body
                assert ticket.reference in reply.body
        if ticket.resolution_summary:
            assert ticket.resolution_summary == story.resolution
    orders = list(WorkOrder.objects.select_related("ticket", "department"))
    assert len(orders) >= 5
    for order in orders:
        planned = stories[order.ticket.subject].work_order
        assert (order.title, order.department.name) == (
            planned.title,
            planned.department,
        )
        assert order.result in ("", planned.result)

    lines = {line for story in sales_texts.STORIES for line in story.contacts}
    # The 入伙 demo's calls from the call list are told by service/handover/calls.py.
    summaries = set(
        ContactLog.objects.exclude(
            summary__startswith=calls.SUMMARY_PREFIX
        ).values_list("summary", flat=True)
    )
    assert summaries and summaries <= lines
    followups = {story.followup for story in sales_texts.STORIES}
    assert set(FollowUp.objects.values_list("note", flat=True)) <= followups
    notes = {story.note for story in sales_texts.STORIES} | {""}
    assert set(Customer.objects.values_list("notes", flat=True)) <= notes

    # The pipeline announces 工程部's orders to engineer1, who lands on them.
    for action_id in scheduler.actions_sweep():
        scheduler.action_deliver(action_id=action_id)
    engineer = User.objects.get(username="engineer1")
    told = Notification.objects.filter(
        recipient=engineer, title__startswith="新后台工单（工程部）"
    )
    # Not the one engineer1 finished before the announcement went out.
    waiting = WorkOrder.objects.filter(
        department__name="工程部", status__in=["open", "in_progress"]
    )
    assert told.count() == waiting.count() > 0
    assert set(told.values_list("reason", flat=True)) == {"你是该部门成员"}
    home = _logs_in_to("engineer1", DEMO_PASSWORD)
    assert 'data-panel="department_workorders"' in home
    assert 'data-panel="desk"' not in home
