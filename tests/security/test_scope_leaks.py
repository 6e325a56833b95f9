"""Messages never name what the user may not see (issue 11, findings 2, 6 and 7).

A duplicate check, a merge or an organisation page that touches a customer outside
the user's scope says so without its name; each duplicate-check refusal of that kind
is audited and counts toward the hourly reveal limit.
"""

from __future__ import annotations

import re

import pytest
from django.urls import reverse
from pytest_django.asserts import assertContains, assertNotContains

from crm.core import audit
from crm.core.models import AccessLog
from customers import selectors, services
from customers.models import Customer, ImportRow
from tests.customers.test_import import (
    confirm_and_import,
    csv_bytes,
    upload_and_validate,
)

CREATE_URL = reverse("customers:customer_create")
SECRET = "杨旭"
ID_NUMBER = "11010519491231002X"


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def add(owner, name: str, *phones: str, id_number: str | None = None) -> Customer:
    return services.customer_create(
        by=owner,
        data={"name": name},
        phone_numbers=list(phones),
        id_number=id_number,
    )


def form(**changes: object) -> dict[str, object]:
    data: dict[str, object] = {
        "name": "新客户",
        "kind": "owner",
        "stage": "lead",
        "tier": "C",
        "phone": "",
        "other_phones": "",
        "id_number": "",
    }
    data.update(changes)
    return data


def create_twice(client, data: dict[str, object]):
    """The first post lists look-alikes; the second, confirmed one tries to save."""
    first = client.post(CREATE_URL, data)
    assert first.status_code == 200
    confirm = re.search(
        r'name="confirm_duplicates" value="([^"]*)"', first.content.decode()
    )
    second = client.post(
        CREATE_URL, {**data, "confirm_duplicates": confirm.group(1) if confirm else ""}
    )
    assert second.status_code == 200
    return first, second


def hidden_hits(user) -> int:
    return AccessLog.objects.filter(
        user=user, action=audit.DUPLICATE_HIDDEN, outcome=audit.DENIED
    ).count()


# --- finding 2: the duplicate check ----------------------------------------------------


@pytest.mark.parametrize(
    "field, value",
    [
        ("phone", "13812345678"),
        ("other_phones", "13900000000, 13812345678"),
        ("id_number", ID_NUMBER),
    ],
)
def test_creating_with_another_teams_number_never_names_its_customer(
    client, sales_rep, outsider, field, value
):
    add(outsider, SECRET, "13812345678", id_number=ID_NUMBER)
    client.force_login(sales_rep)
    first, second = create_twice(client, form(**{field: value}))
    for response in (first, second):
        assertNotContains(response, SECRET)
    assertContains(first, "另一团队的客户（销售二组）")
    assertContains(second, "已属于另一团队的现有客户")
    assert Customer.objects.filter(name="新客户").count() == 0
    # The look-alike list and the refusal: each audited, naming the hidden customer.
    hits = AccessLog.objects.filter(user=sales_rep, action=audit.DUPLICATE_HIDDEN)
    assert hits.count() == 2
    assert {row.object_id for row in hits} == {Customer.objects.get(name=SECRET).pk}


def test_a_pool_customers_number_is_not_named_either(client, sales_rep, manager):
    services.customer_create(
        by=manager, data={"name": SECRET}, phone_numbers=["13812345678"], owner=None
    )
    client.force_login(sales_rep)
    _first, second = create_twice(client, form(phone="13812345678"))
    assertNotContains(second, SECRET)
    assertContains(second, "电话 13812345678 已属于另一团队的现有客户")


def test_editing_in_another_teams_number_never_names_its_customer(
    client, sales_rep, outsider
):
    add(outsider, SECRET, "13812345678", id_number=ID_NUMBER)
    mine = add(sales_rep, "我的客户", "13700000000")
    client.force_login(sales_rep)
    edit_url = reverse("customers:customer_edit", args=[mine.pk])
    for changes in (
        {"other_phones": "13812345678"},
        {"id_number": ID_NUMBER},
    ):
        response = client.post(
            edit_url,
            form(name="我的客户", phone="13700000000", version=mine.version, **changes),
        )
        assert response.status_code == 200
        assertNotContains(response, SECRET)
        assertContains(response, "已属于另一团队的现有客户")
    mine.refresh_from_db()
    assert mine.id_number_index is None
    assert list(mine.phones.values_list("number", flat=True)) == ["13700000000"]
    assert hidden_hits(sales_rep) == 2


