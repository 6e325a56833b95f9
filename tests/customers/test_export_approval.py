"""Exports over KEHU_EXPORT_APPROVAL_ROWS need a second person (GB/T 35273-2020 §7.1).

Up to the limit the file comes at once; over it the manager asks with a reason, another
manager or admin who can see every customer in it approves or rejects on 导出审批, a
Celery task writes the file under KEHU_DATA_DIR/exports and the requester downloads it
once. Most tests run the task in this process (`export_request_produce_task(pk)`, the
Celery task's own code: on_commit does not fire inside a test transaction, so nothing
reaches a broker); the last one approves through a committed transaction and a real
Celery worker process builds the file.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import os

import pytest
import time_machine
from django.db import connection
from django.urls import reverse
from django.utils import timezone
from pytest_django.asserts import assertContains, assertNotContains

from crm.accounts.roles import Role
from crm.core import audit
from crm.core.models import AccessLog
from crm.notifications.models import Notification
from crm.scheduler.testing import celery_worker_argv, database_url
from crm.supervisor import Child, wait_for
from customers import services, tasks
from customers.models import Customer, ExportRequest
from tests.factories import CustomerFactory, UserFactory

CONFIRM_URL = reverse("customers:export_confirm")
DOWNLOAD_URL = reverse("customers:export_download")
CREATE_URL = reverse("customers:export_request_create")
REQUESTS_URL = reverse("customers:export_requests")
ID_NUMBER = "110105199001011232"
LIMIT = 3


def detail_url(export_request: ExportRequest) -> str:
    return reverse("customers:export_request_detail", args=[export_request.pk])


def decide_url(export_request: ExportRequest) -> str:
    return reverse("customers:export_request_decide", args=[export_request.pk])


def fetch_url(export_request: ExportRequest) -> str:
    return reverse("customers:export_request_download", args=[export_request.pk])


def _exports():
    return AccessLog.objects.filter(action=audit.EXPORTED, outcome=audit.OK)


@pytest.fixture(autouse=True)
def small_limit(settings, tmp_path):
    settings.KEHU_EXPORT_APPROVAL_ROWS = LIMIT
    settings.EXPORT_ROOT = tmp_path / "exports"
    return settings


@pytest.fixture
def manager_b(team_b):
    """A second manager of the same department: sees the same customers."""
    return UserFactory(username="manager_b", team=team_b, role=Role.MANAGER)


@pytest.fixture
def far_manager(other_team):
    return UserFactory(username="manager_far", team=other_team, role=Role.MANAGER)


@pytest.fixture
def many(sales_rep, outsider, far_outsider):
    """LIMIT + 2 customers in the department (one with an ID number and a formula
    name), one in another department."""
    made = [
        services.customer_create(
            by=sales_rep,
            data={"name": "=HYPERLINK(1)"},
            phone_numbers=["13800138000"],
            id_number=ID_NUMBER,
        )
    ]
    made += [CustomerFactory(owner=outsider, name=f"乙组{n}") for n in range(LIMIT + 1)]
    CustomerFactory(owner=far_outsider, name="华南客户")
    return made


def ask(client, reason: str = "季度回访名单", **params: str):
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return client.post(
        f"{CREATE_URL}?{query}" if query else CREATE_URL,
        {"reason": reason, "file_format": "csv"},
    )


@pytest.fixture
def pending(client, manager, many) -> ExportRequest:
    client.force_login(manager)
    response = ask(client)
    export_request = ExportRequest.objects.get()
    assert response.status_code == 302 and response["Location"] == detail_url(
        export_request
    )
    client.logout()
    return export_request


# --- up to the limit: at once ----------------------------------------------------------


def test_up_to_the_limit_the_file_comes_at_once(client, manager, sales_rep):
    for n in range(LIMIT):
        CustomerFactory(owner=sales_rep, name=f"甲组{n}")
    client.force_login(manager)
    page = client.get(CONFIRM_URL)
    assertContains(page, 'data-testid="export-csv"')
    assertNotContains(page, 'data-testid="export-request-form"')
    response = client.get(DOWNLOAD_URL, {"format": "csv"})
    assert response.status_code == 200
    assert _exports().get().row_count == LIMIT
    assert not ExportRequest.objects.exists()


def test_the_default_limit_is_200_rows(client, manager, sales_rep, settings):
    settings.KEHU_EXPORT_APPROVAL_ROWS = 200
    CustomerFactory.create_batch(200, owner=sales_rep)
    client.force_login(manager)
    assert client.get(DOWNLOAD_URL, {"format": "csv"}).status_code == 200
    CustomerFactory(owner=sales_rep)
    page = client.get(CONFIRM_URL)
    assertContains(page, "将导出 201 位客户")
    assertContains(page, 'data-testid="export-request-form"')
    assertNotContains(page, 'data-testid="export-csv"')


# --- over the limit: a request ---------------------------------------------------------


def test_over_the_limit_no_file_leaves_without_approval(client, manager, many):
    client.force_login(manager)
    page = client.get(CONFIRM_URL)
    assertContains(page, 'data-testid="export-needs-approval"')
    assertNotContains(page, 'data-testid="export-csv"')
    response = client.get(DOWNLOAD_URL, {"format": "csv"}, follow=True)
    assert response.redirect_chain[-1][0].startswith(CONFIRM_URL)
    assertContains(response, "需要另一位经理或管理员审批")
    assert not _exports().exists()


def test_a_request_keeps_its_filters_rows_and_reason(client, manager, many):
    client.force_login(manager)
    ask(client, reason="给呼叫中心的回访名单", stage="lead", sort="name")
    export_request = ExportRequest.objects.get()
    assert export_request.requested_by == manager
    assert export_request.status == ExportRequest.Status.PENDING
    assert export_request.filters == {"stage": "lead", "sort": "name"}
    assert export_request.row_count == LIMIT + 2
    assert export_request.reason == "给呼叫中心的回访名单"
    assert AccessLog.objects.filter(
        action=audit.EXPORT_REQUESTED, user=manager, row_count=LIMIT + 2
    ).exists()


def test_those_who_may_decide_are_told(
    client, manager, manager_b, far_manager, admin_user, many
):
    client.force_login(manager)
    ask(client)
    told = Notification.objects.filter(title__startswith="导出待审批")
    assert sorted(n.recipient.username for n in told) == ["admin_a", "manager_b"]
    assert told.first().url == detail_url(ExportRequest.objects.get())


def test_a_request_needs_a_reason(client, manager, many):
    client.force_login(manager)
    response = ask(client, reason="   ")
    assert response.status_code == 400
    assertContains(response, "请说明导出原因", status_code=400)
    assert not ExportRequest.objects.exists()


def test_unknown_filter_names_are_not_stored(client, manager, many):
    client.force_login(manager)
    ask(client, stage="lead", _connector="OR", owner__username="x")
    assert ExportRequest.objects.get().filters == {"stage": "lead"}


def test_invalid_filters_make_no_request(client, manager, many):
    client.force_login(manager)
    assert ask(client, days_since_contact="abc").status_code == 400
    assert not ExportRequest.objects.exists()


# --- deciding ----------------------------------------------------------------------------


def test_the_requester_cannot_approve_their_own_request(client, manager, pending):
    client.force_login(manager)
    page = client.get(detail_url(pending))
    assertNotContains(page, 'data-testid="export-decision"')
    response = client.post(decide_url(pending), {"decision": "approve"}, follow=True)
    assertContains(response, "不能审批自己的导出申请")
    pending.refresh_from_db()
    assert pending.status == ExportRequest.Status.PENDING
    assert pending not in client.get(REQUESTS_URL).context["pending"]


def test_another_manager_approves_and_the_requester_downloads_once(
    client, manager, manager_b, pending, settings, django_capture_on_commit_callbacks
):
    client.force_login(manager_b)
    listing = client.get(REQUESTS_URL)
    assert listing.context["pending"] == [pending]
    assertContains(client.get(detail_url(pending)), 'data-testid="export-decision"')
    client.post(decide_url(pending), {"decision": "approve", "note": "同意"})
    pending.refresh_from_db()
    assert (pending.status, pending.decided_by) == ("approved", manager_b)
    assert not settings.EXPORT_ROOT.exists()  # nothing is built in the web request

    tasks.export_request_produce_task(pending.pk)
    tasks.export_request_produce_task(pending.pk)  # a duplicated delivery: no-op
    pending.refresh_from_db()
    assert pending.status == ExportRequest.Status.PRODUCED
    (stored,) = settings.EXPORT_ROOT.glob("*.csv")
    stored_bytes = stored.read_bytes()
    assert hashlib.sha256(stored_bytes).hexdigest() == pending.sha256
    # Only the requester downloads it.
    assert client.get(fetch_url(pending)).status_code == 403

    client.force_login(manager)
    status = client.get(detail_url(pending), HTTP_HX_REQUEST="true")
    assertContains(status, 'data-testid="export-request-download"')
    with django_capture_on_commit_callbacks(execute=True):
        response = client.get(fetch_url(pending))
    assert response.status_code == 200
    body = b"".join(response.streaming_content)
    assert body == stored_bytes
    log = _exports().get()
    assert (log.user, log.row_count) == (manager, LIMIT + 2)
    assert log.detail.startswith(f"sha256={hashlib.sha256(body).hexdigest()};")
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert len(rows) == LIMIT + 3  # the header, then every customer in the department
    assert "'=HYPERLINK(1)" in [row[1] for row in rows]
    assert ID_NUMBER not in body.decode("utf-8-sig")  # ID numbers stay masked
    # Once: the file is gone, a second download is refused.
    assert not stored.exists()
    again = client.get(fetch_url(pending), follow=True)
    assertContains(again, "当前不可下载")
    assert _exports().count() == 1


def test_a_rejected_request_gets_no_file(client, manager, manager_b, pending, settings):
    client.force_login(manager_b)
    response = client.post(decide_url(pending), {"decision": "reject"}, follow=True)
    assertContains(response, "已拒绝该导出申请")
    tasks.export_request_produce_task(pending.pk)
    pending.refresh_from_db()
    assert pending.status == ExportRequest.Status.REJECTED
    assert not settings.EXPORT_ROOT.exists() or not list(settings.EXPORT_ROOT.iterdir())
    client.force_login(manager)
    assertContains(client.get(detail_url(pending)), 'data-testid="export-rejected"')
    assertContains(client.get(fetch_url(pending), follow=True), "当前不可下载")
    assert not _exports().exists()
    assert AccessLog.objects.filter(
        action=audit.EXPORT_REJECTED, user=manager_b
    ).exists()


def test_a_decided_request_cannot_be_decided_again(
    client, manager_b, admin_user, pending
):
    client.force_login(manager_b)
    client.post(decide_url(pending), {"decision": "reject"})
    client.force_login(admin_user)
    response = client.post(decide_url(pending), {"decision": "approve"}, follow=True)
    assertContains(response, "该申请已处理")
    pending.refresh_from_db()
    assert (pending.status, pending.decided_by) == ("rejected", manager_b)


def test_an_approver_who_cannot_see_every_customer_is_refused(
    client, team_a, manager, far_outsider
):
    """A regional admin's request holds another department's customers: a manager of
    the admin's department sees the request but not all of them, so may not approve."""
    regional_admin = UserFactory(username="admin_east", team=team_a, role=Role.ADMIN)
    for n in range(LIMIT + 1):
        CustomerFactory(owner=far_outsider, name=f"华南{n}")
    client.force_login(regional_admin)
    ask(client)
    export_request = ExportRequest.objects.get()
    client.force_login(manager)
    response = client.post(
        decide_url(export_request), {"decision": "approve"}, follow=True
    )
    assertContains(response, "该导出包含您无权查看的客户")
    export_request.refresh_from_db()
    assert export_request.status == ExportRequest.Status.PENDING


