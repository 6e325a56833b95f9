"""The booking page's customer picker keeps phone and ID numbers out of addresses
(ASVS V14.2.1): the look-up posts, and a sensitive query comes back as ?s=<token>, the
one mechanism of customers/search.py that every other search box uses."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from customers import selectors as customer_selectors
from customers import services as customer_services
from service.handover.models import HandoverEvent
from tests.handover.builders import slots_of

pytestmark = pytest.mark.django_db

DIGIT_RUN = re.compile(r"\d{7,}")
PHONE = "13812345678"
ID_NUMBER = "11010519491231002X"


@pytest.fixture
def event(new_event) -> HandoverEvent:
    return new_event(slots_per_day=2, capacity=2)


@pytest.fixture
def owners(sales_rep, outsider) -> dict:
    return {
        "林业主": customer_services.customer_create(
            by=sales_rep,
            data={"name": "林业主"},
            phone_numbers=[PHONE],
            id_number=ID_NUMBER,
        ),
        "周业主": customer_services.customer_create(
            by=sales_rep, data={"name": "周业主"}, phone_numbers=["13900001111"]
        ),
    }


def book_url(event: HandoverEvent) -> str:
    return reverse("handover:appointment_book", args=[event.pk])


def _addresses(response) -> list[str]:  # noqa: ANN001
    """Every address the user's browser saw or may follow: redirects and links."""
    html = response.content.decode()
    return [address for address, _status in response.redirect_chain] + re.findall(
        r'(?:href|action|hx-get|hx-post)="([^"]*)"', html
    )


def pick(client, event: HandoverEvent, query: str, **extra):  # noqa: ANN001, ANN201
    """Search as the picker's form does: POST, then follow the redirect."""
    return client.post(book_url(event), {"q": query, **extra}, follow=True)


@pytest.mark.parametrize("query", [PHONE, "138 1234 5678", ID_NUMBER])
def test_phone_and_id_searches_travel_as_a_token(
    client, sales_rep, event, owners, query
):
    client.force_login(sales_rep)
    slot = slots_of(event)[0]
    response = pick(client, event, query, slot=slot.pk)
    assert response.status_code == 200
    # What the customer list finds for the same query (the ID number only through
    # the list's own rules), and the phone finds its owner.
    listed = customer_selectors.customer_list(user=sales_rep, query=query)
    assert response.context["customers"] == list(listed[:10])
    if query != ID_NUMBER:
        assert [c.name for c in response.context["customers"]] == ["林业主"]
    ((landed, status),) = response.redirect_chain
    assert status == 303 and "s=" in landed and "q=" not in landed
    addresses = _addresses(response)
    assert not [a for a in addresses if DIGIT_RUN.search(a)], addresses
    # The chosen customer's link keeps the slot and leads to the booking form.
    for link in [a.replace("&amp;", "&") for a in addresses if "customer=" in a]:
        assert f"slot={slot.pk}" in link
        assert "为 林业主 预约" in client.get(link).content.decode()


def test_the_picker_form_posts_and_the_live_search_too(client, sales_rep, event):
    client.force_login(sales_rep)
    html = client.get(book_url(event)).content.decode()
    form = re.search(r'<form[^>]*data-testid="customer-lookup"[^>]*>', html).group(0)
    assert 'method="post"' in form
    box = re.search(r'<input[^>]*id="customer-search"[^>]*>', html).group(0)
    assert "hx-get" not in box and "hx-post" in box


def test_a_phone_typed_into_the_address_is_moved_out_of_it(
    client, sales_rep, event, owners
):
    client.force_login(sales_rep)
    response = client.get(book_url(event), {"q": PHONE}, follow=True)
    ((landed, _status),) = response.redirect_chain
    assert PHONE not in landed and "s=" in landed
    assert [c.name for c in response.context["customers"]] == ["林业主"]


def test_the_live_search_answers_the_partial_with_the_same_results(
    client, sales_rep, event, owners
):
    client.force_login(sales_rep)
    response = client.post(
        book_url(event), {"q": PHONE}, follow=True, HTTP_HX_REQUEST="true"
    )
    assert [c.name for c in response.context["customers"]] == ["林业主"]
    assert not [a for a in _addresses(response) if DIGIT_RUN.search(a)]
    assert "<html" not in response.content.decode()


def test_name_searches_stay_in_the_address(client, sales_rep, event, owners):
    client.force_login(sales_rep)
    response = pick(client, event, "周业主")
    ((landed, _status),) = response.redirect_chain
    assert "q=" in landed and "s=" not in landed
    assert [c.name for c in response.context["customers"]] == ["周业主"]


def test_another_users_token_finds_nothing(client, sales_rep, teammate, event, owners):
    client.force_login(sales_rep)
    ((landed, _status),) = pick(client, event, PHONE).redirect_chain
    client.force_login(teammate)
    # A new session does not know the token: the picker searches nothing.
    response = client.get(landed)
    assert response.status_code == 200
    assert response.context["customers"] == []
    assert "林业主" not in response.content.decode()
