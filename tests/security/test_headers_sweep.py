"""S2: the security headers of every page, as every persona, and the production cookies.

The pages are those of the access matrix (every URL pattern, opened on its canary
records), read from the session's one crawl (tests/security/conftest.py).
"""

from __future__ import annotations

import importlib
import sys

import pytest
from django.conf import settings
from django.test import Client, override_settings

from tests.accounts.worlds import world  # noqa: F401 - a fixture
from tests.security.inventory import PROBE, get_rows, rolled_back, warm

# The crawl needs the test database; pytest-django sets it up only for such modules.
pytestmark = pytest.mark.django_db

HSTS_MIN_SECONDS = 31_536_000
MIN_HTML_PAGES = 300  # ~50 GET patterns × 9 personas; fewer means the crawl broke


def csp_directives(policy: str) -> dict[str, list[str]]:
    directives = {}
    for part in policy.split(";"):
        words = part.split()
        if words:
            directives[words[0].lower()] = words[1:]
    return directives


def header_problems(answer) -> list[str]:  # noqa: ANN001 - conftest.Answer
    headers = answer.headers
    problems = []
    csp = csp_directives(headers.get("Content-Security-Policy", ""))
    script_src = csp.get("script-src", csp.get("default-src"))
    if not script_src:
        problems.append("no CSP script-src")
    elif {"'unsafe-inline'", "'unsafe-eval'"} & set(script_src):
        problems.append(f"script-src {script_src}")
    for directive, value in (
        ("frame-ancestors", ["'none'"]),
        ("object-src", ["'none'"]),
        ("base-uri", ["'self'"]),
    ):
        if csp.get(directive) != value:
            problems.append(f"CSP {directive} is {csp.get(directive)}")
    expected = {
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Cross-Origin-Opener-Policy": "same-origin",
    }
    for name, value in expected.items():
        if headers.get(name) != value:
            problems.append(f"{name} is {headers.get(name)!r}")
    if not headers.get("Referrer-Policy"):
        problems.append("no Referrer-Policy")
    return problems


# The inventory's downloads and probes: files, spreadsheets and JSON, not pages.
NOT_HTML = {
    "healthz",
    "customers:export_download",
    "customers:import_template",
    "deals:import_template",
    "property:import_template",
    "dashboards:export",
    "value:export",
    "service:attachment_download",
    "scorecard_report:pdf",
    "handover:acceptance_form_pdf",
    "handover:case_signature",
}


def test_every_html_page_sends_the_security_headers(crawl):
    html = [answer for answer in crawl.answers if answer.is_html]
    problems = [f"{a}: {p}" for a in html for p in header_problems(a)]
    assert not problems, "\n".join(problems)
    # The sweep really covered the inventory, as admin and as the other roles.
    assert len(html) >= MIN_HTML_PAGES, len(html)
    admin_pages = {a.url_name for a in html if a.actor == "admin_user"}
    assert {row[0] for row in get_rows()} - admin_pages <= NOT_HTML
    assert {a.actor for a in html if a.status == 200} >= {
        "admin_user",
        "sales_rep",
        "service_agent",
        "manager",
    }
    print(f"S2: {len(html)} HTML responses of {len(crawl.answers)} checked")  # noqa: T201


def test_no_page_of_the_crawl_is_a_server_error(crawl):
    # The health probe answers 503 by design when no Celery worker is up, as here.
    errors = [
        str(answer)
        for answer in crawl.answers
        if answer.status >= 500
        and not (answer.url_name == "healthz" and answer.status == 503)
    ]
    assert not errors, "\n".join(errors)


def test_no_response_lets_the_browser_sniff_its_type(crawl):
    problems = [
        str(answer)
        for answer in crawl.answers
        if answer.headers.get("X-Content-Type-Options") != "nosniff"
    ]
    assert not problems, "\n".join(problems)


