"""Every order of the customer list is served exactly by an index, for each filter the
list offers (issue 18): PostgreSQL walks the filter's own index in the page's order and
stops after a page, whichever rows arrived last and however many share an updated_at.

The plans are read with sorting and bitmap scans priced out (the tables are small here,
so the planner would happily sort them): a Sort or Incremental Sort still in the plan
means no index can deliver the order, which on a million rows is a sort of every
matching row (bench/shapes.py measures it).
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from customers import selectors
from customers.models import Customer
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

KINDS = Customer.Kind.values
# (filters, sort) -> the index that must serve the page alone. None: the sort's own
# index (customer_recent, customer_name, ...).
EXACT = {
    ((), "recent"): "customer_recent",
    ((), "name"): "customer_name",
    ((), "created"): "customer_created",
    ((), "last_contact"): "customer_last_contact",
    (("kind",), "recent"): "customer_kind_recent",
    (("kind",), "name"): "customer_kind_name",
    (("kind",), "created"): "customer_kind_created",
    (("kind",), "last_contact"): "customer_kind_last_contact",
    (("owner",), "recent"): "customer_owner_recent",
    (("team",), "recent"): "customer_team_recent",
    (("stage",), "recent"): "customer_stage_recent",
    (("tier",), "recent"): "customer_tier_recent",
    (("province",), "recent"): "customer_province_recent",
    (("city",), "recent"): "customer_city_recent",
    (("is_key_account",), "recent"): "customer_key_account_recent",
    (("pool",), "recent"): "customer_pool",
    (("needs_review",), "recent"): "customer_needs_review",
}


@pytest.fixture
def book(sales_rep, teammate, outsider):
    """300 customers of the team: persons and organisations of three owners' (one of
    them nobody: the pool); the rep's all share one updated_at (a bulk reassignment).
    And 600 of another team, out of the rep's sight: with the team's rows the whole
    table, a team filter selects nothing and PostgreSQL 18 rightly walks the plain
    recency index instead of the team's."""
    now = timezone.now()
    customers = [
        CustomerFactory.build(
            name=f"别组{n:04d}",
            kind=KINDS[n % len(KINDS)],
            owner=outsider,
            team=outsider.team,
        )
        for n in range(600)
    ]
    for n in range(300):
        owner = (sales_rep, teammate, None)[n % 3]
        customers.append(
            CustomerFactory.build(
                name=f"客户{n:04d}",
                kind=KINDS[n % len(KINDS)],
                is_organization=n % len(KINDS) != 0,
                stage=Customer.Stage.values[n % 5],
                tier="ABCD"[n % 4],
                province=("广东省", "浙江省")[n % 2],
                city=("深圳市", "杭州市")[n % 2],
                is_key_account=n % 10 == 0,
                review_flags={"phone": "x"} if n % 50 == 0 else {},
                last_contacted_at=None if n % 7 == 0 else now - dt.timedelta(hours=n),
                owner=owner,
                team=sales_rep.team,
            )
        )
    Customer.objects.bulk_create(customers)
    # auto_now set every updated_at at the insert: spread them, then tie a third.
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE customers_customer SET updated_at = now() - id * interval '1 min', "
            "created_at = now() - id * interval '2 min'"
        )
        cursor.execute(
            "UPDATE customers_customer SET updated_at = now() WHERE owner_id = %s",
            [sales_rep.pk],
        )
        cursor.execute("ANALYZE customers_customer")
    return sales_rep


def _values(user, fields: tuple[str, ...]) -> dict:
    values = {
        "kind": Customer.Kind.ENTERPRISE,
        "owner": user.pk,
        "team": user.team_id,
        "stage": Customer.Stage.CUSTOMER,
        "tier": "A",
        "province": "广东省",
        "city": "深圳市",
        "is_key_account": True,
        "pool": True,
        "needs_review": True,
    }
    return {field: values[field] for field in fields}


def _plan(queryset) -> str:
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        for setting in ("enable_sort", "enable_bitmapscan", "enable_seqscan"):
            cursor.execute(f"SET LOCAL {setting} = off")
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
        for setting in ("enable_sort", "enable_bitmapscan", "enable_seqscan"):
            cursor.execute(f"SET LOCAL {setting} = on")
    return plan


