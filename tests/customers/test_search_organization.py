"""A company's name in the customer search finds the company and its people (persons whose
所属机构 it is), within the user's scope, with the company named beside each person.

The organisations are looked up first through the name indexes, bounded, and their
people through the organization_id index (customers/search.py).
"""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from customers import search, selectors, services
from customers.models import Customer
from tests.factories import CustomerFactory

LIST_URL = reverse("customers:customer_list")
ROW = re.compile(
    r'<a href="/customers/\d+/">([^<]+)</a>'
    r'(?: <span class="text-secondary small" data-testid="customer-organization">'
    r"([^<]*)</span>)?"
)
VANKE = "万科物业服务有限公司"


def add(owner, name: str, *phones: str, **data: object) -> Customer:
    """A customer of `owner` saved the way the create form saves it."""
    return services.customer_create(
        by=owner, data={"name": name, **data}, phone_numbers=list(phones)
    )


def found(client, query: str) -> dict[str, str]:
    """Each listed customer's name and the company shown beside it ('' for none)."""
    response = client.get(LIST_URL, {"q": query})
    assert response.status_code == 200
    return dict(ROW.findall(response.content.decode()))


@pytest.fixture
def as_sales(client, sales_rep):
    client.force_login(sales_rep)
    return client


@pytest.fixture
def vanke(sales_rep):
    return add(sales_rep, VANKE, is_organization=True, kind="enterprise")


def test_a_company_name_finds_the_company_and_its_people(as_sales, sales_rep, vanke):
    china_resources = add(sales_rep, "华润置地有限公司", is_organization=True)
    add(sales_rep, "张三", organization=vanke)
    add(sales_rep, "李四", organization=china_resources)
    add(sales_rep, "王五")
    expected = {VANKE: "", "张三": VANKE}

    assert found(as_sales, "万科") == expected
    assert found(as_sales, "万科物业") == expected
    assert found(as_sales, "wanke") == expected  # pinyin of the company
    assert found(as_sales, "张三") == {"张三": VANKE}  # the company shows by name too


def test_one_character_or_a_phone_finds_no_one_by_company(as_sales, sales_rep, vanke):
    add(sales_rep, "张三", "13812345678", organization=vanke)
    assert found(as_sales, "万") == {VANKE: ""}
    assert found(as_sales, "w") == {VANKE: ""}
    # Phone digits name no company (a search that looks like a phone posts; GET is
    # moved to a token first, so ask the selector).
    by_phone = selectors.customer_list(user=vanke.owner, query="5678")
    assert [c.name for c in by_phone] == ["张三"]


def test_a_name_too_vague_finds_the_companies_but_not_their_people(
    as_sales, sales_rep, vanke, monkeypatch
):
    property_arm = add(sales_rep, "万科地产有限公司", is_organization=True)
    add(sales_rep, "张三", organization=vanke)
    add(sales_rep, "李四", organization=property_arm)
    assert set(found(as_sales, "万科")) == {VANKE, "万科地产有限公司", "张三", "李四"}

    monkeypatch.setattr(search, "MAX_ORGANIZATION_MATCHES", 1)
    assert set(found(as_sales, "万科")) == {VANKE, "万科地产有限公司"}
    monkeypatch.undo()
    monkeypatch.setattr(search, "MAX_NAME_MATCHES", 1)
    assert set(found(as_sales, "万科")) == {VANKE, "万科地产有限公司"}


def test_people_outside_the_users_scope_are_not_found_by_their_company(
    client, sales_rep, teammate, outsider, far_outsider, manager, service_agent, vanke
):
    add(sales_rep, "张三", organization=vanke)
    add(teammate, "赵六", organization=vanke)
    add(outsider, "钱七", organization=vanke)
    add(far_outsider, "孙八", organization=vanke)
    expected = {
        sales_rep: {VANKE, "张三", "赵六"},
        # The company is another team's, the person is the outsider's own: found,
        # and named beside the company as on the person's own page.
        outsider: {"钱七"},
        far_outsider: {"孙八"},
        manager: {VANKE, "张三", "赵六", "钱七"},
        service_agent: {VANKE, "张三", "赵六", "钱七", "孙八"},
    }
    for user, names in expected.items():
        client.force_login(user)
        rows = found(client, "万科")
        assert set(rows) == names, user.username
        assert all(rows[name] == VANKE for name in names - {VANKE}), user.username


def test_the_search_runs_the_same_queries_for_one_company_or_many(
    as_sales, sales_rep, django_assert_num_queries
):
    first = CustomerFactory(name="万科物业", is_organization=True, owner=sales_rep)
    CustomerFactory(name="张三", organization=first, owner=sales_rep)
    found(as_sales, "万科")  # warm per-process caches
    with CaptureQueriesContext(connection) as few:
        assert len(found(as_sales, "万科")) == 2

    for n in range(4):  # 22 rows: one page
        company = CustomerFactory(
            name=f"万科分公司{n}", is_organization=True, owner=sales_rep
        )
        for k in range(4):
            CustomerFactory(name=f"员工{n}{k}", organization=company, owner=sales_rep)
    with django_assert_num_queries(len(few.captured_queries)):
        assert len(found(as_sales, "万科")) == 2 + 4 * 5


def _plan(sql: str, params: object) -> str:
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


def test_the_people_are_found_through_the_organization_id_index(sales_rep):
    companies = Customer.objects.bulk_create(
        Customer(name=f"公司{n}", is_organization=True, owner=sales_rep)
        for n in range(200)
    )
    vanke = add(sales_rep, VANKE, is_organization=True)
    Customer.objects.bulk_create(
        Customer(name=f"员工{n}", organization=companies[n % 200], owner=sales_rep)
        for n in range(3000)
    )
    add(sales_rep, "张三", organization=vanke)
    with connection.cursor() as cursor:
        cursor.execute("SELECT gin_clean_pending_list('customer_name_grams'::regclass)")
        cursor.execute("ANALYZE customers_customer")
        # Tables this small may be read whole; the indexes must serve when they are not.
        cursor.execute("SET LOCAL enable_seqscan = off")

    with CaptureQueriesContext(connection) as lookups:
        customers = selectors.customer_list(user=sales_rep, query="万科")
    assert {c.name for c in customers} == {VANKE, "张三"}
    # The organisations are looked up once, bounded, before the list's own query.
    (organizations,) = [
        q["sql"] for q in lookups.captured_queries if "LIMIT 1001" in q["sql"]
    ]
    assert "customer_name_grams" in _plan(organizations, None)
    sql, params = customers.query.sql_with_params()
    assert "customers_customer_organization_id" in _plan(sql, params)
