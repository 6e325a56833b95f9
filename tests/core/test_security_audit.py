"""The security audit log (S15): every sign-in, refusal, read of personal data and change
to a user's rights leaves exactly one row saying who, with which role, did what to which
record, from which IP, in which request and with what outcome; nobody can change or
delete a row; text an attacker types is stored and shown encoded."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
import re
import uuid
from collections.abc import Iterator
from io import StringIO
from typing import Any

import psycopg.errors
import pytest
import time_machine
from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice
from pghistory.models import Events

from crm.accounts import two_step
from crm.accounts.roles import Role
from crm.core import append_only, audit, selectors
from crm.core.models import AccessLog
from customers import services as customer_services
from customers import tasks
from customers.models import Customer, ExportRequest
from tests.conftest import PASSWORD
from tests.factories import UserFactory

LOGIN_URL = reverse("login")
LOGOUT_URL = reverse("logout")
AUDIT_URL = reverse("audit_log")
ID_NUMBER = "11010519491231002X"
CLIENT_IP = "203.0.113.7"
ZERO = dt.timedelta(0)
CustomerEvent = apps.get_model("customers", "CustomerEvent")


def _detail_url(customer: Customer) -> str:
    return reverse("customers:customer_detail", args=[customer.pk])


def _rows_after(mark: int) -> list[AccessLog]:
    return list(AccessLog.objects.filter(pk__gt=mark).order_by("pk"))


def _mark() -> int:
    last = AccessLog.objects.order_by("-pk").first()
    return last.pk if last else 0


def _admin_user_form(client: Client, user, **changes) -> dict:
    """What the Django admin's user page submits for `user`, with `changes` made."""
    url = reverse("admin:accounts_user_change", args=[user.pk])
    form = client.get(url).context["adminform"].form
    data = {}
    for name, field in form.fields.items():
        value = form[name].value()
        if isinstance(value, dt.datetime):
            local = timezone.localtime(value)
            data[f"{name}_0"], data[f"{name}_1"] = (
                f"{local:%Y-%m-%d}",
                f"{local:%H:%M:%S}",
            )
        elif isinstance(value, (list, tuple)):
            data[name] = [str(v) for v in value]
        elif value not in (None, False) and name != "password":
            data[name] = value
        del field
    data.update(changes)
    return data


@pytest.fixture
def own_customer(sales_rep):
    return customer_services.customer_create(
        by=sales_rep, data={"name": "张三"}, id_number=ID_NUMBER
    )


@pytest.fixture
def far_customer(far_outsider):
    return customer_services.customer_create(by=far_outsider, data={"name": "李四"})


@pytest.fixture
def superuser(db):
    return UserFactory(username="root", is_superuser=True, is_staff=True, team=None)


# --- the scripted session (S15) ---------------------------------------------------------

# 5 seconds into a 30-second TOTP step; the clock moves only when the script moves it.
START = dt.datetime(2026, 11, 23, 2, 0, 5, tzinfo=dt.UTC)
NEW_PASSWORD = "river-walk-at-dusk-2026"  # noqa: S105 - a test password


@dataclasses.dataclass
class _Step:
    actor: str
    roles: str | None
    action: str
    obj: tuple | None
    outcome: str
    response: Any = None

    @property
    def expected(self) -> tuple:
        return (self.actor, self.roles, self.action, self.obj, self.outcome, CLIENT_IP)


