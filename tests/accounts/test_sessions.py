"""Sessions (S13): a new key at login, logout and deactivation end a session on the
server, a password change ends the user's other sessions, and an administrator can end
every session of a user. The idle and absolute timeouts are tested in
tests/core/test_security_headers.py."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import reverse
from pytest_django.asserts import assertContains, assertRedirects

from crm.accounts.models import User, UserSession
from crm.core.models import AccessLog
from tests.conftest import PASSWORD
from tests.factories import UserFactory

LOGIN_URL = reverse("login")
HOME_URL = reverse("home")
SENT_TO_LOGIN = f"{LOGIN_URL}?next={HOME_URL}"


def password_login(user, password: str = PASSWORD) -> Client:
    client = Client()
    response = client.post(LOGIN_URL, {"username": user.username, "password": password})
    assert response.status_code == 302, "password login failed"
    return client


def session_key(client: Client) -> str:
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def assert_signed_out(client: Client) -> None:
    assertRedirects(client.get(HOME_URL), SENT_TO_LOGIN)


def test_login_gives_a_new_session_key(sales_rep):
    client = Client()
    before = SessionStore()
    before["visited"] = True
    before.create()
    client.cookies[settings.SESSION_COOKIE_NAME] = before.session_key

    client.post(LOGIN_URL, {"username": sales_rep.username, "password": PASSWORD})

    assert session_key(client) != before.session_key
    assert not Session.objects.filter(session_key=before.session_key).exists()
    assert client.get(HOME_URL).status_code == 200


def test_logout_ends_the_session_on_the_server(sales_rep):
    client = password_login(sales_rep)
    old_cookie = session_key(client)
    client.post(reverse("logout"))
    assert not Session.objects.filter(session_key=old_cookie).exists()
    assert not UserSession.objects.filter(user=sales_rep).exists()

    replay = Client()
    replay.cookies[settings.SESSION_COOKIE_NAME] = old_cookie
    assert_signed_out(replay)


def test_password_change_ends_the_other_sessions_and_keeps_this_one(sales_rep):
    here, elsewhere = password_login(sales_rep), password_login(sales_rep)
    response = here.post(
        reverse("password_change"),
        {
            "old_password": PASSWORD,
            "new_password1": "a-much-better-pw-2026",
            "new_password2": "a-much-better-pw-2026",
        },
    )
    assertRedirects(response, reverse("password_change_done"))
    assert here.get(HOME_URL).status_code == 200
    assert_signed_out(elsewhere)


def test_the_session_after_a_password_change_can_still_be_ended(
    sales_rep, admin_superuser_client
):
    """The password change gives the session a new key; the new key is mapped too."""
    client = password_login(sales_rep)
    client.post(
        reverse("password_change"),
        {
            "old_password": PASSWORD,
            "new_password1": "a-much-better-pw-2026",
            "new_password2": "a-much-better-pw-2026",
        },
    )
    assert client.get(HOME_URL).status_code == 200
    assert UserSession.objects.filter(
        user=sales_rep, session_id=session_key(client)
    ).exists()
    _end_sessions_in_admin(admin_superuser_client, sales_rep)
    assert_signed_out(client)


def test_a_deactivated_user_is_anonymous_at_the_next_request(sales_rep):
    client = password_login(sales_rep)
    assert client.get(HOME_URL).status_code == 200
    sales_rep.is_active = False
    sales_rep.save()
    assert not UserSession.objects.filter(user=sales_rep).exists()
    assert_signed_out(client)


def test_an_inactive_user_with_a_surviving_session_is_still_anonymous(sales_rep):
    """Even if a session row survived (written by hand), Django's backend refuses it."""
    client = password_login(sales_rep)
    type(sales_rep).objects.filter(pk=sales_rep.pk).update(is_active=False)
    assert Session.objects.filter(session_key=session_key(client)).exists()
    assert_signed_out(client)


# --- an administrator ends all sessions of a user ---------------------------------------


def _end_sessions_in_admin(admin_client: Client, *users) -> object:
    return admin_client.post(
        reverse("admin:accounts_user_changelist"),
        {
            "action": "end_all_sessions",
            "_selected_action": [user.pk for user in users],
        },
        follow=True,
    )


@pytest.fixture
def admin_superuser_client(db):
    boss = UserFactory(username="root", team=None, is_staff=True, is_superuser=True)
    return password_login(boss)


def test_admin_action_ends_every_session_of_the_user(
    sales_rep, teammate, admin_superuser_client
):
    office, phone = password_login(sales_rep), password_login(sales_rep)
    bystander = password_login(teammate)
    assert UserSession.objects.filter(user=sales_rep).count() == 2

    response = _end_sessions_in_admin(admin_superuser_client, sales_rep)
    assertContains(response, "已结束 2 个登录会话")

    assert_signed_out(office)
    assert_signed_out(phone)
    assert bystander.get(HOME_URL).status_code == 200
    assert admin_superuser_client.get(HOME_URL).status_code == 200
    row = AccessLog.objects.get(action="sessions_ended")
    assert (row.object_id, row.row_count, row.username) == (sales_rep.pk, 2, "root")


def test_admin_ending_their_own_sessions_keeps_the_one_in_use(admin_superuser_client):
    root = User.objects.get(username="root")
    other_browser = password_login(root)
    _end_sessions_in_admin(admin_superuser_client, root)
    assert_signed_out(other_browser)
    assert admin_superuser_client.get(HOME_URL).status_code == 200


def test_ending_sessions_needs_permission_to_change_users(sales_rep, admin_user):
    """The admin role may look at users in the admin but not end their sessions."""
    victim = password_login(sales_rep)
    staff = Client()
    staff.force_login(admin_user)
    _end_sessions_in_admin(staff, sales_rep)
    assert victim.get(HOME_URL).status_code == 200


def test_a_user_can_end_their_own_other_sessions(sales_rep):
    here, elsewhere = password_login(sales_rep), password_login(sales_rep)
    response = here.post(reverse("accounts:sessions_end_others"), follow=True)
    assertContains(response, "已结束其他 1 个登录会话")
    assert here.get(HOME_URL).status_code == 200
    assert_signed_out(elsewhere)
