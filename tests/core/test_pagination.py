"""Pagination says what it does: a page past the end goes to the last page and says so,
and a list longer than the paginator counts never claims a number of pages."""

from __future__ import annotations

from django.contrib.messages import get_messages
from django.urls import reverse
from pytest_django.asserts import assertContains, assertNotContains

from crm.core import pagination
from service.models import CannedReply
from tests.factories import CustomerFactory

LIST_URL = reverse("customers:customer_list")
CANNED_URL = reverse("service_admin:canned_list")


def _messages(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_a_customer_page_past_the_end_redirects_to_the_last_with_a_message(
    client, sales_rep
):
    CustomerFactory.create_batch(30, owner=sales_rep)
    client.force_login(sales_rep)
    response = client.get(LIST_URL, {"sort": "name", "page": 500})
    assert response.status_code == 302
    assert response["Location"] == f"{LIST_URL}?sort=name&page=2"
    landed = client.get(response["Location"])
    assertContains(landed, "没有第 500 页：共 2 页，已转到最后一页。")
    assertContains(landed, "第 2 页，共 2 页")
    # The last page itself is no redirect.
    assert client.get(LIST_URL, {"page": 2}).status_code == 200


def test_an_htmx_page_past_the_end_sends_the_whole_page_to_the_last(client, sales_rep):
    CustomerFactory.create_batch(3, owner=sales_rep)
    client.force_login(sales_rep)
    response = client.get(LIST_URL, {"page": 7}, HTTP_HX_REQUEST="true")
    assert response["HX-Redirect"] == f"{LIST_URL}?page=1"
    assert _messages(response) == ["没有第 7 页：共 1 页，已转到最后一页。"]


def test_a_capped_list_shows_at_least_n_and_no_page_count(
    client, sales_rep, monkeypatch
):
    # The case: the bounded count stops at MAX_COUNT + 1 rows, and page 41 of
    # "41 pages" showed one row. Here MAX_COUNT is 50, pages of 25: 51 counted.
    monkeypatch.setattr(pagination, "MAX_COUNT", 50)
    CustomerFactory.create_batch(60, owner=sales_rep)
    client.force_login(sales_rep)
    second = client.get(LIST_URL, {"page": 2})
    assertContains(second, "第 2 页（至少 50 条，只显示前 50 条）")
    assertContains(second, "超过 50 位客户，请缩小筛选范围")
    assertNotContains(second, "共 3 页")
    assertNotContains(second, "共 2 页")
    assert second.context["page"].has_next() is False
    assert len(second.context["page"].object_list) == 25
    past = client.get(LIST_URL, {"page": 3}, follow=True)
    assert past.redirect_chain == [(f"{LIST_URL}?page=2", 302)]
    assertContains(past, "第 3 页超出可显示的范围：列表至少有 50 条，只显示前 50 条")


def test_a_settings_list_page_past_the_end_redirects_too(client, admin_user):
    CannedReply.objects.bulk_create(
        CannedReply(title=f"回复模板{n}", body="您好") for n in range(30)
    )
    client.force_login(admin_user)
    response = client.get(CANNED_URL, {"q": "回复", "page": 9}, follow=True)
    ((landed, status),) = response.redirect_chain
    assert status == 302
    assert landed.endswith("page=2") and "q=%E5%9B%9E%E5%A4%8D" in landed
    assertContains(response, "没有第 9 页")
    assertContains(response, "第 2 页，共 2 页")


def test_an_empty_list_past_page_one_goes_to_page_one(client, sales_rep):
    client.force_login(sales_rep)
    response = client.get(LIST_URL, {"page": 2})
    assert response.status_code == 302
    assert response["Location"] == f"{LIST_URL}?page=1"
