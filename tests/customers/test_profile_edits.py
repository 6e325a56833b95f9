"""The one-to-one profile under two editors, and its audit trail.

Two people open the profile form; the second to save is shown what the first saved
and saves nothing (the version check of the customer form). Profile edits and the
customer's secondary phones are recorded by pghistory with the acting user and shown on
the customer's history tab."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from customers import services
from customers.models import Customer, CustomerProfile

pytestmark = pytest.mark.django_db

EDIT_FIELDS = ("name", "kind", "stage", "tier", "source", "notes")


def profile_url(customer: Customer) -> str:
    return reverse("customers:customer_profile_edit", args=[customer.pk])


def detail_url(customer: Customer) -> str:
    return reverse("customers:customer_detail", args=[customer.pk])


@pytest.fixture
def customer(sales_rep) -> Customer:
    return services.customer_create(
        by=sales_rep, data={"name": "张三"}, phone_numbers=["13812345678"]
    )


def _client(user) -> Client:  # noqa: ANN001
    client = Client()
    client.force_login(user)
    return client


def open_form(client: Client, customer: Customer) -> dict[str, str]:
    """What the browser would post back unchanged: the form's current values."""
    form = client.get(profile_url(customer)).context["form"]
    data = {}
    for name, field in form.fields.items():
        value = form[name].value()
        if isinstance(value, bool):
            if value:
                data[name] = "on"
        elif value is not None:
            data[name] = str(value)
        elif field.required:
            data[name] = ""
    return data


def _history_rows(html: str) -> list[str]:
    table = html.split('data-testid="history"', 1)[1].split("</table>", 1)[0]
    # Each row as its text, cells apart: "time | who | action | field: old → new".
    rows = table.split("<tr>")[2:]
    return [
        re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row.replace("</td>", " |")))
        for row in rows
    ]


# --- two editors -----------------------------------------------------------------------


def test_the_second_editor_is_shown_the_change_and_overwrites_nothing(
    customer, sales_rep, teammate
):
    first, second = _client(sales_rep), _client(teammate)
    mine, theirs = open_form(first, customer), open_form(second, customer)

    saved = first.post(profile_url(customer), {**mine, "language": "粤语"})
    assert saved.status_code == 302
    stale = second.post(
        profile_url(customer), {**theirs, "language": "普通话", "notes": "下午联系"}
    )

    assert stale.status_code == 409
    html = stale.content.decode()
    assert "一对一档案已被他人修改，您的修改没有保存" in html
    # The page shows what differs: the user's value next to the one saved meanwhile.
    differences = html.split('data-testid="profile-conflict"', 1)[1].split("</table>")[
        0
    ]
    assert re.search(
        r"沟通语言/方言</t[dh]>\s*<td>普通话</td>\s*<td>粤语</td>", differences
    )
    assert re.search(r"其他说明</t[dh]>\s*<td>下午联系</td>\s*<td>—</td>", differences)
    profile = CustomerProfile.objects.get(customer=customer)
    assert (profile.language, profile.notes) == ("粤语", "")
    # The form now holds what is saved and its version: saving again is deliberate.
    refreshed = stale.context["form"]
    assert refreshed["language"].value() == "粤语"
    again = second.post(
        profile_url(customer),
        {**open_form(second, customer), "notes": "下午联系"},
    )
    assert again.status_code == 302
    profile.refresh_from_db()
    assert (profile.language, profile.notes) == ("粤语", "下午联系")


def test_two_first_saves_of_an_empty_profile_keep_the_first(
    customer, sales_rep, teammate
):
    first, second = _client(sales_rep), _client(teammate)
    mine, theirs = open_form(first, customer), open_form(second, customer)
    assert (
        first.post(profile_url(customer), {**mine, "interests": "钓鱼"}).status_code
        == 302
    )
    stale = second.post(profile_url(customer), {**theirs, "interests": "茶艺"})
    assert stale.status_code == 409
    assert CustomerProfile.objects.get(customer=customer).interests == "钓鱼"


