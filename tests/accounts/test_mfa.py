"""Two-step verification (S12): the code page after the password, enrolment, backup
codes, throttling, and enforcement by role over every page of the site."""

from __future__ import annotations

import datetime as dt
import runpy
from base64 import b32encode

import pytest
import time_machine
from django.db import transaction
from django.test import Client
from django.urls import reverse
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice
from pytest_django.asserts import assertContains, assertNotContains, assertRedirects

from crm.core.models import AccessLog
from customers.models import Customer
from tests.accounts.test_access_matrix import LOGIN, MATRIX
from tests.accounts.worlds import world  # noqa: F401 - a fixture
from tests.conftest import PASSWORD
from tests.factories import UserFactory

LOGIN_URL = reverse("login")
HOME_URL = reverse("home")
VERIFY_URL = reverse("accounts:two_step_verify")
ENROL_URL = reverse("accounts:two_step_enrol")
SETTINGS_URL = reverse("accounts:two_step")
# 5 seconds into a 30-second TOTP step, so that a few seconds of travel stay in it.
START = dt.datetime(2026, 11, 23, 2, 0, 5, tzinfo=dt.UTC)
BACKUP_CODES = [f"bk{n:02d}code" for n in range(10)]


@pytest.fixture(autouse=True)
def clock():
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


@pytest.fixture
def mfa_on(settings):
    settings.KEHU_MFA_REQUIRED_ROLES = ["manager", "admin"]
    return settings


def enrol(user) -> TOTPDevice:
    device = TOTPDevice.objects.create(user=user, name="totp", confirmed=True)
    backup = StaticDevice.objects.create(user=user, name="backup", confirmed=True)
    StaticToken.objects.bulk_create(
        StaticToken(device=backup, token=code) for code in BACKUP_CODES
    )
    return device


def code_for(device: TOTPDevice, steps: int = 0) -> str:
    """The code the user's app shows now, or `steps` time steps away."""
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits)
    totp.time = dt.datetime.now(dt.UTC).timestamp() + steps * device.step
    return f"{totp.token():06d}"


def secret_b32(device: TOTPDevice) -> str:
    return b32encode(device.bin_key).decode()


def wrong_code(device: TOTPDevice) -> str:
    return f"{(int(code_for(device)) + 1) % 1_000_000:06d}"


def password_login(user, next_url: str = "") -> Client:
    client = Client()
    data = {"username": user.username, "password": PASSWORD}
    if next_url:
        data["next"] = next_url
    response = client.post(LOGIN_URL, data)
    assert response.status_code == 302, "password login failed"
    return client


def verify(client: Client, code: str, next_url: str = ""):
    return client.post(VERIFY_URL, {"code": code, "next": next_url})


def is_verified(client: Client) -> bool:
    return client.get(HOME_URL).status_code == 200


# --- the code page after the password -------------------------------------------------


def test_after_the_password_the_code_page_comes_before_the_page_asked_for(sales_rep):
    device = enrol(sales_rep)
    wanted = reverse("customers:customer_list")
    client = password_login(sales_rep, next_url=wanted)

    response = client.get(wanted)
    assertRedirects(response, f"{VERIFY_URL}?next={wanted}")
    page = client.get(response["Location"])
    assertContains(page, "输入 6 位验证码")
    assertNotContains(page, f'href="{wanted}"')  # no navigation before the code

    response = verify(client, code_for(device), wanted)
    assertRedirects(response, wanted)
    assert client.get(wanted).status_code == 200


def test_the_same_code_twice_is_refused(sales_rep):
    device = enrol(sales_rep)
    code = code_for(device)
    first, second = password_login(sales_rep), password_login(sales_rep)
    assert verify(first, code).status_code == 302
    response = verify(second, code)
    assertContains(response, "验证码不正确或已经用过")
    assert not is_verified(second)
    assert is_verified(first)


def test_codes_two_steps_away_fail_and_one_step_away_passes(sales_rep, clock):
    device = enrol(sales_rep)
    client = password_login(sales_rep)
    assertContains(verify(client, code_for(device, +2)), "验证码不正确")
    clock.shift(2)  # past the 1-second wait after one wrong code
    assertContains(verify(client, code_for(device, -2)), "验证码不正确")
    clock.shift(3)  # past the 2-second wait after two
    assert not is_verified(client)
    assertRedirects(verify(client, code_for(device, -1)), HOME_URL)
    assert is_verified(client)