def test_a_customer_in_scope_is_still_named_and_costs_nothing(
    client, sales_rep, teammate
):
    add(teammate, "组内客户", "13812345678")
    client.force_login(sales_rep)
    _first, second = create_twice(client, form(phone="13812345678"))
    assertContains(second, "电话 13812345678 已属于客户“组内客户”")
    assert hidden_hits(sales_rep) == 0


def test_hidden_hits_count_toward_the_reveal_limit_and_then_no_number_is_looked_up(
    client, settings, sales_rep, outsider
):
    settings.KEHU_REVEAL_HOURLY_LIMIT = 3
    for n in range(3):
        add(outsider, f"{SECRET}{n}", f"1381234567{n}")
    client.force_login(sales_rep)
    for n in range(3):
        response = client.post(
            CREATE_URL, form(phone=f"1381234567{n}", confirm_duplicates="on")
        )
        assertContains(response, "已属于另一团队的现有客户")
    assert selectors.reveals_last_hour(sales_rep) == 3
    # Past the limit: a taken and a free number get the same answer, so the refusal
    # no longer tells whether a number is registered; nothing is saved.
    taken = client.post(CREATE_URL, form(phone="13812345670"))
    free = client.post(CREATE_URL, form(phone="13655556666"))
    for response in (taken, free):
        assertContains(response, "达到上限")
        assertNotContains(response, "另一团队")
        assertNotContains(response, 'data-testid="duplicates"')
    assert not Customer.objects.filter(name="新客户").exists()
    assert (
        AccessLog.objects.filter(
            user=sales_rep, action=audit.DUPLICATE_HIDDEN, outcome=audit.FAILED
        ).count()
        == 2
    )
    # A customer without a new phone or ID number can still be created.
    saved = client.post(CREATE_URL, form(name="无电话客户"), follow=True)
    assertContains(saved, "客户已创建")


def test_hidden_hits_and_id_reveals_share_one_hourly_budget(
    client, settings, manager, far_outsider
):
    settings.KEHU_REVEAL_HOURLY_LIMIT = 1
    add(far_outsider, SECRET, "13812345678")
    mine = add(manager, "本部门客户", id_number=ID_NUMBER)
    client.force_login(manager)
    response = client.post(
        CREATE_URL, form(phone="13812345678", confirm_duplicates="on")
    )
    assertContains(response, "已属于另一团队的现有客户")
    revealed = client.post(
        reverse("customers:customer_reveal", args=[mine.pk]),
        {"reason": "客户来电核实身份"},
        HTTP_HX_REQUEST="true",
    )
    assertNotContains(revealed, ID_NUMBER)
    assertContains(revealed, "达到上限")


def test_the_import_never_names_a_customer_registered_outside_the_importers_scope(
    client, manager, far_outsider, django_capture_on_commit_callbacks
):
    client.force_login(manager)
    content = csv_bytes([["名称", "电话"], ["抢先", "13800138000"], ["正常", ""]])
    job = upload_and_validate(
        client, django_capture_on_commit_callbacks, "race.csv", content
    )
    # Registered by another department between the preview and the import.
    add(far_outsider, SECRET, "13800138000")
    job = confirm_and_import(client, django_capture_on_commit_callbacks, job)
    row = ImportRow.objects.get(job=job, line=2)
    assert row.status == "skipped"
    assert row.errors == ["电话 13800138000 已属于另一团队的现有客户。"]
    assert (
        AccessLog.objects.get(user=manager, action=audit.DUPLICATE_HIDDEN).row_count
        == 1
    )
    page = client.get(job.get_absolute_url())
    assertNotContains(page, SECRET)


