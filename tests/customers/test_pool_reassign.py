"""The public pool (公海), reassignment by a manager, and the daily customer jobs."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
import time_machine
from django.core import mail
from django.db import connection
from django.test import Client
from django.urls import reverse
from pytest_django.asserts import assertContains, assertNotContains

from crm.notifications.models import Notification
from crm.scheduler import services as scheduler
from crm.scheduler.models import ScheduledAction
from customers import services, tasks
from customers.models import ContactLog, Customer, FollowUp, PoolEvent
from tests.factories import CustomerFactory

SHANGHAI = dt.timezone(dt.timedelta(hours=8))
NOW = dt.datetime(2026, 3, 2, 10, 0, tzinfo=SHANGHAI)
POOL_URL = reverse("customers:pool_list")
LIST_URL = reverse("customers:customer_list")
REASSIGN_URL = reverse("customers:customer_reassign")


def claim_url(customer: Customer) -> str:
    return reverse("customers:pool_claim", args=[customer.pk])


def release_url(customer: Customer) -> str:
    return reverse("customers:pool_release", args=[customer.pk])


def in_pool(name: str) -> Customer:
    return CustomerFactory(name=name, owner=None, team=None, pool_entered_at=NOW)


def contact(customer: Customer, by, when: dt.datetime, summary: str = "沟通") -> None:
    with time_machine.travel(when, tick=False):
        services.contact_log_create(
            by=by, customer=customer, channel="phone", summary=summary
        )


def open_followup(customer: Customer, assignee, note: str) -> FollowUp:
    return services.followup_create(
        by=assignee,
        customer=customer,
        assignee=assignee,
        due_at=NOW + dt.timedelta(days=2),
        note=note,
    )


@pytest.fixture
def at_now():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


# --- release and claim ------------------------------------------------------------------


def test_releasing_puts_the_customer_in_the_pool(client, sales_rep, at_now):
    customer = CustomerFactory(name="放回的客户", owner=sales_rep)
    followup = open_followup(customer, sales_rep, "回访")
    client.force_login(sales_rep)
    response = client.post(release_url(customer), {"reason": "客户已买房"}, follow=True)
    assert response.redirect_chain == [(LIST_URL, 302)]
    assertContains(response, "客户已放回公海")
    assertNotContains(response, "放回的客户")  # no longer in the salesperson's list

    customer.refresh_from_db()
    assert (customer.owner, customer.team, customer.pool_entered_at) == (
        None,
        None,
        NOW,
    )
    assertContains(client.get(POOL_URL), "放回的客户")
    followup.refresh_from_db()
    assert followup.status == FollowUp.Status.CANCELLED
    # Its reminder, when due, reaches nobody.
    with time_machine.travel(followup.due_at + dt.timedelta(minutes=1), tick=False):
        for action_id in scheduler.actions_sweep():
            scheduler.action_deliver(action_id=action_id)
    assert not Notification.objects.exists()
    event = PoolEvent.objects.get()
    assert (event.action, event.user, event.actor) == ("release", sales_rep, sales_rep)
    assert event.reason == "客户已买房"


def test_a_teammate_cannot_release_someone_elses_customer(client, sales_rep, teammate):
    customer = CustomerFactory(owner=sales_rep)
    client.force_login(teammate)
    assert client.post(release_url(customer)).status_code == 403
    customer.refresh_from_db()
    assert customer.owner == sales_rep


def test_a_salesperson_of_another_team_claims_from_the_pool(
    client, sales_rep, outsider, at_now
):
    customer = CustomerFactory(name="流转客户", owner=sales_rep)
    services.pool_release(by=sales_rep, customer=customer, reason="无意向")
    client.force_login(outsider)
    assertContains(client.get(POOL_URL), "流转客户")

    response = client.post(claim_url(customer), follow=True)
    assert response.redirect_chain == [(customer.get_absolute_url(), 302)]
    assertContains(response, "已领取客户“流转客户”")
    customer.refresh_from_db()
    assert (customer.owner, customer.team, customer.pool_entered_at) == (
        outsider,
        outsider.team,
        None,
    )
    assertNotContains(client.get(POOL_URL), "流转客户")
    # Now it is team B's customer: team A no longer sees it.
    client.force_login(sales_rep)
    assert client.get(customer.get_absolute_url()).status_code == 404
    assert [e.action for e in PoolEvent.objects.order_by("pk")] == ["release", "claim"]


def test_an_owned_customer_cannot_be_claimed(client, sales_rep, outsider):
    customer = CustomerFactory(owner=sales_rep)
    client.force_login(outsider)
    response = client.post(claim_url(customer), follow=True)
    assertContains(response, "已被他人领取")
    customer.refresh_from_db()
    assert customer.owner == sales_rep


def test_a_service_agent_cannot_claim(client, service_agent):
    customer = in_pool("公海客户")
    client.force_login(service_agent)
    assert client.post(claim_url(customer)).status_code == 403
    assert client.get(POOL_URL).status_code == 403
    customer.refresh_from_db()
    assert customer.owner is None


def _race(posts: list[tuple[object, str]]) -> list[str]:
    """POST each (user, url) from its own thread and DB connection, all at once."""
    barrier = threading.Barrier(len(posts))
    pages: list[str] = [""] * len(posts)
    clients = []
    for user, _ in posts:
        browser = Client()
        browser.force_login(user)
        clients.append(browser)

    def run(index: int) -> None:
        try:
            barrier.wait(timeout=10)
            response = clients[index].post(posts[index][1], follow=True)
            pages[index] = response.content.decode()
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(posts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return pages


@pytest.mark.django_db(transaction=True)
def test_of_two_simultaneous_claims_exactly_one_wins(outsider, far_outsider):
    customer = in_pool("抢手客户")
    pages = _race(
        [(outsider, claim_url(customer)), (far_outsider, claim_url(customer))]
    )

    customer.refresh_from_db()
    assert customer.owner in (outsider, far_outsider)
    winner = 0 if customer.owner == outsider else 1
    assert "已领取客户“抢手客户”" in pages[winner]
    assert "已被他人领取" in pages[1 - winner]
    assert "已领取客户" not in pages[1 - winner]
    assert PoolEvent.objects.filter(action="claim").count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_double_click_cannot_exceed_the_daily_limit(settings, outsider):
    settings.KEHU_POOL_CLAIM_LIMIT = 1
    first, second = in_pool("甲"), in_pool("乙")
    _race([(outsider, claim_url(first)), (outsider, claim_url(second))])
    assert Customer.objects.filter(owner=outsider).count() == 1
    assert PoolEvent.objects.filter(action="claim").count() == 1


def test_the_daily_claim_limit_holds_until_the_next_day(
    client, settings, outsider, at_now
):
    settings.KEHU_POOL_CLAIM_LIMIT = 2
    customers = [in_pool(f"公海{n}") for n in range(3)]
    client.force_login(outsider)
    for customer in customers[:2]:
        assert client.post(claim_url(customer)).status_code == 302
    response = client.post(claim_url(customers[2]), follow=True)
    assert response.redirect_chain == [(POOL_URL, 302)]
    assertContains(response, "今天已领取 2 位客户，达到上限")
    customers[2].refresh_from_db()
    assert customers[2].owner is None

    # Releasing one does not give a claim back today...
    customers[0].refresh_from_db()
    services.pool_release(by=outsider, customer=customers[0], reason="无意向")
    response = client.post(claim_url(customers[2]), follow=True)
    assertContains(response, "达到上限")
    customers[2].refresh_from_db()
    assert customers[2].owner is None

    # ...but the count starts again the next day (Beijing time).
    at_now.move_to(dt.datetime(2026, 3, 3, 8, 30, tzinfo=SHANGHAI))
    client.force_login(outsider)
    response = client.post(claim_url(customers[2]), follow=True)
    assertContains(response, "已领取客户“公海2”")
    customers[2].refresh_from_db()
    assert customers[2].owner == outsider


# --- the daily return to the pool -------------------------------------------------------


@pytest.fixture
def neglected(settings, sales_rep):
    """Customers of sales_rep last touched 2, 28, 31 and 40 (never contacted) days ago."""
    settings.KEHU_POOL_RETURN_DAYS = 30
    settings.KEHU_POOL_WARNING_DAYS = 3
    sales_rep.email = "sales_a@example.com"
    sales_rep.save(update_fields=["email"])
    with time_machine.travel(NOW - dt.timedelta(days=40), tick=False):
        made = {
            name: CustomerFactory(name=name, owner=sales_rep)
            for name in ("常联系", "快回收", "已超期", "从未联系")
        }
    contact(made["常联系"], sales_rep, NOW - dt.timedelta(days=2))
    contact(made["快回收"], sales_rep, NOW - dt.timedelta(days=28))
    contact(made["已超期"], sales_rep, NOW - dt.timedelta(days=31), "客户要学区房")
    with time_machine.travel(NOW - dt.timedelta(days=31), tick=False):
        made["open"] = open_followup(made["已超期"], sales_rep, "再约看房")
    return made


def test_the_daily_job_warns_then_returns_neglected_customers(
    client, sales_rep, outsider, neglected, at_now
):
    assert tasks.customers_daily_task() == {
        "warned": 1,
        "returned": 2,
        "dormant_followups": 0,
        "imports_expired": 0,
        "import_files_removed": 0,
        "imports_purged": 0,
    }

    owners = dict(Customer.objects.values_list("name", "owner"))
    assert owners["常联系"] == owners["快回收"] == sales_rep.pk
    assert owners["已超期"] is None
    assert owners["从未联系"] is None

    warning = Notification.objects.get()
    assert warning.recipient == sales_rep
    assert warning.title == "客户即将回到公海：快回收"
    assert "3 天内不联系将自动回到公海" in warning.body
    assert [m.subject for m in mail.outbox] == ["客户即将回到公海：快回收"]

    returned = neglected["已超期"]
    event = PoolEvent.objects.get(customer=returned)
    assert (event.action, event.user, event.actor) == ("auto_return", sales_rep, None)
    neglected["open"].refresh_from_db()
    assert neglected["open"].status == FollowUp.Status.CANCELLED

    client.force_login(sales_rep)
    pool = client.get(POOL_URL)
    assertContains(pool, "已超期")
    assertContains(pool, "从未联系")
    assertNotContains(pool, "快回收")

    # The history stays with the customer for whoever claims it next.
    client.force_login(outsider)
    page = client.get(client.post(claim_url(returned))["Location"])
    assertContains(page, "客户要学区房")
    assertContains(page, "超期自动回收")
    assert ContactLog.objects.filter(customer=returned).count() == 1


def test_running_the_daily_job_twice_warns_and_returns_once(neglected, at_now):
    tasks.customers_daily_task()
    assert tasks.customers_daily_task() == {
        "warned": 0,
        "returned": 0,
        "dormant_followups": 0,
        "imports_expired": 0,
        "import_files_removed": 0,
        "imports_purged": 0,
    }
    assert Notification.objects.count() == 1
    assert PoolEvent.objects.filter(action="auto_return").count() == 2


def test_a_warned_customer_not_contacted_returns_three_days_later(
    sales_rep, neglected, at_now
):
    services.pool_return_sweep()
    at_now.shift(dt.timedelta(days=3))
    services.pool_return_sweep()
    assert Customer.objects.get(name="快回收").owner is None


def test_a_warned_customer_contacted_in_time_stays(sales_rep, neglected, at_now):
    services.pool_return_sweep()
    contact(neglected["快回收"], sales_rep, NOW + dt.timedelta(days=1))
    at_now.shift(dt.timedelta(days=3))
    services.pool_return_sweep()
    assert Customer.objects.get(name="快回收").owner == sales_rep


# --- reassignment -------------------------------------------------------------------------


@pytest.fixture
def book(sales_rep, far_outsider):
    """Two customers of a departing salesperson, with follow-ups, and one far away."""
    with time_machine.travel(NOW - dt.timedelta(days=1), tick=False):
        first = CustomerFactory(name="客户一", owner=sales_rep)
        second = CustomerFactory(name="客户二", owner=sales_rep)
        kept = CustomerFactory(name="不动的客户", owner=sales_rep)
        far = CustomerFactory(name="华南客户", owner=far_outsider)
        open_one = open_followup(first, sales_rep, "客户一回访")
        done_one = open_followup(second, sales_rep, "客户二已办")
        services.followup_complete(by=sales_rep, followup=done_one)
    return {
        "first": first,
        "second": second,
        "kept": kept,
        "far": far,
        "open": open_one,
        "done": done_one,
    }


def test_a_manager_moves_several_customers_and_their_open_follow_ups(
    client, manager, sales_rep, outsider, book
):
    client.force_login(manager)
    assertContains(client.get(LIST_URL), "将勾选的客户转给")
    response = client.post(
        REASSIGN_URL,
        {"pick": [book["first"].pk, book["second"].pk], "new_owner": outsider.pk},
        follow=True,
    )
    assertContains(response, "已转移 2 位客户")
    for key in ("first", "second"):
        book[key].refresh_from_db()
        assert (book[key].owner, book[key].team) == (outsider, outsider.team)
    book["kept"].refresh_from_db()
    assert book["kept"].owner == sales_rep

    book["open"].refresh_from_db()
    assert book["open"].assignee == outsider
    book["done"].refresh_from_db()
    assert book["done"].assignee == sales_rep  # finished work keeps its author
    assert PoolEvent.objects.filter(action="reassign", user=outsider).count() == 2

    # The new owner finds them; the old one no longer does.
    client.force_login(outsider)
    assertContains(client.get(LIST_URL), "客户一")
    with time_machine.travel(NOW + dt.timedelta(days=2), tick=False):
        assertContains(client.get(reverse("home")), "客户一回访")
    client.force_login(sales_rep)
    assertNotContains(client.get(LIST_URL), "客户二")

    # The moved follow-up's reminder reaches the new owner.
    with time_machine.travel(book["open"].due_at, tick=False):
        for action_id in scheduler.actions_sweep():
            scheduler.action_deliver(action_id=action_id)
    assert list(Notification.objects.values_list("recipient", "title")) == [
        (outsider.pk, "跟进到期：客户一")
    ]


def test_customers_outside_the_managers_scope_are_not_moved(
    client, manager, far_outsider, teammate, book
):
    client.force_login(manager)
    response = client.post(
        REASSIGN_URL,
        {"pick": [book["first"].pk, book["far"].pk], "new_owner": teammate.pk},
        follow=True,
    )
    assertContains(response, "已转移 1 位客户")
    book["far"].refresh_from_db()
    assert book["far"].owner == far_outsider


def test_a_new_owner_outside_the_managers_scope_is_refused(
    client, manager, sales_rep, far_outsider, book
):
    client.force_login(manager)
    response = client.post(
        REASSIGN_URL,
        {"pick": [book["first"].pk], "new_owner": far_outsider.pk},
        follow=True,
    )
    assertContains(response, "转移失败")
    book["first"].refresh_from_db()
    assert book["first"].owner == sales_rep


def test_reassigning_nothing_says_so(client, manager, teammate, book):
    client.force_login(manager)
    response = client.post(REASSIGN_URL, {"new_owner": teammate.pk}, follow=True)
    assertContains(response, "请至少选择一位客户")
    bad = client.post(
        REASSIGN_URL, {"pick": ["1 OR 1=1"], "new_owner": teammate.pk}, follow=True
    )
    assertContains(bad, "客户选择无效")
    assert not PoolEvent.objects.exists()


@pytest.mark.parametrize("persona", ["sales_rep", "service_agent"])
def test_sales_and_service_cannot_reassign(request, client, teammate, book, persona):
    client.force_login(request.getfixturevalue(persona))
    response = client.post(
        REASSIGN_URL, {"pick": [book["first"].pk], "new_owner": teammate.pk}
    )
    assert response.status_code == 403
    book["first"].refresh_from_db()
    assert book["first"].owner.username == "sales_a"


def test_sales_sees_no_reassign_controls(client, sales_rep, book):
    client.force_login(sales_rep)
    response = client.get(LIST_URL)
    assertNotContains(response, "将勾选的客户转给")
    assertNotContains(response, 'name="pick"')


# --- dormant key accounts ------------------------------------------------------------


@pytest.fixture
def accounts(settings, sales_rep):
    settings.KEHU_DORMANT_KEY_ACCOUNT_DAYS = 30
    settings.KEHU_POOL_RETURN_DAYS = 90
    with time_machine.travel(NOW - dt.timedelta(days=60), tick=False):
        made = {
            "key": CustomerFactory(
                name="沉睡重点", owner=sales_rep, is_key_account=True
            ),
            "tier_a": CustomerFactory(name="沉睡A级", owner=sales_rep, tier="A"),
            "tier_b": CustomerFactory(name="沉睡B级", owner=sales_rep, tier="B"),
            "recent": CustomerFactory(
                name="常联系重点", owner=sales_rep, is_key_account=True
            ),
            "pooled": CustomerFactory(
                name="公海重点", owner=None, team=None, is_key_account=True
            ),
        }
    contact(made["key"], sales_rep, NOW - dt.timedelta(days=31))
    contact(made["recent"], sales_rep, NOW - dt.timedelta(days=5))
    return made


def test_a_key_account_silent_for_n_days_gets_a_follow_up_for_its_owner(
    client, sales_rep, accounts, at_now
):
    assert services.dormant_key_accounts_sweep() == 2
    followups = FollowUp.objects.select_related("customer").order_by("customer__name")
    assert {f.customer.name for f in followups} == {"沉睡重点", "沉睡A级"}
    for followup in followups:
        assert followup.assignee == sales_rep
        assert followup.status == FollowUp.Status.OPEN
        assert followup.note == "重点客户已 30 天未联系，请尽快回访。"
        assert ScheduledAction.objects.filter(target_id=followup.pk).exists()
    client.force_login(sales_rep)
    home = client.get(reverse("home"))
    assertContains(home, "沉睡重点")
    assertContains(home, "重点客户已 30 天未联系")


def test_no_second_follow_up_while_one_is_open(accounts, at_now):
    services.dormant_key_accounts_sweep()
    at_now.shift(dt.timedelta(days=1))
    assert services.dormant_key_accounts_sweep() == 0
    assert FollowUp.objects.count() == 2


def test_the_daily_job_with_default_settings_gives_a_dormant_key_account_a_follow_up(
    sales_rep, at_now
):
    with time_machine.travel(NOW - dt.timedelta(days=60), tick=False):
        key = CustomerFactory(name="沉睡重点", owner=sales_rep, is_key_account=True)
    contact(key, sales_rep, NOW - dt.timedelta(days=31))
    tasks.customers_daily_task()
    key.refresh_from_db()
    assert FollowUp.objects.filter(customer=key, assignee=sales_rep).exists()
    assert key.owner == sales_rep


def test_a_manager_moves_all_customers_of_a_departing_salesperson(
    client, manager, sales_rep, teammate
):
    from customers.models import Customer, FollowUp
    from tests.factories import CustomerFactory, FollowUpFactory

    leaving = [CustomerFactory(owner=sales_rep) for _ in range(30)]
    FollowUpFactory(customer=leaving[0], assignee=sales_rep)
    client.force_login(manager)
    response = client.post(
        reverse("customers:customer_reassign"),
        {"new_owner": teammate.pk, "all_of_owner": sales_rep.pk},
    )
    assert response.status_code == 302
    assert Customer.objects.filter(owner=sales_rep).count() == 0
    assert Customer.objects.filter(owner=teammate).count() == 30
    assert FollowUp.objects.get(customer=leaving[0]).assignee == teammate