class _Script:
    """Runs a session one action at a time. Each action is one request, and must leave
    exactly the one row it names: in the security audit log (core.AccessLog) or, for a
    change to a customer, in the customers' change history (pghistory). A row is
    (actor, roles, action, object, outcome, IP); each must also carry the request id the
    response sent back, and a time in UTC (in the security log: the request's time).

    Requests between actions (form pages, the admin's pages, the audit page, a
    missing id) are not actions: a row they wrote would show up in the next action's
    rows and fail it.
    """

    def __init__(self, clock: Any) -> None:
        self.clock = clock
        self.expected: list[tuple] = []
        self.got: list[tuple] = []
        self.log_mark = self.start_mark = _mark()
        self.history_mark = _history_mark()
        self.request_ids: list[str] = []

    @contextlib.contextmanager
    def action(
        self,
        actor: str,
        roles: str | None,
        action: str,
        obj: tuple | None = None,
        outcome: str = audit.OK,
        *,
        advance: int = 1,
    ) -> Iterator[_Step]:
        self.clock.shift(advance)
        at = timezone.now()
        step = _Step(actor, roles, action, obj, outcome)
        yield step
        self.expected.append(step.expected)
        new = [
            *self._new_log_rows(step.response, at),
            *self._new_history_rows(step.response),
        ]
        self.got.extend(new)
        self.request_ids.append(step.response["X-Request-ID"])
        assert new == [step.expected], f"action {len(self.expected)}"

    def _new_log_rows(self, response: Any, at: dt.datetime) -> list[tuple]:
        rows = _rows_after(self.log_mark)
        if rows:
            self.log_mark = rows[-1].pk
        for row in rows:
            assert row.request_id == response["X-Request-ID"], row
            assert row.created_at == at and row.created_at.utcoffset() == ZERO, row
        return [
            (
                r.username,
                r.roles,
                r.action,
                (r.object_type, r.object_id) if r.object_type else None,
                r.outcome,
                r.ip_address,
            )
            for r in rows
        ]

    def _new_history_rows(self, response: Any) -> list[tuple]:
        events = list(
            CustomerEvent.objects.filter(pgh_id__gt=self.history_mark)
            .select_related("pgh_context")
            .order_by("pgh_id")
        )
        if events:
            self.history_mark = events[-1].pgh_id
        got = []
        for event in events:
            context = event.pgh_context.metadata
            assert context["request_id"] == response["X-Request-ID"], context
            assert event.pgh_created_at.utcoffset() == ZERO
            actor = get_user_model().objects.get(pk=context["user"])
            # The change history keeps who, not their role then: that is read from
            # the role_changed rows of the security log.
            got.append(
                (
                    actor.username,
                    None,
                    f"customer.{event.pgh_label}",
                    ("customer", event.pgh_obj_id),
                    audit.OK,
                    context["ip"],
                )
            )
        return got


def _history_mark() -> int:
    last = CustomerEvent.objects.order_by("-pgh_id").first()
    return last.pgh_id if last else 0


def _login(web: Client, username: str, password: str = PASSWORD) -> Any:
    return web.post(LOGIN_URL, {"username": username, "password": password})


def _edit_form(web: Client, customer: Customer, **changes: str) -> dict:
    """What the browser submits from the customer's edit page, with `changes`."""
    page = web.get(reverse("customers:customer_edit", args=[customer.pk]))
    form = page.context["form"]
    data = {
        n: form[n].value() for n in form.fields if form[n].value() not in (None, False)
    }
    data["version"] = re.search(r'name="version" value="(\d+)"', page.content.decode())[
        1
    ]
    return {**data, **changes}


def _app_code(key_hex: str) -> str:
    totp = TOTP(bytes.fromhex(key_hex))
    totp.time = timezone.now().timestamp()
    return f"{totp.token():06d}"


@pytest.fixture
def manager_b(team_b):
    """A second manager of the department, who decides manager_a's export requests."""
    return UserFactory(username="manager_b", team=team_b, role=Role.MANAGER)


@pytest.fixture
def clock():
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


