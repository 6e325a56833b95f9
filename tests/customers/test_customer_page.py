"""The customer page (360°): profile card, timeline and its pages, history, and a
query count that does not grow with the customer's history."""

from __future__ import annotations

import datetime as dt
import re

import pgtrigger
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from pytest_django.asserts import assertContains, assertNotContains

from culture.deals import services as deal_services
from customers import services
from customers.models import ContactLog, Customer
from tests.factories import ContactLogFactory, FollowUpFactory

EDIT_FIELDS = ("name", "kind", "stage", "tier", "source", "address", "notes")


def detail_url(customer: Customer) -> str:
    return reverse("customers:customer_detail", args=[customer.pk])


def timeline_summaries(html: str) -> list[str]:
    return re.findall(
        r'data-testid="timeline-entry">.*?<div>(.*?)</div>\s*<div class="small',
        html,
        re.S,
    )


def older_page_url(html: str) -> str | None:
    """The URL the "加载更早的记录" element would fetch when scrolled into view."""
    match = re.search(r'hx-get="([^"]*/timeline/\?before=[^"]*)"', html)
    return match.group(1).replace("&amp;", "&") if match else None


def bulk_contacts(customer: Customer, author, count: int, start: dt.datetime) -> None:
    """`count` contacts one minute apart going back from `start`, newest first.

    Their audit rows are not written: the page does not read them, and pghistory's
    per-row trigger would make 50,000 inserts take most of a minute here.
    """
    with pgtrigger.ignore("customers.ContactLog:insert_insert"):
        ContactLog.objects.bulk_create(
            (
                ContactLog(
                    customer=customer,
                    author=author,
                    channel="phone",
                    occurred_at=start - dt.timedelta(minutes=n),
                    summary=f"沟通{n:05d}",
                )
                for n in range(count)
            ),
            batch_size=5000,
        )


@pytest.fixture
def as_sales(client, sales_rep):
    client.force_login(sales_rep)
    return client


def add(owner, name: str, **data: object) -> Customer:
    phones = data.pop("phones", [])
    return services.customer_create(
        by=owner, data={"name": name, **data}, phone_numbers=phones
    )


# --- constant query count -------------------------------------------------------------


def test_the_page_runs_as_many_queries_for_50000_contacts_as_for_5(
    as_sales, sales_rep, django_assert_num_queries
):
    small = add(sales_rep, "新客户", phones=["13800000001"])
    big = add(sales_rep, "老客户", phones=["13800000002"])
    for customer in (small, big):
        FollowUpFactory(customer=customer, due_at=timezone.now() + dt.timedelta(days=1))
    start = timezone.now()
    bulk_contacts(small, sales_rep, 5, start)
    bulk_contacts(big, sales_rep, 50_000, start)

    as_sales.get(detail_url(small))  # warm per-process caches
    with CaptureQueriesContext(connection) as few:
        small_page = as_sales.get(detail_url(small))
    assert small_page.status_code == 200
    assert len(timeline_summaries(small_page.content.decode())) == 5 + 1

    with django_assert_num_queries(len(few.captured_queries)):
        big_page = as_sales.get(detail_url(big))
    assert big_page.status_code == 200
    summaries = timeline_summaries(big_page.content.decode())
    assert len(summaries) == 20
    assert summaries[0] == "沟通00000"

    # Each older page costs the same too, however deep.
    url = older_page_url(big_page.content.decode())
    as_sales.get(url)
    with CaptureQueriesContext(connection) as first_page:
        as_sales.get(url)
    deep = reverse("customers:customer_timeline", args=[big.pk])
    before = (start - dt.timedelta(minutes=45_000)).isoformat()
    with django_assert_num_queries(len(first_page.captured_queries)):
        response = as_sales.get(deep, {"before": before})
    assert timeline_summaries(response.content.decode())[0] == "沟通45001"


# --- the timeline and its pages --------------------------------------------------------