def test_a_stale_version_is_refused_by_the_service(customer, sales_rep, teammate):
    services.profile_update(
        by=sales_rep, customer=customer, data={"language": "粤语"}, version=0
    )
    with pytest.raises(services.EditConflict) as conflict:
        services.profile_update(
            by=teammate, customer=customer, data={"language": "普通话"}, version=0
        )
    assert conflict.value.current.language == "粤语"
    assert CustomerProfile.objects.get(customer=customer).language == "粤语"


def test_a_merge_makes_an_open_profile_form_stale(customer, sales_rep, manager):
    duplicate = services.customer_create(by=sales_rep, data={"name": "张三（重复）"})
    services.profile_update(by=sales_rep, customer=duplicate, data={"language": "粤语"})
    editor = _client(sales_rep)
    opened = open_form(editor, customer)
    services.customer_merge(by=manager, survivor=customer, duplicate=duplicate)
    response = editor.post(profile_url(customer), {**opened, "notes": "上午"})
    assert response.status_code == 409
    assert CustomerProfile.objects.get(customer=customer).language == "粤语"


# --- the audit trail -------------------------------------------------------------------


def test_the_history_tab_shows_profile_changes_with_the_user(
    customer, sales_rep, teammate
):
    first = _client(sales_rep)
    first.post(
        profile_url(customer), {**open_form(first, customer), "language": "粤语"}
    )
    second = _client(teammate)
    second.post(
        profile_url(customer),
        {**open_form(second, customer), "language": "普通话", "do_not_call": "on"},
    )

    rows = _history_rows(first.get(detail_url(customer)).content.decode())
    [theirs, mine] = [r for r in rows if "修改一对一档案" in r]
    assert str(sales_rep) in mine and "language : — → 粤语" in mine
    assert str(teammate) in theirs
    assert "language : 粤语 → 普通话" in theirs and "do_not_call" in theirs


def test_a_profile_filled_in_at_creation_is_in_the_history(sales_rep):
    customer = services.customer_create(by=sales_rep, data={"name": "王五"})
    services.profile_update(by=sales_rep, customer=customer, data={"interests": "茶艺"})
    rows = _history_rows(_client(sales_rep).get(detail_url(customer)).content.decode())
    # One transaction here (the test's), so both rows carry the same time: no order.
    [filled] = [r for r in rows if "修改一对一档案" in r]
    assert "茶艺" in filled and str(sales_rep) in filled
    [created] = [r for r in rows if "创建" in r]
    assert len(rows) == 2


def _edit_phones(client: Client, customer: Customer, other_phones: str) -> None:
    url = reverse("customers:customer_edit", args=[customer.pk])
    form = client.get(url).context["form"]
    data = {
        name: form[name].value()
        for name in (*EDIT_FIELDS, "phone", "version")
        if form[name].value() is not None
    }
    response = client.post(url, {**data, "other_phones": other_phones})
    assert response.status_code == 302, response.content.decode()[:2000]


def test_the_history_tab_shows_secondary_phones_added_and_removed_with_the_user(
    customer, sales_rep, teammate, service_agent
):
    _edit_phones(_client(teammate), customer, "010-88886666")
    _edit_phones(_client(sales_rep), customer, "")

    rows = _history_rows(_client(sales_rep).get(detail_url(customer)).content.decode())
    [added] = [r for r in rows if "添加电话" in r and "01088886666" in r]
    assert str(teammate) in added
    [removed] = [r for r in rows if "删除电话" in r and "01088886666" in r]
    assert str(sales_rep) in removed
    # A role that sees phones masked sees them masked in the history too.
    page = _client(service_agent).get(detail_url(customer)).content.decode()
    assert "01088886666" not in page
    assert [r for r in _history_rows(page) if "添加电话" in r and "010****6666" in r]


def test_the_history_tab_does_not_show_another_customers_changes(customer, sales_rep):
    company = services.customer_create(
        by=sales_rep, data={"name": "某公司", "is_organization": True}
    )
    member = services.customer_create(
        by=sales_rep,
        data={"name": "李四", "organization": company},
        phone_numbers=["13900001111"],
    )
    services.profile_update(by=sales_rep, customer=member, data={"language": "粤语"})
    html = _client(sales_rep).get(detail_url(company)).content.decode()
    history = html.split('data-testid="history"', 1)[1].split("</table>", 1)[0]
    assert "李四" not in history and "13900001111" not in history
    assert "粤语" not in history