def test_a_scripted_session_of_50_actions_leaves_exactly_50_matching_rows(
    settings,
    tmp_path,
    clock,
    sales_rep,
    manager,
    manager_b,
    service_agent,
    admin_user,
    own_customer,
    far_customer,
    superuser,
):
    settings.KEHU_REVEAL_HOURLY_LIMIT = 2
    settings.EXPORT_ROOT = tmp_path / "exports"
    script = _Script(clock)
    act = script.action
    own = ("customer", own_customer.pk)
    far = ("customer", far_customer.pk)
    sales_a = ("user", sales_rep.pk)
    web = Client(REMOTE_ADDR=CLIENT_IP)  # sales_a's browser
    other_pc = Client(REMOTE_ADDR=CLIENT_IP)  # sales_a signed in elsewhere too

    # 1-3. Sign-in: a wrong password, an unknown user, then the right password.
    with act("sales_a", "sales", audit.LOGIN_FAILED, outcome=audit.FAILED) as step:
        step.response = _login(web, "sales_a", "wrong")
    with act("nobody", "", audit.LOGIN_FAILED, outcome=audit.FAILED) as step:
        step.response = _login(web, "nobody", "wrong")
    with act("sales_a", "sales", audit.LOGIN_OK) as step:
        step.response = _login(web, "sales_a")
        assert step.response.status_code == 302

    # 4-9. Customers: create (change history), view, reveal the ID number twice, a
    # third reveal over the hourly limit is refused, and an edit (change history).
    create_data = {
        "name": "王五",
        "kind": Customer.Kind.OWNER,
        "stage": Customer.Stage.LEAD,
        "tier": Customer.Tier.C,
    }
    with act("sales_a", None, "customer.insert") as step:
        step.response = web.post(reverse("customers:customer_create"), create_data)
        created = Customer.objects.get(name="王五")
        step.obj = ("customer", created.pk)
    with act("sales_a", "sales", audit.CUSTOMER_VIEWED, own) as step:
        step.response = web.get(_detail_url(own_customer))
        assert step.response.status_code == 200
    reveal_url = reverse("customers:customer_reveal", args=[own_customer.pk])
    for _ in range(2):
        with act("sales_a", "sales", audit.ID_REVEALED, own) as step:
            step.response = web.post(reveal_url, {"reason": "核实身份"})
            assert ID_NUMBER in step.response.content.decode()
    with act("sales_a", "sales", audit.ID_REVEALED, own, audit.DENIED) as step:
        step.response = web.post(reveal_url, {"reason": "再次核实"})
        assert step.response.status_code == 302
    edit_url = reverse("customers:customer_edit", args=[own_customer.pk])
    data = _edit_form(web, own_customer, notes="改过备注")
    with act("sales_a", None, "customer.update", own) as step:
        step.response = web.post(edit_url, data)
        assert step.response.status_code == 302

    # 10-13. Refusals: a page of another role (403), another department's customer
    # (404) viewed and revealed, an export without the export right (403).
    with act("sales_a", "sales", audit.DENIED_ROLE, outcome=audit.DENIED) as step:
        step.response = web.get(AUDIT_URL)
        assert step.response.status_code == 403
    with act("sales_a", "sales", audit.DENIED_SCOPE, far, audit.DENIED) as step:
        step.response = web.get(_detail_url(far_customer))
        assert step.response.status_code == 404
    far_reveal = reverse("customers:customer_reveal", args=[far_customer.pk])
    with act("sales_a", "sales", audit.DENIED_SCOPE, far, audit.DENIED) as step:
        step.response = web.post(far_reveal, {"reason": "看看"})
        assert step.response.status_code == 404
    export_url = reverse("customers:export_download")
    with act("sales_a", "sales", audit.DENIED_ROLE, outcome=audit.DENIED) as step:
        step.response = web.get(export_url, {"format": "csv"})
        assert step.response.status_code == 403
    # Not an action of the 50: an id that does not exist is a typo, not an attempt on
    # anyone's record, and leaves no row.
    mark = _mark()
    missing = web.get(reverse("customers:customer_detail", args=[987654321]))
    assert missing.status_code == 404 and _rows_after(mark) == []

    # 14-17. Two-step verification: set up the app, a wrong password when renewing the
    # backup codes (re-authentication counts as a failed sign-in), then renewed.
    enrol_url = reverse("accounts:two_step_enrol")
    web.get(enrol_url)
    key = web.session[two_step.PENDING_KEY_SESSION_KEY]
    with act("sales_a", "sales", audit.OTP_DEVICE_ADDED) as step:
        step.response = web.post(
            enrol_url, {"password": PASSWORD, "code": _app_code(key)}
        )
        device = TOTPDevice.objects.get(user=sales_rep)
        step.obj = ("totpdevice", device.pk)
    codes_url = reverse("accounts:backup_codes_regenerate")
    with act("sales_a", "sales", audit.LOGIN_FAILED, outcome=audit.FAILED) as step:
        step.response = web.post(codes_url, {"password": "wrong"})
        assert step.response.status_code == 200
    with act("sales_a", "sales", audit.OTP_DEVICE_ADDED) as step:
        step.response = web.post(codes_url, {"password": PASSWORD})
        assert step.response.status_code == 200
    with act("sales_a", "sales", audit.LOGOUT) as step:
        step.response = web.post(LOGOUT_URL)

    # 18-22. Signing in again owes the code: a wrong one, one too soon after it
    # (throttled), then the app's code of the next time step.
    verify_url = reverse("accounts:two_step_verify")
    device_ref = ("totpdevice", device.pk)
    with act("sales_a", "sales", audit.LOGIN_OK) as step:
        step.response = _login(web, "sales_a")
    with act("sales_a", "sales", audit.OTP_FAILED, outcome=audit.FAILED) as step:
        wrong = f"{(int(_app_code(key)) + 1) % 1_000_000:06d}"
        step.response = web.post(verify_url, {"code": wrong})
        assert step.response.status_code == 200
    with act(
        "sales_a", "sales", audit.OTP_FAILED, outcome=audit.DENIED, advance=0
    ) as step:
        step.response = web.post(verify_url, {"code": _app_code(key)})
        assert step.response.status_code == 429
    with act("sales_a", "sales", audit.OTP_OK, device_ref, advance=30) as step:
        step.response = web.post(verify_url, {"code": _app_code(key)})
        assert step.response.status_code == 302
    with act("sales_a", "sales", audit.LOGIN_OK) as step:
        step.response = _login(other_pc, "sales_a")

    # 23-26. The other sign-in is ended from here; two-step removed; password changed.
    with act("sales_a", "sales", audit.SESSIONS_ENDED, sales_a) as step:
        step.response = web.post(reverse("accounts:sessions_end_others"))
    with act("sales_a", "sales", audit.OTP_DEVICE_REMOVED) as step:
        step.response = web.post(
            reverse("accounts:two_step_remove"), {"password": PASSWORD}
        )
        assert step.response.status_code == 302
    with act("sales_a", "sales", audit.PASSWORD_CHANGED, sales_a) as step:
        step.response = web.post(
            reverse("password_change"),
            {
                "old_password": PASSWORD,
                "new_password1": NEW_PASSWORD,
                "new_password2": NEW_PASSWORD,
            },
        )
        assert step.response.status_code == 302
    with act("sales_a", "sales", audit.LOGOUT) as step:
        step.response = web.post(LOGOUT_URL)

    # 27-29. The service desk sees every customer but may not reveal ID numbers.
    desk = Client(REMOTE_ADDR=CLIENT_IP)
    with act("service_a", "service", audit.LOGIN_OK) as step:
        step.response = _login(desk, "service_a")
    with act("service_a", "service", audit.CUSTOMER_VIEWED, far) as step:
        step.response = desk.get(_detail_url(far_customer))
        assert step.response.status_code == 200
    with act("service_a", "service", audit.DENIED_ROLE, outcome=audit.DENIED) as step:
        step.response = desk.post(far_reveal, {"reason": "来电核实"})
        assert step.response.status_code == 403

    # 30-40. Exports: one at once; two over the approval limit requested, one approved
    # and one rejected by another manager, who may not download it; the requester
    # downloads the approved file; then the daily limit refuses one more.
    boss = Client(REMOTE_ADDR=CLIENT_IP)
    with act("manager_a", "manager", audit.LOGIN_OK) as step:
        step.response = _login(boss, "manager_a")
    with act("manager_a", "manager", audit.EXPORTED, ("customer", None)) as step:
        step.response = boss.get(export_url, {"format": "csv"})
        assert step.response.status_code == 200
        b"".join(step.response.streaming_content)
    settings.KEHU_EXPORT_APPROVAL_ROWS = 0
    requests = []
    for reason in ("季度回访名单", "年度名单"):
        with act("manager_a", "manager", audit.EXPORT_REQUESTED) as step:
            step.response = boss.post(
                reverse("customers:export_request_create"),
                {"reason": reason, "file_format": "csv"},
            )
            requests.append(ExportRequest.objects.get(reason=reason))
            step.obj = ("exportrequest", requests[-1].pk)
    approved, rejected = requests
    other_boss = Client(REMOTE_ADDR=CLIENT_IP)
    with act("manager_b", "manager", audit.LOGIN_OK) as step:
        step.response = _login(other_boss, "manager_b")
    for export_request, decision, logged in (
        (approved, "approve", audit.EXPORT_APPROVED),
        (rejected, "reject", audit.EXPORT_REJECTED),
    ):
        ref = ("exportrequest", export_request.pk)
        with act("manager_b", "manager", logged, ref) as step:
            step.response = other_boss.post(
                reverse("customers:export_request_decide", args=[export_request.pk]),
                {"decision": decision, "note": "同意" if decision == "approve" else ""},
            )
            assert step.response.status_code == 302
    tasks.export_request_produce_task(approved.pk)  # the Celery task: no row
    download_url = reverse("customers:export_request_download", args=[approved.pk])
    with act("manager_b", "manager", audit.DENIED_ROLE, outcome=audit.DENIED) as step:
        step.response = other_boss.get(download_url)
        assert step.response.status_code == 403
    ref = ("customer", approved.pk)
    with act("manager_a", "manager", audit.EXPORTED, ref) as step:
        step.response = boss.get(download_url)
        assert step.response.status_code == 200
        b"".join(step.response.streaming_content)
    settings.KEHU_EXPORT_APPROVAL_ROWS = 200
    settings.KEHU_EXPORT_DAILY_LIMIT = 2
    refused = ("customer", None)
    with act("manager_a", "manager", audit.EXPORTED, refused, audit.DENIED) as step:
        step.response = boss.get(export_url, {"format": "csv"})
        assert step.response.status_code == 302
    with act("manager_a", "manager", audit.LOGOUT) as step:
        step.response = boss.post(LOGOUT_URL)

    # 41-47. The superuser gives sales_a the manager role, deactivates and reactivates
    # the account, sets its password, and ends manager_b's sessions in /admin/.
    root = Client(REMOTE_ADDR=CLIENT_IP)
    with act("root", "superuser", audit.LOGIN_OK) as step:
        step.response = _login(root, "root")
    user_url = reverse("admin:accounts_user_change", args=[sales_rep.pk])
    groups = [
        str(Group.objects.get(name=Role.SALES).pk),
        str(Group.objects.get(name=Role.MANAGER).pk),
    ]
    data = _admin_user_form(root, sales_rep, groups=groups)
    with act("root", "superuser", audit.ROLE_CHANGED, sales_a) as step:
        step.response = root.post(user_url, data)
        assert step.response.status_code == 302
    data = _admin_user_form(root, sales_rep)
    data.pop("is_active")
    with act("root", "superuser", audit.USER_DEACTIVATED, sales_a) as step:
        step.response = root.post(user_url, data)
        assert step.response.status_code == 302
    data = _admin_user_form(root, sales_rep, is_active="on")
    with act("root", "superuser", audit.USER_REACTIVATED, sales_a) as step:
        step.response = root.post(user_url, data)
        assert step.response.status_code == 302
    password_url = reverse("admin:auth_user_password_change", args=[sales_rep.pk])
    with act("root", "superuser", audit.PASSWORD_CHANGED, sales_a) as step:
        step.response = root.post(
            password_url,
            {"password1": PASSWORD, "password2": PASSWORD, "usable_password": "true"},
        )
        assert step.response.status_code == 302
    manager_b_ref = ("user", manager_b.pk)
    with act("root", "superuser", audit.SESSIONS_ENDED, manager_b_ref) as step:
        step.response = root.post(
            reverse("admin:accounts_user_changelist"),
            {"action": "end_all_sessions", "_selected_action": [manager_b.pk]},
        )
        assert step.response.status_code == 302
    # Not an action: manager_b's browser is signed out (a redirect, no row).
    assert other_boss.get(AUDIT_URL).status_code == 302
    with act("root", "superuser", audit.LOGOUT) as step:
        step.response = root.post(LOGOUT_URL)

    # 48-49. An administrator deletes the customer sales_a created (change history).
    office = Client(REMOTE_ADDR=CLIENT_IP)
    with act("admin_a", "admin", audit.LOGIN_OK) as step:
        step.response = _login(office, "admin_a")
    delete_url = reverse("admin:customers_customer_delete", args=[created.pk])
    with act("admin_a", None, "customer.delete", ("customer", created.pk)) as step:
        step.response = office.post(delete_url, {"post": "yes"})
        assert step.response.status_code == 302

    # 50. A username typed with CR/LF to forge a second line is stored encoded, and
    # the audit page shows it encoded.
    forged = "eve\r\n2026-11-27 10:00 login_ok admin_a"
    encoded = "eve\\r\\n2026-11-27 10:00 login_ok admin_a"
    with act(encoded, "", audit.LOGIN_FAILED, outcome=audit.FAILED) as step:
        step.response = _login(Client(REMOTE_ADDR=CLIENT_IP), forged, "x")
    page = office.get(AUDIT_URL).content.decode()  # reading the log is not logged
    assert encoded in page and "eve\r" not in page and "eve\n" not in page

    assert len(script.expected) == 50
    assert script.got == script.expected
    rows = _rows_after(script.start_mark)
    assert len(rows) == 47  # and 3 in the change history
    # A failed sign-in names the account when it exists, and only the typed name else.
    assert [r.user_id for r in rows[:2]] == [sales_rep.pk, None]
    assert len(set(script.request_ids)) == 50  # one fresh id per action


