"""Customer import for a migration from another CRM (issue 18): rows with an invalid
phone, e-mail or ID number kept and flagged when the preview says so, a person's
organisation column, external ids so that a second import updates, the row limit as a
setting, and the retention purge of finished imports."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from pytest_django.asserts import assertContains, assertNotContains

from customers import imports, services
from customers import tasks as import_tasks
from customers.models import Customer, ImportJob, ImportRow
from tests.customers.test_import import (
    UPLOAD_URL,
    csv_bytes,
    report,
    upload_and_validate,
    url,
)

LIST_URL = reverse("customers:customer_list")


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def as_manager(client, manager):
    client.force_login(manager)
    return client


def confirm(client, capture, job: ImportJob, **choices: str) -> ImportJob:
    """Press 导入 on the preview with the fallbacks chosen, then run the import task."""
    data = {f"fallback_{name}": choice for name, choice in choices.items()}
    with capture() as callbacks:
        response = client.post(url("import_job_confirm", job), data)
    assert response.status_code == 302
    assert len(callbacks) == 1
    import_tasks.import_job_execute_task(job.pk)
    job.refresh_from_db()
    return job


def upload(client, capture, rows: list[list[object]], name: str = "迁移.csv"):
    return upload_and_validate(client, capture, name, csv_bytes(rows))


MESSY = [
    ["名称", "电话", "邮箱"],
    ["假区号公司", "0123-4567890", ""],
    ["坏邮箱客户", "13800138001", "not-an-email"],
    ["两样都坏", "0123-4567891", "also@bad"],
    ["好客户", "13800138002", "ok@example.com"],
]


# --- per-field fallbacks ------------------------------------------------------------


def test_rows_with_invalid_phones_are_refused_by_default(
    as_manager, django_capture_on_commit_callbacks
):
    job = upload(as_manager, django_capture_on_commit_callbacks, MESSY)
    assert (job.valid_rows, job.invalid_rows) == (1, 3)
    page = as_manager.get(job.get_absolute_url())
    assertContains(page, 'data-testid="fallbacks"')
    assertContains(page, "电话无效（2 行）")
    assertContains(page, "邮箱无效（2 行）")
    job = confirm(as_manager, django_capture_on_commit_callbacks, job)
    assert (job.imported_rows, job.invalid_rows) == (1, 3)
    assert list(Customer.objects.values_list("name", flat=True)) == ["好客户"]


def test_invalid_phones_are_left_out_and_flagged_when_the_preview_keeps_the_rows(
    as_manager, manager, django_capture_on_commit_callbacks
):
    job = upload(as_manager, django_capture_on_commit_callbacks, MESSY)
    job = confirm(as_manager, django_capture_on_commit_callbacks, job, phone="keep")
    assert (job.status, job.imported_rows, job.valid_rows, job.invalid_rows) == (
        "done",
        2,
        2,
        2,
    )
    assert job.fallbacks == {"phone": "keep"}
    kept = Customer.objects.get(name="假区号公司")
    assert kept.phone == "" and not kept.phones.exists()
    assert kept.review_flags == {"phone": "0123-4567890"}
    assert Customer.objects.get(name="好客户").review_flags == {}
    # A row also refused for its e-mail stays out: only phone was kept.
    assert not Customer.objects.filter(name__in=["坏邮箱客户", "两样都坏"]).exists()
    # The report says the row was imported, and why it is flagged.
    lines = {row[1]: row for row in report(as_manager, job)[1:]}
    assert lines["假区号公司"][3] == "已导入"
    assert "电话" in lines["假区号公司"][4]
    assert lines["坏邮箱客户"][3] == "有错误"

    # The customer page shows what to check; the list filters on it.
    detail = as_manager.get(kept.get_absolute_url())
    assertContains(detail, 'data-testid="review-flags"')
    assertContains(detail, "0123-4567890")
    listed = as_manager.get(LIST_URL, {"needs_review": "on"})
    assertContains(listed, "假区号公司")
    assertNotContains(listed, "好客户")
    assertContains(listed, 'data-testid="needs-review"')

    # Checked: the flag goes, on record.
    as_manager.post(reverse("customers:customer_review_clear", args=[kept.pk]))
    kept.refresh_from_db()
    assert kept.review_flags == {}
    assert kept.events.filter(pgh_label="update").exists()
    assertNotContains(as_manager.get(LIST_URL, {"needs_review": "on"}), "假区号公司")


def test_every_invalid_field_kept_imports_the_row_without_any_of_them(
    as_manager, django_capture_on_commit_callbacks
):
    job = upload(
        as_manager,
        django_capture_on_commit_callbacks,
        [
            ["名称", "电话", "邮箱", "身份证号"],
            ["两样都坏", "0123-4567891, 13900139000", "also@bad", "110105199001011233"],
        ],
    )
    assert job.valid_rows == 0
    job = confirm(
        as_manager,
        django_capture_on_commit_callbacks,
        job,
        phone="keep",
        email="keep",
        id_number="keep",
    )
    customer = Customer.objects.get(name="两样都坏")
    assert customer.phone == "13900139000"  # the valid number of the cell stays
    assert (customer.email, customer.id_number_index) == ("", None)
    # An invalid ID number is flagged, never kept.
    assert customer.review_flags == {
        "phone": "0123-4567891",
        "email": "also@bad",
        "id_number": "",
    }


def test_a_duplicate_phone_is_still_refused_whatever_the_fallbacks(
    as_manager, manager, django_capture_on_commit_callbacks
):
    services.customer_create(
        by=manager, data={"name": "老客户"}, phone_numbers=["13500135000"]
    )
    job = upload(
        as_manager,
        django_capture_on_commit_callbacks,
        [["名称", "电话"], ["撞号", "13500135000"], ["好", "13500135001"]],
    )
    job = confirm(as_manager, django_capture_on_commit_callbacks, job, phone="keep")
    assert not Customer.objects.filter(name="撞号").exists()
    assert job.imported_rows == 1


# --- organisations --------------------------------------------------------------------


def test_the_organisation_column_links_to_an_existing_one_or_creates_it(
    as_manager, manager, django_capture_on_commit_callbacks
):
    existing = services.customer_create(
        by=manager, data={"name": "华强贸易", "is_organization": True}
    )
    job = upload(
        as_manager,
        django_capture_on_commit_callbacks,
        [
            ["名称", "是机构", "外部编号", "所属机构", "所属机构编号"],
            ["某集团", "是", "C1", "", ""],
            ["张三", "", "P1", "华强贸易", ""],
            ["李四", "", "P2", "新公司", ""],
            ["王五", "", "P3", "新公司", ""],
            ["赵六", "", "P4", "", "C1"],
            ["钱七", "", "P5", "", "C9"],  # no such organisation, no name to create
        ],
    )
    assert job.valid_rows == 6
    job = confirm(as_manager, django_capture_on_commit_callbacks, job)
    assert job.imported_rows == 6

    def org_of(name: str) -> str | None:
        person = Customer.objects.get(name=name)
        return person.organization.name if person.organization else None

    assert Customer.objects.get(name="张三").organization == existing
    created = Customer.objects.get(name="新公司")
    assert created.is_organization and created.owner == manager
    assert Customer.objects.filter(name="新公司").count() == 1
    assert (org_of("李四"), org_of("王五")) == ("新公司", "新公司")
    assert org_of("赵六") == "某集团"
    assert org_of("钱七") is None
    lines = {row[1]: row for row in report(as_manager, job)[1:]}
    assert "已新建所属机构“新公司”" in lines["李四"][4]
    assert "C9" in lines["钱七"][4]
    # Linking is on the person's record.
    person = Customer.objects.get(name="李四")
    assert person.events.filter(pgh_label="update").exists()


def test_a_person_before_their_organisation_row_links_and_the_row_fills_it_in(
    as_manager, django_capture_on_commit_callbacks
):
    job = upload(
        as_manager,
        django_capture_on_commit_callbacks,
        [
            ["名称", "是机构", "外部编号", "城市", "所属机构", "所属机构编号"],
            ["孙八", "", "P1", "", "后到集团", "C2"],
            ["后到集团", "是", "C2", "杭州市", "", ""],
        ],
    )
    confirm(as_manager, django_capture_on_commit_callbacks, job)
    organisation = Customer.objects.get(external_id="C2")
    assert (organisation.name, organisation.city) == ("后到集团", "杭州市")
    assert Customer.objects.get(name="孙八").organization == organisation
    assert Customer.objects.filter(name="后到集团").count() == 1


# --- external ids: a second import updates --------------------------------------------


def test_a_second_import_of_the_same_external_ids_updates_instead_of_duplicating(
    as_manager, manager, django_capture_on_commit_callbacks
):
    header = ["名称", "电话", "城市", "外部编号", "来源系统"]
    first = upload(
        as_manager,
        django_capture_on_commit_callbacks,
        [header, ["张三", "13800000001", "北京市", "P1", "旧CRM"]],
    )
    confirm(as_manager, django_capture_on_commit_callbacks, first)
    zhang = Customer.objects.get(external_source="旧CRM", external_id="P1")

    second = upload(
        as_manager,
        django_capture_on_commit_callbacks,
        [
            header,
            ["张三丰", "13800000002", "上海市", "P1", "旧CRM"],
            # The same id from another system is another customer.
            ["另一个", "", "", "P1", "别的系统"],
        ],
    )
    assert (second.valid_rows, second.invalid_rows) == (2, 0)
    assertContains(as_manager.get(second.get_absolute_url()), "1 行的外部编号已导入过")
    second = confirm(as_manager, django_capture_on_commit_callbacks, second)
    assert second.imported_rows == 2
    assert Customer.objects.count() == 2
    zhang.refresh_from_db()
    assert (zhang.name, zhang.city, zhang.owner) == ("张三丰", "上海市", manager)
    assert sorted(zhang.phones.values_list("number", flat=True)) == [
        "13800000001",
        "13800000002",
    ]
    assert ImportRow.objects.get(job=second, line=2).customer_id == zhang.pk


def test_an_external_id_twice_in_one_file_is_refused(
    as_manager, django_capture_on_commit_callbacks
):
    job = upload(
        as_manager,
        django_capture_on_commit_callbacks,
        [["名称", "外部编号"], ["甲", "X1"], ["乙", "X1"]],
    )
    assert (job.valid_rows, job.invalid_rows) == (1, 1)
    row = ImportRow.objects.get(job=job, line=3)
    assert row.errors == ["外部编号 X1 与第 2 行重复。"]


# --- the row limit is a setting -----------------------------------------------------------


def test_the_row_limit_is_the_setting(as_manager, settings):
    settings.KEHU_IMPORT_MAX_ROWS = 4
    rows = [["名称"], *([f"客户{n}"] for n in range(4))]
    ok = as_manager.post(
        UPLOAD_URL, {"file": SimpleUploadedFile("a.csv", csv_bytes(rows))}
    )
    assert ok.status_code == 302
    over = as_manager.post(
        UPLOAD_URL,
        {"file": SimpleUploadedFile("b.csv", csv_bytes([*rows, ["再一个"]]))},
    )
    assertContains(over, "一次最多导入 4 行")
    settings.KEHU_IMPORT_MAX_ROWS = 120_000
    assert imports.max_rows() == 120_000


def test_a_large_csv_is_read_row_by_row(settings, tmp_path):
    """A file well past the old 50,000 rows, read through the stream reader."""
    settings.KEHU_IMPORT_MAX_ROWS = 60_000
    path = tmp_path / "big.csv"
    with path.open("w", encoding="gb18030", newline="") as handle:
        handle.write("名称,电话\r\n")
        for n in range(60_000):
            handle.write(f"客户{n},\r\n")
    with path.open("rb") as handle:
        encoding, rows = imports.read_rows(handle, ImportJob.Format.CSV)
        header, records = imports.split_header(rows)
        assert (encoding, header) == ("gb18030", ["名称", "电话"])
        assert sum(1 for _ in records) == 60_000


# --- retention ------------------------------------------------------------------------


def _done_job(client, capture, name: str) -> ImportJob:
    job = upload(client, capture, [["名称", "电话"], [name, "0123-4567890"]])
    return confirm(client, capture, job, phone="keep")


def test_finished_imports_lose_their_rows_and_files_after_the_retention_period(
    as_manager, settings, media_root, django_capture_on_commit_callbacks
):
    settings.KEHU_IMPORT_RETENTION_DAYS = 30
    old = _done_job(as_manager, django_capture_on_commit_callbacks, "旧导入")
    recent = _done_job(as_manager, django_capture_on_commit_callbacks, "新导入")
    # A file still held (a failed job's is discarded too, so plant one).
    ImportJob.objects.filter(pk=old.pk).update(
        finished_at=timezone.now() - dt.timedelta(days=31)
    )
    stored = media_root / "imports" / "left.csv"
    stored.parent.mkdir(parents=True, exist_ok=True)
    stored.write_bytes(b"x")
    ImportJob.objects.filter(pk=old.pk).update(file="imports/left.csv")

    with django_capture_on_commit_callbacks(execute=True):
        assert imports.import_jobs_purge_retained() == {"imports_purged": 1}
    old.refresh_from_db()
    assert old.purged_at is not None and not old.file
    assert not stored.exists()
    assert not ImportRow.objects.filter(job=old).exists()
    assert ImportRow.objects.filter(job=recent).exists()
    # The summary stays; the customer it created too.
    assert (old.status, old.imported_rows, old.total_rows) == ("done", 1, 1)
    page = as_manager.get(old.get_absolute_url())
    assertContains(page, 'data-testid="import-purged"')
    assertContains(page, "已导入 1 位客户")
    assert Customer.objects.filter(name="旧导入").exists()
    # Twice is harmless; the command purges at once with a shorter period.
    assert imports.import_jobs_purge_retained() == {"imports_purged": 0}
    call_command("import_purge", "--days", "0")
    assert not ImportRow.objects.filter(job=recent).exists()


def test_a_running_import_is_never_purged(
    as_manager, django_capture_on_commit_callbacks
):
    job = upload(as_manager, django_capture_on_commit_callbacks, [["名称"], ["甲"]])
    ImportJob.objects.filter(pk=job.pk).update(
        created_at=timezone.now() - dt.timedelta(days=90)
    )
    assert imports.import_jobs_purge_retained(days=0) == {"imports_purged": 0}
    assert ImportRow.objects.filter(job=job).exists()
