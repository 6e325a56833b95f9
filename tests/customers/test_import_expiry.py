"""Personal data at rest expires (issue 11, finding 11): an upload holds clear ID numbers
in its file and, once validated, names, phones and encrypted ID numbers in its rows.
The file goes as soon as its rows are stored; an upload neither imported nor cancelled
within KEHU_IMPORT_UNCONFIRMED_HOURS is purged, rows and file, by a scheduled action.

The scheduler and the Celery tasks are the real ones, called as beat and a worker would.
"""

from __future__ import annotations

import datetime as dt
import os
import time
import zoneinfo
from pathlib import Path

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import formats, timezone
from pytest_django.asserts import assertContains, assertNotContains

from crm.scheduler import services as scheduler
from crm.scheduler.models import ScheduledAction
from customers import imports, tasks
from customers.models import Customer, ImportJob, ImportRow
from tests.customers.test_import import csv_bytes, url

SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")
UPLOADED_AT = dt.datetime(2026, 3, 2, 10, 0, tzinfo=SHANGHAI)
ID_ZHANG = "110105199001011232"
UPLOAD_URL = reverse("customers:import_upload")


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def as_manager(client, manager):
    client.force_login(manager)
    return client


@pytest.fixture
def clock():
    with time_machine.travel(UPLOADED_AT, tick=False) as traveller:
        yield traveller


def stored_files(media_root: Path) -> list[Path]:
    folder = media_root / "imports"
    return sorted(folder.iterdir()) if folder.exists() else []


def upload(client, capture) -> ImportJob:
    """Upload a file with a clear ID number; the validation task is not run yet."""
    content = csv_bytes(
        [["名称", "电话", "身份证号"], ["张三", "13800138000", ID_ZHANG]]
    )
    with capture():
        response = client.post(
            UPLOAD_URL, {"file": SimpleUploadedFile("客户.csv", content)}
        )
    assert response.status_code == 302
    return ImportJob.objects.latest("pk")


def deliver_due(now: dt.datetime, capture) -> list[int]:
    """One beat tick: the sweeper claims due actions; each is delivered as the Celery
    task would deliver it."""
    with capture(execute=False):
        ids = scheduler.actions_sweep(now=now)
    for action_id in ids:
        with capture(execute=True):
            scheduler.action_deliver(action_id=action_id, now=now)
    return ids


def shown(moment: dt.datetime) -> str:
    return formats.date_format(
        timezone.localtime(moment), "SHORT_DATETIME_FORMAT", use_l10n=True
    )


def test_the_uploaded_file_is_deleted_as_soon_as_its_rows_are_stored(
    as_manager, media_root, django_capture_on_commit_callbacks
):
    job = upload(as_manager, django_capture_on_commit_callbacks)
    assert ID_ZHANG.encode() in stored_files(media_root)[0].read_bytes()
    with django_capture_on_commit_callbacks(execute=True):
        tasks.import_job_validate_task(job.pk)
    job.refresh_from_db()
    assert (job.status, job.valid_rows) == ("ready", 1)
    assert not job.file
    assert stored_files(media_root) == []
    # The rows keep the number encrypted only, and the preview still works from them.
    row = ImportRow.objects.get(job=job)
    assert ID_ZHANG not in str(row.data) and row.data["id_cipher"]
    assertContains(as_manager.get(job.get_absolute_url()), "张三")