def test_the_request_id_is_sent_back_and_is_the_one_on_the_row(
    client, sales_rep, own_customer
):
    client.force_login(sales_rep)
    mark = _mark()
    response = client.get(_detail_url(own_customer))
    (row,) = _rows_after(mark)
    assert response["X-Request-ID"] == row.request_id


def test_the_ip_is_the_one_axes_locks_out_and_a_forged_forwarded_for_is_ignored(
    client, sales_rep, own_customer
):
    """The row's IP is django-axes' idea of the client (crm/core/network.py), so a
    lockout and the log name the same address; with no trusted proxy configured an
    X-Forwarded-For sent by the client must not be believed."""
    from axes.helpers import get_client_ip_address

    client.force_login(sales_rep)
    mark = _mark()
    response = client.get(
        _detail_url(own_customer),
        REMOTE_ADDR="192.0.2.44",
        HTTP_X_FORWARDED_FOR="198.51.100.9",
    )
    (row,) = _rows_after(mark)
    assert row.ip_address == "192.0.2.44"
    assert get_client_ip_address(response.wsgi_request) == row.ip_address


def test_a_refusal_inside_a_rolled_back_transaction_is_still_recorded(
    rf, sales_rep, far_customer
):
    """The view's transaction rolls back on the 404; the refusal's row must not."""
    from django.core.handlers.exception import convert_exception_to_response

    from crm.accounts import access
    from crm.core.middleware import RequestIdMiddleware

    def view(request):
        with transaction.atomic():
            access.get_object_for(
                Customer.objects.visible_to(request.user), far_customer.pk
            )

    request = rf.get(_detail_url(far_customer), REMOTE_ADDR=CLIENT_IP)
    request.user = sales_rep
    mark = _mark()
    response = RequestIdMiddleware(convert_exception_to_response(view))(request)
    assert response.status_code == 404
    (row,) = _rows_after(mark)
    assert (row.action, row.object_id, row.user_id) == (
        audit.DENIED_SCOPE,
        far_customer.pk,
        sales_rep.pk,
    )
    assert row.request_id == response["X-Request-ID"]


