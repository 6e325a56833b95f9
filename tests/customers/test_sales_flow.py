"""Sales act without detours (issue 13 §2): the duplicate check while typing, a
follow-up in the past refused, the quick contact updating its row in the list, the
usual channel preselected, the pool's preview, release reason and filters, the pool
button only for those who may use it, and import/export for sales as a setting."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from pytest_django.asserts import assertContains, assertNotContains

from crm.core.models import AccessLog
from customers import selectors, services
from customers.models import ContactLog, Customer, ExportRequest, FollowUp, PoolEvent
from tests.factories import CustomerFactory

SHANGHAI = dt.timezone(dt.timedelta(hours=8))
NOW = dt.datetime(2026, 3, 2, 10, 0, tzinfo=SHANGHAI)
HTMX = {"HTTP_HX_REQUEST": "true"}
CHECK_URL = reverse("customers:duplicate_check")
LIST_URL = reverse("customers:customer_list")
POOL_URL = reverse("customers:pool_list")
ID_ZHANG = "110105199001011232"


@pytest.fixture(autouse=True)
def at_now():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def as_sales(client, sales_rep):
    client.force_login(sales_rep)
    return client


def check(client, field: str, value: str, customer: Customer | None = None) -> str:
    url = f"{CHECK_URL}?field={field}" + (
        f"&customer={customer.pk}" if customer else ""
    )
    response = client.post(url, {field: value}, **HTMX)
    assert response.status_code == 200
    return re.sub(r"\s+", " ", response.content.decode())


# --- the duplicate check while typing ----------------------------------------------------


def test_a_taken_phone_is_named_with_the_message_the_form_gives(as_sales, sales_rep):
    services.customer_create(
        by=sales_rep, data={"name": "张三"}, phone_numbers=["13800138000"]
    )
    live = check(as_sales, "phone", "138 0013 8000")
    assert "电话 13800138000 已属于客户“张三”。" in live

    saved = as_sales.post(
        reverse("customers:customer_create"),
        {"name": "张三丰", "phone": "13800138000", "confirm_duplicates": "on"},
    )
    # One message: the same words on saving as while typing.
    assertContains(saved, "电话 13800138000 已属于客户“张三”。")


def test_another_teams_holder_is_not_named_and_the_hit_is_audited(as_sales, outsider):
    services.customer_create(
        by=outsider, data={"name": "李四"}, phone_numbers=["13900139000"]
    )
    live = check(as_sales, "other_phones", "13700137000, 13900139000")

    assert "电话 13900139000 已属于另一团队的现有客户。" in live
    assert "李四" not in live
    assert AccessLog.objects.filter(action="duplicate_hidden").count() == 1


def test_a_taken_id_number_a_free_number_and_a_bad_one(as_sales, sales_rep):
    services.customer_create(by=sales_rep, data={"name": "张三"}, id_number=ID_ZHANG)
    assert "该身份证号已属于客户“张三”。" in check(as_sales, "id_number", ID_ZHANG)
    assert "未发现重复。" in check(as_sales, "phone", "13600136000")
    assert "不是有效的电话号码" in check(as_sales, "phone", "12345")


def test_editing_a_customer_does_not_flag_its_own_numbers(as_sales, sales_rep):
    zhang = services.customer_create(
        by=sales_rep,
        data={"name": "张三"},
        phone_numbers=["13800138000"],
        id_number=ID_ZHANG,
    )
    assert "未发现重复。" in check(as_sales, "phone", "13800138000", zhang)
    assert "未发现重复。" in check(as_sales, "id_number", ID_ZHANG, zhang)


def test_the_form_fields_check_on_change(as_sales):
    page = as_sales.get(reverse("customers:customer_create")).content.decode()
    for field in ("phone", "other_phones", "id_number"):
        assert f'hx-target="#duplicate-{field}"' in page
        assert f'id="duplicate-{field}"' in page
    assert page.count('hx-trigger="change"') == 3


def test_the_desk_may_not_use_the_check(client, service_agent):
    client.force_login(service_agent)
    response = client.post(f"{CHECK_URL}?field=phone", {"phone": "13800138000"})
    assert response.status_code == 403


# --- follow-ups and quick contacts ------------------------------------------------------


def test_a_follow_up_due_in_the_past_is_refused(as_sales, sales_rep):
    customer = CustomerFactory(owner=sales_rep)
    url = reverse("customers:followup_create", args=[customer.pk])

    refused = as_sales.post(url, {"note": "回访", "due_at": "2026-03-01T09:00"})
    assert refused.status_code == 200  # the form again, with the error
    assertContains(
        refused,
        "跟进时间 2026-03-01 09:00 已经过去，请选择现在之后的时间。",
    )
    assert not FollowUp.objects.exists()

    accepted = as_sales.post(url, {"note": "回访", "due_at": "2026-03-03T09:00"})
    assert accepted.status_code == 302
    assert FollowUp.objects.get().due_at == dt.datetime(2026, 3, 3, 9, tzinfo=SHANGHAI)


def test_a_quick_contact_from_the_list_swaps_its_row(as_sales, sales_rep):
    customer = CustomerFactory(name="王业主", owner=sales_rep)
    other = CustomerFactory(name="赵业主", owner=sales_rep)
    before = as_sales.get(LIST_URL).content.decode()
    assert f'id="customer-row-{customer.pk}"' in before

    response = as_sales.post(
        reverse("customers:contact_create", args=[customer.pk]),
        {"channel": "phone", "summary": "聊了装修", "show_name": "1"},
        **HTMX,
    )

    body = response.content.decode()
    row = re.search(
        rf'<template>\s*<tr id="customer-row-{customer.pk}" hx-swap-oob="true".*?</tr>',
        body,
        re.S,
    )
    assert row, "the list's row is not sent out of band"
    assert "王业主" in row.group(0)
    assert re.search(r'data-testid="last-contact">\s*现在', row.group(0))
    assert f"customer-row-{other.pk}" not in body
    # From the customer's own page (no list), no row is sent.
    page = as_sales.post(
        reverse("customers:contact_create", args=[customer.pk]),
        {"channel": "phone", "summary": "再次联系"},
        **HTMX,
    )
    assert "customer-row-" not in page.content.decode()


def test_the_channel_defaults_to_the_users_most_common_one(as_sales, sales_rep):
    customer = CustomerFactory(owner=sales_rep)
    form_url = reverse("customers:contact_create", args=[customer.pk])
    assert 'value="wechat" selected' not in as_sales.get(form_url).content.decode()
    for channel in ("wechat", "phone", "wechat"):
        services.contact_log_create(
            by=sales_rep, customer=customer, channel=channel, summary="联系"
        )

    assertContains(as_sales.get(form_url), '<option value="wechat" selected>')
    detail = as_sales.get(customer.get_absolute_url())
    assertContains(detail, '<option value="wechat" selected>')


def test_the_usual_channel_reads_a_bounded_sample_in_one_query(sales_rep):
    customer = CustomerFactory(owner=sales_rep)
    ContactLog.objects.bulk_create(
        ContactLog(
            customer=customer,
            author=sales_rep,
            channel="visit" if i < 5 else "email",
            summary="x",
            occurred_at=NOW - dt.timedelta(days=i),
        )
        for i in range(selectors.CHANNEL_SAMPLE + 10)
    )
    with CaptureQueriesContext(connection) as queries:
        channel = selectors.usual_channel(user=sales_rep)
    assert channel == "email"
    assert len(queries) == 1
    assert "LIMIT 200" in queries[0]["sql"]


# --- the pool (公海) -----------------------------------------------------------------------


def test_releasing_needs_a_reason_shown_in_the_pool(as_sales, sales_rep):
    customer = CustomerFactory(name="放回的客户", owner=sales_rep)
    url = reverse("customers:pool_release", args=[customer.pk])

    refused = as_sales.post(url, {"reason": "  "}, follow=True)
    assertContains(refused, "请说明放回公海的原因。")
    customer.refresh_from_db()
    assert customer.owner == sales_rep

    as_sales.post(url, {"reason": "客户暂无购买意向"})
    event = PoolEvent.objects.get(customer=customer)
    assert (event.action, event.reason, event.actor) == (
        "release",
        "客户暂无购买意向",
        sales_rep,
    )
    pool = as_sales.get(POOL_URL)
    assertContains(pool, "放回公海</span>：客户暂无购买意向")
    assertContains(pool, f"经办 {sales_rep}")


def test_the_automatic_return_says_why(sales_rep, settings):
    customer = CustomerFactory(owner=sales_rep)
    Customer.objects.filter(pk=customer.pk).update(
        created_at=NOW - dt.timedelta(days=40)
    )
    services.pool_return_sweep(now=NOW)

    event = PoolEvent.objects.get(customer=customer)
    assert (event.action, event.reason) == (
        "auto_return",
        f"超过 {settings.KEHU_POOL_RETURN_DAYS} 天未联系",
    )


def in_pool(name: str, **fields: str) -> Customer:
    return CustomerFactory(
        name=name, owner=None, team=None, pool_entered_at=NOW, **fields
    )


def test_the_pool_filters_by_region_kind_and_source(as_sales):
    in_pool("北京业主", province="北京", city="北京", kind="owner", source="online")
    in_pool("上海企业", province="上海", city="上海", kind="enterprise", source="phone")
    in_pool(
        "北京企业", province="北京", city="北京", kind="enterprise", source="referral"
    )

    def names(**params: str) -> set[str]:
        body = as_sales.get(POOL_URL, params).content.decode()
        return {n for n in ("北京业主", "上海企业", "北京企业") if n in body}

    assert names() == {"北京业主", "上海企业", "北京企业"}
    assert names(province="北京") == {"北京业主", "北京企业"}
    assert names(kind="enterprise") == {"上海企业", "北京企业"}
    assert names(source="phone") == {"上海企业"}
    assert names(province="北京", kind="enterprise") == {"北京企业"}
    # A value outside the choices shows nothing rather than everything.
    assert names(kind="alien") == set()


def test_the_pool_page_reads_a_fixed_number_of_queries(client, sales_rep):
    client.force_login(sales_rep)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(POOL_URL).status_code == 200
        return len(captured)

    owner = CustomerFactory(owner=sales_rep)
    services.pool_release(by=sales_rep, customer=owner, reason="无意向")
    few = queries()
    for i in range(12):
        released = CustomerFactory(owner=sales_rep)
        services.pool_release(by=sales_rep, customer=released, reason=f"原因{i}")
        in_pool(f"新客户{i}")
    assert queries() == few


def test_the_preview_is_masked_and_tells_the_pool_history(
    as_sales, sales_rep, teammate
):
    customer = services.customer_create(
        by=teammate,
        data={
            "name": "预览客户",
            "province": "北京",
            "city": "北京",
            "address": "朝阳路1号",
        },
        phone_numbers=["13800138000"],
        id_number=ID_ZHANG,
    )
    services.pool_release(by=teammate, customer=customer, reason="多次联系不上")

    response = as_sales.get(reverse("customers:pool_preview", args=[customer.pk]))

    assertContains(response, "预览客户")
    assertContains(response, "138****8000")
    assertNotContains(response, "13800138000")
    assertNotContains(response, "朝阳路1号")
    assertNotContains(response, "1101")
    assertContains(response, "多次联系不上")
    assertContains(response, f"经办 {teammate}")
    assertContains(response, 'data-testid="claim"')
    assert AccessLog.objects.filter(action="customer_viewed").exists()
    # Once claimed it is nobody's to preview.
    services.pool_claim(by=sales_rep, customer_id=customer.pk)
    url = reverse("customers:pool_preview", args=[customer.pk])
    assert as_sales.get(url).status_code == 404


def test_the_pool_button_is_shown_only_to_roles_that_may_use_it(
    client, sales_rep, service_agent
):
    client.force_login(sales_rep)
    assertContains(client.get(LIST_URL), 'data-testid="pool-link"')
    client.force_login(service_agent)
    assertNotContains(client.get(LIST_URL), 'data-testid="pool-link"')
    assert client.get(POOL_URL).status_code == 403


# --- import and export for sales (KEHU_SALES_IMPORT_EXPORT) -----------------------------


IO_PAGES = (
    reverse("customers:import_upload"),
    reverse("customers:import_template"),
    reverse("customers:export_confirm"),
)


def test_sales_may_not_import_or_export_by_default(as_sales, settings):
    assert settings.KEHU_SALES_IMPORT_EXPORT is False
    for url in IO_PAGES:
        assert as_sales.get(url).status_code == 403
    page = as_sales.get(LIST_URL)
    assertNotContains(page, 'data-testid="import-link"')
    assertNotContains(page, 'data-testid="export-link"')


def test_with_the_setting_sales_import_and_export_their_own_list(
    as_sales, settings, sales_rep, outsider
):
    settings.KEHU_SALES_IMPORT_EXPORT = True
    services.customer_create(
        by=sales_rep, data={"name": "张三"}, phone_numbers=["13800138000"]
    )
    services.customer_create(
        by=outsider, data={"name": "李四"}, phone_numbers=["13900139000"]
    )
    for url in IO_PAGES:
        assert as_sales.get(url).status_code == 200
    page = as_sales.get(LIST_URL)
    assertContains(page, 'data-testid="import-link"')
    assertContains(page, 'data-testid="export-link"')
    assertContains(page, "我的导出申请")

    response = as_sales.get(reverse("customers:export_download"), {"format": "csv"})
    assert response.status_code == 200
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    names = {row[1] for row in list(csv.reader(io.StringIO(body)))[1:]}
    assert names == {"张三"}  # the salesperson's scope only
    assert AccessLog.objects.filter(action="export", user=sales_rep).exists()


def test_sales_never_approve_exports_even_with_the_setting(
    client, settings, sales_rep, teammate
):
    settings.KEHU_SALES_IMPORT_EXPORT = True
    request = ExportRequest.objects.create(
        requested_by=teammate, row_count=500, reason="季度回访"
    )
    client.force_login(sales_rep)
    # A teammate's request is not theirs to see, let alone decide.
    detail = reverse("customers:export_request_detail", args=[request.pk])
    assert client.get(detail).status_code == 404
    decide = reverse("customers:export_request_decide", args=[request.pk])
    assert client.post(decide, {"decision": "approve"}).status_code == 404
    request.refresh_from_db()
    assert request.status == ExportRequest.Status.PENDING
    assertNotContains(client.get(reverse("customers:export_requests")), "季度回访")
