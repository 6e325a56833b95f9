"""Customer import in chunks: a fixed number of queries per chunk whatever the row count,
and customers stored exactly as services.customer_create stores them one by one."""

from __future__ import annotations

import csv
import io

import pghistory
import pghistory.models
import pytest
from django.apps import apps
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from stdnum.cn import ric

from customers import identity, imports, services
from customers.models import Customer, CustomerPhone, CustomerProfile, ImportRow

ROWS = 1000
# Statements of one chunk (savepoints; lock its rows, owners, ID numbers, phones,
# 3 inserts, mark the rows, counters), of one task around its chunks (claim, checks,
# finish). A validation batch needs fewer.
QUERIES_PER_CHUNK = 14
QUERIES_PER_TASK = 14


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def id_number(n: int) -> str:
    body = f"11010519900101{n:03d}"
    return body + ric.calc_check_digit(body + "0")


def csv_upload(rows: list[list[str]]) -> SimpleUploadedFile:
    text = io.StringIO()
    csv.writer(text).writerows(rows)
    return SimpleUploadedFile("bulk.csv", text.getvalue().encode("utf-8-sig"))


def varied_rows(count: int, sales_rep) -> list[list[str]]:
    """Every kind of row the import stores: owner named, pool, importer; ID numbers,
    two phones (a landline), tags, choices, booleans, text fields."""
    header = ["名称", "电话", "类型", "阶段", "等级", "重点客户", "是机构", "省份",
              "城市", "地址", "邮箱", "标签", "身份证号", "备注", "负责人"]  # fmt: skip
    owners = ["", sales_rep.username, "公海", "没有这个人"]
    rows = [header]
    for n in range(count):
        rows.append(
            [f"批量客户{n}号", f"1390000{n:04d}" + (f", 010-6{n:07d}" if n % 7 == 0 else ""),
             ["业主", "企业", "dealer"][n % 3], "意向", "A", "是" if n % 5 == 0 else "",
             "是" if n % 3 == 1 else "否", "广东省", "深圳市", f"科技园路 {n} 号",
             f"c{n}@example.com" if n % 4 == 0 else "", "老带新、学区房",
             id_number(n) if n % 10 == 0 else "", "批量导入", owners[n % 4]]
        )  # fmt: skip
    return rows


def validated_job(by, rows: list[list[str]], capture):
    upload = csv_upload(rows)
    inspection = imports.inspect_upload(upload)
    with capture():
        job = imports.import_job_create(by=by, upload=upload, inspection=inspection)
    return imports.import_job_validate(job_id=job.pk)


def confirmed_job(by, rows: list[list[str]], capture):
    job = validated_job(by, rows, capture)
    with capture():
        return imports.import_job_confirm(by=by, job=job)