def test_the_timeline_pages_back_through_older_entries(as_sales, sales_rep):
    customer = add(sales_rep, "张三")
    bulk_contacts(customer, sales_rep, 45, timezone.now())
    html = as_sales.get(detail_url(customer)).content.decode()
    seen = timeline_summaries(html)
    assertContains(as_sales.get(detail_url(customer)), "加载更早的记录")
    pages = 1
    url = older_page_url(html)
    while url:
        page = as_sales.get(url, HTTP_HX_REQUEST="true")
        assert page.status_code == 200
        html = page.content.decode()
        assert "<html" not in html
        seen += timeline_summaries(html)
        url = older_page_url(html)
        pages += 1
    assert pages == 3
    assert seen == [f"沟通{n:05d}" for n in range(45)]


def test_the_timeline_mixes_contacts_and_follow_ups_newest_first(as_sales, sales_rep):
    customer = add(sales_rep, "张三")
    now = timezone.now()
    ContactLogFactory(
        customer=customer, occurred_at=now - dt.timedelta(hours=2), summary="上门量房"
    )
    services.followup_create(
        by=sales_rep,
        customer=customer,
        assignee=sales_rep,
        due_at=now + dt.timedelta(days=1),
        note="送报价单",
    )
    ContactLogFactory(
        customer=customer,
        occurred_at=now - dt.timedelta(hours=3),
        summary="微信咨询",
        channel="wechat",
        sentiment="positive",
    )
    html = as_sales.get(detail_url(customer)).content.decode()
    titles = re.findall(
        r'data-testid="timeline-entry">.*?<strong>(.*?)</strong>', html, re.S
    )
    assert titles == ["跟进：送报价单", "电话 · 我方主动", "微信 · 我方主动"]
    assert "积极" in html


def test_an_empty_timeline_says_so(as_sales, sales_rep):
    customer = add(sales_rep, "张三")
    assertContains(as_sales.get(detail_url(customer)), "还没有任何往来记录")


def test_a_bad_before_value_shows_the_first_page(as_sales, sales_rep):
    customer = add(sales_rep, "张三")
    bulk_contacts(customer, sales_rep, 3, timezone.now())
    url = reverse("customers:customer_timeline", args=[customer.pk])
    for before in ("yesterday", "'; --", "9999-99-99"):
        response = as_sales.get(url, {"before": before})
        assert response.status_code == 200
        assert len(timeline_summaries(response.content.decode())) == 3


def test_another_team_cannot_read_the_timeline(client, outsider, sales_rep):
    customer = add(sales_rep, "张三")
    bulk_contacts(customer, sales_rep, 3, timezone.now())
    client.force_login(outsider)
    url = reverse("customers:customer_timeline", args=[customer.pk])
    response = client.get(url, {"before": timezone.now().isoformat()})
    assert response.status_code == 404
    assertNotContains(response, "沟通00000", status_code=404)


def test_contacts_with_the_same_time_are_all_shown_across_pages(as_sales, sales_rep):
    customer = add(sales_rep, "张三")
    same_time = timezone.now() - dt.timedelta(days=1)
    for n in range(25):
        ContactLogFactory(customer=customer, occurred_at=same_time, summary=f"记录{n}")
    html = as_sales.get(detail_url(customer)).content.decode()
    seen = timeline_summaries(html)
    url = older_page_url(html)
    while url:
        html = as_sales.get(url).content.decode()
        seen += timeline_summaries(html)
        url = older_page_url(html)
    assert sorted(seen) == sorted(f"记录{n}" for n in range(25))


# --- profile card, facts and value -----------------------------------------------------


