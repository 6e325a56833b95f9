"""The deal list with a range filter (expected date, amount) under a sort on another
column, or a salesperson's status filter: answered from the scope's branch indexes
in two steps (selectors._ranged_ids), it lists exactly the deals, in exactly the
order and pages, of the filter applied to the scope's deals and sorted: for sales
(owner or team), a manager (the department) and an admin (everything), under every
sort."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from crm.core.pagination import MAX_COUNT
from culture.deals import selectors
from culture.deals.models import Deal
from tests import personas
from tests.factories import CustomerFactory, DealFactory, UserFactory, deal_stage

pytestmark = pytest.mark.django_db
BASE = dt.date(2026, 1, 1)


@pytest.fixture(scope="module")
def _made(django_db_setup, django_db_blocker):
    """The personas and their deals, made once for the module's 90-odd tests (they
    only read them) in a transaction rolled back after the last; each test runs in a
    savepoint inside it, so one test's writes do not reach the next."""
    with django_db_blocker.unblock(), transaction.atomic():
        people = personas.make_personas()
        yield people, _make_deals(**people)
        transaction.set_rollback(True)


@pytest.fixture
def deals(db, _made):
    return _made[1]


# The conftest's personas, here the module's (the same names, teams and roles).
@pytest.fixture
def sales_rep(db, _made):
    return _made[0]["sales_rep"]


@pytest.fixture
def teammate(db, _made):
    return _made[0]["teammate"]


@pytest.fixture
def outsider(db, _made):
    return _made[0]["outsider"]


@pytest.fixture
def far_outsider(db, _made):
    return _made[0]["far_outsider"]


@pytest.fixture
def manager(db, _made):
    return _made[0]["manager"]


@pytest.fixture
def admin_user(db, _made):
    return _made[0]["admin_user"]


def _make_deals(*, sales_rep, teammate, outsider, far_outsider, **_others):
    """40 deals of the salesperson, 15 of a teammate, 10 of another team of the
    department, 10 of another department, and 5 the salesperson owns in another team
    (scope: owner = me): expected dates and amounts spread, updated_at in an order
    unrelated to either, ties on amount and dates."""
    made = []
    other_team = UserFactory(team=outsider.team)
    for owner, n, team in (
        (sales_rep, 40, None),
        (teammate, 15, None),
        (outsider, 10, None),
        (far_outsider, 10, None),
        (sales_rep, 5, other_team.team),
    ):
        customer = CustomerFactory(owner=owner)
        for _i in range(n):
            k = len(made)
            deal = DealFactory(
                customer=customer,
                owner=owner,
                team=team or owner.team,
                amount=Decimal(100_000 * (1 + (k * 7) % 13)),
                expected_close_on=BASE + dt.timedelta(days=(k * 11) % 60),
            )
            made.append(deal)
    now = timezone.now()
    pledge = deal_stage("pledge")
    for k, deal in enumerate(made):
        # The newest updated deals expect to close late: the correlation that made
        # the recency walk read most of the table at full size.
        Deal.objects.filter(pk=deal.pk).update(
            updated_at=now - dt.timedelta(hours=(k * 17) % 80),
            created_at=now - dt.timedelta(days=(k * 5) % 31),
        )
    # Some won, some lost, some a stage further: the status filter is also answered
    # by the branch indexes (selectors._by_status), the stage filter is not.
    Deal.objects.filter(pk__in=[d.pk for d in made[1::4]]).update(status="won")
    Deal.objects.filter(pk__in=[d.pk for d in made[2::7]]).update(
        status="lost", lost_reason="价格"
    )
    Deal.objects.filter(pk__in=[d.pk for d in made[::3]]).update(stage=pledge)
    return made


def _expected(user, filters, sort):
    """The reference: the scope's deals (visible_to, one OR), filtered, sorted by
    the database as the list would without the two steps."""
    rows = selectors._filtered(Deal.objects.visible_to(user), filters)
    return list(
        rows.order_by(*selectors.SORTS[sort]).values_list("pk", flat=True)[:1001]
    )


RANGES = [
    {"expected_from": dt.date(2026, 1, 20), "expected_to": dt.date(2026, 2, 10)},
    {"expected_from": dt.date(2026, 2, 1)},
    {"amount_min": Decimal(300_000), "amount_max": Decimal(900_000)},
    {"amount_max": Decimal(500_000)},
    {"amount_min": Decimal(200_000), "expected_to": dt.date(2026, 2, 1)},
    {"expected_from": dt.date(2026, 1, 10), "status": "open"},
    {"status": "open"},
    {"status": "won"},
    {"status": "lost"},
    {"stage": "pledge"},
    {"stage": "pledge", "status": "open"},
]


