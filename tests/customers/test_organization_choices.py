"""The customer form's organisation and parent selects list at most 50 organisations
(plus the chosen one) and a search box finds the others: listing every organisation
cost 200 ms of CPU at 1,200 and would not load at a million customers."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from customers import services
from customers.forms import ORGANIZATIONS_SHOWN
from customers.models import Customer

OPTION = re.compile(r'<option value="(\d*)"[^>]*>([^<]*)</option>')


def options_of(html: str, field: str) -> list[tuple[str, str]]:
    select = re.search(
        rf'<select name="{field}"[^>]*>(.*?)</select>', html, flags=re.DOTALL
    )
    assert select, f"no select named {field}"
    return OPTION.findall(select.group(1))


@pytest.fixture
def organizations(sales_rep):
    return [
        services.customer_create(
            by=sales_rep, data={"name": f"单位{i:03d}", "is_organization": True}
        )
        for i in range(ORGANIZATIONS_SHOWN + 10)
    ]


@pytest.mark.django_db
def test_the_new_customer_form_lists_a_bounded_number_of_organisations(
    login, sales_rep, organizations
):
    page = login(sales_rep).get(reverse("customers:customer_create"))

    assert page.status_code == 200
    html = page.content.decode()
    for field in ("organization", "parent"):
        shown = options_of(html, field)
        assert len(shown) == 1 + ORGANIZATIONS_SHOWN  # the empty choice first
        assert shown[1][1] == "单位000"
        assert f'data-testid="{field}-search"' in html


@pytest.mark.django_db
def test_an_organisation_beyond_the_list_can_be_chosen_and_stays_shown(
    login, sales_rep, organizations
):
    client = login(sales_rep)
    last = organizations[-1]  # 单位059: not among the first 50 by name
    response = client.post(
        reverse("customers:customer_create"),
        {
            "name": "王小明",
            "kind": "owner",
            "stage": "lead",
            "tier": "C",
            "organization": last.pk,
            "phone": "",
            "id_number": "",
        },
    )
    assert response.status_code == 302
    person = Customer.objects.get(name="王小明")
    assert person.organization_id == last.pk

    edit = client.get(reverse("customers:customer_edit", args=[person.pk]))
    shown = options_of(edit.content.decode(), "organization")
    assert (str(last.pk), "单位059") in shown
    assert re.search(rf'<option value="{last.pk}"[^>]*selected', edit.content.decode())


@pytest.mark.django_db
def test_the_search_box_finds_organisations_by_name_within_the_users_scope(
    login, sales_rep, outsider, organizations
):
    hidden = services.customer_create(
        by=outsider, data={"name": "单位059分公司", "is_organization": True}
    )
    client = login(sales_rep)
    url = reverse("customers:organization_options") + "?field=parent"

    found = client.post(url, {"parent_search": "单位05", "parent": ""})

    assert found.status_code == 200
    names = [label for _value, label in OPTION.findall(found.content.decode())]
    assert names == ["---------"] + [f"单位05{i}" for i in range(10)]
    assert str(hidden.pk) not in found.content.decode()

    kept = client.post(
        url, {"parent_search": "单位00", "parent": str(organizations[-1].pk)}
    )
    options = OPTION.findall(kept.content.decode())
    assert options[1] == (str(organizations[-1].pk), "单位059")
    assert "selected" in kept.content.decode().split("</option>")[1]


@pytest.mark.django_db
def test_the_search_refuses_unknown_fields_and_get(login, sales_rep):
    client = login(sales_rep)
    url = reverse("customers:organization_options")
    assert client.post(url + "?field=owner", {}).status_code == 400
    assert client.get(url + "?field=parent").status_code == 405