def test_the_profile_card_shows_the_one_to_one_preferences_at_the_top(
    as_sales, sales_rep
):
    customer = add(sales_rep, "张三")
    # 累计成交额 is derived from payments (culture.deals).
    deal = deal_services.deal_create(
        by=sales_rep, customer=customer, data={"title": "合同", "amount": 2000000}
    )
    deal_services.payment_add(
        by=sales_rep, deal=deal, amount=1234567, received_on=timezone.localdate()
    )
    services.profile_update(
        by=sales_rep,
        customer=customer,
        data={
            "preferred_channel": "wechat",
            "preferred_time": "evening",
            "language": "粤语",
            "do_not_call": True,
            "special_needs": "行动不便，需无障碍通道",
            "interests": "钓鱼",
            "family_notes": "两个孩子在读小学",
        },
    )
    html = as_sales.get(detail_url(customer)).content.decode()
    card = html.split('data-testid="profile-card"', 1)[1].split('class="row g-4"')[0]
    for text in (
        "偏好：微信",
        "方便时间：晚上",
        "语言：粤语",
        "请勿来电",
        "特殊需求：行动不便，需无障碍通道",
        "兴趣爱好：钓鱼",
        "家庭情况：两个孩子在读小学",
    ):
        assert text in card, text
    assert "请勿短信" not in card
    assert html.index('data-testid="profile-card"') < html.index(
        'data-testid="timeline"'
    )
    assert "¥1,234,567.00" in html


def test_an_empty_profile_invites_filling_it_in(as_sales, sales_rep):
    customer = add(sales_rep, "张三")
    response = as_sales.get(detail_url(customer))
    assertContains(response, "还没有填写该客户的偏好")
    assertContains(
        response, reverse("customers:customer_profile_edit", args=[customer.pk])
    )


# --- history tab ---------------------------------------------------------------------


def _edit(client, customer: Customer, **changes: object) -> None:
    page = client.get(reverse("customers:customer_edit", args=[customer.pk]))
    form = page.context["form"]
    data = {
        name: form[name].value()
        for name in (*EDIT_FIELDS, "phone", "version")
        if form[name].value() is not None
    }
    data.update(changes)
    response = client.post(reverse("customers:customer_edit", args=[customer.pk]), data)
    assert response.status_code == 302, response.content.decode()[:2000]


def _history(html: str) -> str:
    return html.split('data-testid="history"', 1)[1].split("</table>", 1)[0]


def test_the_history_tab_shows_who_changed_what(client, sales_rep, teammate):
    customer = add(sales_rep, "张三", phones=["13812345678"], stage="lead")
    client.force_login(teammate)
    _edit(client, customer, stage="prospect", phone="13987654321")

    client.force_login(sales_rep)
    history = _history(client.get(detail_url(customer)).content.decode())
    [edit] = [row for row in history.split("<tr>") if "lead → prospect" in row]
    assert str(teammate) in edit
    assert "修改" in edit
    assert "13812345678 → 13987654321" in edit
    [creation] = [row for row in history.split("<tr>") if "创建" in row]
    assert str(sales_rep) in creation


def test_the_history_tab_masks_phones_for_a_role_without_pii_rights(
    client, sales_rep, service_agent
):
    customer = add(sales_rep, "张三", phones=["13812345678"])
    client.force_login(sales_rep)
    _edit(client, customer, phone="13987654321")

    client.force_login(service_agent)
    page = client.get(detail_url(customer)).content.decode()
    assert "138****5678 → 139****4321" in _history(page)
    assert "13812345678" not in page
    assert "13987654321" not in page


def test_the_history_tab_hides_the_address_from_a_role_without_pii_rights(
    client, sales_rep, service_agent
):
    customer = add(sales_rep, "张三", address="朝阳区建国路88号3单元1201")
    client.force_login(sales_rep)
    _edit(client, customer, address="海淀区中关村大街1号5栋302")

    client.force_login(service_agent)
    page = client.get(detail_url(customer)).content.decode()
    assert "（已隐藏）" in page
    assert "中关村大街1号5栋302" not in page
    assert "建国路88号3单元1201" not in page
