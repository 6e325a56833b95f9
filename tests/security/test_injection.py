"""S6 (dynamic): SQL metacharacters, bad numbers and unknown sort keys in every search,
filter, sort and page parameter of every list page.

Each answer must be a page (no 500) within a second (a `pg_sleep(3)` that reached the
database would take three), and an `' OR '1'='1` search must not show a salesperson
any customer outside their scope (the access matrix's canaries).

Text parameters get every payload one by one; numbers, choices and sort keys get the
payloads that break parsing. `nightly` runs every payload on every parameter.
"""

from __future__ import annotations

import time

import pytest
from django.test import Client

from tests.security.inventory import CANARIES, VISIBLE

pytestmark = pytest.mark.django_db

SQL = [
    "'",
    '"',
    "\\",
    "%",
    "_",
    "--",
    ";",
    "' OR '1'='1",
    "1);SELECT pg_sleep(3)--",
    "';SELECT pg_sleep(3)--",
    "%00",
    "\x00",
    "王\x00'",
    "x" * 5000,
]
NUMBERS = ["-1", "0", "1e309", "abc", "99999999", "9" * 40, "1.5", "'", "\x00"]
CHOICES = [
    "'",
    "' OR '1'='1",
    "\x00",
    "zz-unknown",
    "owner__password",
    "-id",
    "x" * 500,
]
SLOW_SECONDS = 1.0
# The PR tier: the main search box of each page gets every SQL payload; each other
# parameter gets the payloads most likely to break its kind (nightly: all of them).
# Pages that pass their q to the customer list's search get the short list there.
SEARCHES = {"q", "body", "before", "reference", "actor"}
SHARED_SEARCH_PAGES = {
    "customers:pool_list",
    "customers:customer_merge",
    "customers:export_confirm",
    "customers:export_download",
    "service:ticket_create",
    "handover:appointment_book",
}
SHORT = {
    "text": ["' OR '1'='1", "1);SELECT pg_sleep(3)--", "\x00"],
    "number": ["abc", "1e309", "-1", "99999999"],
    "choice": ["'", "\x00", "owner__password"],
}

TEXT, NUMBER, CHOICE = "text", "number", "choice"
# (url name, target, persona, {parameter: kind}): every list and look-up page and the
# query parameters its view reads.
PAGES = [
    (
        "customers:customer_list",
        None,
        "admin_user",
        {
            "q": TEXT,
            "tag": TEXT,
            "province": TEXT,
            "city": TEXT,
            "s": TEXT,
            "kind": CHOICE,
            "stage": CHOICE,
            "tier": CHOICE,
            "sort": CHOICE,
            "is_key_account": CHOICE,
            "pool": CHOICE,
            "owner": NUMBER,
            "team": NUMBER,
            "days_since_contact": NUMBER,
            "page": NUMBER,
        },
    ),
    ("customers:pool_list", None, "manager", {"q": TEXT, "s": TEXT, "page": NUMBER}),
    (
        "customers:customer_merge",
        "own_team",
        "manager",
        {"q": TEXT, "s": TEXT, "other": NUMBER},
    ),
    ("customers:customer_timeline", "own_team", "admin_user", {"before": TEXT}),
    (
        "customers:export_confirm",
        None,
        "admin_user",
        {"q": TEXT, "tag": TEXT, "sort": CHOICE, "owner": NUMBER, "page": NUMBER},
    ),
    (
        "customers:export_download",
        None,
        "manager",
        {"q": TEXT, "sort": CHOICE, "format": CHOICE},
    ),
    (
        "service:ticket_queue",
        None,
        "admin_user",
        {
            "q": TEXT,
            "s": TEXT,
            "queue": CHOICE,
            "status": CHOICE,
            "ticket_type": CHOICE,
            "priority": CHOICE,
            "category": NUMBER,
            "page": NUMBER,
        },
    ),
    (
        "service:ticket_create",
        None,
        "service_agent",
        {"q": TEXT, "s": TEXT, "customer": NUMBER},
    ),
    (
        "service:ticket_detail",
        "ticket:own_team",
        "admin_user",
        {"conversation": CHOICE},
    ),
    (
        "service:canned_reply",
        "ticket:own_team",
        "service_agent",
        {"body": TEXT, "canned": NUMBER},
    ),
    (
        "service:ticket_merge",
        "ticket:own_team",
        "service_agent",
        {"reference": TEXT, "version": NUMBER},
    ),
    ("service:asset_create", None, "service_agent", {"customer": NUMBER}),
    (
        "service:workorder_list",
        None,
        "service_agent",
        {"state": CHOICE, "page": NUMBER},
    ),
    ("service:dealer_report", None, "manager", {"days": NUMBER}),
    ("notifications:notification_list", None, "sales_rep", {"page": NUMBER}),
    ("intake", None, "anonymous", {"done": CHOICE}),
    (
        "audit_log",
        None,
        "admin_user",
        {
            "actor": TEXT,
            "action": CHOICE,
            "outcome": CHOICE,
            "date_from": NUMBER,
            "before": TEXT,
        },
    ),
    ("handover:event_list", None, "admin_user", {"status": CHOICE, "page": NUMBER}),
    (
        "handover:appointment_book",
        "event",
        "service_agent",
        {"q": TEXT, "slot": NUMBER, "customer": NUMBER},
    ),
]