def test_the_import_preview_names_no_customer_outside_the_scope_and_is_on_record(
    client, manager, far_outsider, django_capture_on_commit_callbacks
):
    add(far_outsider, SECRET, "13800138000", "13900139000")
    client.force_login(manager)
    content = csv_bytes(
        [["名称", "电话"], ["甲", "13800138000"], ["乙", "13900139000"], ["丙", ""]]
    )
    job = upload_and_validate(
        client, django_capture_on_commit_callbacks, "probe.csv", content
    )
    assert ImportRow.objects.get(job=job, line=2).errors == [
        "电话 13800138000 已属于另一团队的现有客户。"
    ]
    assertNotContains(client.get(job.get_absolute_url()), SECRET)
    [row] = AccessLog.objects.filter(user=manager, action=audit.DUPLICATE_HIDDEN)
    assert (row.detail, row.row_count, row.outcome) == ("import preview", 1, "denied")


# --- finding 6: merging tickets --------------------------------------------------------


@pytest.fixture
def desk_tickets(service_agent, sales_rep, outsider):
    """A ticket of a 销售一组 customer with an internal note, one of a 销售二组 customer."""
    from service import services as desk

    first = services.customer_create(by=sales_rep, data={"name": SECRET})
    second = services.customer_create(by=outsider, data={"name": "二组客户"})
    source = desk.ticket_create(
        by=service_agent,
        customer=first,
        ticket_type="repair",
        channel="hotline",
        subject="漏水",
        description="楼上漏水",
    )
    desk.ticket_message_add(
        by=service_agent, ticket=source, body="内部备注：业主欠费", kind="note"
    )
    target = desk.ticket_create(
        by=service_agent,
        customer=second,
        ticket_type="repair",
        channel="hotline",
        subject="漏水",
        description="同一栋楼",
    )
    return source, target


def test_tickets_of_different_customers_cannot_be_merged_so_nothing_crosses_teams(
    client, service_agent, outsider, desk_tickets
):
    source, target = desk_tickets
    client.force_login(service_agent)
    url = reverse("service:ticket_merge", args=[source.reference])
    form_data = {"reference": target.reference, "version": source.version}
    # The merge as the UI would send it, confirmation included.
    asked = client.get(url, form_data)
    posted = client.post(url, form_data)
    # sales2 sees the target ticket, and nothing of the first customer in it.
    client.force_login(outsider)
    page = client.get(reverse("service:ticket_detail", args=[target.reference]))
    assert page.status_code == 200
    assertNotContains(page, SECRET)
    assertNotContains(page, "内部备注：业主欠费")
    assertNotContains(page, source.reference)
    # The desk was told why, before and after the confirmation step.
    for response in (asked, posted):
        assertContains(response, "两张工单属于不同的客户，不能合并", status_code=400)
        assertNotContains(response, "确认合并", status_code=400)
    source.refresh_from_db()
    assert source.merged_into_id is None


def test_the_service_refuses_it_too(service_agent, desk_tickets):
    from django.core.exceptions import ValidationError

    from service import services as desk

    source, target = desk_tickets
    with pytest.raises(ValidationError) as refused:
        desk.ticket_merge(by=service_agent, target=target, duplicate=source)
    assert "两张工单属于不同的客户" in refused.value.messages[0]
    assert not target.messages.filter(body__contains="内部备注").exists()


# --- finding 7: an organisation's members ------------------------------------------------


def org_page(client, customer: Customer):
    response = client.get(reverse("customers:customer_detail", args=[customer.pk]))
    assert response.status_code == 200
    return response