def test_a_backup_code_signs_in_once(sales_rep):
    enrol(sales_rep)
    first = password_login(sales_rep)
    assertRedirects(verify(first, "BK03 CODE"), HOME_URL)  # spaces and case forgiven
    assert is_verified(first)

    second = password_login(sales_rep)
    assertContains(verify(second, "bk03code"), "验证码不正确或已经用过")
    assert not is_verified(second)
    assert StaticToken.objects.filter(device__user=sales_rep).count() == 9


def test_five_wrong_codes_throttle_even_the_right_one(sales_rep, clock):
    device = enrol(sales_rep)
    client = password_login(sales_rep)
    for wait in (1, 2, 4, 8, 0):  # django-otp's waits after 1, 2, 3, 4 wrong codes
        assertContains(verify(client, wrong_code(device)), "验证码不正确")
        clock.shift(wait + 0.5)

    response = verify(client, code_for(device))
    assert response.status_code == 429
    assertContains(response, "验证码错误次数过多，请 16 秒后再试", status_code=429)
    assert not is_verified(client)
    # A backup code is refused too: the wait is the user's, not one device's.
    assert verify(client, BACKUP_CODES[0]).status_code == 429

    clock.shift(16)
    assertRedirects(verify(client, code_for(device)), HOME_URL)


def test_rapid_guesses_are_not_even_checked(sales_rep):
    device = enrol(sales_rep)
    client = password_login(sales_rep)
    verify(client, wrong_code(device))
    for _ in range(5):
        assert verify(client, wrong_code(device)).status_code == 429
    device.refresh_from_db()
    assert device.throttling_failure_count == 1


def test_verification_is_audited(sales_rep, clock):
    device = enrol(sales_rep)
    client = password_login(sales_rep)
    verify(client, wrong_code(device))
    clock.shift(2)
    verify(client, code_for(device))
    rows = AccessLog.objects.filter(user=sales_rep, action__startswith="otp_")
    assert list(rows.order_by("id").values_list("action", "outcome")) == [
        ("otp_failed", "failed"),
        ("otp_ok", "ok"),
    ]


def test_a_new_password_login_needs_a_new_code(sales_rep):
    """Logging in again in a verified session does not keep the old verification."""
    device = enrol(sales_rep)
    client = password_login(sales_rep)
    verify(client, code_for(device))
    client.post(LOGIN_URL, {"username": sales_rep.username, "password": PASSWORD})
    assert not is_verified(client)


# --- enforcement ------------------------------------------------------------------------

# Every page that needs a login (the anonymous column of the access matrix says "login").
# Signing out and the two-step pages themselves stay open (see the tests below).
OPEN_PAGES = {
    "logout",
    "accounts:two_step",
    "accounts:two_step_enrol",
    "accounts:two_step_verify",
}
SIGNED_IN_ROWS = [row for row in MATRIX if row[3] == LOGIN and row[0] not in OPEN_PAGES]
ADMIN_PAGES = ["/admin/", "/admin/accounts/user/", "/admin/otp_totp/totpdevice/"]


def _sent_on(response) -> bool:
    return response.status_code == 302 and response["Location"].startswith(
        (VERIFY_URL, ENROL_URL)
    )


def _walk(world, client):  # noqa: F811 - the access matrix's world fixture
    """(method, url, status) of every signed-in page that does not send `client` on."""
    wrong = []
    for url_name, method, target, *_ in SIGNED_IN_ROWS:
        # Each row's records are made afresh and rolled back, as in the access matrix.
        savepoint = transaction.savepoint()
        try:
            url = world.url(url_name, target)
            response = client.post(url) if method == "POST" else client.get(url)
        finally:
            transaction.savepoint_rollback(savepoint)
            for name, cached in vars(world).items():
                if name.startswith("_") and isinstance(cached, dict):
                    cached.clear()
        if not _sent_on(response):
            wrong.append((method, url, response.status_code))
    for url in ADMIN_PAGES:
        response = client.get(url)
        if not _sent_on(response):
            wrong.append(("GET", url, response.status_code))
    return wrong


def test_a_password_only_manager_is_sent_to_enrolment_from_every_page(
    mfa_on,
    world,  # noqa: F811
):
    assert len(SIGNED_IN_ROWS) > 60
    client = Client()
    client.force_login(world.actors["manager"])
    customers_before = Customer.objects.count()
    assert _walk(world, client) == []
    assert Customer.objects.count() == customers_before
    response = client.get(reverse("customers:customer_list"))
    assert response["Location"].startswith(ENROL_URL)


