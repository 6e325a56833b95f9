"""The security audit log (S15): every sign-in, refusal, read of personal data and change
to a user's rights leaves exactly one row saying who, with which role, did what to which
record, from which IP, in which request and with what outcome; nobody can change or
delete a row; text an attacker types is stored and shown encoded."""

from __future__ import annotations

import datetime as dt
import logging
import re
from io import StringIO

import psycopg.errors
import pytest
from django.apps import apps
from django.conf import settings
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from pghistory.models import Events

from crm.accounts.roles import Role
from crm.core import append_only, audit, selectors
from crm.core.models import AccessLog
from customers import services as customer_services
from customers.models import Customer
from tests.conftest import PASSWORD
from tests.factories import UserFactory

LOGIN_URL = reverse("login")
LOGOUT_URL = reverse("logout")
AUDIT_URL = reverse("audit_log")
ID_NUMBER = "11010519491231002X"
CLIENT_IP = "203.0.113.7"


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


def test_a_scripted_session_leaves_exactly_one_row_per_audited_action(
    sales_rep, manager, own_customer, far_customer, superuser
):
    web = Client(REMOTE_ADDR=CLIENT_IP)
    mark = _mark()
    expected = []  # (username, roles, action, object, outcome)

    # Sign-in: a wrong password, an unknown user, then the right password.
    web.post(LOGIN_URL, {"username": "sales_a", "password": "wrong"})
    expected.append(("sales_a", "sales", audit.LOGIN_FAILED, None, audit.FAILED))
    web.post(LOGIN_URL, {"username": "nobody", "password": "wrong"})
    expected.append(("nobody", "", audit.LOGIN_FAILED, None, audit.FAILED))
    assert (
        web.post(LOGIN_URL, {"username": "sales_a", "password": PASSWORD}).status_code
        == 302
    )
    expected.append(("sales_a", "sales", audit.LOGIN_OK, None, audit.OK))

    # A customer page, an ID number revealed, an edit (pghistory's, not this log's).
    viewed = web.get(_detail_url(own_customer))
    assert viewed.status_code == 200
    customer_ref = ("customer", own_customer.pk)
    expected.append(("sales_a", "sales", audit.CUSTOMER_VIEWED, customer_ref, audit.OK))
    reveal_url = reverse("customers:customer_reveal", args=[own_customer.pk])
    assert ID_NUMBER in web.post(reveal_url, {"reason": "核实身份"}).content.decode()
    expected.append(("sales_a", "sales", audit.ID_REVEALED, customer_ref, audit.OK))
    edit_url = reverse("customers:customer_edit", args=[own_customer.pk])
    page = web.get(edit_url)
    form = page.context["form"]
    data = {
        n: form[n].value() for n in form.fields if form[n].value() not in (None, False)
    }
    data["version"] = re.search(r'name="version" value="(\d+)"', page.content.decode())[
        1
    ]
    data["notes"] = "改过备注"
    assert web.post(edit_url, data).status_code == 302

    # Refusals: a page of another role (403), another department's customer (404),
    # and an id that does not exist (404, not an attempt on anyone: no row).
    assert web.get(AUDIT_URL).status_code == 403
    expected.append(("sales_a", "sales", audit.DENIED_ROLE, None, audit.DENIED))
    assert web.get(_detail_url(far_customer)).status_code == 404
    expected.append(
        (
            "sales_a",
            "sales",
            audit.DENIED_SCOPE,
            ("customer", far_customer.pk),
            audit.DENIED,
        )
    )
    assert (
        web.get(reverse("customers:customer_detail", args=[987654321])).status_code
        == 404
    )

    assert web.post(LOGOUT_URL).status_code == 302
    expected.append(("sales_a", "sales", audit.LOGOUT, None, audit.OK))

    # A manager exports the customer list (the file is logged with its rows).
    manager_web = Client(REMOTE_ADDR=CLIENT_IP)
    manager_web.post(LOGIN_URL, {"username": "manager_a", "password": PASSWORD})
    expected.append(("manager_a", "manager", audit.LOGIN_OK, None, audit.OK))
    export = manager_web.get(reverse("customers:export_download"), {"format": "csv"})
    assert export.status_code == 200
    b"".join(export.streaming_content)
    expected.append(
        ("manager_a", "manager", audit.EXPORTED, ("customer", None), audit.OK)
    )

    # An administrator gives sales_a the manager role, then deactivates the account.
    admin_web = Client(REMOTE_ADDR=CLIENT_IP)
    admin_web.post(LOGIN_URL, {"username": "root", "password": PASSWORD})
    expected.append(("root", "superuser", audit.LOGIN_OK, None, audit.OK))
    user_url = reverse("admin:accounts_user_change", args=[sales_rep.pk])
    groups = [
        str(Group.objects.get(name=Role.SALES).pk),
        str(Group.objects.get(name=Role.MANAGER).pk),
    ]
    response = admin_web.post(
        user_url, _admin_user_form(admin_web, sales_rep, groups=groups)
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    user_ref = ("user", sales_rep.pk)
    expected.append(("root", "superuser", audit.ROLE_CHANGED, user_ref, audit.OK))
    data = _admin_user_form(admin_web, sales_rep)
    data.pop("is_active")
    assert admin_web.post(user_url, data).status_code == 302
    expected.append(("root", "superuser", audit.USER_DEACTIVATED, user_ref, audit.OK))

    rows = _rows_after(mark)
    got = [
        (
            r.username,
            r.roles,
            r.action,
            (r.object_type, r.object_id) if r.object_type else None,
            r.outcome,
        )
        for r in rows
    ]
    assert got == expected
    assert {r.ip_address for r in rows} == {CLIENT_IP}
    # One request id per request, and each one a fresh uuid4 hex.
    assert all(re.fullmatch(r"[0-9a-f]{32}", r.request_id) for r in rows)
    assert len({r.request_id for r in rows}) == len(rows)
    assert [r.user_id for r in rows[:2]] == [sales_rep.pk, None]
    assert all(r.created_at.utcoffset() == dt.timedelta(0) for r in rows)
    assert rows[-1].detail == "sales_a"
    # The edit is in the change history, by sales_a.
    edits = Events.objects.tracks(own_customer).filter(pgh_label="update")
    assert edits.exists()


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
