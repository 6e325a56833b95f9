"""Every change to a customer made through the pages is recorded with who made it, and
the customer's history tab shows it."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse
from pghistory.models import Events

from customers.models import Customer

CREATE_URL = reverse("customers:customer_create")


def _detail_url(customer: Customer) -> str:
    return reverse("customers:customer_detail", args=[customer.pk])


def _edit_url(customer: Customer) -> str:
    return reverse("customers:customer_edit", args=[customer.pk])


def _create(client: Client, **changes: str) -> Customer:
    data = {
        "name": "张三丰",
        "kind": Customer.Kind.OWNER,
        "stage": Customer.Stage.LEAD,
        "tier": Customer.Tier.C,
        "phone": "13800138000",
        "email": "",
        "notes": "",
        **changes,
    }
    response = client.post(CREATE_URL, data)
    assert response.status_code == 302
    return Customer.objects.get(name=data["name"])


def _edit(client: Client, customer: Customer, **changes: str):
    page = client.get(_edit_url(customer))
    return client.post(_edit_url(customer), _submitted(page, **changes))


def _submitted(page, **changes: str) -> dict:
    """What the browser submits from the edit page `page`, with `changes` typed in."""
    form = page.context["form"]
    data = {
        name: form[name].value()
        for name in form.fields
        if form[name].value() not in (None, False)
    }
    data["version"] = re.search(
        r'name="version" value="(\d+)"', page.content.decode()
    ).group(1)
    data.update(changes)
    return data


def _events(customer: Customer) -> list:
    return list(Events.objects.tracks(customer).order_by("pgh_created_at"))


def _history_rows(response) -> list[list[str]]:
    """The history table as rows of cell texts."""
    html = response.content.decode()
    table = re.search(r'<table[^>]*data-testid="history".*?</table>', html, re.S)
    assert table, "the detail page has no history table"
    body = table.group(0).split("<tbody>", 1)[1]
    rows = []
    for row in re.findall(r"<tr>(.*?)</tr>", body, re.S):
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        rows.append([" ".join(re.sub(r"<[^>]+>", " ", c).split()) for c in cells])
    return rows


@pytest.fixture
def sales_client(client, sales_rep):
    client.force_login(sales_rep)
    return client


def test_creating_a_customer_records_the_creator(sales_client, sales_rep):
    customer = _create(sales_client)
    [event] = _events(customer)
    assert event.pgh_label == "insert"
    assert event.pgh_context["user"] == sales_rep.pk
    assert event.pgh_context["url"] == CREATE_URL
    assert event.pgh_data["name"] == "张三丰"


def test_editing_a_customer_records_who_changed_what(sales_client, sales_rep, teammate):
    customer = _create(sales_client)
    other = Client()
    other.force_login(teammate)
    response = _edit(other, customer, name="张三丰二世", stage=Customer.Stage.PROSPECT)
    assert response.status_code == 302

    insert, update = _events(customer)
    assert insert.pgh_context["user"] == sales_rep.pk
    assert update.pgh_label == "update"
    assert update.pgh_context["user"] == teammate.pk
    assert update.pgh_diff == {
        "name": ["张三丰", "张三丰二世"],
        "stage": [Customer.Stage.LEAD, Customer.Stage.PROSPECT],
    }


def test_saving_without_changes_adds_no_history(sales_client):
    customer = _create(sales_client)
    assert _edit(sales_client, customer).status_code == 302
    assert [e.pgh_label for e in _events(customer)] == ["insert"]


def test_refused_stale_edit_adds_no_history(sales_client, sales_rep, teammate):
    customer = _create(sales_client)
    stale_page = sales_client.get(_edit_url(customer))
    other = Client()
    other.force_login(teammate)
    _edit(other, customer, notes="先保存的")

    response = sales_client.post(
        _edit_url(customer), _submitted(stale_page, notes="后保存的")
    )
    assert "已被他人修改" in response.content.decode()
    assert [e.pgh_label for e in _events(customer)] == ["insert", "update"]


@pytest.mark.django_db(transaction=True)
def test_history_tab_shows_who_changed_what_newest_first(
    sales_client, sales_rep, teammate
):
    customer = _create(sales_client, name="王老板", stage=Customer.Stage.LEAD)
    other = Client()
    other.force_login(teammate)
    _edit(other, customer, name="王总", stage=Customer.Stage.CUSTOMER)

    response = sales_client.get(_detail_url(customer))
    assert 'data-testid="history-tab"' in response.content.decode()
    newest, *created = _history_rows(response)

    _, actor, action, changes = newest
    assert actor == str(teammate)
    assert action == "修改"
    assert "name : 王老板 → 王总" in changes
    assert "stage : lead → customer" in changes

    # The creation and its phone are one transaction (one time): either order.
    assert sorted(
        (actor, action, changes) for _, actor, action, changes in created
    ) == [
        (str(sales_rep), "创建", ""),
        (str(sales_rep), "添加电话", "number : — → 13800138000"),
    ]


def test_history_tab_shows_changes_made_outside_a_request_as_system(
    sales_client, sales_rep
):
    customer = Customer.objects.create(name="导入的客户", owner=sales_rep)
    response = sales_client.get(_detail_url(customer))
    [[_, actor, action, _]] = _history_rows(response)
    assert (actor, action) == ("系统", "创建")