def test_signed_in_pages_are_never_stored(crawl):
    problems = [
        f"{answer}: Cache-Control {answer.headers.get('Cache-Control')!r}"
        for answer in crawl.answers
        if answer.actor != "anonymous"
        and "no-store" not in answer.headers.get("Cache-Control", "")
    ]
    assert not problems, "\n".join(problems)


# --- production settings over TLS --------------------------------------------------------

TRANSPORT_SETTINGS = (
    "SECURE_",
    "SESSION_COOKIE_",
    "CSRF_COOKIE_",
    "X_FRAME_OPTIONS",
)


@pytest.fixture
def production_transport(monkeypatch):
    """The TLS, HSTS and cookie settings of crm/settings/prod.py, applied to this test."""
    monkeypatch.setenv("SECRET_KEY", "prod-like-secret-key-for-the-header-sweep-0123")
    monkeypatch.setenv("ALLOWED_HOSTS", "testserver")
    monkeypatch.setenv("KEHU_FIELD_KEY", settings.KEHU_FIELD_KEY)
    sys.modules.pop("crm.settings.prod", None)
    try:
        prod = importlib.import_module("crm.settings.prod")
    finally:
        sys.modules.pop("crm.settings.prod", None)
    values = {
        name: getattr(prod, name)
        for name in dir(prod)
        if name.startswith(TRANSPORT_SETTINGS)
    }
    assert values["SESSION_COOKIE_SECURE"] is True
    with override_settings(**values):
        yield values


TLS_SAMPLE = {
    "home",
    "login",
    "customers:customer_list",
    "customers:customer_detail",
    "customers:export_download",
    "service:ticket_queue",
    "service:ticket_detail",
    "service:attachment_download",
    "notifications:notification_list",
    "handover:event_list",
    "audit_log",
}


def _secure_client(user) -> Client:  # noqa: ANN001
    client = Client(raise_request_exception=False)
    client.force_login(user)
    return client


def test_production_pages_over_tls_send_hsts_and_secure_cookies(
    world,  # noqa: F811
    production_transport,
):
    warm(world)
    admin = world.actors["admin_user"]
    client = _secure_client(admin)
    checked = 0
    problems = []
    for url_name, target, expected in get_rows():
        # HSTS and cookies come from middleware, the same on every page: one page
        # of each app stands for the rest (the crawl checks the other headers on all).
        if expected["admin_user"] == PROBE or url_name not in TLS_SAMPLE:
            continue
        with rolled_back(world):
            url = world.url(url_name, target)
            response = client.get(
                url, secure=True, headers={"X-Forwarded-Proto": "https"}
            )
            checked += 1
            hsts = dict(
                (part.strip().split("=", 1) + [""])[:2]
                for part in response.get("Strict-Transport-Security", "").split(";")
            )
            if int(hsts.get("max-age") or 0) < HSTS_MIN_SECONDS:
                problems.append(f"{url}: HSTS max-age {hsts.get('max-age')}")
            if "includeSubDomains" not in hsts:
                problems.append(f"{url}: HSTS without includeSubDomains")
            session = response.cookies.get(settings.SESSION_COOKIE_NAME)
            if session is None:
                problems.append(f"{url}: session cookie not renewed")
                continue
            if not (session["secure"] and session["httponly"]):
                problems.append(f"{url}: session cookie not Secure+HttpOnly")
            if session["samesite"] != "Lax":
                problems.append(f"{url}: session cookie SameSite={session['samesite']}")
    assert not problems, "\n".join(problems)
    assert checked >= len(TLS_SAMPLE) - 2


def test_production_redirects_plain_http_to_https(world, production_transport):  # noqa: F811
    client = _secure_client(world.actors["admin_user"])
    response = client.get("/customers/", headers={"X-Forwarded-Proto": "http"})
    assert response.status_code == 301
    assert response["Location"].startswith("https://")


def test_production_csrf_cookie_is_secure(db, production_transport):
    client = Client()
    response = client.get("/accounts/login/", secure=True)
    cookie = response.cookies[settings.CSRF_COOKIE_NAME]
    assert cookie["secure"]
    assert cookie["samesite"] == "Lax"
