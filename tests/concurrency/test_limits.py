"""Limits are atomic (issue 11, findings 3 and 4): five times a limit's worth of requests
released at once, each in its own thread, database connection and session, and exactly
the limit gets through, for every rate or quota limit Kehu has. The counters are
crm/core/limits.py (one upsert each); claims, reveals and exports lock the user's row
and count."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.hashers import MD5PasswordHasher
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from crm.core import audit, limits, once
from crm.core.models import AccessLog, LimitCounter
from customers import services as customer_services
from customers.models import Customer, PoolEvent
from service import calendar_data
from service.models import Ticket
from tests.concurrency.threads import run_together
from tests.conftest import PASSWORD
from tests.factories import CategoryFactory, CustomerFactory, SLAPolicyFactory

pytestmark = pytest.mark.django_db(transaction=True)

TIMES = 5
LOGIN_URL = reverse("login")
ADDRESS = "203.0.113.9"


def statuses(answers: list[Any]) -> Counter:
    return Counter(getattr(answer, "status_code", repr(answer)) for answer in answers)


def assert_axes_answers(counts: Counter, *, limit: int, refused: int) -> None:
    """`refused` requests were turned away by our slots (429); of the `limit` whose
    password was checked, django-axes answers 429 to a failure that found its own count
    at the limit, the others get the form again (200). Axes counts after the check, not
    atomically, so under a burst one or more checked failures may see the limit."""
    assert set(counts) <= {200, 429}
    assert sum(counts.values()) == limit + refused
    assert refused + 1 <= counts[429] <= refused + limit


# Each test keeps to 20 threads at once, each with its own database connection.

# --- the limiter itself ------------------------------------------------------------------


def test_of_many_takes_at_once_exactly_the_limit_get_a_slot() -> None:
    limit = 4
    slots = run_together(
        [
            lambda: limits.take("t", "key", limit=limit, window=timedelta(minutes=5))
            for _ in range(TIMES * limit)
        ]
    )
    assert sum(isinstance(slot, limits.Slot) for slot in slots) == limit
    assert slots.count(None) == (TIMES - 1) * limit
    assert limits.used("t", "key") == limit


def test_a_slot_given_back_is_free_again_and_a_new_window_starts_afresh() -> None:
    now = timezone.now()
    window = timedelta(minutes=1)
    first = limits.take("t", "k", limit=2, window=window, now=now)
    assert limits.take("t", "k", limit=2, window=window, now=now)
    assert limits.take("t", "k", limit=2, window=window, now=now) is None
    limits.give_back(first)
    assert limits.take("t", "k", limit=2, window=window, now=now)
    later = now + window
    assert limits.take("t", "k", limit=2, window=window, now=later)
    assert limits.used("t", "k", now=later) == 1
    # A slot of the old window given back now leaves the new window alone.
    limits.give_back(first)
    assert limits.used("t", "k", now=later) == 1


def test_forgiving_forgets_the_kept_uses_but_not_those_in_progress() -> None:
    window = timedelta(minutes=15)
    kept = [limits.take("t", "u", limit=5, window=window) for _ in range(3)]
    for slot in kept:
        limits.keep(slot)
    in_progress = limits.take("t", "u", limit=5, window=window)
    right = limits.take("t", "u", limit=5, window=window)
    assert limits.used("t", "u") == 5
    limits.forgive(right)
    assert limits.used("t", "u") == 1
    assert in_progress is not None


def test_keys_hold_no_clear_text_and_the_purge_deletes_ended_windows() -> None:
    now = timezone.now()
    limits.take("login-user", "张三\x00", "10.0.0.1", limit=1, window=timedelta(0))
    limits.take("intake-ip", "10.0.0.2", limit=1, window=timedelta(hours=1), now=now)
    keys = list(LimitCounter.objects.values_list("key", flat=True))
    assert all(len(key) <= 100 for key in keys)
    assert not any("10.0.0" in key or "张三" in key for key in keys)
    assert limits.purge(now=now + timedelta(seconds=1)) == 1
    assert LimitCounter.objects.get().key.startswith("intake-ip:")


# --- the public intake form (finding 3) ----------------------------------------------------


@pytest.fixture
def desk(service_agent: Any) -> Any:
    calendar_data.calendar_seed(years=[timezone.localdate().year])
    SLAPolicyFactory(ticket_type="repair", priority="normal")
    CategoryFactory(name="报修", team=service_agent.team)
    return service_agent


def intake_post(phone: str, address: str) -> Any:
    """A first visit: a new session and a new form token, as 30 browsers would."""
    return Client().post(
        reverse("intake"),
        {
            "name": "赵先生",
            "phone": phone,
            "ticket_type": "repair",
            "description": "厨房水龙头一直滴水。",
            once.FIELD: once.new_token(),
        },
        REMOTE_ADDR=address,
    )


def test_one_address_posting_five_times_its_limit_at_once_files_exactly_the_limit(
    desk: Any, settings: Any
) -> None:
    limit = settings.KEHU_INTAKE_PER_IP_HOUR = 4
    answers = run_together(
        [
            lambda n=n: intake_post(f"1391234{n:04}", ADDRESS)
            for n in range(TIMES * limit)
        ]
    )
    assert statuses(answers) == {302: limit, 400: (TIMES - 1) * limit}
    refused = [a for a in answers if a.status_code == 400]
    assert all("提交太频繁" in a.content.decode() for a in refused)
    assert Ticket.objects.count() == limit
    assert Customer.objects.count() == limit


def test_one_phone_from_many_addresses_at_once_files_exactly_its_limit(
    desk: Any, settings: Any
) -> None:
    limit = settings.KEHU_INTAKE_PER_PHONE_HOUR
    answers = run_together(
        [
            lambda n=n: intake_post("13912345678", f"198.51.100.{n}")
            for n in range(TIMES * limit)
        ]
    )
    assert statuses(answers) == {302: limit, 400: (TIMES - 1) * limit}
    assert Ticket.objects.count() == limit
    assert Customer.objects.count() == 1


def test_behind_our_proxy_the_intake_limit_follows_the_client_not_a_forged_header(
    desk: Any, settings: Any
) -> None:
    """The proxy appends the address it saw; what the client wrote before it is noise."""
    settings.KEHU_PROXY_COUNT = 1
    settings.KEHU_INTAKE_PER_IP_HOUR = 1

    def post(phone: str, *, forged: str, real: str) -> int:
        return (
            Client()
            .post(
                reverse("intake"),
                {
                    "name": "赵",
                    "phone": phone,
                    "ticket_type": "repair",
                    "description": "漏水",
                },
                REMOTE_ADDR="10.0.0.2",
                HTTP_X_FORWARDED_FOR=f"{forged}, {real}",
            )
            .status_code
        )

    assert post("13912340001", forged="203.0.113.1", real="198.51.100.7") == 302
    assert post("13912340002", forged="203.0.113.2", real="198.51.100.7") == 400
    assert post("13912340003", forged="203.0.113.1", real="198.51.100.8") == 302


# --- sign-in (finding 4) -------------------------------------------------------------------

_hashing = threading.local()
_checks = Counter()
_checks_lock = threading.Lock()


class CountingHasher(MD5PasswordHasher):
    """The test settings' hasher, counting each password checked: a known user's, and
    the dummy hash Django computes for an unknown username so that both cost alike."""

    def verify(self, password: str, encoded: str) -> bool:
        self._count()
        _hashing.inside = True
        try:
            return super().verify(password, encoded)
        finally:
            _hashing.inside = False

    def encode(self, password: str, salt: str) -> str:
        if not getattr(_hashing, "inside", False):
            self._count()
        return super().encode(password, salt)

    @staticmethod
    def _count() -> None:
        with _checks_lock:
            _checks["passwords"] += 1


# Through pytest-django's `settings` fixture, not an override_settings decorator: a
# decorator and the fixture in one test undo in the wrong order (the decorator first),
# and the fixture's undo then puts the decorator's settings back for every later test
# in the process (axes on, the counting hasher, a trusted proxy).
@pytest.fixture
def axes_counting(settings: Any) -> Any:
    settings.AUTHENTICATION_BACKENDS = [
        "axes.backends.AxesStandaloneBackend",
        "django.contrib.auth.backends.ModelBackend",
    ]
    settings.PASSWORD_HASHERS = [f"{__name__}.CountingHasher"]
    return settings


@pytest.fixture
def password_checks():
    _checks.clear()
    return _checks


def login_post(username: str, password: str, address: str = ADDRESS) -> Any:
    return Client().post(
        LOGIN_URL, {"username": username, "password": password}, REMOTE_ADDR=address
    )


def failed_logins() -> Any:
    return AccessLog.objects.filter(action=audit.LOGIN_FAILED)


@pytest.mark.usefixtures("axes_counting")
def test_five_times_the_lockout_of_wrong_passwords_at_once_checks_only_the_limit(
    sales_rep: Any, settings: Any, password_checks: Counter
) -> None:
    # 5 in production; 4 keeps the threads (and connections) at 20.
    limit = settings.AXES_FAILURE_LIMIT = 4
    answers = run_together(
        [
            lambda: login_post(sales_rep.username, "wrong-password-1")
            for _ in range(TIMES * limit)
        ]
    )
    assert password_checks["passwords"] == limit
    assert failed_logins().filter(outcome=audit.FAILED).count() == limit
    assert failed_logins().filter(outcome=audit.DENIED).count() == (TIMES - 1) * limit
    # The form again for the first failures, the lock page for the rest (django-axes
    # answers the one that reached its limit).
    assert_axes_answers(statuses(answers), limit=limit, refused=(TIMES - 1) * limit)
    locked = login_post(sales_rep.username, PASSWORD)
    assert locked.status_code == 429
    assert "暂时锁定" in locked.content.decode()
    # Another address, and a colleague on this one, are not locked out.
    assert login_post(sales_rep.username, PASSWORD, "10.9.8.8").status_code == 302


@pytest.mark.usefixtures("axes_counting")
def test_five_times_the_address_limit_of_usernames_at_once_checks_only_the_limit(
    sales_rep: Any, settings: Any, password_checks: Counter
) -> None:
    limit = settings.KEHU_LOGIN_FAILURES_PER_IP = 4  # 30 in production
    answers = run_together(
        [
            lambda n=n: login_post(f"guess{n:03}", "wrong-password-1")
            for n in range(TIMES * limit)
        ]
    )
    assert password_checks["passwords"] == limit
    assert failed_logins().filter(outcome=audit.FAILED).count() == limit
    assert statuses(answers) == {200: limit, 429: (TIMES - 1) * limit}
    refused = [a for a in answers if a.status_code == 429]
    assert all("这个网络地址的登录失败次数过多" in a.content.decode() for a in refused)
    assert login_post(sales_rep.username, PASSWORD).status_code == 429
    assert login_post(sales_rep.username, PASSWORD, "10.9.8.8").status_code == 302


@pytest.mark.usefixtures("axes_counting")
def test_a_right_password_does_not_use_up_the_limits(
    sales_rep: Any, settings: Any, password_checks: Counter
) -> None:
    settings.KEHU_LOGIN_FAILURES_PER_IP = 2
    for _ in range(5):
        client = Client()
        assert (
            client.post(
                LOGIN_URL,
                {"username": sales_rep.username, "password": PASSWORD},
                REMOTE_ADDR=ADDRESS,
            ).status_code
            == 302
        )
    assert limits.used("login-ip", ADDRESS) == 0
    # An empty password is not checked, and not counted.
    assert login_post(sales_rep.username, "").status_code == 200
    assert password_checks["passwords"] == 5
    assert limits.used("login-ip", ADDRESS) == 0


# --- claims, reveals and exports: a row lock on the user, then a count ---------------------


def signed_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_five_times_the_daily_claims_at_once_claim_exactly_the_limit(
    settings: Any, outsider: Any
) -> None:
    limit = settings.KEHU_POOL_CLAIM_LIMIT = 4
    pool = [
        CustomerFactory(name=f"公海{n}", owner=None, team=None)
        for n in range(TIMES * limit)
    ]
    clients = [signed_in(outsider) for _ in pool]
    answers = run_together(
        [
            lambda c=c, p=p: c.post(reverse("customers:pool_claim", args=[p.pk]))
            for c, p in zip(clients, pool, strict=True)
        ]
    )
    assert statuses(answers) == {302: TIMES * limit}
    assert Customer.objects.filter(owner=outsider).count() == limit
    assert PoolEvent.objects.filter(action="claim").count() == limit


def test_five_times_the_hourly_reveals_at_once_reveal_exactly_the_limit(
    settings: Any, manager: Any, sales_rep: Any
) -> None:
    limit = settings.KEHU_REVEAL_HOURLY_LIMIT = 4
    number = "11010519491231002X"
    customer = customer_services.customer_create(
        by=sales_rep,
        data={"name": "张三"},
        phone_numbers=["13812345678"],
        id_number=number,
    )
    url = reverse("customers:customer_reveal", args=[customer.pk])
    clients = [signed_in(manager) for _ in range(TIMES * limit)]
    answers = run_together(
        [
            lambda c=c: c.post(url, {"reason": "核实身份"}, HTTP_HX_REQUEST="true")
            for c in clients
        ]
    )
    assert statuses(answers) == {200: TIMES * limit}
    assert sum(number in a.content.decode() for a in answers) == limit
    revealed = AccessLog.objects.filter(action=audit.ID_REVEALED, user=manager)
    assert revealed.filter(outcome=audit.OK).count() == limit
    assert revealed.filter(outcome=audit.DENIED).count() == (TIMES - 1) * limit


def test_five_times_the_daily_exports_at_once_hand_out_exactly_the_limit(
    settings: Any, manager: Any, sales_rep: Any
) -> None:
    limit = settings.KEHU_EXPORT_DAILY_LIMIT = 4
    CustomerFactory(owner=sales_rep, name="张三")
    clients = [signed_in(manager) for _ in range(TIMES * limit)]
    answers = run_together(
        [
            lambda c=c: c.get(reverse("customers:export_download"), {"format": "csv"})
            for c in clients
        ]
    )
    assert statuses(answers) == {200: limit, 302: (TIMES - 1) * limit}
    exported = AccessLog.objects.filter(action=audit.EXPORTED, user=manager)
    assert exported.filter(outcome=audit.OK).count() == limit


def test_the_counters_survive_in_the_database_not_in_a_process() -> None:
    # The slot taken here is seen by a fresh connection (another web process).
    limits.take("t", "shared", limit=1, window=timedelta(minutes=1))
    connection.close()
    assert limits.take("t", "shared", limit=1, window=timedelta(minutes=1)) is None


@pytest.mark.usefixtures("axes_counting")
def test_the_admin_sign_in_page_takes_the_same_limits(
    admin_user: Any, settings: Any, password_checks: Counter
) -> None:
    limit = settings.AXES_FAILURE_LIMIT = 4
    wrong = {"username": admin_user.username, "password": "wrong-password-1"}
    answers = run_together(
        [
            lambda: Client().post("/admin/login/", wrong, REMOTE_ADDR=ADDRESS)
            for _ in range(TIMES * limit)
        ]
    )
    assert password_checks["passwords"] == limit
    assert_axes_answers(statuses(answers), limit=limit, refused=(TIMES - 1) * limit)


@pytest.mark.usefixtures("axes_counting")
def test_password_confirmations_of_a_signed_in_session_take_the_same_limits(
    sales_rep: Any, settings: Any, password_checks: Counter
) -> None:
    """The password asked again before a change to the second factor is one more door
    to the same password (a stolen session could try it in parallel)."""
    limit = settings.AXES_FAILURE_LIMIT = 4
    clients = []
    for _ in range(TIMES * limit):
        client = Client()
        client.force_login(
            sales_rep, backend="django.contrib.auth.backends.ModelBackend"
        )
        clients.append(client)
    url = reverse("accounts:two_step_enrol")
    answers = run_together(
        [
            lambda c=c: c.post(
                url,
                {"password": "wrong-password-1", "code": "123456"},
                REMOTE_ADDR=ADDRESS,
            )
            for c in clients
        ]
    )
    assert password_checks["passwords"] == limit
    # Here our slots refuse with the form and its error (200, `refused` below); of the
    # `limit` checked failures, django-axes answers 429 to one or more (see
    # assert_axes_answers).
    counts = statuses(answers)
    assert set(counts) <= {200, 429}
    assert sum(counts.values()) == TIMES * limit
    assert 1 <= counts[429] <= limit
    refused = [a for a in answers if "密码错误次数过多" in a.content.decode()]
    assert len(refused) == (TIMES - 1) * limit
