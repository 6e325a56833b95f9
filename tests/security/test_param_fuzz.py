"""S21, GET parameters: every view that reads `request.GET`, fed extreme values.

Which parameters a page reads is not listed by hand: each row of the access matrix
(tests/accounts/test_access_matrix.py, every URL pattern) is requested once by a
persona that may use it, with `request.GET` replaced by a QueryDict that records the
names it is asked for. A new view, or a new parameter of an old one, is fuzzed from the
day it exists; a view whose parameter only a branch reads lists it in EXTRA_KEYS.

Then each such page gets, per parameter, the extremes of the bad-input list: dates
0001-01-01, 9999-12-31 and Feb 30, 20- and 30-digit and negative numbers, 1e309, NUL,
invalid UTF-8 (%FF%FE as it arrives on the wire), 100 KB strings and RTL marks; first
each extreme in every parameter at once, then the worst five in each parameter alone,
then hypothesis mixes them (derandomized, 6 examples a page in the PR tier, 300 in the
nightly one). Every answer is below 500 and
nothing is logged at ERROR (a traceback, a DisallowedRedirect).

`test_views_read_single_get_values_only_through_bounds` keeps the mechanism in one
place: a view hands request.GET whole to a form, the search helpers or crm.core.bounds,
never picks a value out of it by hand.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote, urlsplit

import pytest
from django.conf import settings
from django.core.handlers.wsgi import WSGIRequest, get_bytes_from_wsgi
from django.db import transaction
from django.http import QueryDict
from django.test import Client
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from customers.forms import CustomerFilterForm
from tests.security.inventory import (
    ACTORS,
    LOGIN,
    MATRIX,
    PROBE,
    rolled_back,
    warm,
)

# A sweep of every page: .ci/run's step c (system PostgreSQL) leaves it to step b.
pytestmark = [pytest.mark.django_db, pytest.mark.sweep]

PR_EXAMPLES = 6
NIGHTLY_EXAMPLES = 300
# Parameters only a branch reads (the matrix opens these pages on their other branch).
EXTRA_KEYS = {
    "service:ticket_create": {"q", "s"},
    "service:asset_create": {"customer"},
    "handover:appointment_book": {"q", "s", "slot"},
    "customers:customer_merge": {"q", "s"},
    # export_filters rebuilds the QueryDict before the list's filter form reads it.
    "customers:export_confirm": set(CustomerFilterForm.base_fields),
    "customers:export_download": set(CustomerFilterForm.base_fields),
}
# What discovery must find (a subset): if it finds less, the recorder broke, and the
# fuzz below would test nothing.
KNOWN = {
    "customers:customer_list": {"page", "q", "kind", "owner", "days_since_contact"},
    "customers:customer_timeline": {"before"},
    "customers:pool_list": {"page", "q"},
    "audit_log": {"before", "date_from", "date_to", "action"},
    "service:ticket_queue": {"page", "queue", "q", "status"},
    "service:workorder_list": {"page", "state"},
    "service:dealer_report": {"days"},
    "handover:event_list": {"page", "status"},
    "notifications:notification_list": {"page"},
    "customers:export_confirm": {"q", "kind"},
}
# Views that may read a single GET value without crm.core.bounds, and why.
UNBOUNDED_READS = {
    # `next` is only ever passed to url_has_allowed_host_and_scheme, which refuses
    # anything but a same-site path (and anything over 2,048 characters).
    "crm/accounts/views.py": 'request.GET.get("next", "")',
}
SINGLE_READ = re.compile(r"request\.GET(\.get\(|\[|\.getlist\(|\.dict\(\))")
SKIPPED = {"logout", "healthz"}
PROBE_PARAM = {"kehu_probe": "1"}


class Raw(str):
    """A value already percent-encoded, sent as is (invalid UTF-8 cannot be a str)."""

    __slots__ = ()


INVALID_UTF8 = Raw("%FF%FE%00")
EXTREMES = [
    "0001-01-01",
    "9999-12-31",
    "2026-02-30",
    "0001-01-01T00:00:00",
    "9999-12-31T23:59:59.999999",
    "2026-01-01T00:00:00+08:00|12345678901234567890",
    "12345678901234567890",
    "9" * 30,
    "-1",
    "1e309",
    "NaN",
    "\x00",
    "前\x00后",
    INVALID_UTF8,
    "x" * 100_000,
    "\u202egnp.exe\u200f",
    " ",
]


# Each of these alone in each parameter (the audit page's date_to=9999-12-31).
WORST = [
    "0001-01-01",
    "9999-12-31",
    "0001-01-01T00:00:00",
    "12345678901234567890",
    INVALID_UTF8,
]


def _encode(value: str) -> str:
    return value if isinstance(value, Raw) else quote(value, safe="")


def _with_params(url: str, params: dict[str, str]) -> str:
    """`url` with `params` replacing its own parameters of the same names."""
    parts = urlsplit(url)
    kept = [
        pair
        for pair in parts.query.split("&")
        if pair and pair.split("=", 1)[0] not in params
    ]
    drawn = [f"{quote(k, safe='')}={_encode(v)}" for k, v in params.items()]
    return f"{parts.path}?{'&'.join(kept + drawn)}"


# --- discovering what each view reads --------------------------------------------------


class RecordingQueryDict(QueryDict):
    """request.GET that remembers which names the view asked it for."""

    asked: ClassVar[set[str]] = set()

    def __getitem__(self, key: str) -> Any:
        self.asked.add(key)
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:
        self.asked.add(key)
        return super().get(key, default)

    def getlist(self, key: str, default: Any = None) -> list:
        self.asked.add(key)
        return super().getlist(key, default)

    def __contains__(self, key: object) -> bool:
        self.asked.add(str(key))
        return super().__contains__(key)

    def pop(self, key: str, *args: Any) -> Any:
        self.asked.add(key)
        return super().pop(key, *args)


def _recording_get(request: WSGIRequest) -> QueryDict:
    raw = get_bytes_from_wsgi(request.environ, "QUERY_STRING", "")
    return RecordingQueryDict(raw, encoding=request._encoding)


@dataclass(frozen=True)
class Page:
    url_name: str
    method: str
    target: str | None
    actor: str


def _pages() -> list[Page]:
    """One row per (URL name, method): the first target and persona that may use it."""
    pages: dict[tuple[str, str], Page] = {}
    for row in MATRIX:
        url_name, method, target, *expected = row
        if url_name in SKIPPED or (url_name, method) in pages:
            continue
        for actor, status in zip(ACTORS, expected, strict=True):
            refused = status in (LOGIN, PROBE, 403, 404, 405)
            if not refused and not (method == "POST" and actor == "anonymous"):
                pages[(url_name, method)] = Page(url_name, method, target, actor)
                break
    return list(pages.values())


PAGES = _pages()


@dataclass
class Found:
    world: Any
    clients: dict[str, Client]
    keys: dict[Page, set[str]]


def _request(client: Client, page: Page, url: str) -> Any:
    if page.method == "POST":
        return client.post(url, {})
    return client.get(url)


@pytest.fixture(scope="module")
def found(sweep_world) -> Iterator[Found]:
    world = warm(sweep_world)
    clients = {}
    for actor in ACTORS:
        client = Client(raise_request_exception=False)
        if actor != "anonymous":
            client.force_login(world.actors[actor])
        clients[actor] = client
    keys: dict[Page, set[str]] = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(WSGIRequest, "GET", property(_recording_get))
        for page in PAGES:
            with rolled_back(world):
                RecordingQueryDict.asked = set()
                # A parameter of no meaning, so that `Form(request.GET or None)` binds
                # and reads its fields.
                url = _with_params(world.url(page.url_name, page.target), PROBE_PARAM)
                _request(clients[page.actor], page, url)
                asked = RecordingQueryDict.asked - set(PROBE_PARAM)
                asked |= EXTRA_KEYS.get(page.url_name, set())
            if asked:
                keys[page] = asked
    yield Found(world, clients, keys)


def test_discovery_finds_the_parameters_each_page_reads(found):
    by_name = {page.url_name: names for page, names in found.keys.items()}
    missing = {
        name: sorted(wanted - by_name.get(name, set()))
        for name, wanted in KNOWN.items()
        if not wanted <= by_name.get(name, set())
    }
    assert not missing, missing


def test_views_read_single_get_values_only_through_bounds():
    root = Path(settings.BASE_DIR)
    offenders = []
    for path in sorted(root.glob("**/*.py")):
        relative = path.relative_to(root).as_posix()
        if relative.startswith((".venv/", "tests/", "var/", "bench/", ".semgrep/")):
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if SINGLE_READ.search(line) and UNBOUNDED_READS.get(relative, "\0") not in (
                line
            ):
                offenders.append(f"{relative}:{number}: {line.strip()}")
    assert not offenders, "read GET values with crm.core.bounds.Params:\n" + "\n".join(
        offenders
    )


# --- the fuzz ------------------------------------------------------------------------------


def _check(
    found: Found, page: Page, address: str, params: dict[str, str], caplog: Any
) -> list[str]:
    """One request (its writes undone); what is wrong with the answer."""
    caplog.clear()
    url = _with_params(address, params)
    savepoint = transaction.savepoint()
    try:
        response = _request(found.clients[page.actor], page, url)
    finally:
        transaction.savepoint_rollback(savepoint)
    problems = []
    if response.status_code >= 500:
        problems.append(f"{response.status_code} for {url[:200]!r}")
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    if errors:
        problems.append(f"logged {errors[0].getMessage()[:200]!r} for {url[:200]!r}")
    return problems


VALUES = st.one_of(
    st.sampled_from(EXTREMES),
    st.text(max_size=30),
    st.integers().map(str),
    st.dates().map(lambda d: d.isoformat()),
    st.datetimes().map(lambda d: d.isoformat()),
)


def _fuzz(found: Found, page: Page, caplog: Any, examples: int) -> None:
    caplog.set_level(logging.WARNING)
    keys = sorted(found.keys.get(page, ()))
    if not keys:
        pytest.skip("reads no GET parameter")
    problems: list[str] = []

    @hypothesis_settings(
        max_examples=examples,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(drawn=st.dictionaries(st.sampled_from(keys), VALUES, min_size=1))
    def run(drawn: dict[str, str]) -> None:
        problems.extend(_check(found, page, address, drawn, caplog))

    # The page's records (a ticket, a work order) are made once for all requests.
    with rolled_back(found.world):
        address = found.world.url(page.url_name, page.target)
        for value in EXTREMES:
            params = dict.fromkeys(keys, value)
            problems.extend(_check(found, page, address, params, caplog))
        # Alone, too: in every parameter at once, an invalid choice elsewhere can
        # make the whole form fall back before the dangerous value is used.
        for key in keys:
            for value in WORST:
                problems.extend(_check(found, page, address, {key: value}, caplog))
        run()
    assert not problems, f"{page.method} {page.url_name}:\n" + "\n".join(problems[:10])


IDS = [f"{p.method} {p.url_name}" for p in PAGES]


@pytest.mark.parametrize("page", PAGES, ids=IDS)
def test_extreme_get_parameters_never_answer_500_or_log_an_error(found, page, caplog):
    _fuzz(found, page, caplog, PR_EXAMPLES)


@pytest.mark.nightly
@pytest.mark.parametrize("page", PAGES, ids=IDS)
def test_extreme_get_parameters_at_length(found, page, caplog):
    _fuzz(found, page, caplog, NIGHTLY_EXAMPLES)