def _known_pages(world):  # noqa: ANN001, ANN202
    """PAGES whose URL names exist in this build (the handover and audit pages are new)."""
    from django.urls import NoReverseMatch

    for url_name, target, persona, parameters in PAGES:
        try:
            url = world.url(url_name, target)
        except (NoReverseMatch, KeyError):
            continue
        yield url_name, url, persona, parameters


def _clients(world) -> dict[str, Client]:  # noqa: ANN001
    clients = {"anonymous": Client(raise_request_exception=False)}
    for persona, user in world.actors.items():
        clients[persona] = Client(raise_request_exception=False)
        clients[persona].force_login(user)
    return clients


def _request(client: Client, url: str, params: dict) -> tuple[int, float]:
    started = time.monotonic()
    response = client.get(url, params, follow=True)
    if getattr(response, "streaming", False):
        b"".join(response.streaming_content)
    return response.status_code, time.monotonic() - started


def _sweep(world, payloads_for, minimum: int) -> list[str]:  # noqa: ANN001
    clients = _clients(world)
    problems = []
    sent = 0
    for url_name, url, persona, parameters in _known_pages(world):
        for parameter, kind in parameters.items():
            for payload in payloads_for(url_name, parameter, kind):
                status, seconds = _request(clients[persona], url, {parameter: payload})
                if seconds > SLOW_SECONDS:
                    # A loaded CI machine can be slow once; pg_sleep is slow every time.
                    status, seconds = _request(
                        clients[persona], url, {parameter: payload}
                    )
                sent += 1
                if status >= 500 or seconds > SLOW_SECONDS:
                    problems.append(
                        f"{url_name} {parameter}={payload[:40]!r}: {status} "
                        f"in {seconds:.2f} s"
                    )
    assert sent >= minimum, sent
    return problems


def test_no_parameter_of_any_list_page_breaks_or_stalls(sweep_world):
    def payloads_for(url_name: str, parameter: str, kind: str) -> list[str]:
        if (
            kind == TEXT
            and parameter in SEARCHES
            and url_name not in SHARED_SEARCH_PAGES
        ):
            return SQL
        return SHORT[kind]

    problems = _sweep(sweep_world, payloads_for, minimum=200)
    assert not problems, "\n".join(problems)


@pytest.mark.nightly
def test_every_payload_in_every_parameter(sweep_world):
    everything = SQL + NUMBERS + CHOICES
    problems = _sweep(
        sweep_world, lambda url_name, parameter, kind: everything, minimum=1500
    )
    assert not problems, "\n".join(problems)


SCOPE_PAGES = [
    ("customers:customer_list", None),
    ("service:ticket_queue", None),
    ("service:ticket_create", None),
    ("handover:appointment_book", "event"),
]


@pytest.mark.parametrize("query", ["' OR '1'='1", "%", "_", "' OR 1=1--", "金丝雀"])
def test_a_tautology_search_shows_no_customer_outside_the_scope(sweep_world, query):
    clients = _clients(sweep_world)
    checked = 0
    for actor in ("outsider", "far_outsider", "sales_rep"):
        for url_name, target in SCOPE_PAGES:
            try:
                url = sweep_world.url(url_name, target)
            except KeyError:
                continue
            response = clients[actor].get(url, {"q": query}, follow=True)
            assert response.status_code < 500, (url, response.status_code)
            shown = {t for t, name in CANARIES.items() if name in response.text}
            assert shown <= VISIBLE[actor], (url, actor, query, shown)
            checked += 1
    assert checked >= 9
