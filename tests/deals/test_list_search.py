"""The deal list's search: a title (its pieces, in order), a customer's or a channel's
name. Few matches are found by the search's own indexes and put in list order by
primary key (selectors._few_matches); many are left to the sort's index. Either way
the list is exactly the scope's matching deals in the sort's order, and the count and
pages are the scope's, whatever the number of matches."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from crm.core.pagination import MAX_COUNT
from culture.deals import selectors
from culture.deals.models import Deal
from customers.models import Customer
from tests.factories import CustomerFactory, DealFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def deals(sales_rep, teammate, outsider, far_outsider):
    """Project titles (翠湖湾 many, 别墅 a few), a customer 王伟 with deals in and out
    of the salesperson's team, a dealer 王伟贸易 as the channel of others, amounts and
    dates spread so that every sort orders them differently."""
    wang = CustomerFactory(name="王伟", owner=sales_rep)
    dealer = CustomerFactory(
        name="王伟贸易", owner=far_outsider, kind=Customer.Kind.DEALER
    )
    plain = {u.pk: CustomerFactory(name=f"客户{u.pk}", owner=u) for u in
             (sales_rep, teammate, outsider, far_outsider)}  # fmt: skip
    titles = [f"翠湖湾 {k % 7} 栋 {100 + k}" for k in range(30)]
    titles += ["湖湾别墅 A", "翠湖湾别墅 B", "公寓 湾翠湖"]
    made = []
    owners = (sales_rep, teammate, outsider, far_outsider)
    for k, title in enumerate(titles):
        owner = owners[k % 4]
        customer = wang if k % 5 == 0 else plain[owner.pk]
        made.append(
            DealFactory(
                customer=customer,
                owner=owner,
                channel=dealer if k % 6 == 0 else None,
                title=title,
                amount=100_000 * (1 + (k * 7) % 9),
                expected_close_on=dt.date(2026, 1, 1)
                + dt.timedelta(days=(k * 11) % 40),
            )
        )
    now = timezone.now()
    for k, deal in enumerate(made):
        Deal.objects.filter(pk=deal.pk).update(
            updated_at=now - dt.timedelta(hours=(k * 17) % 50),
            created_at=now - dt.timedelta(days=(k * 5) % 31),
        )
    return made


def _expected(user, q, sort):
    """The reference: the scope's deals (visible_to, one OR) matching the search,
    sorted by the database in one statement, as the list did before."""
    rows = selectors._filtered(Deal.objects.visible_to(user), {"q": q})
    return list(rows.order_by(*selectors.SORTS[sort]).values_list("pk", flat=True))


SEARCHES = ["翠湖湾", "湖湾", "别墅", "王伟", "湾翠", "翠", "3 栋"]


@pytest.mark.parametrize("path", ["few", "many", "estimated"])
@pytest.mark.parametrize("persona", ["sales_rep", "manager", "admin_user"])
@pytest.mark.parametrize("sort", list(selectors.SORTS))
def test_a_search_lists_the_scopes_matches_in_order(
    request, monkeypatch, deals, persona, sort, path
):
    """With few matches (the primary-key path), with more than SEARCH_MATCHES (set
    low here: the sort index's path) and with a title PostgreSQL expects to be
    dense (DENSE_ESTIMATE set to 0: no gathering), every search lists the same
    deals."""
    if path == "many":
        monkeypatch.setattr(selectors, "SEARCH_MATCHES", 2)
    if path == "estimated":
        monkeypatch.setattr(selectors, "DENSE_ESTIMATE", 0)
    user = request.getfixturevalue(persona)
    for q in SEARCHES:
        listed = selectors.deal_list(user=user, filters={"q": q}, sort=sort)
        assert [deal.pk for deal in listed[:MAX_COUNT]] == _expected(user, q, sort), q


def test_a_title_expected_to_be_dense_is_not_gathered(monkeypatch, deals, sales_rep):
    """The gathering (an unsorted LIMIT SEARCH_MATCHES + 1) runs unless the title's
    estimate reaches DENSE_ESTIMATE; the estimate is a plan, not a read."""

    def statements(q):
        with CaptureQueriesContext(connection) as captured:
            list(selectors.deal_list(user=sales_rep, filters={"q": q})[:MAX_COUNT])
        return [c["sql"] for c in captured.captured_queries]

    gathering = f"LIMIT {selectors.SEARCH_MATCHES + 1}"
    assert any(gathering in sql for sql in statements("翠湖湾"))
    monkeypatch.setattr(selectors, "DENSE_ESTIMATE", 0)
    dense = statements("翠湖湾")
    assert not any(gathering in sql for sql in dense)
    assert any(sql.startswith("EXPLAIN") for sql in dense)


def test_what_each_search_finds(deals, admin_user):
    """Title pieces must be in the title in the query's order; a name finds the
    customer's deals and the deals flowing through the channel of that name."""

    def titles(q):
        listed = selectors.deal_list(user=admin_user, filters={"q": q})
        return sorted(deal.title for deal in listed[:MAX_COUNT])

    assert titles("别墅") == ["湖湾别墅 A", "翠湖湾别墅 B"]
    assert titles("湾翠") == ["公寓 湾翠湖"]
    assert len(titles("翠湖湾")) == 31  # not "公寓 湾翠湖": its pieces, out of order
    wang = {d.title for d in deals if d.customer.name == "王伟" or d.channel_id}
    assert set(titles("王伟")) == wang
    assert titles("不存在的楼盘") == []


def test_a_search_page_reads_its_own_rows_in_a_fixed_number_of_queries(
    client, deals, admin_user
):
    """The second page of a search continues the first; the count comes from the
    matched ids (no COUNT over the table) and the page costs as many statements as
    the first."""
    client.force_login(admin_user)
    url = reverse("deals:deal_list")
    want = _expected(admin_user, "翠湖湾", "recent")
    with CaptureQueriesContext(connection) as first_queries:
        first = client.get(url, {"q": "翠湖湾"}).context["page"]
    with CaptureQueriesContext(connection) as second_queries:
        second = client.get(url, {"q": "翠湖湾", "page": 2}).context["page"]
    assert first.paginator.count == len(want) == 31
    assert [d.pk for d in [*first.object_list, *second.object_list]] == want
    assert not any("COUNT(" in q["sql"] for q in second_queries.captured_queries)
    assert len(second_queries.captured_queries) == len(first_queries.captured_queries)


def test_a_search_keeps_other_teams_deals_out(client, deals, sales_rep, far_outsider):
    client.force_login(sales_rep)
    page = client.get(reverse("deals:deal_list"), {"q": "王伟"}).context["page"]
    shown = {d.pk for d in page.object_list}
    assert shown == set(_expected(sales_rep, "王伟", "recent"))
    assert shown
    assert all(d.owner_id != far_outsider.pk for d in page.object_list)