def test_an_unconfirmed_upload_is_purged_after_the_bound_and_its_page_says_so(
    as_manager, media_root, clock, django_capture_on_commit_callbacks
):
    job = upload(as_manager, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        tasks.import_job_validate_task(job.pk)
    expiry = UPLOADED_AT + dt.timedelta(hours=24)
    action = ScheduledAction.objects.get(kind=imports.IMPORT_EXPIRE, target_id=job.pk)
    assert action.due_at == expiry
    page = as_manager.get(job.get_absolute_url())
    assertContains(page, 'data-testid="import-expires"')
    assertContains(page, f"未确认的上传将于 {shown(expiry)} 过期")

    # An hour before: nothing is due, the preview stands.
    assert (
        deliver_due(expiry - dt.timedelta(hours=1), django_capture_on_commit_callbacks)
        == []
    )
    assert ImportRow.objects.filter(job=job).count() == 1

    clock.move_to(expiry + dt.timedelta(minutes=1))
    assert deliver_due(timezone.now(), django_capture_on_commit_callbacks) == [
        action.pk
    ]
    action.refresh_from_db()
    assert action.state == ScheduledAction.State.DONE
    job.refresh_from_db()
    assert (job.status, job.error) == ("cancelled", imports.EXPIRED)
    assert not ImportRow.objects.filter(job=job).exists()
    assert stored_files(media_root) == []

    page = as_manager.get(job.get_absolute_url())
    assert page.status_code == 200
    assertContains(page, 'data-testid="import-expired"')
    assertContains(page, "该上传在 24 小时内未确认")
    assertNotContains(page, "张三")
    assertNotContains(page, 'data-testid="import-decision"')
    assertContains(as_manager.get(UPLOAD_URL), "已过期")
    # Nothing left to import or to report; no 500 on the way.
    response = as_manager.post(url("import_job_confirm", job), follow=True)
    assertContains(response, "该上传已过期删除，请重新上传")
    assert not Customer.objects.filter(name="张三").exists()
    assert as_manager.get(url("import_job_progress", job)).status_code == 200
    report = as_manager.get(url("import_job_report", job))
    assert b"".join(report.streaming_content).decode("utf-8-sig").count("\n") == 1


def test_an_upload_no_worker_validated_is_purged_with_its_file(
    as_manager, media_root, clock, django_capture_on_commit_callbacks, settings
):
    settings.KEHU_IMPORT_UNCONFIRMED_HOURS = 2
    job = upload(as_manager, django_capture_on_commit_callbacks)
    assert len(stored_files(media_root)) == 1  # the broker lost the validation task
    assertContains(
        as_manager.get(job.get_absolute_url()),
        f"未确认的上传将于 {shown(UPLOADED_AT + dt.timedelta(hours=2))} 过期",
    )
    clock.move_to(UPLOADED_AT + dt.timedelta(hours=2, seconds=1))
    assert len(deliver_due(timezone.now(), django_capture_on_commit_callbacks)) == 1
    job.refresh_from_db()
    assert (job.status, job.error, bool(job.file)) == ("cancelled", "expired", False)
    assert stored_files(media_root) == []
    # A validation task that arrives late finds nothing to do and stores no rows.
    assert imports.import_job_validate(job_id=job.pk) is None
    assert not ImportRow.objects.filter(job=job).exists()


def test_a_confirmed_import_keeps_its_report_when_the_action_comes(
    as_manager, media_root, clock, django_capture_on_commit_callbacks
):
    job = upload(as_manager, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        tasks.import_job_validate_task(job.pk)
    with django_capture_on_commit_callbacks():
        as_manager.post(url("import_job_confirm", job))
    with django_capture_on_commit_callbacks(execute=True):
        tasks.import_job_execute_task(job.pk)
    clock.move_to(UPLOADED_AT + dt.timedelta(hours=25))
    assert len(deliver_due(timezone.now(), django_capture_on_commit_callbacks)) == 1
    job.refresh_from_db()
    assert (job.status, job.imported_rows, bool(job.file)) == ("done", 1, False)
    assert stored_files(media_root) == []
    report = as_manager.get(url("import_job_report", job))
    body = b"".join(report.streaming_content).decode("utf-8-sig")
    assert "张三" in body and ID_ZHANG not in body
    assertContains(as_manager.get(job.get_absolute_url()), 'data-testid="import-done"')


def test_the_daily_job_purges_uploads_from_before_the_action_and_stray_files(
    as_manager, manager, media_root, django_capture_on_commit_callbacks
):
    old = upload(as_manager, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        tasks.import_job_validate_task(old.pk)
    fresh = upload(as_manager, django_capture_on_commit_callbacks)
    # As an upload stored before the action existed: no action, a day old.
    ScheduledAction.objects.filter(kind=imports.IMPORT_EXPIRE).delete()
    ImportJob.objects.filter(pk=old.pk).update(
        created_at=timezone.now() - dt.timedelta(hours=25)
    )
    folder = media_root / "imports"
    stray, recent = folder / "stray.csv", folder / "recent.csv"
    for path in (stray, recent):
        path.write_bytes(ID_ZHANG.encode())
    two_days_ago = time.time() - 48 * 3600
    os.utime(stray, (two_days_ago, two_days_ago))

    with django_capture_on_commit_callbacks(execute=True):
        result = tasks.customers_daily_task()
    assert (result["imports_expired"], result["import_files_removed"]) == (1, 1)
    old.refresh_from_db()
    fresh.refresh_from_db()
    assert (old.status, old.error) == ("cancelled", "expired")
    assert not ImportRow.objects.filter(job=old).exists()
    assert fresh.status == "validating" and fresh.file
    assert sorted(p.name for p in stored_files(media_root)) == sorted(
        [Path(fresh.file.name).name, "recent.csv"]
    )
    # A second run finds nothing more.
    with django_capture_on_commit_callbacks(execute=True):
        again = tasks.customers_daily_task()
    assert (again["imports_expired"], again["import_files_removed"]) == (0, 0)


def test_an_upload_that_expires_while_it_is_validated_keeps_no_rows(
    as_manager, monkeypatch, django_capture_on_commit_callbacks
):
    """The expiry lands between two validation batches (during the pause after the
    first): the second batch finds the job cancelled and stores nothing."""
    content = csv_bytes(
        [["名称"]] + [[f"客户{n}"] for n in range(imports.VALIDATE_BATCH + 1)]
    )
    with django_capture_on_commit_callbacks():
        as_manager.post(UPLOAD_URL, {"file": SimpleUploadedFile("大.csv", content)})
    job = ImportJob.objects.get()
    expired = []

    def pause_then_expire(seconds: float) -> None:  # the clock is the outside world
        expired.append(imports.import_job_expire(job_id=job.pk))

    monkeypatch.setattr(imports.time, "sleep", pause_then_expire)
    assert imports.import_job_validate(job_id=job.pk) is None
    assert expired and expired[0] is not None
    job.refresh_from_db()
    assert (job.status, job.error) == ("cancelled", "expired")
    assert not ImportRow.objects.filter(job=job).exists()
