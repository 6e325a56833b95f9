"""S20: error pages tell the user something went wrong and nothing about the system."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.db import ProgrammingError
from django.test import Client
from django.urls import reverse

from customers import selectors as customer_selectors

MARKER = "kehu-internal-marker-7f3a"
LEAKS = ("Traceback", 'File "', MARKER, "SELECT", "customers_customer", "settings")


@pytest.fixture
def signed_in(sales_rep) -> Client:
    client = Client(raise_request_exception=False)
    client.force_login(sales_rep)
    return client


@pytest.mark.parametrize(
    "error",
    [
        RuntimeError(f"{MARKER} in settings.SECRET_KEY"),
        ProgrammingError(
            f'relation "customers_customer" does not exist\nLINE 1: SELECT "{MARKER}"'
        ),
    ],
    ids=["exception", "database-error"],
)
def test_an_unexpected_error_shows_a_plain_500_page(
    signed_in, monkeypatch, settings, error
):
    settings.DEBUG = False

    def broken(**kwargs: object) -> None:
        raise error

    monkeypatch.setattr(customer_selectors, "customer_list", broken)
    response = signed_in.get(reverse("customers:customer_list"))
    assert response.status_code == 500
    body = response.content.decode()
    assert "500" in body or "出错" in body or "错误" in body
    for leak in (*LEAKS, settings.SECRET_KEY, settings.DATABASES["default"]["NAME"]):
        assert leak not in body, leak
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "script-src 'self'" in response["Content-Security-Policy"]


def test_production_settings_do_not_debug():
    assert settings.DEBUG is False


def test_a_foreign_host_header_is_refused(db):
    client = Client(HTTP_HOST="evil.example", raise_request_exception=False)
    response = client.get(reverse("login"))
    assert response.status_code == 400
    assert "evil.example" not in response.content.decode()


@pytest.mark.parametrize(
    "path",
    [
        "/<script>x</script>",
        "/customers/<img src=x onerror=alert(1)>/",
        '/service/t/"><svg onload=alert(1)>/',
    ],
)
@pytest.mark.parametrize("signed_in_user", [False, True])
def test_the_404_page_does_not_echo_the_path(sales_rep, path, signed_in_user):
    client = Client(raise_request_exception=False)
    if signed_in_user:
        client.force_login(sales_rep)
    response = client.get(path)
    assert response.status_code in (404, 302)
    body = response.content.decode()
    for raw in ("<script>x</script>", "<img src=x", "<svg onload"):
        assert raw not in body
    if response.status_code == 302:
        # Signed out: the login redirect quotes the address.
        assert "<" not in response["Location"]