def test_an_organisation_lists_only_the_members_the_viewer_may_see(
    client, sales_rep, outsider, manager, django_assert_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tests.factories import CustomerFactory

    company = CustomerFactory(owner=sales_rep, name="华为技术", is_organization=True)
    CustomerFactory(owner=sales_rep, name="本组成员", organization=company)
    CustomerFactory(owner=outsider, name=f"{SECRET}成员", organization=company)
    CustomerFactory(
        owner=outsider, name=f"{SECRET}分公司", parent=company, is_organization=True
    )
    client.force_login(sales_rep)
    with CaptureQueriesContext(connection) as few:
        page = org_page(client, company)
    assertContains(page, "本组成员")
    assertNotContains(page, SECRET)
    assertContains(page, "另有 1 位成员不在您的范围内。")
    assertContains(page, "另有 1 个下级机构不在您的范围内。")
    # Ten times as many hidden members: the same queries.
    CustomerFactory.create_batch(10, owner=outsider, organization=company)
    with django_assert_num_queries(len(few.captured_queries)):
        page = org_page(client, company)
    assertContains(page, "另有 11 位成员不在您的范围内。")
    # A manager sees both teams: every member, no one left out.
    client.force_login(manager)
    page = org_page(client, company)
    assertContains(page, f"{SECRET}成员")
    assertNotContains(page, "不在您的范围内")


def test_an_organisation_outside_the_scope_is_named_but_not_linked(
    client, sales_rep, outsider
):
    from tests.factories import CustomerFactory

    company = CustomerFactory(owner=outsider, name="二组的公司", is_organization=True)
    person = CustomerFactory(owner=sales_rep, name="本组客户", organization=company)
    client.force_login(sales_rep)
    page = org_page(client, person)
    assertContains(page, "二组的公司")
    assertNotContains(page, company.get_absolute_url() + '"')


# --- the sweep: follow-ups that outlive their customer's move to another team ------------


@pytest.fixture
def moved_followups(sales_rep, outsider, manager):
    """Two follow-ups of sales1, due, whose customer a manager who sees both teams
    merged into a 销售二组 customer."""
    import datetime as dt

    from django.utils import timezone

    mine = services.customer_create(by=sales_rep, data={"name": "本组客户"})
    theirs = services.customer_create(by=outsider, data={"name": SECRET})
    due = timezone.now() - dt.timedelta(minutes=5)
    followups = [
        services.followup_create(
            by=sales_rep, customer=mine, assignee=sales_rep, due_at=due, note=note
        )
        for note in ("回电确认", "送资料")
    ]
    services.customer_merge(by=manager, survivor=theirs, duplicate=mine)
    return theirs, followups


def reminder_actions(*followups) -> list:
    from crm.scheduler.models import ScheduledAction

    return [
        ScheduledAction.objects.get(
            kind=services.FOLLOWUP_REMINDER, target_id=followup.pk
        )
        for followup in followups
    ]


def test_the_home_page_lists_no_follow_up_of_a_customer_out_of_sight(
    client, sales_rep, moved_followups
):
    client.force_login(sales_rep)
    home = client.get(reverse("home"))
    assert home.status_code == 200
    assertNotContains(home, SECRET)


def test_reminders_name_no_customer_the_assignee_may_not_see(
    sales_rep, outsider, moved_followups
):
    from crm.notifications.models import Notification

    theirs, (first, second) = moved_followups
    services.followups_remind(reminder_actions(first))
    services.followup_remind(reminder_actions(second)[0])
    sent = list(Notification.objects.filter(recipient=sales_rep))
    assert len(sent) == 2
    for notification in sent:
        assert SECRET not in notification.title + notification.body
        assert notification.title == "跟进到期：该客户已不在您的范围内"
        assert notification.url == ""
    # The customer's owner is reminded as before.
    owned = services.followup_create(
        by=outsider,
        customer=theirs,
        assignee=outsider,
        due_at=first.due_at,
        note="回访",
    )
    services.followups_remind(reminder_actions(owned))
    assert Notification.objects.get(recipient=outsider).title == f"跟进到期：{SECRET}"


# --- the hit budget is one atomic count -------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_parallel_probes_get_exactly_the_limit_of_answers(
    settings, sales_rep, outsider
):
    from django.test import Client

    from tests.concurrency.threads import run_together

    settings.KEHU_REVEAL_HOURLY_LIMIT = 2
    probes = 5 * settings.KEHU_REVEAL_HOURLY_LIMIT
    for n in range(probes):
        add(outsider, f"{SECRET}{n}", f"1381234{n:04d}")
    clients = []
    for _n in range(probes):
        client = Client()
        client.force_login(sales_rep)
        clients.append(client)

    def probe(client: Client, n: int):
        return client.post(
            CREATE_URL, form(phone=f"1381234{n:04d}", confirm_duplicates="on")
        ).content.decode()

    pages = run_together([lambda c=c, n=n: probe(c, n) for n, c in enumerate(clients)])
    assert all(isinstance(page, str) for page in pages), pages
    assert not any(SECRET in page for page in pages)
    answered = [page for page in pages if "已属于另一团队的现有客户" in page]
    refused = [page for page in pages if "达到上限" in page]
    assert (len(answered), len(refused)) == (2, probes - 2)
    assert selectors.reveals_last_hour(sales_rep) == 2