def test_another_departments_request_is_not_found(client, far_manager, pending):
    client.force_login(far_manager)
    assert client.get(detail_url(pending)).status_code == 404
    assert client.post(decide_url(pending), {"decision": "approve"}).status_code == 404
    assert pending not in client.get(REQUESTS_URL).context["pending"]


def test_the_file_holds_what_the_requester_may_see_when_it_is_built(
    client, manager, manager_b, pending, many, settings
):
    """Rows are read again at build time through the requester's visible list."""
    Customer.objects.filter(pk=many[1].pk).update(merged_into=many[0])
    client.force_login(manager_b)
    client.post(decide_url(pending), {"decision": "approve"})
    tasks.export_request_produce_task(pending.pk)
    pending.refresh_from_db()
    assert pending.produced_rows == LIMIT + 1


def test_an_unfetched_file_expires(client, manager, manager_b, pending, settings):
    client.force_login(manager_b)
    client.post(decide_url(pending), {"decision": "approve"})
    tasks.export_request_produce_task(pending.pk)
    (stored,) = settings.EXPORT_ROOT.glob("*.csv")
    client.force_login(manager)
    later = timezone.now() + dt.timedelta(hours=24, minutes=1)
    with time_machine.travel(later, tick=False):
        response = client.get(fetch_url(pending), follow=True)
    assertContains(response, "当前不可下载")
    pending.refresh_from_db()
    assert pending.status == ExportRequest.Status.EXPIRED
    assert not stored.exists()
    assert not _exports().exists()


