"""C2: many people saving the same new customer at the same moment, each spelling the
phone and the resident ID number their own way, get exactly one customer.

Through the real create form (Django test client, one connection per thread): 20
simultaneous submissions per round, phones as 13800138000 / +86 138 0013 8000 /
full-width digits / 138-0013-8000, the ID number's check character as X, x and
full-width ｘ. Every round must leave exactly one row, answer the others with the form
(an error or the look-alike list) or a redirect to that same row, and never a 500.
PR tier: 2 rounds; nightly: 100 rounds (shared/domain/reliability.md, C2).
"""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from customers.models import Customer, CustomerPhone
from tests.concurrency.threads import run_together

CREATE_URL = reverse("customers:customer_create")
ATTEMPTS = 20
WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
FULL_WIDTH = str.maketrans("0123456789xX", "０１２３４５６７８９ｘＸ")


def id_number_ending_in_x(start: int) -> str:
    """A valid resident ID number (GB 11643 checksum) whose check character is X."""
    serial = start
    while True:
        body = f"1101051949{(serial % 12) + 1:02d}{(serial % 28) + 1:02d}{serial % 1000:03d}"
        total = sum(int(d) * w for d, w in zip(body, WEIGHTS, strict=True))
        if "10X98765432"[total % 11] == "X":
            return body + "X"
        serial += 1


def spellings(round_: int) -> tuple[str, list[str], list[str]]:
    national = f"1380013{round_:04d}"
    phones = [
        national,
        f"+86 {national[:3]} {national[3:7]} {national[7:]}",
        national.translate(FULL_WIDTH),
        f"{national[:3]}-{national[3:7]}-{national[7:]}",
    ]
    id_number = id_number_ending_in_x(round_ * 97)
    ids = [id_number, id_number[:-1] + "x", id_number.translate(FULL_WIDTH)[:-1] + "ｘ"]
    return national, phones, ids


def form(name: str, phone: str, id_number: str) -> dict[str, str]:
    return {
        "name": name,
        "kind": "owner",
        "stage": "lead",
        "tier": "C",
        "phone": phone,
        "id_number": id_number,
    }


def one_round(clients: list[Client], round_: int) -> None:
    national, phones, ids = spellings(round_)
    name = f"同一人{round_}"

    def submit(client: Client, n: int):
        def post():
            return client.post(
                CREATE_URL, form(name, phones[n % len(phones)], ids[n % len(ids)])
            )

        return post

    outcomes = run_together([submit(c, n) for n, c in enumerate(clients)])

    errors = [o for o in outcomes if isinstance(o, Exception)]
    assert not errors, errors[:3]
    statuses = sorted(o.status_code for o in outcomes)
    assert set(statuses) <= {200, 302}, statuses
    created = list(Customer.objects.filter(name=name))
    assert len(created) == 1, (round_, len(created), statuses)
    assert CustomerPhone.objects.filter(number=national).count() == 1
    assert created[0].id_number_index
    # Every redirect leads to the one customer; every other answer is the form again.
    targets = {o["Location"] for o in outcomes if o.status_code == 302}
    assert targets <= {created[0].get_absolute_url()}, targets
    assert statuses.count(302) >= 1


def _clients(users) -> list[Client]:
    clients = []
    for n in range(ATTEMPTS):
        client = Client()
        client.force_login(users[n % len(users)])
        clients.append(client)
    return clients


@pytest.mark.django_db(transaction=True)
def test_c2_twenty_simultaneous_creations_of_one_person_make_one_customer(
    sales_rep, teammate
):
    clients = _clients([sales_rep, teammate])
    for round_ in range(2):
        one_round(clients, round_)


@pytest.mark.nightly
@pytest.mark.django_db(transaction=True)
def test_c2_hundred_rounds(sales_rep, teammate):
    clients = _clients([sales_rep, teammate])
    for round_ in range(100):
        one_round(clients, round_)
