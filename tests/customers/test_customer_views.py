"""The customer pages as a salesperson, a service agent and a manager use them."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from pytest_django.asserts import assertContains, assertNotContains

from customers import services
from customers.models import Customer

LIST_URL = reverse("customers:customer_list")
CREATE_URL = reverse("customers:customer_create")
CUSTOMER_LINK = re.compile(r'<a href="/customers/(\d+)/">([^<]+)</a>')


def add_customer(owner, name: str, phone: str = "", **data: object) -> Customer:
    """A customer as the salesperson `owner` would enter it (through the service)."""
    return services.customer_create(
        by=owner, data={"name": name, **data}, phone_numbers=[phone] if phone else []
    )


def listed_names(response) -> list[str]:
    """Customer names in the order the list shows them."""
    html = response.content.decode()
    table = html.split('data-testid="customer-table"', 1)
    if len(table) == 1:
        return []
    return [name for _, name in CUSTOMER_LINK.findall(table[1])]


def detail_url(customer: Customer) -> str:
    return reverse("customers:customer_detail", args=[customer.pk])


def edit_url(customer: Customer) -> str:
    return reverse("customers:customer_edit", args=[customer.pk])


def edit_form_from(response, **changes: object) -> dict[str, object]:
    """What the browser submits from the form page `response`, with `changes` typed in."""
    form = response.context["form"]
    data = {}
    for name in form.fields:
        value = form[name].value()
        if value in (None, False, [], ""):
            continue
        data[name] = value
    version = re.search(r'name="version" value="(\d+)"', response.content.decode())
    if version:
        data["version"] = version.group(1)
    data.update(changes)
    return data


@pytest.fixture
def as_sales(client, sales_rep):
    client.force_login(sales_rep)
    return client


# --- list: search, sort, pagination, empty states --------------------------------


def test_empty_list_says_there_are_no_customers_yet(as_sales):
    response = as_sales.get(LIST_URL)
    assertContains(response, "还没有客户")
    assertContains(response, 'data-testid="empty-state"')


def test_search_by_name_substring_finds_only_matching_customers(as_sales, sales_rep):
    add_customer(sales_rep, "张三丰")
    add_customer(sales_rep, "张无忌")
    add_customer(sales_rep, "李四")
    assert listed_names(as_sales.get(LIST_URL, {"q": "三丰"})) == ["张三丰"]
    assert set(listed_names(as_sales.get(LIST_URL, {"q": "张"}))) == {
        "张三丰",
        "张无忌",
    }


def test_search_by_phone_digits_ignores_spaces_and_dashes(as_sales, sales_rep):
    add_customer(sales_rep, "王五", phone="13912345678")
    add_customer(sales_rep, "赵六", phone="13700000000")
    assert listed_names(as_sales.get(LIST_URL, {"q": "5678"})) == ["王五"]
    # A whole number is posted and comes back as ?s=<token> (no phone in the URL).
    whole = as_sales.post(LIST_URL, {"q": "139-1234 5678"}, follow=True)
    assert listed_names(whole) == ["王五"]


def test_search_with_no_match_says_so(as_sales, sales_rep):
    add_customer(sales_rep, "张三丰")
    response = as_sales.get(LIST_URL, {"q": "不存在的人"})
    assert listed_names(response) == []
    assertContains(response, "没有找到与“不存在的人”匹配的客户")
    assertNotContains(response, "还没有客户")


def test_search_only_finds_customers_the_user_may_see(as_sales, sales_rep, outsider):
    add_customer(outsider, "张别组", phone="13955556666")
    assert listed_names(as_sales.get(LIST_URL, {"q": "张别组"})) == []
    assert listed_names(as_sales.get(LIST_URL, {"q": "5556666"})) == []


@pytest.fixture
def three_customers_an_hour_apart(sales_rep):
    """Bravo, Charlie, Alpha created in that order, an hour apart."""
    start = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
    created = {}
    for hours, name in enumerate(["Bravo", "Charlie", "Alpha"]):
        with time_machine.travel(start + dt.timedelta(hours=hours), tick=False):
            created[name] = add_customer(sales_rep, name)
    return created


def test_list_sorts_by_name_and_by_creation(as_sales, three_customers_an_hour_apart):
    by_name = as_sales.get(LIST_URL, {"sort": "name"})
    assert listed_names(by_name) == ["Alpha", "Bravo", "Charlie"]
    by_created = as_sales.get(LIST_URL, {"sort": "created"})
    assert listed_names(by_created) == ["Alpha", "Charlie", "Bravo"]


def test_list_defaults_to_most_recently_updated_first(
    as_sales, three_customers_an_hour_apart
):
    assert listed_names(as_sales.get(LIST_URL)) == ["Alpha", "Charlie", "Bravo"]


def test_edited_customer_moves_to_the_top_of_recently_updated(
    as_sales, three_customers_an_hour_apart
):
    bravo = three_customers_an_hour_apart["Bravo"]
    with time_machine.travel(dt.datetime(2026, 3, 1, 15, 0, tzinfo=dt.UTC)):
        page = as_sales.get(edit_url(bravo))
        response = as_sales.post(edit_url(bravo), edit_form_from(page, notes="回访过"))
    assert response.status_code == 302
    assert listed_names(as_sales.get(LIST_URL, {"sort": "recent"})) == [
        "Bravo",
        "Alpha",
        "Charlie",
    ]


def test_list_pages_by_25_and_keeps_search_and_sort(as_sales, sales_rep):
    for n in range(30):
        add_customer(sales_rep, f"Page客户{n:02d}")
    add_customer(sales_rep, "不在搜索结果里")

    first = as_sales.get(LIST_URL, {"q": "Page", "sort": "name"})
    assert listed_names(first) == [f"Page客户{n:02d}" for n in range(25)]
    assertContains(first, "第 1 页，共 2 页")
    assertContains(first, "共 30 位客户")
    assertContains(first, "?q=Page&amp;sort=name&amp;page=2")

    second = as_sales.get(LIST_URL, {"q": "Page", "sort": "name", "page": 2})
    assert listed_names(second) == [f"Page客户{n:02d}" for n in range(25, 30)]
    assertContains(second, "第 2 页，共 2 页")

    # A page number past the end goes to the last page and says so.
    past = as_sales.get(
        LIST_URL, {"q": "Page", "sort": "name", "page": 99}, follow=True
    )
    assert listed_names(past) == listed_names(second)
    assertContains(past, "没有第 99 页：共 2 页，已转到最后一页。")


def test_htmx_search_returns_only_the_results_partial(as_sales, sales_rep):
    add_customer(sales_rep, "张三丰")
    add_customer(sales_rep, "李四")
    response = as_sales.get(LIST_URL, {"q": "三丰"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" not in html
    assert "navbar" not in html
    assert 'data-testid="customer-table"' in html
    assert listed_names(response) == ["张三丰"]


def test_full_page_list_has_the_layout_and_the_search_box(as_sales, sales_rep):
    add_customer(sales_rep, "张三丰")
    response = as_sales.get(LIST_URL, {"q": "三丰"})
    assertContains(response, "<html")
    assertContains(response, 'id="customer-results"')
    assertContains(response, 'name="q" value="三丰"')


# --- detail and masking ---------------------------------------------------------------


def test_owner_sees_the_customer_profile_with_the_phone_in_clear(as_sales, sales_rep):
    customer = add_customer(
        sales_rep,
        "张三丰",
        phone="13812345678",
        kind=Customer.Kind.ENTERPRISE,
        stage=Customer.Stage.PROSPECT,
        email="zsf@example.com",
        notes="喜欢南向户型",
    )
    response = as_sales.get(detail_url(customer))
    assertContains(response, "张三丰")
    assertContains(response, "13812345678")
    assertNotContains(response, "138****5678")
    for text in ("企业", "意向", "zsf@example.com", "喜欢南向户型", str(sales_rep)):
        assertContains(response, text)
    assertContains(response, edit_url(customer))


def test_service_agent_sees_the_phone_masked_on_list_and_detail(
    client, service_agent, sales_rep
):
    customer = add_customer(sales_rep, "张三丰", phone="13812345678")
    client.force_login(service_agent)
    for response in (client.get(LIST_URL), client.get(detail_url(customer))):
        assertContains(response, "张三丰")
        assertContains(response, "138****5678")
        assertNotContains(response, "13812345678")
    # Service may look, not edit.
    assertNotContains(client.get(detail_url(customer)), edit_url(customer))


def test_service_agent_finds_a_caller_by_phone_but_sees_it_masked(
    client, service_agent, sales_rep
):
    add_customer(sales_rep, "来电客户", phone="13812345678")
    client.force_login(service_agent)
    response = client.get(LIST_URL, {"q": "5678"})
    assert listed_names(response) == ["来电客户"]
    assertNotContains(response, "13812345678")
    assertContains(response, "138****5678")


def test_service_agent_sees_no_clear_phone_in_the_history_tab(
    client, sales_rep, service_agent
):
    customer = add_customer(sales_rep, "张三丰", phone="13812345678")
    client.force_login(sales_rep)
    page = client.get(edit_url(customer))
    saved = client.post(edit_url(customer), edit_form_from(page, phone="13987654321"))
    assert saved.status_code == 302

    client.force_login(service_agent)
    response = client.get(detail_url(customer))
    assertContains(response, 'data-testid="history"')
    assertNotContains(response, "13812345678")
    assertNotContains(response, "13987654321")


def test_manager_sees_the_phone_in_clear(client, manager, sales_rep):
    customer = add_customer(sales_rep, "张三丰", phone="13812345678")
    client.force_login(manager)
    assertContains(client.get(detail_url(customer)), "13812345678")


# --- create ---------------------------------------------------------------------------


def test_create_saves_the_customer_as_the_salespersons_and_shows_it(
    as_sales, sales_rep, team_a
):
    response = as_sales.post(
        CREATE_URL, {"name": "  张三丰  ", "phone": "13800138000"}, follow=True
    )
    customer = Customer.objects.get()
    assert customer.name == "张三丰"
    assert customer.owner == sales_rep
    assert customer.team == team_a
    assert response.redirect_chain == [(detail_url(customer), 302)]
    assertContains(response, "客户已创建")
    assertContains(response, "张三丰")
    assertContains(response, "13800138000")


def test_create_with_empty_name_shows_error_and_saves_nothing(as_sales):
    response = as_sales.post(CREATE_URL, {"name": "   ", "phone": "13800138000"})
    assert response.status_code == 200
    assert response.context["form"].errors["name"]
    assertContains(response, "is-invalid")
    assertContains(response, "这个字段是必填项")
    # What the user typed is kept.
    assertContains(response, 'value="13800138000"')
    assert Customer.objects.count() == 0


@pytest.mark.parametrize("phone", ["12ab", "123", "1380013800012345678"])
def test_create_with_bad_phone_shows_error_and_saves_nothing(as_sales, phone):
    response = as_sales.post(CREATE_URL, {"name": "张三丰", "phone": phone})
    assert response.status_code == 200
    assertContains(response, f"“{phone}”不是有效的电话号码")
    assertContains(response, 'value="张三丰"')
    assert Customer.objects.count() == 0


def test_create_normalises_full_width_digits_in_the_phone(as_sales):
    response = as_sales.post(
        CREATE_URL, {"name": "张三丰", "phone": "１３８ ００１３-８０００"}
    )
    assert response.status_code == 302
    customer = Customer.objects.get()
    assert customer.phone == "13800138000"
    assert [p.number for p in customer.phones.all()] == ["13800138000"]


def test_create_with_a_known_phone_warns_first_and_saves_on_confirmation(
    as_sales, sales_rep
):
    add_customer(sales_rep, "张三丰", phone="13800138000")
    warned = as_sales.post(CREATE_URL, {"name": "张三", "phone": "13800138000"})
    assert warned.status_code == 200
    assertContains(warned, 'data-testid="duplicates"')
    assert Customer.objects.count() == 1


def test_service_agent_cannot_create(client, service_agent):
    client.force_login(service_agent)
    response = client.post(CREATE_URL, {"name": "张三丰"})
    assert response.status_code == 403
    assert Customer.objects.count() == 0


# --- edit and the version check ----------------------------------------------------


def test_edit_saves_and_shows_the_change(as_sales, sales_rep):
    customer = add_customer(sales_rep, "张三丰")
    page = as_sales.get(edit_url(customer))
    assertContains(page, 'value="张三丰"')
    response = as_sales.post(
        edit_url(customer),
        edit_form_from(page, name="张三丰（已改）", stage=Customer.Stage.CUSTOMER),
        follow=True,
    )
    assert response.redirect_chain == [(detail_url(customer), 302)]
    assertContains(response, "客户已保存")
    assertContains(response, "张三丰（已改）")
    customer.refresh_from_db()
    assert customer.name == "张三丰（已改）"
    assert customer.stage == Customer.Stage.CUSTOMER
    assert customer.version == 2


def test_edit_with_bad_phone_shows_error_and_changes_nothing(as_sales, sales_rep):
    customer = add_customer(sales_rep, "张三丰", phone="13800138000")
    page = as_sales.get(edit_url(customer))
    response = as_sales.post(
        edit_url(customer), edit_form_from(page, name="新名字", phone="12ab")
    )
    assert response.status_code == 200
    assertContains(response, "不是有效的电话号码")
    customer.refresh_from_db()
    assert (customer.name, customer.phone, customer.version) == (
        "张三丰",
        "13800138000",
        1,
    )


def test_second_of_two_stale_edits_gets_conflict_and_overwrites_nothing(
    sales_rep, teammate
):
    customer = add_customer(sales_rep, "张三丰", notes="原备注")
    first, second = Client(), Client()
    first.force_login(sales_rep)
    second.force_login(teammate)
    first_page = first.get(edit_url(customer))
    second_page = second.get(edit_url(customer))

    saved = first.post(
        edit_url(customer), edit_form_from(first_page, notes="销售一改的备注")
    )
    assert saved.status_code == 302

    stale = second.post(
        edit_url(customer),
        edit_form_from(second_page, name="被覆盖的名字", notes="销售二改的备注"),
    )
    assert stale.status_code == 200
    assertContains(stale, "已被他人修改")
    # The form now shows the latest saved content, to check and save again.
    assertContains(stale, "销售一改的备注")
    assertContains(stale, 'name="version" value="2"')

    customer.refresh_from_db()
    assert customer.name == "张三丰"
    assert customer.notes == "销售一改的备注"
    assert customer.version == 2


def test_resubmitting_after_a_conflict_saves(sales_rep, teammate):
    customer = add_customer(sales_rep, "张三丰")
    first, second = Client(), Client()
    first.force_login(sales_rep)
    second.force_login(teammate)
    first_page = first.get(edit_url(customer))
    second_page = second.get(edit_url(customer))
    first.post(edit_url(customer), edit_form_from(first_page, notes="一"))
    conflict = second.post(edit_url(customer), edit_form_from(second_page, notes="二"))
    assertContains(conflict, "已被他人修改")

    retry = second.post(edit_url(customer), edit_form_from(conflict, notes="一；二"))
    assert retry.status_code == 302
    customer.refresh_from_db()
    assert customer.notes == "一；二"
    assert customer.version == 3


def test_outsider_cannot_edit_another_teams_customer(client, outsider, sales_rep):
    customer = add_customer(sales_rep, "张三丰")
    client.force_login(outsider)
    response = client.post(edit_url(customer), {"name": "被改了", "version": 1})
    assert response.status_code == 404
    assertNotContains(response, "张三丰", status_code=404)
    customer.refresh_from_db()
    assert customer.name == "张三丰"


# --- constant query counts ------------------------------------------------------------


def _queries_for(client, url: str) -> CaptureQueriesContext:
    client.get(url)  # warm per-process caches (content types, translations)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return queries


def _sql(queries: CaptureQueriesContext) -> str:
    return "\n".join(q["sql"] for q in queries.captured_queries)


@pytest.mark.parametrize("persona", ["sales_rep", "service_agent", "manager"])
def test_list_runs_the_same_queries_for_3_and_30_customers(
    request, client, sales_rep, teammate, persona
):
    client.force_login(request.getfixturevalue(persona))
    owners = [sales_rep, teammate]
    for n in range(3):
        add_customer(owners[n % 2], f"客户{n}", phone=f"1381234{n:04d}")
    few = _queries_for(client, LIST_URL)
    for n in range(3, 30):
        add_customer(owners[n % 2], f"客户{n}", phone=f"1381234{n:04d}")
    many = _queries_for(client, LIST_URL)
    assert len(many) == len(few), f"3 customers:\n{_sql(few)}\n30:\n{_sql(many)}"


def test_detail_runs_the_same_queries_for_3_and_30_history_events(
    as_sales, sales_rep, teammate
):
    customer = add_customer(sales_rep, "张三丰", phone="13812345678")
    editors = [sales_rep, teammate]

    def edit(times: int) -> None:
        for n in range(times):
            customer.refresh_from_db()
            services.customer_update(
                by=editors[n % 2],
                customer=customer,
                version=customer.version,
                data={"notes": f"第{customer.version}次修改"},
            )

    edit(2)  # with the insert: 3 events, by both editors
    few = _queries_for(as_sales, detail_url(customer))
    edit(27)  # 30 events
    many = _queries_for(as_sales, detail_url(customer))
    assert len(many) == len(few), f"3 events:\n{_sql(few)}\n30:\n{_sql(many)}"