def test_a_build_whose_worker_died_is_taken_over_once_its_lease_runs_out(
    client, manager, manager_b, pending, settings, django_capture_on_commit_callbacks
):
    client.force_login(manager_b)
    client.post(decide_url(pending), {"decision": "approve"})
    # A worker took the request and was killed half-way: its lease still holds.
    now = timezone.now()
    ExportRequest.objects.filter(pk=pending.pk).update(
        file_name="dead.csv", lease_until=now + dt.timedelta(minutes=1)
    )
    settings.EXPORT_ROOT.mkdir(parents=True)
    (settings.EXPORT_ROOT / "dead.part").write_bytes(b"half a file")
    tasks.export_request_produce_task(pending.pk)  # a duplicate: the lease is held
    pending.refresh_from_db()
    assert (pending.status, pending.file_name) == ("approved", "dead.csv")
    client.force_login(manager)
    with django_capture_on_commit_callbacks() as queued:
        client.get(detail_url(pending), HTTP_HX_REQUEST="true")
    assert not queued  # nothing to do while the lease holds
    with time_machine.travel(now + dt.timedelta(minutes=3), tick=False):
        with django_capture_on_commit_callbacks() as queued:
            client.get(detail_url(pending), HTTP_HX_REQUEST="true")
            client.get(detail_url(pending), HTTP_HX_REQUEST="true")
        assert len(queued) == 1  # queued again once, not on every poll
        tasks.export_request_produce_task(pending.pk)
    pending.refresh_from_db()
    assert pending.status == ExportRequest.Status.PRODUCED
    assert [p.suffix for p in settings.EXPORT_ROOT.iterdir()] == [".csv"]