# --- append-only ------------------------------------------------------------------------


def _refused(sql: str, *params: object) -> psycopg.errors.InsufficientPrivilege:
    with pytest.raises(DatabaseError) as refused, transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(sql, params or None)
    assert isinstance(refused.value.__cause__, psycopg.errors.InsufficientPrivilege)
    return refused.value.__cause__


def test_audit_rows_cannot_be_changed_or_deleted(sales_rep):
    row = audit.record(None, audit.LOGIN_OK, user=sales_rep)
    error = _refused("UPDATE core_accesslog SET action = 'x' WHERE id = %s", row.pk)
    assert error.sqlstate == "42501"
    _refused("DELETE FROM core_accesslog WHERE id = %s", row.pk)
    with pytest.raises(DatabaseError), transaction.atomic():
        AccessLog.objects.filter(pk=row.pk).delete()
    row.refresh_from_db()
    assert row.action == audit.LOGIN_OK


def test_change_history_rows_cannot_be_changed_or_deleted(own_customer):
    event = Events.objects.tracks(own_customer).get()
    table = apps.get_model(event.pgh_model)._meta.db_table
    assert table in append_only.event_tables()
    _refused(f"UPDATE \"{table}\" SET pgh_label = 'x'")  # noqa: S608 - our table name
    _refused(f'DELETE FROM "{table}"')  # noqa: S608