def test_a_thousand_rows_import_with_a_fixed_number_of_queries_per_chunk(
    manager, sales_rep, settings, django_capture_on_commit_callbacks
):
    settings.KEHU_IMPORT_PAUSE_RATIO = 0  # no pause between the chunks
    rows = varied_rows(ROWS, sales_rep)
    upload = csv_upload(rows)
    inspection = imports.inspect_upload(upload)
    with django_capture_on_commit_callbacks():
        job = imports.import_job_create(
            by=manager, upload=upload, inspection=inspection
        )
    with CaptureQueriesContext(connection) as validation:
        job = imports.import_job_validate(job_id=job.pk)
    assert (job.valid_rows, job.invalid_rows) == (ROWS, 0)
    batches = -(-ROWS // imports.VALIDATE_BATCH)
    assert len(validation) <= QUERIES_PER_CHUNK * batches + QUERIES_PER_TASK

    with django_capture_on_commit_callbacks():
        job = imports.import_job_confirm(by=manager, job=job)
    with (
        CaptureQueriesContext(connection) as execution,
        django_capture_on_commit_callbacks(),
    ):
        job = imports.import_job_execute(job_id=job.pk, limit=ROWS)
    assert (job.status, job.imported_rows, job.skipped_rows) == ("done", ROWS, 0)
    chunks = -(-ROWS // imports.IMPORT_CHUNK)
    assert chunks >= 2
    assert len(execution) <= QUERIES_PER_CHUNK * chunks + QUERIES_PER_TASK, "\n".join(
        q["sql"][:120] for q in execution.captured_queries
    )
    assert Customer.objects.filter(name__startswith="批量客户").count() == ROWS
    assert CustomerPhone.objects.filter(number__startswith="1390000").count() == ROWS
    assert (
        ImportRow.objects.filter(job=job, status="imported", customer__isnull=False)
        .values("customer")
        .distinct()
        .count()
        == ROWS
    )


# What differs between two creates of the same input: keys, clocks, the cipher's nonce.
VOLATILE = {"id", "created_at", "updated_at", "pool_entered_at", "id_number_cipher"}


def stored(customer: Customer) -> dict:
    """Everything the database holds for a customer, bar what VOLATILE names."""
    customer.refresh_from_db()
    fields = {
        f.attname: getattr(customer, f.attname)
        for f in Customer._meta.concrete_fields
        if f.attname not in VOLATILE
    }
    fields["id_number"] = (
        identity.decrypt(customer.id_number_cipher) if customer.id_number_cipher else ""
    )
    fields["in_pool_since_set"] = customer.pool_entered_at is not None
    fields["phones"] = list(
        customer.phones.order_by("-is_primary", "number").values_list(
            "number", "kind", "is_primary"
        )
    )
    profile = CustomerProfile.objects.get(customer=customer)
    fields["profile"] = {
        name: getattr(profile, name) for name in CustomerProfile.PREFERENCE_FIELDS
    }
    events = pghistory.models.Events.objects.tracks(customer).order_by("pgh_created_at")
    fields["events"] = [
        (
            e.pgh_label,
            {k: v for k, v in e.pgh_data.items() if k not in VOLATILE},
            e.pgh_context,
        )
        for e in events
    ]
    # The phones' and the profile's events (written per statement by the import's
    # COPYs, per row by customer_create's INSERTs): every column but keys and clocks.
    for key, model in (
        ("phone_events", apps.get_model("customers.CustomerPhoneEvent")),
        ("profile_events", apps.get_model("customers.CustomerProfileEvent")),
    ):
        fields[key] = [
            {
                k: v
                for k, v in row.items()
                if k
                not in {"pgh_id", "pgh_created_at", "pgh_obj_id", "pgh_context_id"}
                | {"customer_id"}
                | VOLATILE
            }
            | {
                "context": pghistory.models.Context.objects.get(
                    pk=row["pgh_context_id"]
                ).metadata
            }
            for row in model.objects.filter(customer_id=customer.pk)
            .order_by("pgh_id")
            .values()
        ]
    return fields


def test_imported_customers_are_stored_as_customer_create_stores_them(
    manager, sales_rep, django_capture_on_commit_callbacks
):
    rows = varied_rows(28, sales_rep)
    job = confirmed_job(manager, rows, django_capture_on_commit_callbacks)
    # What import_job_execute is given for each row (cleared once the job is done).
    waiting = list(
        ImportRow.objects.filter(job=job, status="valid")
        .order_by("line")
        .values_list("line", "data")
    )
    assert len(waiting) == 28
    with django_capture_on_commit_callbacks():
        job = imports.import_job_execute(job_id=job.pk)
    assert (job.status, job.imported_rows) == ("done", 28)
    imported = {
        line: stored(customer)
        for line, customer in (
            (row.line, row.customer)
            for row in ImportRow.objects.filter(job=job).select_related("customer")
        )
    }
    Customer.objects.filter(pk__in=job.rows.values("customer")).delete()

    owners = {manager.pk: manager, sales_rep.pk: sales_rep}
    for line, data in waiting:
        owner_id = data["owner_id"]
        cipher = data["id_cipher"]
        with pghistory.context(import_job=job.pk):
            customer = services.customer_create(
                by=manager,
                data=data["fields"],
                phone_numbers=data["phones"],
                id_number=identity.decrypt(cipher) if cipher else None,
                owner=None if owner_id is None else owners[owner_id],
            )
        assert imported[line] == stored(customer), line
    # The sample covers what the comparison is about.
    values = list(imported.values())
    assert {v["owner_id"] for v in values} == {manager.pk, sales_rep.pk, None}
    assert any(v["id_number"] for v in values)
    assert any(len(v["phones"]) == 2 for v in values)
    assert all(v["name_pinyin"] and v["name_initials"] for v in values)
    assert all(
        v["events"][0][2] == {"user": manager.pk, "import_job": job.pk} for v in values
    )
    assert all(
        len(v["phone_events"]) == len(v["phones"]) and len(v["profile_events"]) == 1
        for v in values
    )


def test_id_number_taken_after_the_preview_is_skipped_with_customer_creates_reason(
    manager, sales_rep, django_capture_on_commit_callbacks
):
    rows = varied_rows(12, sales_rep)
    job = confirmed_job(manager, rows, django_capture_on_commit_callbacks)
    services.customer_create(
        by=manager, data={"name": "抢先登记"}, id_number=id_number(10)
    )
    with django_capture_on_commit_callbacks():
        job = imports.import_job_execute(job_id=job.pk)
    assert (job.imported_rows, job.skipped_rows) == (11, 1)
    row = ImportRow.objects.get(job=job, status="skipped")
    assert row.name == "批量客户10号"
    assert row.errors == ["该身份证号已属于客户“抢先登记”。"]
    assert not Customer.objects.filter(name="批量客户10号").exists()
