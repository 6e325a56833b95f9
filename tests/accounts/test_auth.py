"""Logging in and out, changing one's password, and switching the language."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse
from pytest_django.asserts import assertContains, assertRedirects

from tests.conftest import PASSWORD

LOGIN_URL = reverse("login")
HOME_URL = reverse("home")


@pytest.fixture
def browser():
    """A client that, like a browser, must send the CSRF token from the page."""
    return Client(enforce_csrf_checks=True)


def _csrf_token(response) -> str:
    return re.search(
        r'name="csrfmiddlewaretoken" value="([^"]+)"', response.content.decode()
    ).group(1)


def _login_with_form(browser: Client, username: str, password: str, next_url=""):
    page = browser.get(LOGIN_URL, {"next": next_url} if next_url else {})
    assert page.status_code == 200
    data = {
        "csrfmiddlewaretoken": _csrf_token(page),
        "username": username,
        "password": password,
    }
    if next_url:
        data["next"] = next_url
    return browser.post(LOGIN_URL, data)


def test_login_with_the_form_opens_the_home_page(browser, sales_rep):
    response = _login_with_form(browser, sales_rep.username, PASSWORD)
    assertRedirects(response, HOME_URL)
    home = browser.get(HOME_URL)
    assertContains(home, "我的一天")
    assertContains(home, str(sales_rep))


def test_login_returns_to_the_page_asked_for(browser, sales_rep):
    wanted = reverse("customers:customer_list")
    assertRedirects(browser.get(wanted), f"{LOGIN_URL}?next={wanted}")
    response = _login_with_form(browser, sales_rep.username, PASSWORD, wanted)
    assertRedirects(response, wanted)


def test_login_refuses_to_redirect_to_another_site(browser, sales_rep):
    response = _login_with_form(
        browser, sales_rep.username, PASSWORD, "https://evil.example.com/"
    )
    assertRedirects(response, HOME_URL)


def test_wrong_password_shows_an_error_and_does_not_log_in(browser, sales_rep):
    response = _login_with_form(browser, sales_rep.username, "wrong-password")
    assert response.status_code == 200
    assertContains(response, "请输入一个正确的")
    assertContains(response, "alert-danger")
    assert "_auth_user_id" not in browser.session
    assertRedirects(browser.get(HOME_URL), f"{LOGIN_URL}?next={HOME_URL}")


def test_login_without_the_csrf_token_is_refused(browser, sales_rep):
    browser.get(LOGIN_URL)
    response = browser.post(
        LOGIN_URL, {"username": sales_rep.username, "password": PASSWORD}
    )
    assert response.status_code == 403
    assert "_auth_user_id" not in browser.session


def test_inactive_user_cannot_log_in(browser, sales_rep):
    sales_rep.is_active = False
    sales_rep.save()
    response = _login_with_form(browser, sales_rep.username, PASSWORD)
    assert response.status_code == 200
    assert "_auth_user_id" not in browser.session


def test_logout_by_post_ends_the_session(browser, sales_rep):
    _login_with_form(browser, sales_rep.username, PASSWORD)
    home = browser.get(HOME_URL)
    response = browser.post(
        reverse("logout"), {"csrfmiddlewaretoken": _csrf_token(home)}
    )
    assertRedirects(response, LOGIN_URL)
    assertRedirects(browser.get(HOME_URL), f"{LOGIN_URL}?next={HOME_URL}")


def test_logout_by_get_is_refused_and_keeps_the_session(client, sales_rep):
    client.force_login(sales_rep)
    assert client.get(reverse("logout")).status_code == 405
    assert client.get(HOME_URL).status_code == 200


def test_password_change_works_and_keeps_the_user_logged_in(browser, sales_rep):
    _login_with_form(browser, sales_rep.username, PASSWORD)
    page = browser.get(reverse("password_change"))
    assertContains(page, "修改密码")
    response = browser.post(
        reverse("password_change"),
        {
            "csrfmiddlewaretoken": _csrf_token(page),
            "old_password": PASSWORD,
            "new_password1": "a-much-better-pw-2026",
            "new_password2": "a-much-better-pw-2026",
        },
    )
    assertRedirects(response, reverse("password_change_done"))
    assertContains(browser.get(reverse("password_change_done")), "您的密码已修改")
    assert browser.get(HOME_URL).status_code == 200

    fresh = Client()
    assert not fresh.login(username=sales_rep.username, password=PASSWORD)
    assert fresh.login(username=sales_rep.username, password="a-much-better-pw-2026")


def test_password_change_with_wrong_old_password_changes_nothing(client, sales_rep):
    client.force_login(sales_rep)
    response = client.post(
        reverse("password_change"),
        {
            "old_password": "not-my-password",
            "new_password1": "a-much-better-pw-2026",
            "new_password2": "a-much-better-pw-2026",
        },
    )
    assert response.status_code == 200
    assert response.context["form"].errors["old_password"]
    sales_rep.refresh_from_db()
    assert sales_rep.check_password(PASSWORD)


def test_password_change_rejects_a_weak_password(client, sales_rep):
    client.force_login(sales_rep)
    response = client.post(
        reverse("password_change"),
        {
            "old_password": PASSWORD,
            "new_password1": "12345678",
            "new_password2": "12345678",
        },
    )
    assert response.status_code == 200
    assert response.context["form"].errors["new_password2"]
    sales_rep.refresh_from_db()
    assert sales_rep.check_password(PASSWORD)


def test_pages_are_chinese_by_default(client, sales_rep):
    client.force_login(sales_rep)
    assertContains(client.get(HOME_URL), '<html lang="zh-hans">')


def test_language_switch_to_english_sets_html_lang(client, sales_rep):
    client.force_login(sales_rep)
    response = client.post(
        reverse("set_language"), {"language": "en", "next": HOME_URL}
    )
    assertRedirects(response, HOME_URL, fetch_redirect_response=False)
    assertContains(client.get(HOME_URL), '<html lang="en">')
    # And back.
    client.post(reverse("set_language"), {"language": "zh-hans", "next": HOME_URL})
    assertContains(client.get(HOME_URL), '<html lang="zh-hans">')


def test_language_switch_works_on_the_login_page(client, db):
    client.post(reverse("set_language"), {"language": "en", "next": LOGIN_URL})
    assertContains(client.get(LOGIN_URL), '<html lang="en">')


def test_language_switch_with_the_navbar_form(browser, sales_rep):
    """The navbar's own form (its CSRF token and hidden `next`) switches language."""
    _login_with_form(browser, sales_rep.username, PASSWORD)
    page = browser.get(reverse("customers:customer_list"))
    html = page.content.decode()
    switch = re.search(
        r'<form[^>]*data-testid="language-switch".*?</form>', html, re.S
    ).group(0)
    next_url = re.search(r'name="next" value="([^"]*)"', switch).group(1)
    response = browser.post(
        reverse("set_language"),
        {"csrfmiddlewaretoken": _csrf_token(page), "next": next_url, "language": "en"},
    )
    assertRedirects(response, next_url, fetch_redirect_response=False)
    assertContains(browser.get(next_url), '<html lang="en">')


def test_an_english_browser_still_gets_chinese_until_the_user_switches(client, db):
    response = client.get(LOGIN_URL, HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9")
    assertContains(response, '<html lang="zh-hans">')
    assertContains(response, "登录")