@contextlib.contextmanager
def _as_role(role: str) -> Iterator[Any]:
    """A savepoint whose statements run as `role` (SET LOCAL ROLE ends with it)."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL ROLE {role}")
        yield cursor
        cursor.execute("RESET ROLE")


def test_an_application_role_that_may_write_every_table_still_cannot_change_the_log(
    sales_rep, own_customer
):
    """Production may connect as a role with full DML rights on every table but no
    ownership: the trigger refuses its UPDATE and DELETE, and only an owner may switch
    the trigger off (audit_purge). Created in the test's transaction, so it goes with
    the rollback; the random name keeps parallel test databases apart."""
    row = audit.record(None, audit.LOGIN_OK, user=sales_rep)
    history = apps.get_model(Events.objects.tracks(own_customer).get().pgh_model)
    tables = {"core_accesslog": "action", history._meta.db_table: "pgh_label"}
    role = f"kehu_app_{uuid.uuid4().hex[:12]}"
    trigger = append_only.TRIGGER
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE ROLE {role} NOLOGIN NOSUPERUSER NOBYPASSRLS")
        for table in tables:
            cursor.execute(
                f'GRANT SELECT, INSERT, UPDATE, DELETE ON "{table}" TO {role}'
            )
    with _as_role(role) as cursor:
        cursor.execute(
            "INSERT INTO core_accesslog (created_at, username, roles, action, "
            "object_type, outcome, detail, request_id) "
            "VALUES (now(), 'x', '', 'login_ok', '', 'ok', '', '')"
        )
    for table, column in tables.items():
        for statement, reason in (
            # Granted, so refused by the trigger, not by a missing grant.
            (f'UPDATE "{table}" SET {column} = {column}', "is append-only"),  # noqa: S608
            (f'DELETE FROM "{table}"', "is append-only"),  # noqa: S608
            (f'ALTER TABLE "{table}" DISABLE TRIGGER {trigger}', "must be owner"),
            (f'TRUNCATE "{table}"', "permission denied"),
        ):
            with pytest.raises(DatabaseError) as refused, _as_role(role) as cursor:
                cursor.execute(statement)
            cause = refused.value.__cause__
            assert isinstance(cause, psycopg.errors.InsufficientPrivilege), statement
            assert reason in str(cause), (statement, str(cause))
    row.refresh_from_db()
    assert row.action == audit.LOGIN_OK


def test_every_history_table_and_the_audit_table_carry_the_trigger(db):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "WHERE t.tgname = %s AND t.tgenabled = 'O'",
            [append_only.TRIGGER],
        )
        protected = {name for (name,) in cursor.fetchall()}
    tables = set(append_only.event_tables())
    assert len(tables) >= 5  # customers, tickets, work orders, assets, users ...
    assert protected >= tables | {"core_accesslog"}


# --- log injection ---------------------------------------------------------------------


def test_cr_lf_in_a_typed_username_is_stored_and_shown_encoded(admin_user, caplog):
    forged = "eve\r\n2026-11-27 10:00 login_ok\u2028admin_a\x1b[2J"
    mark = _mark()
    with caplog.at_level(logging.INFO, logger="kehu.audit"):
        Client(REMOTE_ADDR=CLIENT_IP).post(
            LOGIN_URL, {"username": forged, "password": "x"}
        )
    (row,) = _rows_after(mark)
    assert row.username == "eve\\r\\n2026-11-27 10:00 login_ok\\u2028admin_a\\x1b[2J"
    assert not re.search(r"[\x00-\x1f\x7f\u2028]", row.username)
    assert all("\n" not in m and "\r" not in m for m in caplog.messages)

    web = Client()
    web.force_login(admin_user)
    page = web.get(AUDIT_URL).content.decode()
    assert "eve\\r\\n2026-11-27 10:00 login_ok\\u2028admin_a\\x1b[2J" in page
    assert "eve\r" not in page and "eve\n" not in page
    # The filter finds the row by what was typed.
    found = web.get(AUDIT_URL, {"actor": forged})
    assert _page_rows(found) == [(audit.LOGIN_FAILED, "failed")]


def test_encode_keeps_chinese_and_escapes_backslashes():
    assert audit.encode("张三\\n") == "张三\\\\n"
    assert audit.encode("a\tb\x00c\u202e") == "a\\tb\\x00c\\u202e"
    assert audit.encode("x" * 400, 300) == "x" * 299 + "…"


# --- the page --------------------------------------------------------------------------


@pytest.fixture
def admin_web(admin_user):
    web = Client()
    web.force_login(admin_user)
    return web


def _page_rows(response) -> list[tuple[str, str]]:
    """(action, outcome) of each row shown, top to bottom."""
    return re.findall(
        r'<tr data-action="([^"]+)" data-outcome="([^"]+)">', response.content.decode()
    )


def test_the_page_lists_newest_first_and_filters(
    admin_web, sales_rep, manager, time_machine
):
    time_machine.move_to(dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC))
    audit.record(None, audit.LOGIN_FAILED, username="sales_a", outcome=audit.FAILED)
    time_machine.move_to(dt.datetime(2026, 3, 5, 12, tzinfo=dt.UTC))
    audit.record(
        None, audit.CUSTOMER_VIEWED, user=sales_rep, object_type="customer", object_id=1
    )
    audit.record(None, audit.EXPORTED, user=manager, row_count=3)
    time_machine.move_to(dt.datetime(2026, 3, 9, 12, tzinfo=dt.UTC))
    audit.record(None, audit.DENIED_ROLE, user=sales_rep, outcome=audit.DENIED)

    def shown(**filters):
        return _page_rows(admin_web.get(AUDIT_URL, {"action": "", **filters}))

    scripted = {audit.DENIED_ROLE, audit.EXPORTED, audit.CUSTOMER_VIEWED}
    everything = [r for r in shown() if r[0] in scripted | {audit.LOGIN_FAILED}]
    assert everything == [
        (audit.DENIED_ROLE, "denied"),
        (audit.EXPORTED, "ok"),
        (audit.CUSTOMER_VIEWED, "ok"),
        (audit.LOGIN_FAILED, "failed"),
    ]
    assert shown(actor="sales_a") == [
        (audit.DENIED_ROLE, "denied"),
        (audit.CUSTOMER_VIEWED, "ok"),
        (audit.LOGIN_FAILED, "failed"),
    ]
    assert shown(action=audit.EXPORTED) == [(audit.EXPORTED, "ok")]
    assert shown(outcome="failed") == [(audit.LOGIN_FAILED, "failed")]
    assert shown(date_from="2026-03-02", date_to="2026-03-05") == [
        (audit.EXPORTED, "ok"),
        (audit.CUSTOMER_VIEWED, "ok"),
    ]
    refused = admin_web.get(
        AUDIT_URL, {"date_from": "2026-03-09", "date_to": "2026-03-01"}
    )
    assert refused.status_code == 200
    assert "起始日期不能晚于截止日期" in refused.content.decode()
    for junk in ({"action": "drop table"}, {"date_from": "昨天"}, {"before": "9" * 40}):
        assert admin_web.get(AUDIT_URL, junk).status_code == 200


def test_the_page_pages_by_keyset_without_gaps_or_repeats(admin_web, sales_rep):
    for number in range(selectors.AUDIT_PAGE_SIZE + 7):
        audit.record(
            None,
            audit.CUSTOMER_VIEWED,
            user=sales_rep,
            object_type="customer",
            object_id=number,
        )
    first = admin_web.get(AUDIT_URL, {"action": audit.CUSTOMER_VIEWED})
    older = re.search(
        r'data-testid="audit-older" href="\?([^"]+)"', first.content.decode()
    )
    second = admin_web.get(f"{AUDIT_URL}?{older[1].replace('&amp;', '&')}")
    assert 'data-testid="audit-older"' not in second.content.decode()
    ids = [
        int(i)
        for page in (first, second)
        for i in re.findall(r"customer #(\d+)", page.content.decode())
    ]
    assert ids == list(reversed(range(selectors.AUDIT_PAGE_SIZE + 7)))


def test_each_filter_has_an_index():
    indexed = {tuple(index.fields) for index in AccessLog._meta.indexes}
    for column in ("username", "action", "outcome"):
        assert (column, "-created_at", "-id") in indexed
    assert ("-created_at", "-id") in indexed


# --- retention -------------------------------------------------------------------------


def test_retention_is_at_least_three_years():
    assert settings.KEHU_AUDIT_RETENTION_DAYS >= 1095
    with pytest.raises(CommandError):
        call_command("audit_purge", days=1094)


def test_the_purge_deletes_only_rows_past_retention_and_leaves_the_table_locked(
    sales_rep, time_machine
):
    time_machine.move_to(dt.datetime(2022, 1, 1, tzinfo=dt.UTC))
    old = audit.record(None, audit.LOGIN_OK, user=sales_rep)
    time_machine.move_to(dt.datetime(2025, 6, 1, tzinfo=dt.UTC))
    kept = audit.record(None, audit.LOGIN_OK, user=sales_rep)
    time_machine.move_to(dt.datetime(2026, 1, 2, tzinfo=dt.UTC))
    out = StringIO()
    call_command("audit_purge", dry_run=True, stdout=out)
    assert "would delete 1 " in out.getvalue()
    assert AccessLog.objects.filter(pk=old.pk).exists()
    call_command("audit_purge", stdout=StringIO())
    assert set(AccessLog.objects.filter(pk__in=[old.pk, kept.pk])) == {kept}
    _refused("DELETE FROM core_accesslog WHERE id = %s", kept.pk)