# --- through a real Celery worker ---------------------------------------------------------


@pytest.fixture
def worker(transactional_db, tmp_path, settings):
    """One Celery worker process (prefork, -c 2) on this run's broker and test database,
    writing exports under its own KEHU_DATA_DIR."""
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url(connection.settings_dict),
        REDIS_URL=settings.CELERY_BROKER_URL,
        DJANGO_SETTINGS_MODULE="crm.settings.dev",
        DEBUG="0",
        LOG_LEVEL="WARNING",
        KEHU_DATA_DIR=str(tmp_path / "data"),
        PYTHONUNBUFFERED="1",
    )
    settings.EXPORT_ROOT = tmp_path / "data" / "exports"
    child = Child("worker", celery_worker_argv("kehu-export"), env, tmp_path / "w.log")
    child.start()
    try:
        yield child
    finally:
        child.stop()


@pytest.mark.django_db(transaction=True)
def test_an_approved_export_is_built_by_the_celery_worker(
    worker, client, manager, manager_b, many, settings
):
    client.force_login(manager)
    ask(client)
    export_request = ExportRequest.objects.get()
    client.force_login(manager_b)
    # The approval commits, then queues the task on the broker (transaction.on_commit).
    client.post(decide_url(export_request), {"decision": "approve"})
    client.force_login(manager)

    def built() -> bool:
        status = client.get(detail_url(export_request), HTTP_HX_REQUEST="true")
        return 'data-status="produced"' in status.content.decode()

    assert wait_for(built, timeout=60, interval=0.5), worker.log_path.read_text()
    response = client.get(fetch_url(export_request))
    body = b"".join(response.streaming_content)
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert len(rows) == LIMIT + 3
    log = _exports().get()
    assert log.detail.startswith(f"sha256={hashlib.sha256(body).hexdigest()};")
    assert not list(settings.EXPORT_ROOT.iterdir())  # handed out once, then deleted


