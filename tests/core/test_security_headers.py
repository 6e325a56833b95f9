"""Headers every page carries: a CSP without inline script, no caching of customer data,
no framing; and the session limits."""

from __future__ import annotations

import time

from django.test import override_settings
from django.urls import reverse

from tests.factories import CustomerFactory


def test_pages_send_a_strict_content_security_policy(login, sales_rep):
    response = login(sales_rep).get(reverse("customers:customer_list"))
    policy = response["Content-Security-Policy"]
    directives = dict(
        (part.strip().split(" ", 1) + [""])[:2]
        for part in policy.split(";")
        if part.strip()
    )
    assert directives["script-src"] == "'self'"
    assert "unsafe-inline" not in directives["script-src"]
    assert directives["frame-ancestors"] == "'none'"
    assert directives["object-src"] == "'none'"
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"


def test_no_page_has_an_inline_script(login, sales_rep):
    customer = CustomerFactory(owner=sales_rep)
    client = login(sales_rep)
    for url in (
        reverse("home"),
        reverse("customers:customer_list"),
        customer.get_absolute_url(),
    ):
        html = client.get(url).content.decode()
        for tag in html.split("<script")[1:]:
            assert " src=" in tag.split(">", 1)[0], f"inline script on {url}"


def test_customer_pages_are_not_cached(login, sales_rep):
    customer = CustomerFactory(owner=sales_rep)
    response = login(sales_rep).get(customer.get_absolute_url())
    assert response["Cache-Control"] == "no-store"


def test_a_session_older_than_the_absolute_limit_is_ended(login, sales_rep):
    client = login(sales_rep)
    assert client.get(reverse("home")).status_code == 200
    session = client.session
    session["kehu_login_at"] = int(time.time()) - 11 * 3600
    session.save()
    with override_settings(KEHU_SESSION_ABSOLUTE_SECONDS=10 * 3600):
        response = client.get(reverse("home"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    assert client.get(reverse("home")).status_code == 302


def test_short_and_guessable_passwords_are_refused(login, sales_rep):
    client = login(sales_rep)
    for weak in ("short-pw", "kehu-2026-strong!"):
        response = client.post(
            reverse("password_change"),
            {
                "old_password": "pw-for-tests-123",
                "new_password1": weak,
                "new_password2": weak,
            },
        )
        assert response.status_code == 200, weak
    sales_rep.refresh_from_db()
    assert sales_rep.check_password("pw-for-tests-123")


def test_a_session_idle_for_longer_than_the_timeout_is_ended(login, sales_rep):
    import time_machine

    with time_machine.travel("2026-11-23 10:00 +0800", tick=False) as clock:
        with override_settings(SESSION_COOKIE_AGE=30 * 60):
            client = login(sales_rep)
            assert client.get(reverse("home")).status_code == 200
            clock.shift(20 * 60)  # each request renews the idle timeout
            assert client.get(reverse("home")).status_code == 200
            clock.shift(31 * 60)
            response = client.get(reverse("home"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
