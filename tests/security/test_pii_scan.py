"""S14: no page, address or log line shows a phone or ID number it should not.

Reads the session's crawl (every GET page of the access matrix × every persona, on
canary customers that have mobile and ID numbers). Roles in KEHU_UNMASKED_ROLES may see
the phones of customers in their scope; nobody sees an ID number without a logged
reveal (which the crawl never makes).
"""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import urlencode

import pytest
from django.conf import settings
from django.urls import reverse

from tests.security.inventory import (
    CANARIES,
    ID_NUMBER,
    ID_NUMBERS,
    MOBILE,
    PHONES,
    ROLE_OF,
    VISIBLE,
    without_request_ids,
)

# The crawl needs the test database; pytest-django sets it up only for such modules.
# A sweep of every page: .ci/run's step c (system PostgreSQL) leaves it to step b.
pytestmark = [pytest.mark.django_db, pytest.mark.sweep]

# Attributes whose value is an address the page sends the browser to.
ADDRESS_ATTRIBUTES = {"href", "src", "action", "hx-get", "hx-post", "data-url"}


class _Addresses(HTMLParser):
    """Every address in a page, and its forms with their fields."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.addresses: list[str] = []
        self.forms: list[dict] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        attributes = dict(attrs)
        self.addresses += [
            value or "" for name, value in attrs if name in ADDRESS_ATTRIBUTES
        ]
        if tag == "form":
            self.forms.append(
                {
                    "method": (attributes.get("method") or "get").lower(),
                    "action": attributes.get("action") or "",
                    "fields": {},
                }
            )
        elif tag in ("input", "select", "textarea") and self.forms:
            name = attributes.get("name")
            if name and attributes.get("type") not in ("submit", "checkbox"):
                self.forms[-1]["fields"][name] = attributes.get("value") or ""


def _parse(body: str) -> _Addresses:
    parser = _Addresses()
    parser.feed(body)
    return parser


# The import templates' sample rows use China Mobile's well-known dummy number.
SAMPLE_PHONES = {
    "customers:import_template": {"13800138000"},
    "deals:import_template": {"13800138000"},
    "property:import_template": {"13800138000"},
}


def _phones_allowed(actor: str, url_name: str) -> set[str]:
    if ROLE_OF[actor] not in settings.KEHU_UNMASKED_ROLES:
        return SAMPLE_PHONES.get(url_name, set())
    scope = VISIBLE[actor] | (
        {"pool"}
        if url_name in ("customers:pool_list", "customers:pool_preview")
        else set()
    )
    return {PHONES[target] for target in scope} | SAMPLE_PHONES.get(url_name, set())


def test_pages_show_phones_only_to_unmasked_roles_in_scope(crawl):
    problems = []
    for answer in crawl.answers:
        shown = set(MOBILE.findall(without_request_ids(answer.body)))
        extra = shown - _phones_allowed(answer.actor, answer.url_name)
        if extra:
            problems.append(f"{answer}: phones {sorted(extra)}")
    assert not problems, "\n".join(problems)


def test_the_scan_sees_phones_where_they_are_shown(crawl):
    """The scanner itself works: an unmasked salesperson sees their customer's phone."""
    own_page = [
        a
        for a in crawl.answers
        if a.url_name == "customers:customer_detail"
        and a.target == "own_team"
        and a.actor == "sales_rep"
    ]
    assert own_page and own_page[0].status == 200
    if "sales" in settings.KEHU_UNMASKED_ROLES:
        assert PHONES["own_team"] in MOBILE.findall(own_page[0].body)


def test_no_page_shows_an_id_number_unrevealed(crawl):
    problems = [
        f"{answer}: ID numbers {sorted(set(ID_NUMBER.findall(body)))}"
        for answer in crawl.answers
        if ID_NUMBER.search(body := without_request_ids(answer.body))
    ]
    assert not problems, "\n".join(problems)


def test_no_address_the_app_makes_carries_a_phone_or_id_number(crawl):
    problems = []
    for answer in crawl.answers:
        addresses = [answer.headers.get("Location", "")]
        if answer.is_html:
            addresses += _parse(answer.body).addresses
        for address in addresses:
            if MOBILE.search(address) or ID_NUMBER.search(address):
                problems.append(f"{answer}: {address}")
    assert not problems, "\n".join(problems)


def test_logs_of_the_crawl_hold_no_pii_and_no_canary(crawl):
    assert crawl.log_lines, "the crawl logged nothing: is the capture attached?"
    problems = []
    for line in crawl.log_lines:
        scanned = without_request_ids(line)
        if MOBILE.search(scanned) or ID_NUMBER.search(scanned):
            problems.append(line)
        elif any(name in line for name in CANARIES.values()):
            problems.append(line)
    assert not problems, "\n".join(problems[:20])


# --- searching by phone or ID number keeps the digits out of the address bar -------------

SEARCH_PAGES = [
    ("customers:customer_list", "sales_rep"),
    ("customers:pool_list", "sales_rep"),
    ("service:ticket_queue", "service_agent"),
    ("service:ticket_create", "service_agent"),
]


def _search(client, url: str, query: str) -> list[str]:  # noqa: ANN001
    """Submit the page's search box as a browser would; every address on the way."""
    page = _parse(client.get(url).content.decode())
    form = next(f for f in page.forms if "q" in f["fields"])
    action = form["action"] or url
    fields = {**form["fields"], "q": query}
    if form["method"] == "get":
        address = f"{action}?{urlencode(fields)}"
        response = client.get(address, follow=True)
        seen = [address]
    else:
        response = client.post(action, fields, follow=True)
        seen = []
    seen += [location for location, _status in response.redirect_chain]
    seen.append(response.request["PATH_INFO"] + "?" + response.request["QUERY_STRING"])
    return seen + _parse(response.content.decode()).addresses


@pytest.mark.parametrize(("url_name", "persona"), SEARCH_PAGES)
@pytest.mark.parametrize("kind", ["phone", "id_number"])
def test_a_phone_or_id_search_leaves_no_digits_in_any_address(
    request, db, client, url_name, persona, kind
):
    user = request.getfixturevalue(persona)
    client.force_login(user)
    query = PHONES["own_team"] if kind == "phone" else ID_NUMBERS["own_team"]
    leaked = [
        address
        for address in _search(client, reverse(url_name), query)
        if MOBILE.search(address) or ID_NUMBER.search(address)
    ]
    assert not leaked, leaked