def test_a_password_only_session_of_an_enrolled_user_gets_the_code_page_everywhere(
    world,  # noqa: F811
):
    """With nothing enforced, any user who set up an app must still give its code."""
    enrol(world.actors["sales_rep"])
    client = Client()
    client.force_login(world.actors["sales_rep"])
    assert _walk(world, client) == []
    assertRedirects(
        client.get(reverse("customers:customer_list")),
        f"{VERIFY_URL}?next={reverse('customers:customer_list')}",
    )


def test_public_pages_stay_open_before_the_second_step(sales_rep, client):
    enrol(sales_rep)
    client.force_login(sales_rep)
    assert client.get(reverse("healthz")).status_code in (200, 503)
    assert client.get(reverse("intake")).status_code == 200
    assert client.get(LOGIN_URL).status_code == 200
    assert client.get(VERIFY_URL).status_code == 200
    response = client.post(reverse("set_language"), {"language": "en", "next": "/"})
    assert response.status_code == 302
    assertRedirects(client.post(reverse("logout")), LOGIN_URL)


def test_htmx_requests_get_403_with_a_redirect_to_the_code_page(sales_rep, client):
    enrol(sales_rep)
    client.force_login(sales_rep)
    response = client.get(
        reverse("notifications:notification_bell"),
        headers={"HX-Request": "true", "HX-Current-URL": "http://testserver/"},
    )
    assert response.status_code == 403
    assert response["HX-Redirect"] == VERIFY_URL
    # Polled from the code page itself: refused without reloading it again and again.
    response = client.get(
        reverse("notifications:notification_bell"),
        headers={
            "HX-Request": "true",
            "HX-Current-URL": f"http://testserver{VERIFY_URL}",
        },
    )
    assert response.status_code == 403
    assert "HX-Redirect" not in response


def test_sales_are_not_required_unless_everyone_is(mfa_on, sales_rep, manager):
    sales = password_login(sales_rep)
    assert sales.get(HOME_URL).status_code == 200
    boss = password_login(manager)
    assertRedirects(boss.get(HOME_URL), f"{ENROL_URL}?next={HOME_URL}")

    mfa_on.KEHU_MFA_REQUIRED_FOR_ALL = True
    assertRedirects(sales.get(HOME_URL), f"{ENROL_URL}?next={HOME_URL}")


def test_a_required_user_with_an_app_works_after_the_code(mfa_on, admin_user):
    device = enrol(admin_user)
    client = password_login(admin_user)
    assertRedirects(client.get("/admin/"), f"{VERIFY_URL}?next=/admin/")
    verify(client, code_for(device))
    assert client.get("/admin/").status_code == 200
    assert client.get(HOME_URL).status_code == 200


def test_production_requires_managers_and_admins_and_development_nobody(monkeypatch):
    from crm.settings import base, dev

    assert base.KEHU_MFA_REQUIRED_ROLES == [] and not base.KEHU_MFA_REQUIRED_FOR_ALL
    assert dev.KEHU_MFA_REQUIRED_ROLES == []
    for name in ("SECRET_KEY", "KEHU_FIELD_KEY", "ALLOWED_HOSTS"):
        monkeypatch.setenv(name, "production-value-for-this-test")
    monkeypatch.delenv("KEHU_MFA_REQUIRED_ROLES", raising=False)
    prod = runpy.run_module("crm.settings.prod")
    assert prod["KEHU_MFA_REQUIRED_ROLES"] == ["manager", "admin"]


# --- enrolment, backup codes, removal ---------------------------------------------------