# --- the only admin's requests (issue 13) --------------------------------------------------


def test_the_only_admins_request_is_told_to_and_decided_by_a_manager(
    client, admin_user, manager, far_manager, many
):
    client.force_login(admin_user)
    ask(client, q="乙组")  # the department's customers only
    export_request = ExportRequest.objects.get()
    assert (export_request.requested_by, export_request.row_count) == (
        admin_user,
        LIMIT + 1,
    )
    # No other admin: every manager may decide an admin in no team, and is told.
    told = Notification.objects.filter(title__startswith="导出待审批")
    assert sorted(n.recipient.username for n in told) == ["manager_a", "manager_far"]

    client.force_login(far_manager)
    refused = client.post(decide_url(export_request), {"decision": "approve"})
    assert refused.status_code == 302
    export_request.refresh_from_db()
    assert export_request.status == ExportRequest.Status.PENDING  # cannot see them all

    client.force_login(manager)
    assert client.get(REQUESTS_URL).context["pending"] == [export_request]
    client.post(decide_url(export_request), {"decision": "approve", "note": "同意"})
    export_request.refresh_from_db()
    assert (export_request.status, export_request.decided_by) == ("approved", manager)


def test_with_a_second_admin_managers_do_not_see_an_admins_request(
    client, admin_user, manager, many
):
    UserFactory(username="admin_b", team=None, role=Role.ADMIN)
    client.force_login(admin_user)
    ask(client, q="乙组")
    export_request = ExportRequest.objects.get()
    told = Notification.objects.filter(title__startswith="导出待审批")
    assert [n.recipient.username for n in told] == ["admin_b"]
    client.force_login(manager)
    assert client.get(detail_url(export_request)).status_code == 404


def test_an_admin_in_a_team_is_decided_by_the_managers_of_that_department(
    client, admin_user, manager, far_manager, many
):
    admin_user.team = manager.team
    admin_user.save(update_fields=["team"])
    client.force_login(admin_user)
    ask(client, q="乙组")
    told = Notification.objects.filter(title__startswith="导出待审批")
    assert [n.recipient.username for n in told] == ["manager_a"]
    client.force_login(far_manager)
    assert client.get(detail_url(ExportRequest.objects.get())).status_code == 404