def _explain_as_run(sql: str) -> str:
    """The plan of a captured statement (its parameters already inlined)."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # a small table here
        cursor.execute("EXPLAIN " + sql.replace("%", "%%"))
        plan = "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute("SET LOCAL enable_seqscan = on")
    return plan


@pytest.mark.parametrize(
    ("fields", "sort"),
    list(EXACT),
    ids=[f"{'+'.join(fields) or 'all'}-{sort}" for fields, sort in EXACT],
)
def test_each_filter_and_order_is_served_by_one_index_without_a_sort(
    book, fields, sort
):
    page = selectors.customer_list(user=book, sort=sort, filters=_values(book, fields))[
        :25
    ]
    plan = _plan(page)
    assert "Sort" not in plan, plan
    assert f"Index Scan using {EXACT[fields, sort]} on customers_customer" in plan, plan


def test_every_order_ends_with_the_unique_id():
    for sort, order in selectors.SORTS.items():
        last = order[-1]
        assert getattr(last, "expression", last) in ("id", "-id") or (
            getattr(getattr(last, "expression", None), "name", None) == "id"
        ), sort


def test_a_page_of_ties_is_the_next_ids_in_order(book):
    """Rows sharing updated_at come in id order, so pages neither repeat nor skip."""
    visible = selectors.customer_list(user=book, filters={"owner": book.pk})
    ids = list(visible.values_list("pk", flat=True))
    pages = [list(visible[n : n + 25].values_list("pk", flat=True)) for n in (0, 25)]
    assert pages[0] + pages[1] == ids[:50] == sorted(ids[:50], reverse=True)
    tied = Customer.objects.filter(id__in=ids)
    assert tied.values("updated_at").distinct().count() == 1


@pytest.fixture
def orgs_then_people(sales_rep):
    """Organisations that arrived long ago, then many more people: a broad company
    word matches only rows at the far end of the recency order."""
    customers = [
        CustomerFactory.build(
            name=f"深圳{n:03d}科技有限公司" if n < 40 else f"王{n:03d}",
            kind=Customer.Kind.ENTERPRISE if n < 40 else Customer.Kind.OWNER,
            is_organization=n < 40,
            owner=sales_rep,
            team=sales_rep.team,
        )
        for n in range(240)
    ]
    Customer.objects.bulk_create(customers)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE customers_customer SET updated_at = now() - interval '1 year' "
            "+ id * interval '1 min', created_at = now() - interval '2 years'"
        )
        cursor.execute("ANALYZE customers_customer")
    return sales_rep


@pytest.mark.parametrize("window", [5, 60, 2_000])
@pytest.mark.parametrize("sort", list(selectors.SORTS))
@pytest.mark.parametrize("query", ["有限", "王", "科技有限"])
def test_a_search_page_is_the_same_whether_it_lies_in_the_window_or_not(
    orgs_then_people, monkeypatch, window, sort, query
):
    from crm.core import pagination

    monkeypatch.setattr(selectors, "SEARCH_WINDOW", window)
    customers = selectors.customer_list(user=orgs_then_people, query=query, sort=sort)
    expected = list(customers.values_list("pk", flat=True))
    for number in (1, 2, 3):
        if (number - 1) * 10 >= len(expected):
            break
        page = selectors.list_page(
            pagination.paginate(customers, number, 10), query=query, sort=sort
        )
        assert [c.pk for c in page.object_list] == expected[
            (number - 1) * 10 : number * 10
        ]


def test_matches_out_of_the_window_are_sorted_not_walked(orgs_then_people, monkeypatch):
    """The organisations lie past the window: their page comes from the matches,
    sorted, never from walking the recency index past every person."""
    monkeypatch.setattr(selectors, "SEARCH_WINDOW", 100)
    customers = selectors.customer_list(user=orgs_then_people, query="有限")
    with CaptureQueriesContext(connection) as queries:
        from crm.core import pagination

        page = selectors.list_page(
            pagination.paginate(customers, 1, 25), query="有限", sort="recent"
        )
    assert len(page.object_list) == 25
    last = queries.captured_queries[-1]["sql"]
    assert "+ '0:00:00'::interval" in last or "+ '00:00:00'::interval" in last, last
    plan = _explain_as_run(last)
    assert "Sort Key: ((customers_customer.updated_at + " in plan, plan
    assert "customer_recent" not in plan, plan


@pytest.mark.parametrize("sort", list(selectors.SORTS))
def test_a_phone_search_page_sorts_its_matches(orgs_then_people, sort):
    """A number's matches are at most MAX_PHONE_MATCHES ids: the page sorts them
    (primary-key look-ups) instead of walking the order's index testing each row
    against the ids, and lists exactly the matches in the list's order."""
    from crm.core import pagination
    from customers.models import CustomerPhone

    people = Customer.objects.filter(is_organization=False).order_by("id")[:60]
    CustomerPhone.objects.bulk_create(
        CustomerPhone(customer=c, number=f"1859{n:07d}") for n, c in enumerate(people)
    )
    customers = selectors.customer_list(user=orgs_then_people, query="1859", sort=sort)
    expected = list(customers.values_list("pk", flat=True))
    assert len(expected) == 60
    for number in (1, 2, 3):
        with CaptureQueriesContext(connection) as queries:
            page = selectors.list_page(
                pagination.paginate(customers, number, 25), query="1859", sort=sort
            )
        assert [c.pk for c in page.object_list] == expected[
            (number - 1) * 25 : number * 25
        ]
    if sort == "recent":
        assert "+ '0:00:00'::interval" in queries.captured_queries[-1]["sql"] or (
            "+ '00:00:00'::interval" in queries.captured_queries[-1]["sql"]
        )
