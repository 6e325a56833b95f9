"""The deal pages for each persona: list, board, detail, create/edit, moves, lost and
reopen, payments; scope (404), roles (403), bad input and constant query counts."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone
from pytest_django.asserts import assertContains, assertNotContains

from culture.deals import services
from culture.deals.models import Deal, DealStageChange, Payment
from customers.models import Customer
from tests.factories import CustomerFactory, DealFactory, UserFactory, deal_stage

pytestmark = pytest.mark.django_db


@pytest.fixture
def customer(sales_rep):
    return CustomerFactory(owner=sales_rep, name="王先生")


@pytest.fixture
def deal(sales_rep, customer):
    return services.deal_create(
        by=sales_rep,
        customer=customer,
        data={"title": "3号楼1201", "amount": Decimal("2000000")},
        stage=deal_stage("subscribe"),
    )


def url(name, *args):
    return reverse(f"deals:{name}", args=args)


# --- access by persona -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("persona", "status"),
    [
        ("sales_rep", 200),
        ("teammate", 200),
        ("manager", 200),
        ("outsider", 404),
        ("far_outsider", 404),
        ("readonly_user", 403),
        ("service_agent", 403),
        ("admin_user", 200),
    ],
)
def test_the_detail_page_follows_the_scope(request, client, deal, persona, status):
    client.force_login(request.getfixturevalue(persona))
    response = client.get(url("deal_detail", deal.pk))
    assert response.status_code == status


@pytest.mark.parametrize(
    ("persona", "sees"),
    [("sales_rep", True), ("teammate", True), ("manager", True), ("outsider", False)],
)
def test_the_list_and_board_show_only_the_scope(request, client, deal, persona, sees):
    client.force_login(request.getfixturevalue(persona))
    for page in (url("deal_list"), url("pipeline")):
        response = client.get(page)
        assert response.status_code == 200
        assert ("3号楼1201" in response.content.decode()) is sees


@pytest.mark.parametrize("persona", ["readonly_user", "service_agent"])
def test_roles_without_deals_get_403_everywhere(request, client, deal, persona):
    client.force_login(request.getfixturevalue(persona))
    for page in (url("deal_list"), url("pipeline"), url("deal_create")):
        assert client.get(page).status_code == 403
    response = client.post(
        url("deal_move", deal.pk),
        {"stage": deal_stage("sign").pk, "version": deal.version},
    )
    assert response.status_code == 403
    deal.refresh_from_db()
    assert deal.stage.code == "subscribe"


def test_outsider_cannot_move_lose_pay_or_edit(client, outsider, deal):
    client.force_login(outsider)
    posts = [
        (url("deal_move", deal.pk), {"stage": deal_stage("sign").pk, "version": 1}),
        (url("deal_lose", deal.pk), {"lost_reason": "x", "version": 1}),
        (url("deal_reopen", deal.pk), {"version": 1}),
        (url("payment_add", deal.pk), {"amount": "1", "received_on": "2025-01-01"}),
        (url("deal_edit", deal.pk), {"title": "x", "amount": "1", "owner": 1}),
    ]
    for path, data in posts:
        assert client.post(path, data).status_code == 404
    deal.refresh_from_db()
    assert deal.version == 1 and not Payment.objects.exists()


def test_navigation_shows_deals_to_sales_not_to_the_desk(
    client, sales_rep, service_agent
):
    client.force_login(sales_rep)
    assertContains(client.get(reverse("home")), url("deal_list"))
    client.force_login(service_agent)
    assertNotContains(client.get(reverse("home")), url("deal_list"))


# --- create and edit -------------------------------------------------------------------


def test_create_from_the_customer_page_is_prefilled(client, sales_rep, customer):
    client.force_login(sales_rep)
    page = client.get(reverse("customers:customer_detail", args=[customer.pk]))
    assertContains(page, f"{url('deal_create')}?customer={customer.pk}")
    form = client.get(url("deal_create"), {"customer": customer.pk})
    assertContains(form, f'<option value="{customer.pk}" selected>王先生</option>')
    response = client.post(
        url("deal_create"),
        {
            "customer": customer.pk,
            "stage": deal_stage("visit").pk,
            "title": "5号楼302",
            "product": "5-302",
            "amount": "1500000",
            "owner": sales_rep.pk,
            "expected_close_on": "2030-06-30",
        },
    )
    deal = Deal.objects.get()
    assert response.status_code == 302
    assert response["Location"] == deal.get_absolute_url()
    assert (deal.title, deal.amount, deal.team_id) == (
        "5号楼302",
        Decimal("1500000"),
        sales_rep.team_id,
    )


def test_another_teams_customer_cannot_be_prefilled_or_posted(
    client, outsider, customer
):
    client.force_login(outsider)
    assert client.get(url("deal_create"), {"customer": customer.pk}).status_code == 404
    response = client.post(
        url("deal_create"),
        {
            "customer": customer.pk,
            "stage": deal_stage("visit").pk,
            "title": "x",
            "amount": "1",
            "owner": outsider.pk,
        },
    )
    assert response.status_code == 200
    assert not Deal.objects.exists()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"amount": "-5"}, "0"),
        ({"amount": "99999999999"}, ""),
        ({"title": ""}, "这个字段是必填项"),
        ({"expected_close_on": "1999-01-01"}, "日期须在"),
        ({"amount": "abc"}, "输入一个数字"),
    ],
)
def test_bad_input_rerenders_with_a_message_and_writes_nothing(
    client, sales_rep, customer, change, message
):
    client.force_login(sales_rep)
    data = {
        "customer": customer.pk,
        "stage": deal_stage("visit").pk,
        "title": "5号楼302",
        "amount": "1500000",
        "owner": sales_rep.pk,
        **change,
    }
    response = client.post(url("deal_create"), data)
    assert response.status_code == 200
    assertContains(response, message)
    assert not Deal.objects.exists()


def test_a_stale_edit_says_someone_else_changed_it(client, sales_rep, teammate, deal):
    services.deal_update(
        by=teammate, deal=deal, version=deal.version, data={"title": "同事改的"}
    )
    client.force_login(sales_rep)
    response = client.post(
        url("deal_edit", deal.pk),
        {"title": "我改的", "amount": "2000000", "owner": sales_rep.pk, "version": 1},
    )
    assertContains(response, "已被他人修改")
    deal.refresh_from_db()
    assert deal.title == "同事改的"


# --- moves, lost, reopen ---------------------------------------------------------------


def test_board_buttons_move_the_card_and_return_both_columns(client, sales_rep, deal):
    client.force_login(sales_rep)
    response = client.post(
        url("deal_move", deal.pk),
        {"stage": deal_stage("sign").pk, "version": deal.version},
        HTTP_HX_REQUEST="true",
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert f'id="column-{deal_stage("sign").pk}"' in html
    assert f'id="column-{deal_stage("subscribe").pk}"' in html
    assert html.count('hx-swap-oob="true"') >= 2
    deal.refresh_from_db()
    assert (deal.stage.code, deal.status) == ("sign", "won")


def test_a_stale_card_is_not_moved_and_says_so(client, sales_rep, teammate, deal):
    services.deal_move(
        by=teammate, deal=deal, stage=deal_stage("pledge"), version=deal.version
    )
    client.force_login(sales_rep)
    response = client.post(
        url("deal_move", deal.pk),
        {"stage": deal_stage("sign").pk, "version": 1},
        HTTP_HX_REQUEST="true",
    )
    assertContains(response, "已被他人修改")
    deal.refresh_from_db()
    assert deal.stage.code == "pledge"


def test_lose_needs_a_reason_and_reopen_works(client, sales_rep, deal):
    client.force_login(sales_rep)
    client.post(url("deal_lose", deal.pk), {"lost_reason": "", "version": 1})
    deal.refresh_from_db()
    assert deal.status == "open"
    client.post(
        url("deal_lose", deal.pk), {"lost_reason": "价格超出预算", "version": 1}
    )
    deal.refresh_from_db()
    assert (deal.status, deal.lost_reason) == ("lost", "价格超出预算")
    page = client.get(url("deal_detail", deal.pk))
    assertContains(page, "价格超出预算")
    client.post(url("deal_reopen", deal.pk), {"version": deal.version})
    deal.refresh_from_db()
    assert deal.status == "open"
    assert DealStageChange.objects.filter(deal=deal).count() == 3


# --- payments --------------------------------------------------------------------------


def test_payment_add_and_remove_after_confirmation(client, sales_rep, deal, customer):
    client.force_login(sales_rep)
    response = client.post(
        url("payment_add", deal.pk),
        {"amount": "300000", "received_on": timezone.localdate().isoformat()},
    )
    assert response.status_code == 302
    payment = Payment.objects.get()
    customer.refresh_from_db()
    assert customer.lifetime_value == Decimal("300000")
    confirm = client.get(url("payment_remove", deal.pk, payment.pk))
    assertContains(confirm, "确认删除")
    assert Payment.objects.exists()
    client.post(url("payment_remove", deal.pk, payment.pk))
    customer.refresh_from_db()
    assert not Payment.objects.exists() and customer.lifetime_value == 0


def test_bad_payment_rerenders_and_writes_nothing(client, sales_rep, deal, customer):
    client.force_login(sales_rep)
    tomorrow = (timezone.localdate() + dt.timedelta(days=1)).isoformat()
    for data, message in (
        ({"amount": "3000000", "received_on": "2025-01-01"}, "将超过商机金额"),
        ({"amount": "100", "received_on": tomorrow}, "日期须在"),
        ({"amount": "", "received_on": "2025-01-01"}, "这个字段是必填项"),
    ):
        response = client.post(url("payment_add", deal.pk), data)
        assert response.status_code == 400
        assertContains(response, message, status_code=400)
    assert not Payment.objects.exists()
    customer.refresh_from_db()
    assert customer.lifetime_value == 0


# --- list filters ----------------------------------------------------------------------


def test_list_filters_and_search(client, manager, sales_rep, customer):
    dealer = CustomerFactory(owner=sales_rep, name="华东经销商", kind="dealer")
    services.deal_create(
        by=sales_rep,
        customer=customer,
        data={"title": "别墅A", "amount": 5_000_000, "channel": dealer},
    )
    services.deal_create(
        by=sales_rep,
        customer=CustomerFactory(owner=sales_rep, name="李女士"),
        data={
            "title": "公寓B",
            "amount": 800_000,
            "expected_close_on": dt.date(2030, 1, 1),
        },
    )
    client.force_login(manager)

    def titles(**params):
        html = client.get(url("deal_list"), params).content.decode()
        return {t for t in ("别墅A", "公寓B") if t in html}

    assert titles() == {"别墅A", "公寓B"}
    assert titles(q="别墅") == {"别墅A"}
    assert titles(q="李女士") == {"公寓B"}
    assert titles(channel=dealer.pk) == {"别墅A"}
    assert titles(amount_min="1000000") == {"别墅A"}
    assert titles(amount_max="1000000") == {"公寓B"}
    assert titles(expected_from="2029-01-01", expected_to="2031-01-01") == {"公寓B"}
    assert titles(status="won") == set()
    assert titles(owner=sales_rep.pk, sort="amount") == {"别墅A", "公寓B"}
    response = client.get(url("deal_list"), {"amount_min": "5", "amount_max": "1"})
    assertContains(response, "最高金额不能低于最低金额")


def test_an_empty_list_invites_creating_one(client, sales_rep):
    client.force_login(sales_rep)
    assertContains(client.get(url("deal_list")), "没有符合条件的商机")


# --- query counts ----------------------------------------------------------------------


def _many(owner, n):
    customer = CustomerFactory(owner=owner)
    stages = [deal_stage(c) for c in ("visit", "pledge", "subscribe", "sign")]
    today = timezone.localdate()
    DealFactory.create_batch(
        n,
        customer=customer,
        owner=owner,
        stage=stages[n % 4],
        status="won" if stages[n % 4].is_won else "open",
        closed_on=today if stages[n % 4].is_won else None,
    )
    for i, stage in enumerate(stages):
        DealFactory.create_batch(
            n,
            customer=CustomerFactory(owner=owner),
            owner=owner,
            stage=stage,
            status="won" if stage.is_won else "open",
            closed_on=today if stage.is_won else None,
            title=f"批量{i}",
        )


@pytest.mark.parametrize("page", ["deal_list", "pipeline"], ids=["list", "board"])
def test_query_counts_do_not_grow(client, sales_rep, page, django_assert_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.force_login(sales_rep)
    _many(sales_rep, 2)
    with CaptureQueriesContext(connection) as few:
        assert client.get(url(page)).status_code == 200
    _many(sales_rep, 30)
    with django_assert_num_queries(len(few.captured_queries)):
        assert client.get(url(page)).status_code == 200


def test_detail_query_count_does_not_grow(
    client, sales_rep, deal, django_assert_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.force_login(sales_rep)
    with CaptureQueriesContext(connection) as few:
        client.get(url("deal_detail", deal.pk))
    for _ in range(5):
        services.payment_add(
            by=sales_rep, deal=deal, amount="1000", received_on=timezone.localdate()
        )
        deal.refresh_from_db()
        deal = services.deal_move(
            by=sales_rep,
            deal=deal,
            stage=deal_stage("sign" if deal.stage.code != "sign" else "subscribe"),
            version=deal.version,
        )
    with django_assert_num_queries(len(few.captured_queries)):
        client.get(url("deal_detail", deal.pk))


def test_board_columns_are_bounded_with_a_more_link(client, sales_rep):
    from culture.deals import selectors

    customer = CustomerFactory(owner=sales_rep)
    DealFactory.create_batch(
        selectors.BOARD_CARDS + 3, customer=customer, owner=sales_rep
    )
    client.force_login(sales_rep)
    html = client.get(url("pipeline")).content.decode()
    assert html.count('data-testid="deal-card"') == selectors.BOARD_CARDS
    assert 'data-testid="more"' in html
    assert f"查看全部 {selectors.BOARD_CARDS + 3} 个" in html


# --- the customer page -----------------------------------------------------------------


def test_customer_page_shows_deals_panel_and_timeline(
    client, sales_rep, deal, customer
):
    services.payment_add(
        by=sales_rep, deal=deal, amount="250000", received_on=timezone.localdate()
    )
    client.force_login(sales_rep)
    page = client.get(reverse("customers:customer_detail", args=[customer.pk]))
    assertContains(page, 'data-testid="deals-panel"')
    assertContains(page, "3号楼1201")
    assertContains(page, "¥250,000.00")
    assertContains(page, "新建商机“3号楼1201”")
    assertContains(page, "回款 ¥250,000.00")
    assertNotContains(page, 'data-testid="channel-revenue"')


def test_a_channel_shows_its_revenue_separately(client, sales_rep, customer):
    dealer = CustomerFactory(owner=sales_rep, name="华东经销商", kind="dealer")
    deal = services.deal_create(
        by=sales_rep,
        customer=customer,
        data={"title": "经销单", "amount": 1_000_000, "channel": dealer},
    )
    services.payment_add(
        by=sales_rep, deal=deal, amount="400000", received_on=timezone.localdate()
    )
    client.force_login(sales_rep)
    page = client.get(reverse("customers:customer_detail", args=[dealer.pk]))
    html = page.content.decode()
    revenue = html.split('data-testid="channel-revenue"', 1)[1][:40]
    assert "¥400,000.00" in revenue
    lifetime = html.split('data-testid="panel-lifetime-value"', 1)[1][:30]
    assert "¥0.00" in lifetime


def test_the_service_desk_sees_no_deals_panel(client, service_agent, deal, customer):
    client.force_login(service_agent)
    page = client.get(reverse("customers:customer_detail", args=[customer.pk]))
    assert page.status_code == 200
    assertNotContains(page, 'data-testid="deals-panel"')


def test_lifetime_value_is_not_editable_on_the_customer_form(
    client, sales_rep, customer
):
    client.force_login(sales_rep)
    page = client.get(reverse("customers:customer_edit", args=[customer.pk]))
    assertNotContains(page, 'name="lifetime_value"')
    client.post(
        reverse("customers:customer_edit", args=[customer.pk]),
        {
            "name": customer.name,
            "version": customer.version,
            "lifetime_value": "99999",
            "kind": "owner",
        },
    )
    assert Customer.objects.get(pk=customer.pk).lifetime_value == 0


def test_user_factory_team_default_is_irrelevant(db):
    # Guard against an accidental grant: a user without a role sees no deals.
    assert not Deal.objects.visible_to(UserFactory()).exists()


def test_the_bench_scenarios_pages_answer(client, sales_rep, manager, deal):
    from bench import scenarios

    class Fixtures:
        def user(self, role):
            return sales_rep

    client.force_login(sales_rep)
    paths = scenarios.deal_list_filters(Fixtures())
    assert len(paths) >= 8
    for path in paths:
        assert client.get(path).status_code == 200, path
    board = next(s for s in scenarios.SCENARIOS if s.name == "deals.board")
    client.force_login(manager)
    for path in board.requests(Fixtures()):
        assert client.get(path).status_code == 200, path


def test_a_manager_sees_the_department_not_another(
    client, manager, outsider, far_outsider
):
    near = services.deal_create(
        by=outsider,
        customer=CustomerFactory(owner=outsider),
        data={"title": "二组的商机", "amount": 1000},
    )
    far = services.deal_create(
        by=far_outsider,
        customer=CustomerFactory(owner=far_outsider),
        data={"title": "华南的商机", "amount": 1000},
    )
    client.force_login(manager)
    assert client.get(url("deal_detail", near.pk)).status_code == 200
    assert client.get(url("deal_detail", far.pk)).status_code == 404
    html = client.get(url("pipeline")).content.decode()
    assert "二组的商机" in html and "华南的商机" not in html


def test_the_customer_picker_searches_by_post_in_scope(
    client, sales_rep, far_outsider, customer
):
    CustomerFactory(owner=far_outsider, name="王先生华南")
    client.force_login(sales_rep)
    response = client.post(url("customer_options"), {"customer_q": "王先生"})
    html = response.content.decode()
    assert f'<option value="{customer.pk}" selected>' in html
    assert "王先生华南" not in html
    for query in ("NaN", "wang", "1380", "%"):
        assert client.post(url("customer_options"), {"q": query}).status_code == 200
    assert client.get(url("customer_options"), {"q": "王"}).status_code == 405
    assert client.get(url("deal_list"), {"q": "NaN"}).status_code == 200
