"""The segment pages for each persona, the builder and live count, static lists, the
list filter, the bulk pages and the export."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from culture.segments import services
from culture.segments.models import Segment, SegmentMember
from customers.models import FollowUp
from tests.factories import CustomerFactory, CustomerPhoneFactory, TicketFactory

pytestmark = pytest.mark.django_db

A_DEALER_DRAFT = {
    "name": "华东 A 级经销商",
    "visibility": "private",
    "node": ["0", "0.0", "0.1", "0.2", "0.3"],
    "0-type": "group",
    "0-op": "and",
    "0.0-type": "rule",
    "0.0-field": "tier",
    "0.0-was": "tier",
    "0.0-operator": "in",
    "0.0-values": ["A"],
    "0.1-type": "rule",
    "0.1-field": "kind",
    "0.1-was": "kind",
    "0.1-operator": "in",
    "0.1-values": ["dealer"],
    "0.2-type": "rule",
    "0.2-field": "macro_region",
    "0.2-was": "macro_region",
    "0.2-operator": "in",
    "0.2-values": ["华东"],
    "0.3-type": "rule",
    "0.3-field": "complaints",
    "0.3-was": "complaints",
    "0.3-operator": "count_gte",
    "0.3-days": "90",
    "0.3-count": "1",
}


def as_user(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def world(sales_rep, teammate, outsider, far_outsider):
    """Complaining A-tier dealers in 华东 for several owners, and some that miss."""
    hits = {
        "mine": CustomerFactory(
            owner=sales_rep, tier="A", kind="dealer", province="浙江省"
        ),
        "teammate": CustomerFactory(
            owner=teammate, tier="A", kind="dealer", province="上海市"
        ),
        "outsider": CustomerFactory(
            owner=outsider, tier="A", kind="dealer", province="江苏省"
        ),
        "far": CustomerFactory(
            owner=far_outsider, tier="A", kind="dealer", province="山东省"
        ),
    }
    for customer in hits.values():
        TicketFactory(customer=customer, ticket_type="complaint")
    CustomerFactory(owner=sales_rep, tier="A", kind="dealer", province="广东省")
    quiet = CustomerFactory(owner=sales_rep, tier="A", kind="dealer", province="浙江省")
    TicketFactory(customer=quiet, ticket_type="repair")
    return hits


def count_of(response) -> str:
    html = response.content.decode()
    marker = 'data-testid="count-value">'
    return html.split(marker, 1)[1].split("<", 1)[0] if marker in html else html


@pytest.mark.parametrize(
    ("persona", "expected"),
    [("sales_rep", "2"), ("manager", "3"), ("admin_user", "4")],
)
def test_live_count_is_of_the_customers_the_user_may_see(
    client, world, request, persona, expected
):
    user = request.getfixturevalue(persona)
    response = as_user(client, user).post(
        reverse("segments:segment_count"), A_DEALER_DRAFT
    )
    assert response.status_code == 200
    assert count_of(response) == expected


def test_an_invalid_draft_shows_the_message_instead_of_a_count(client, manager):
    draft = {**A_DEALER_DRAFT, "0.3-days": "0"}
    response = as_user(client, manager).post(reverse("segments:segment_count"), draft)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-testid="count-error"' in html and "第 4 条规则" in html
    assert "count-value" not in html


def test_builder_buttons_add_and_remove_rules_and_groups(client, manager):
    client = as_user(client, manager)
    url = reverse("segments:segment_builder")
    added = client.post(
        url, {**A_DEALER_DRAFT, "action": "add_group:0"}
    ).content.decode()
    assert added.count('data-testid="rule-group"') == 2
    assert added.count('data-testid="rule"') == 5
    assert 'hx-swap-oob="innerHTML"' in added  # the count comes along
    removed = client.post(
        url, {**A_DEALER_DRAFT, "action": "remove:0.3"}
    ).content.decode()
    assert removed.count('data-testid="rule"') == 3
    # Picking another field clears the old values instead of failing on them.
    changed = client.post(
        url, {**A_DEALER_DRAFT, "0.0-field": "stage"}
    ).content.decode()
    assert 'name="0.0-values" value="lead"' in changed
    assert "count-error" in changed  # no stage ticked yet
    garbage = client.post(url, {"node": ["x", "0.99.99.99.99"], "action": "remove:zz"})
    assert garbage.status_code == 200


def test_saving_a_dynamic_segment_redirects_to_its_page(client, manager, world):
    client = as_user(client, manager)
    response = client.post(reverse("segments:segment_create"), A_DEALER_DRAFT)
    segment = Segment.objects.get()
    assert response.status_code == 302 and response.url == segment.get_absolute_url()
    assert segment.rules["rules"][3] == {
        "field": "complaints",
        "operator": "count_gte",
        "value": {"days": 90, "count": 1},
    }
    services.segment_refresh(segment_id=segment.pk)
    page = client.get(segment.get_absolute_url()).content.decode()
    assert "价值等级 属于 A 且 客户类型 属于 经销商 且 大区 属于 华东" in page
    assert page.count('data-testid="member-phone"') == 3


def test_bad_input_rerenders_with_a_message_and_saves_nothing(client, manager):
    client = as_user(client, manager)
    bad = {**A_DEALER_DRAFT, "0.0-values": ["Z"]}
    response = client.post(reverse("segments:segment_create"), bad)
    assert response.status_code == 400
    assert "未知的取值：Z" in response.content.decode()
    no_name = client.post(
        reverse("segments:segment_create"), {**A_DEALER_DRAFT, "name": ""}
    )
    assert no_name.status_code == 400
    assert not Segment.objects.exists()


def test_sales_cannot_share(client, sales_rep):
    response = as_user(client, sales_rep).post(
        reverse("segments:segment_create"),
        {**A_DEALER_DRAFT, "visibility": "department"},
    )
    assert response.status_code == 400
    assert not Segment.objects.exists()


# --- access -------------------------------------------------------------------------


@pytest.fixture
def segments(manager, sales_rep, far_outsider, make_segment):
    return {
        "manager_private": make_segment(manager, name="经理私有"),
        "manager_department": make_segment(
            manager, name="部门共享", visibility="department"
        ),
        "sales_private": make_segment(sales_rep, name="销售私有"),
    }


@pytest.mark.parametrize(
    ("persona", "visible"),
    [
        ("sales_rep", {"部门共享", "销售私有"}),
        ("teammate", {"部门共享"}),
        ("outsider", {"部门共享"}),
        ("manager", {"经理私有", "部门共享"}),
        ("far_outsider", set()),
        ("admin_user", {"经理私有", "部门共享", "销售私有"}),
    ],
)
def test_each_persona_sees_its_segments_and_404_for_others(
    client, segments, request, persona, visible
):
    user = request.getfixturevalue(persona)
    client = as_user(client, user)
    listing = client.get(reverse("segments:segment_list")).content.decode()
    for segment in segments.values():
        detail = client.get(segment.get_absolute_url())
        if segment.name in visible:
            assert segment.name in listing and detail.status_code == 200
        else:
            assert segment.name not in listing and detail.status_code == 404


@pytest.mark.parametrize("persona", ["readonly_user", "service_agent"])
def test_roles_without_segments_get_403(client, segments, request, persona):
    client = as_user(client, request.getfixturevalue(persona))
    segment = segments["manager_department"]
    for url in (
        reverse("segments:segment_list"),
        reverse("segments:segment_create"),
        segment.get_absolute_url(),
        reverse("segments:segment_followups", args=[segment.pk]),
    ):
        assert client.get(url).status_code == 403
    assert (
        client.post(reverse("segments:segment_count"), A_DEALER_DRAFT).status_code
        == 403
    )


def test_anonymous_is_sent_to_login(client, segments):
    response = client.get(reverse("segments:segment_list"))
    assert response.status_code == 302 and "/accounts/login/" in response.url


def test_shared_segments_are_read_only_for_sales(client, segments, sales_rep):
    client = as_user(client, sales_rep)
    shared = segments["manager_department"]
    assert (
        client.get(reverse("segments:segment_edit", args=[shared.pk])).status_code
        == 403
    )
    assert (
        client.post(reverse("segments:segment_delete", args=[shared.pk])).status_code
        == 403
    )
    assert (
        client.post(reverse("segments:segment_refresh", args=[shared.pk])).status_code
        == 403
    )
    assert (
        client.get(reverse("segments:segment_reassign", args=[shared.pk])).status_code
        == 403
    )
    own = segments["sales_private"]
    assert (
        client.get(reverse("segments:segment_edit", args=[own.pk])).status_code == 200
    )
    response = client.post(reverse("segments:segment_delete", args=[own.pk]))
    assert (
        response.status_code == 302 and not Segment.objects.filter(pk=own.pk).exists()
    )


def test_edit_keeps_version_and_rules(client, manager, segments):
    segment = segments["manager_private"]
    client = as_user(client, manager)
    page = client.get(
        reverse("segments:segment_edit", args=[segment.pk])
    ).content.decode()
    assert 'name="0.0-values" value="A" id="0.0-v-1" checked' in page
    response = client.post(
        reverse("segments:segment_edit", args=[segment.pk]),
        {**A_DEALER_DRAFT, "name": "改名", "version": "1"},
    )
    assert response.status_code == 302
    segment.refresh_from_db()
    assert segment.name == "改名" and segment.version == 2
    stale = client.post(
        reverse("segments:segment_edit", args=[segment.pk]),
        {**A_DEALER_DRAFT, "name": "又改", "version": "1"},
    )
    assert stale.status_code == 400 and "已被他人修改" in stale.content.decode()


# --- detail page: members, masking, history, constant queries ---------------------------


def test_members_are_masked_for_roles_that_may_not_see_phones(
    client, manager, world, make_segment, settings
):
    segment = make_segment(manager)
    services.segment_refresh(segment_id=segment.pk)
    shown = as_user(client, manager).get(segment.get_absolute_url()).content.decode()
    assert world["mine"].phone in shown
    settings.KEHU_UNMASKED_ROLES = ["admin"]
    masked = client.get(segment.get_absolute_url()).content.decode()
    assert world["mine"].phone not in masked and "****" in masked


def test_history_says_who_entered_and_left(client, manager, world, make_segment):
    segment = make_segment(manager)
    services.segment_refresh(segment_id=segment.pk)
    type(world["mine"]).objects.filter(pk=world["mine"].pk).update(tier="B")
    services.segment_refresh(segment_id=segment.pk)
    page = as_user(client, manager).get(segment.get_absolute_url()).content.decode()
    assert f"{world['mine'].name} 于" in page and "离开" in page and "进入" in page


def _page_queries(client, url) -> int:
    client.get(url)
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured.captured_queries)


def test_detail_page_queries_do_not_grow_with_members(
    client, manager, sales_rep, make_segment, django_assert_num_queries
):
    CustomerFactory.create_batch(3, owner=sales_rep, tier="A", kind="dealer")
    segment = make_segment(manager)
    services.segment_refresh(segment_id=segment.pk)
    client = as_user(client, manager)
    few = _page_queries(client, segment.get_absolute_url())
    CustomerFactory.create_batch(70, owner=sales_rep, tier="A", kind="dealer")
    services.segment_refresh(segment_id=segment.pk)
    with django_assert_num_queries(few):
        page = client.get(segment.get_absolute_url())
    html = page.content.decode()
    assert html.count('data-testid="member-phone"') == 50
    assert 'data-testid="members-next"' in html
    after = html.split("?after=", 1)[1].split('"', 1)[0]
    rest = client.get(segment.get_absolute_url(), {"after": after}).content.decode()
    assert rest.count('data-testid="member-phone"') == 23
    assert client.get(segment.get_absolute_url(), {"after": "x"}).status_code == 400


def test_segment_list_queries_are_constant(
    client, manager, make_segment, django_assert_num_queries
):
    make_segment(manager, name="一")
    client = as_user(client, manager)
    few = _page_queries(client, reverse("segments:segment_list"))
    for n in range(10):
        make_segment(manager, name=f"分群{n}")
    with django_assert_num_queries(few):
        client.get(reverse("segments:segment_list"))


# --- static lists -----------------------------------------------------------------------


def test_static_list_search_add_all_and_remove(
    client, manager, sales_rep, make_segment
):
    segment = make_segment(manager, kind="static", name="名单")
    a = CustomerFactory(owner=sales_rep, name="王大锤")
    b = CustomerFactory(owner=sales_rep, name="王小锤")
    CustomerFactory(owner=sales_rep, name="李四")
    client = as_user(client, manager)
    found = client.post(
        reverse("segments:static_search", args=[segment.pk]), {"q": "锤"}
    )
    assert "王大锤" in found.content.decode() and "李四" not in found.content.decode()
    CustomerPhoneFactory(customer=a, number=a.phone)
    by_phone = client.post(
        reverse("segments:static_search", args=[segment.pk]), {"q": a.phone}
    )
    assert "王大锤" in by_phone.content.decode()
    response = client.post(
        reverse("segments:static_add", args=[segment.pk]), {"q": "锤", "all": "1"}
    )
    assert response.status_code == 302
    assert set(SegmentMember.objects.values_list("customer_id", flat=True)) == {
        a.pk,
        b.pk,
    }
    client.post(
        reverse("segments:static_remove", args=[segment.pk]), {"customer": [a.pk]}
    )
    assert set(SegmentMember.objects.values_list("customer_id", flat=True)) == {b.pk}
    page = client.get(segment.get_absolute_url()).content.decode()
    assert "data-confirm" in page and "移出名单" in page


def test_static_add_ignores_customers_out_of_scope(
    client, sales_rep, far_outsider, make_segment
):
    segment = make_segment(sales_rep, kind="static", name="我的名单")
    hidden = CustomerFactory(owner=far_outsider)
    mine = CustomerFactory(owner=sales_rep)
    as_user(client, sales_rep).post(
        reverse("segments:static_add", args=[segment.pk]),
        {"customer": [hidden.pk, mine.pk, "x"]},
    )
    assert set(SegmentMember.objects.values_list("customer_id", flat=True)) == {mine.pk}


def test_outsider_cannot_touch_a_private_static_list(
    client, sales_rep, outsider, make_segment
):
    segment = make_segment(sales_rep, kind="static", name="我的名单")
    client = as_user(client, outsider)
    for name in ("static_search", "static_add", "static_remove"):
        assert (
            client.post(
                reverse(f"segments:{name}", args=[segment.pk]), {"q": "x"}
            ).status_code
            == 404
        )


# --- the customer list filter and the export --------------------------------------------


def test_customer_list_filters_by_segment_within_scope(
    client, sales_rep, manager, world, make_segment
):
    segment = make_segment(manager, visibility="department")
    services.segment_refresh(segment_id=segment.pk)
    client = as_user(client, sales_rep)
    html = client.get(
        reverse("customers:customer_list"), {"segment": segment.pk}
    ).content.decode()
    assert world["mine"].name in html
    assert world["outsider"].name not in html  # a member, but not the salesperson's
    assert 'data-testid="extra-filter"' in html and segment.name in html
    private = make_segment(manager, name="经理私有")
    refused = client.get(reverse("customers:customer_list"), {"segment": private.pk})
    assert 'data-testid="filter-errors"' in refused.content.decode()
    assert world["mine"].name not in refused.content.decode()


def test_customer_list_queries_unchanged_without_segment(
    client, sales_rep, django_assert_num_queries
):
    CustomerFactory.create_batch(2, owner=sales_rep)
    client = as_user(client, sales_rep)
    few = _page_queries(client, reverse("customers:customer_list") + "?kind=owner")
    CustomerFactory.create_batch(20, owner=sales_rep)
    with django_assert_num_queries(few):
        client.get(reverse("customers:customer_list") + "?kind=owner")


def test_export_of_a_segment_goes_through_the_export_machinery(
    client, manager, world, make_segment
):
    import io

    from openpyxl import load_workbook

    segment = make_segment(manager)
    services.segment_refresh(segment_id=segment.pk)
    client = as_user(client, manager)
    page = client.get(segment.get_absolute_url()).content.decode()
    assert f"/customers/export/?segment={segment.pk}" in page
    confirm = client.get(reverse("customers:export_confirm"), {"segment": segment.pk})
    assert confirm.status_code == 200 and segment.name in confirm.content.decode()
    response = client.get(
        reverse("customers:export_download"), {"segment": segment.pk, "format": "xlsx"}
    )
    assert response.status_code == 200
    sheet = load_workbook(io.BytesIO(b"".join(response.streaming_content))).active
    ids = {int(row[0]) for row in sheet.iter_rows(min_row=2, values_only=True)}
    assert ids == set(
        services.visible_members(user=manager, segment=segment).values_list(
            "pk", flat=True
        )
    )
    assert len(ids) == 5 and world["far"].pk not in ids


# --- bulk pages -----------------------------------------------------------------------


def test_bulk_followups_page(client, manager, world, make_segment):
    segment = make_segment(manager)
    services.segment_refresh(segment_id=segment.pk)
    client = as_user(client, manager)
    url = reverse("segments:segment_followups", args=[segment.pk])
    assert client.get(url).status_code == 200
    bad = client.post(url, {"note": "", "due_at": "2020-01-01T09:00"})
    assert bad.status_code == 400 and not FollowUp.objects.exists()
    due = (timezone.localtime() + dt.timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    response = client.post(url, {"note": "年底回访", "due_at": due})
    assert response.status_code == 302
    assert FollowUp.objects.count() == 5  # the manager's members (not world["far"])


def test_bulk_reassign_needs_confirmation(
    client, manager, teammate, world, make_segment
):
    segment = make_segment(manager)
    services.segment_refresh(segment_id=segment.pk)
    client = as_user(client, manager)
    url = reverse("segments:segment_reassign", args=[segment.pk])
    unconfirmed = client.post(url, {"new_owner": teammate.pk})
    assert unconfirmed.status_code == 400
    world["mine"].refresh_from_db()
    assert world["mine"].owner != teammate
    response = client.post(url, {"new_owner": teammate.pk, "confirm": "on"})
    assert response.status_code == 302
    world["mine"].refresh_from_db()
    assert world["mine"].owner == teammate


def test_navigation_shows_segments_to_their_users(client, manager, service_agent):
    assert "客户分群" in as_user(client, manager).get("/").content.decode()
    assert "/segments/" not in as_user(client, service_agent).get("/").content.decode()


def test_live_count_and_builder_queries_do_not_grow_with_customers(
    client, manager, sales_rep, django_assert_num_queries
):
    client = as_user(client, manager)
    CustomerFactory.create_batch(2, owner=sales_rep, tier="A", kind="dealer")
    count_url = reverse("segments:segment_count")
    builder_url = reverse("segments:segment_builder")
    client.post(count_url, A_DEALER_DRAFT)
    with CaptureQueriesContext(connection) as few:
        client.post(count_url, A_DEALER_DRAFT)
    with CaptureQueriesContext(connection) as few_builder:
        client.post(builder_url, A_DEALER_DRAFT)
    CustomerFactory.create_batch(
        40, owner=sales_rep, tier="A", kind="dealer", province="浙江省"
    )
    with django_assert_num_queries(len(few.captured_queries)):
        client.post(count_url, A_DEALER_DRAFT)
    with django_assert_num_queries(len(few_builder.captured_queries)):
        client.post(builder_url, A_DEALER_DRAFT)
