"""Brute force: django-axes locks a username on one IP after five failures."""

from __future__ import annotations

from django.test import Client, override_settings
from django.urls import reverse

from tests.conftest import PASSWORD

WITH_AXES = override_settings(
    AUTHENTICATION_BACKENDS=[
        "axes.backends.AxesStandaloneBackend",
        "django.contrib.auth.backends.ModelBackend",
    ]
)


def _login(client: Client, username: str, password: str, ip: str = "10.9.8.7"):
    return client.post(
        reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=ip
    )


@WITH_AXES
def test_five_failures_lock_the_account_even_for_the_right_password(client, sales_rep):
    for _ in range(4):
        response = _login(client, sales_rep.username, "wrong-password-1")
        assert response.status_code == 200  # the form again, with its error
    assert _login(client, sales_rep.username, "wrong-password-1").status_code == 429
    locked = _login(client, sales_rep.username, PASSWORD)
    assert locked.status_code == 429
    assert "暂时锁定" in locked.content.decode()
    assert "_auth_user_id" not in client.session


@WITH_AXES
def test_the_lock_is_per_username_so_colleagues_on_the_same_pc_still_log_in(
    client, sales_rep, teammate
):
    for _ in range(5):
        _login(client, sales_rep.username, "wrong-password-1")
    response = _login(client, teammate.username, PASSWORD)
    assert response.status_code == 302


@WITH_AXES
def test_a_success_before_the_limit_resets_the_count(client, sales_rep):
    for _ in range(4):
        _login(client, sales_rep.username, "wrong-password-1")
    assert _login(client, sales_rep.username, PASSWORD).status_code == 302
    client.post(reverse("logout"))
    for _ in range(4):
        _login(client, sales_rep.username, "wrong-password-1")
    assert _login(client, sales_rep.username, PASSWORD).status_code == 302


@WITH_AXES
def test_unknown_and_known_usernames_fail_alike(client, sales_rep):
    known = _login(client, sales_rep.username, "wrong-password-1")
    unknown = _login(client, "nobody-here", "wrong-password-1")
    assert known.status_code == unknown.status_code == 200
    assert (
        known.context["form"].non_field_errors()
        == unknown.context["form"].non_field_errors()
    )
    assert known.context["form"].non_field_errors()


@WITH_AXES
@override_settings(KEHU_PROXY_COUNT=1)
def test_behind_our_proxy_the_lock_follows_the_client_not_a_forged_header(
    client, sales_rep
):
    """The proxy appends the address it saw; what the client wrote before it is noise."""
    proxy = "10.0.0.2"

    def attempt(password: str, forged: str, real: str):
        return client.post(
            reverse("login"),
            {"username": sales_rep.username, "password": password},
            REMOTE_ADDR=proxy,
            HTTP_X_FORWARDED_FOR=f"{forged}, {real}",
        )

    for n in range(5):
        attempt("wrong-password-1", forged=f"203.0.113.{n}", real="198.51.100.7")
    # A new forged address each time did not reset the count for the real client ...
    assert (
        attempt(PASSWORD, forged="203.0.113.99", real="198.51.100.7").status_code == 429
    )
    # ... and another client behind the same proxy is not locked out.
    assert attempt(PASSWORD, forged="", real="198.51.100.8").status_code == 302


@WITH_AXES
def test_without_a_proxy_a_forwarded_for_header_is_ignored(client, sales_rep):
    for n in range(5):
        client.post(
            reverse("login"),
            {"username": sales_rep.username, "password": "wrong-password-1"},
            REMOTE_ADDR="10.9.8.7",
            HTTP_X_FORWARDED_FOR=f"198.51.100.{n}",
        )
    locked = client.post(
        reverse("login"),
        {"username": sales_rep.username, "password": PASSWORD},
        REMOTE_ADDR="10.9.8.7",
        HTTP_X_FORWARDED_FOR="198.51.100.200",
    )
    assert locked.status_code == 429


def test_one_address_trying_many_usernames_is_refused_but_other_addresses_are_not(
    client, settings, sales_rep
):
    """Credential stuffing: one failure for each of many usernames never trips the
    per-username lock, so the address itself has a ceiling (counted in the audit log)."""
    settings.KEHU_LOGIN_FAILURES_PER_IP = 30
    for n in range(30):
        assert _login(client, f"guess{n:02}", "wrong-password-1").status_code == 200
    refused = _login(client, sales_rep.username, PASSWORD)
    assert refused.status_code == 429
    assert "这个网络地址的登录失败次数过多" in refused.content.decode()
    assert "_auth_user_id" not in client.session
    # A colleague elsewhere signs in as usual.
    assert (
        _login(Client(), sales_rep.username, PASSWORD, ip="10.9.8.8").status_code == 302
    )


@WITH_AXES
def test_posts_whose_password_is_never_checked_do_not_count_towards_a_lock(
    client, sales_rep
):
    """A username with a NUL byte or longer than the column, or an empty password, is a
    form error before any password check: refused with the form, never a 500, and the
    limits reserved for it are given back (crm.core.limits)."""
    for username, password in [
        (sales_rep.username + "\x00", "wrong-password-1"),
        ("x" * 10_000, "wrong-password-1"),
        (sales_rep.username, ""),
    ] * 3:
        assert _login(client, username, password).status_code == 200
    for _ in range(4):
        assert _login(client, sales_rep.username, "wrong-password-1").status_code == 200
    assert _login(client, sales_rep.username, PASSWORD).status_code == 302


@WITH_AXES
def test_the_admin_sign_in_page_still_works_and_shares_the_lock(
    client, admin_user, sales_rep
):
    page = client.get("/admin/login/?next=/admin/")
    assert page.status_code == 200
    assert "admin/login.html" in [t.name for t in page.templates]
    # Staff only, as Django's admin says.
    refused = client.post(
        "/admin/login/",
        {"username": sales_rep.username, "password": PASSWORD, "next": "/admin/"},
    )
    assert refused.status_code == 200
    assert "_auth_user_id" not in client.session
    # Wrong passwords on the admin page lock the username on the sign-in page too.
    for _ in range(5):
        client.post(
            "/admin/login/",
            {"username": admin_user.username, "password": "wrong-password-1"},
            REMOTE_ADDR="10.9.8.7",
        )
    assert _login(client, admin_user.username, PASSWORD).status_code == 429
    signed_in = Client().post(
        "/admin/login/",
        {"username": admin_user.username, "password": PASSWORD, "next": "/admin/"},
        REMOTE_ADDR="10.9.8.8",
    )
    assert signed_in.status_code == 302
    assert signed_in["Location"] == "/admin/"
