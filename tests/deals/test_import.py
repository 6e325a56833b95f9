"""Historical deals imported through the customer import's machinery: upload, a
preview with row-level reasons, confirm, the task imports good rows and reports bad
ones; totals kept; a second upload of the same file imports nothing twice."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import openpyxl
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from pytest_django.asserts import assertContains

from culture.deals.models import Deal, Payment
from customers import tasks
from customers.models import Customer, CustomerPhone, ImportJob
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

UPLOAD_URL = reverse("deals:import_upload")
HEADER = [
    "客户名称",
    "客户电话",
    "渠道",
    "商机名称",
    "产品/房号",
    "金额",
    "阶段",
    "负责人",
    "预计成交日期",
    "成交日期",
    "回款金额",
    "回款日期",
]


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def people(sales_rep, far_outsider):
    wang = CustomerFactory(owner=sales_rep, name="王建国", phone="13800000001")
    CustomerPhone.objects.create(customer=wang, number="13800000001", is_primary=True)
    agent = CustomerFactory(
        owner=sales_rep, name="华东置业代理", kind="agent", phone="13800000009"
    )
    CustomerPhone.objects.create(customer=agent, number="13800000009", is_primary=True)
    other = CustomerFactory(owner=far_outsider, name="外组客户", phone="13800000002")
    CustomerPhone.objects.create(customer=other, number="13800000002", is_primary=True)
    return {"wang": wang, "agent": agent, "other": other}


def csv_bytes(rows):
    text = io.StringIO()
    csv.writer(text).writerows(rows)
    return text.getvalue().encode("utf-8-sig")


def xlsx_bytes(rows):
    book = openpyxl.Workbook()
    for row in rows:
        book.active.append(row)
    data = io.BytesIO()
    book.save(data)
    return data.getvalue()


ROWS = [
    HEADER,
    # 2: good, won with a payment, through the agent (by name)
    [
        "王建国",
        "13800000001",
        "华东置业代理",
        "3号楼1201",
        "3-1201",
        "2,860,000",
        "签约",
        "sales_a",
        "",
        "2025-05-01",
        "860000",
        "2025-05-20",
    ],
    # 3: good, open, no payment, name differs (a warning)
    [
        "王先生",
        "13800000001",
        "",
        "车位B-12",
        "",
        "150000",
        "认购",
        "",
        "2026-09-30",
        "",
        "",
        "",
    ],
    # 4: customer of another team: refused
    ["外组客户", "13800000002", "", "5号楼", "", "100", "来访", "", "", "", "", ""],
    # 5: unknown stage, bad amount
    ["王建国", "13800000001", "", "别墅", "", "abc", "定金", "", "", "", "", ""],
    # 6: payment over the amount
    [
        "王建国",
        "13800000001",
        "",
        "商铺",
        "",
        "1000",
        "签约",
        "",
        "",
        "2025-01-01",
        "2000",
        "2025-01-02",
    ],
    # 7: an unknown owner and a channel that is not one
    [
        "王建国",
        "13800000001",
        "王建国",
        "写字楼",
        "",
        "5000",
        "来访",
        "nobody",
        "",
        "",
        "",
        "",
    ],
]


def upload(client, capture, content, name="deals.csv"):
    with capture() as callbacks:
        response = client.post(UPLOAD_URL, {"file": SimpleUploadedFile(name, content)})
    assert response.status_code == 302, response.content.decode()[:2000]
    job = ImportJob.objects.latest("pk")
    assert job.kind == "deals"
    assert len(callbacks) == 1
    tasks.import_job_validate_task(job.pk)
    job.refresh_from_db()
    return job


def confirm(client, capture, job):
    with capture() as callbacks:
        response = client.post(reverse("customers:import_job_confirm", args=[job.pk]))
    assert response.status_code == 302
    assert len(callbacks) == 1
    tasks.import_job_execute_task(job.pk)
    job.refresh_from_db()
    return job


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_good_rows_are_imported_and_bad_rows_reported(
    client, manager, sales_rep, people, django_capture_on_commit_callbacks, fmt
):
    client.force_login(manager)
    content = csv_bytes(ROWS) if fmt == "csv" else xlsx_bytes(ROWS)
    job = upload(client, django_capture_on_commit_callbacks, content, f"d.{fmt}")
    assert (job.status, job.valid_rows, job.invalid_rows) == ("ready", 2, 4)
    page = client.get(job.get_absolute_url())
    assertContains(page, "有错误的 4 行不会导入")
    for reason in (
        "没有找到电话为 13800000002 的客户",
        "阶段“定金”不存在",
        "金额“abc”不是有效金额",
        "将超过商机金额",
        "负责人“nobody”不存在",
        "渠道“王建国”没有找到唯一的经销商",
        "已按电话匹配",
    ):
        assertContains(page, reason)
    assert not Deal.objects.exists()

    job = confirm(client, django_capture_on_commit_callbacks, job)
    assert (job.status, job.imported_rows, job.skipped_rows) == ("done", 2, 0)
    assertContains(client.get(job.get_absolute_url()), "已导入 2 条商机")
    won = Deal.objects.get(title="3号楼1201")
    assert (won.status, won.stage.code, str(won.closed_on)) == (
        "won",
        "sign",
        "2025-05-01",
    )
    assert won.channel == people["agent"] and won.owner == sales_rep
    assert won.received_total == Decimal("860000")
    assert Payment.objects.get().received_on.isoformat() == "2025-05-20"
    wang = Customer.objects.get(pk=people["wang"].pk)
    assert wang.lifetime_value == Decimal("860000")
    parked = Deal.objects.get(title="车位B-12")
    assert (parked.status, parked.owner) == ("open", manager)


def test_the_same_file_twice_imports_nothing_twice(
    client, manager, people, django_capture_on_commit_callbacks
):
    client.force_login(manager)
    first = upload(client, django_capture_on_commit_callbacks, csv_bytes(ROWS[:3]))
    confirm(client, django_capture_on_commit_callbacks, first)
    again = upload(client, django_capture_on_commit_callbacks, csv_bytes(ROWS[:3]))
    assert (again.valid_rows, again.invalid_rows) == (0, 2)
    assertContains(client.get(again.get_absolute_url()), "同名同金额")
    assert Deal.objects.count() == 2
    assert Customer.objects.get(pk=people["wang"].pk).lifetime_value == 860000


def test_a_file_without_the_required_columns_is_refused(client, manager):
    client.force_login(manager)
    response = client.post(
        UPLOAD_URL,
        {
            "file": SimpleUploadedFile(
                "x.csv", csv_bytes([["商机名称", "金额"], ["a", "1"]])
            )
        },
    )
    assertContains(response, "客户电话")
    assert not ImportJob.objects.exists()


@pytest.mark.parametrize("persona", ["sales_rep", "service_agent", "readonly_user"])
def test_only_managers_and_admins_import_deals(request, client, persona):
    client.force_login(request.getfixturevalue(persona))
    assert client.get(UPLOAD_URL).status_code == 403
    assert client.get(reverse("deals:import_template")).status_code == 403


def test_the_template_downloads(client, manager):
    client.force_login(manager)
    response = client.get(reverse("deals:import_template"))
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    assert body.splitlines()[0].startswith("客户名称,客户电话,渠道,商机名称")


def test_another_users_deal_job_is_404(
    client, manager, admin_user, people, django_capture_on_commit_callbacks
):
    client.force_login(manager)
    job = upload(client, django_capture_on_commit_callbacks, csv_bytes(ROWS[:2]))
    client.force_login(admin_user)
    assert client.get(job.get_absolute_url()).status_code == 404