def test_enrolment_shows_a_qr_code_and_the_secret_and_needs_password_and_code(
    mfa_on, manager
):
    client = password_login(manager)
    page = client.get(ENROL_URL)
    assertContains(page, "<svg")
    assertContains(page, 'data-testid="totp-secret"')
    key = client.session["kehu_two_step_pending_key"]
    pending = TOTPDevice(user=manager, key=key)
    assert "issuer=Kehu%20CRM" in pending.config_url
    secret = page.content.decode().split('data-testid="totp-secret">')[1]
    assert secret.split("<")[0].replace(" ", "") in pending.config_url

    response = client.post(ENROL_URL, {"password": "wrong", "code": code_for(pending)})
    assertContains(response, "密码不正确")
    response = client.post(ENROL_URL, {"password": PASSWORD, "code": "12345"})
    assertContains(response, "请输入 6 位数字")
    response = client.post(
        ENROL_URL, {"password": PASSWORD, "code": wrong_code(pending)}
    )
    assertContains(response, "验证码不正确")
    assert not TOTPDevice.objects.filter(user=manager).exists()

    response = client.post(ENROL_URL, {"password": PASSWORD, "code": code_for(pending)})
    assertContains(response, "两步验证已开启")
    codes = StaticToken.objects.filter(device__user=manager)
    assert codes.count() == 10
    for token in codes.values_list("token", flat=True):
        assertContains(response, f"{token[:4]} {token[4:]}")
    assert TOTPDevice.objects.get(user=manager).confirmed
    assert is_verified(client)
    assert AccessLog.objects.filter(user=manager, action="otp_device_added").exists()
    # The code that confirmed the app cannot sign in elsewhere.
    other = password_login(manager)
    assertContains(verify(other, code_for(pending)), "验证码不正确或已经用过")


def test_enrolling_ends_the_users_other_sessions(sales_rep):
    elsewhere = password_login(sales_rep)
    client = password_login(sales_rep)
    client.get(ENROL_URL)
    pending = TOTPDevice(key=client.session["kehu_two_step_pending_key"])
    client.post(ENROL_URL, {"password": PASSWORD, "code": code_for(pending)})
    assert is_verified(client)
    assertRedirects(elsewhere.get(HOME_URL), f"{LOGIN_URL}?next={HOME_URL}")


def test_regenerating_backup_codes_needs_the_password_and_voids_the_old(sales_rep):
    device = enrol(sales_rep)
    client = password_login(sales_rep)
    verify(client, code_for(device))
    url = reverse("accounts:backup_codes_regenerate")

    response = client.post(url, {"password": "wrong"})
    assertContains(response, "密码不正确")
    assert StaticToken.objects.filter(token=BACKUP_CODES[0]).exists()

    response = client.post(url, {"password": PASSWORD})
    assertContains(response, "只显示这一次")
    assert not StaticToken.objects.filter(token__in=BACKUP_CODES).exists()
    assert StaticToken.objects.filter(device__user=sales_rep).count() == 10


def test_removing_the_app_needs_the_password(mfa_on, manager):
    device = enrol(manager)
    client = password_login(manager)
    verify(client, code_for(device))
    url = reverse("accounts:two_step_remove")

    assertContains(client.post(url, {"password": "wrong"}), "密码不正确")
    assert TOTPDevice.objects.filter(user=manager).exists()

    assertRedirects(
        client.post(url, {"password": PASSWORD}),
        SETTINGS_URL,
        fetch_redirect_response=False,
    )
    assert not TOTPDevice.objects.filter(user=manager).exists()
    assert not StaticDevice.objects.filter(user=manager).exists()
    assert AccessLog.objects.filter(user=manager, action="otp_device_removed").exists()
    # A manager must use two-step verification: straight back to enrolment.
    assertRedirects(client.get(HOME_URL), f"{ENROL_URL}?next={HOME_URL}")


def test_a_password_only_session_cannot_remove_the_app(sales_rep):
    enrol(sales_rep)
    client = password_login(sales_rep)
    response = client.post(reverse("accounts:two_step_remove"), {"password": PASSWORD})
    assert response["Location"].startswith(VERIFY_URL)
    assert client.get(SETTINGS_URL)["Location"].startswith(VERIFY_URL)
    assert TOTPDevice.objects.filter(user=sales_rep).exists()


def test_settings_page_shows_the_status(sales_rep, client):
    client.force_login(sales_rep)
    assertContains(client.get(SETTINGS_URL), "未开启")
    device = enrol(sales_rep)
    verify(client, code_for(device))
    page = client.get(SETTINGS_URL)
    assertContains(page, "已开启")
    assertContains(page, "剩余 10 个备用码")


def test_the_admin_never_shows_a_users_secret(sales_rep):
    device = enrol(sales_rep)
    boss = UserFactory(username="root", team=None, is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(boss)
    page = client.get(reverse("admin:otp_totp_totpdevice_change", args=[device.pk]))
    assert page.status_code == 200
    assertNotContains(page, device.key)
    assertNotContains(page, secret_b32(device))
    page = client.get(
        reverse(
            "admin:otp_static_staticdevice_change",
            args=[StaticDevice.objects.get(user=sales_rep).pk],
        )
    )
    assert page.status_code == 200
    assertNotContains(page, BACKUP_CODES[0])