@pytest.mark.parametrize("persona", ["sales_rep", "manager", "admin_user"])
@pytest.mark.parametrize("sort", list(selectors.SORTS))
@pytest.mark.parametrize("filters", RANGES, ids=range(len(RANGES)))
def test_a_range_under_any_sort_lists_the_scope_in_order(
    request, deals, persona, sort, filters
):
    user = request.getfixturevalue(persona)
    if "stage" in filters:
        filters = {**filters, "stage": deal_stage(filters["stage"])}
    listed = selectors.deal_list(user=user, filters=filters, sort=sort)
    want = _expected(user, filters, sort)
    assert want, "the example must list something"
    assert [deal.pk for deal in listed[:MAX_COUNT]] == want


def test_the_pages_and_count_of_a_ranged_list(client, deals, sales_rep, outsider):
    """Through the page as sales see it: 25 a page, the second page continues the
    first, the count is the scope's, another team's deals never appear."""
    client.force_login(sales_rep)
    params = {"expected_from": "2026-01-05", "expected_to": "2026-03-01"}
    first = client.get(reverse("deals:deal_list"), params).context["page"]
    second = client.get(reverse("deals:deal_list"), {**params, "page": 2}).context[
        "page"
    ]
    want = _expected(
        sales_rep,
        {"expected_from": dt.date(2026, 1, 5), "expected_to": dt.date(2026, 3, 1)},
        "recent",
    )
    assert first.paginator.count == len(want) > 25
    assert [d.pk for d in first.object_list] + [
        d.pk for d in second.object_list
    ] == want[:50]
    others = {d.pk for d in deals if d.owner_id == outsider.pk}
    assert others.isdisjoint(want)


def test_a_ranged_page_reads_only_its_own_rows(client, deals, sales_rep):
    """The ids come in list order from the range indexes; the rows read are the
    page's 25 only, not every listed deal sorted again."""
    client.force_login(sales_rep)
    params = {"expected_from": "2026-01-05", "expected_to": "2026-03-01", "page": 2}
    with CaptureQueriesContext(connection) as captured:
        page = client.get(reverse("deals:deal_list"), params).context["page"]
    assert len(page.object_list) == 25
    rows = [
        q["sql"]
        for q in captured.captured_queries
        if '"deals_deal"."title"' in q["sql"] and "customers_customer" in q["sql"]
    ]
    assert len(rows) == 1
    page_ids = {str(d.pk) for d in page.object_list}
    listed = rows[0].split('"deals_deal"."id" IN (')[1].split(")")[0]
    assert {pk.strip() for pk in listed.split(",")} == page_ids


def test_scope_branches_or_together_to_the_scope(deals, sales_rep, manager, admin_user):
    from culture.deals.models import scope_branches

    assert scope_branches(admin_user) is None
    assert len(scope_branches(sales_rep)) == 2  # owner = me, team = my team
    assert len(scope_branches(manager)) == 3  # me, the department's teams and people
    assert scope_branches(UserFactory(team=None)) == []


def test_only_one_value_branches_answer_a_status_filter(deals, sales_rep, manager):
    """Owner = me and team = my team walk their indexes in the sort's order; the
    manager's lists of teams and people would each sort their matches, so a status
    filter stays one statement for them."""
    from culture.deals.models import scope_branches

    assert selectors._one_value_each(scope_branches(sales_rep))
    assert not selectors._one_value_each(scope_branches(manager))


def test_a_managers_range_walks_one_branch_per_team_and_person(
    monkeypatch, deals, sales_rep, teammate, outsider, manager
):
    """For a range, the manager's lists are split into one branch per team and per
    person of the department (each walks its index in order); past MAX_BRANCHES the
    list is one statement. Either way it lists the scope's deals in order."""
    from culture.deals.models import scope_branches

    split = selectors._one_value_branches(scope_branches(manager))
    assert selectors._one_value_each(split)
    owners = {b.children[0][1] for b in split if b.children[0][0] == "owner"}
    assert {sales_rep.pk, teammate.pk, outsider.pk} <= {
        getattr(o, "pk", o) for o in owners
    }
    assert len(split) == len({(b.children[0][0], str(b.children[0][1])) for b in split})
    filters = RANGES[0]
    want = _expected(manager, filters, "recent")
    listed = selectors.deal_list(user=manager, filters=filters)
    assert [d.pk for d in listed[:MAX_COUNT]] == want
    monkeypatch.setattr(selectors, "MAX_BRANCHES", 1)
    assert selectors._one_value_branches(scope_branches(manager)) == []
    listed = selectors.deal_list(user=manager, filters=filters)
    assert [d.pk for d in listed[:MAX_COUNT]] == want


def test_a_branch_of_another_shape_leaves_the_list_one_statement(deals, sales_rep):
    """Nothing to split (no scope at all, a join through another table, two
    conditions in one branch): the range list is one statement, not an error."""
    from django.db.models import Q

    assert selectors._one_value_branches([Q(pk__in=[])]) == []
    assert selectors._one_value_branches([Q(team__department=1)]) == []
    assert selectors._one_value_branches([Q(owner=sales_rep, team=1)]) == []
    assert selectors._one_value_branches([Q(owner__in=[sales_rep.pk, 7])]) == [
        Q(owner=sales_rep.pk),
        Q(owner=7),
    ]
