"""Customer import: upload, a preview with row-level errors, then all valid rows or none.

The Celery tasks are the real task functions, called directly as a worker would.
"""

from __future__ import annotations

import csv
import datetime as dt
import io

import openpyxl
import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from pytest_django.asserts import assertContains, assertNotContains

from customers import identity, imports, services, tasks
from customers.models import Customer, CustomerPhone, ImportJob, ImportRow

UPLOAD_URL = reverse("customers:import_upload")
ID_ZHANG = "110105199001011232"
ID_LI = "440305198512124565"
ID_BAD_CHECKSUM = "110105199001011233"


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def as_manager(client, manager):
    client.force_login(manager)
    return client


def csv_bytes(rows: list[list[object]], encoding: str = "utf-8-sig") -> bytes:
    text = io.StringIO()
    csv.writer(text).writerows(rows)
    return text.getvalue().encode(encoding)


def xlsx_bytes(rows: list[list[object]]) -> bytes:
    workbook = openpyxl.Workbook()
    for row in rows:
        workbook.active.append(row)
    data = io.BytesIO()
    workbook.save(data)
    return data.getvalue()


def url(name: str, job: ImportJob) -> str:
    return reverse(f"customers:{name}", args=[job.pk])


def upload_and_validate(client, capture, name: str, content: bytes) -> ImportJob:
    """Upload as the browser does, then run the validation task the upload queued."""
    with capture() as callbacks:
        response = client.post(UPLOAD_URL, {"file": SimpleUploadedFile(name, content)})
    assert response.status_code == 302, response.content.decode()[:2000]
    job = ImportJob.objects.latest("pk")
    assert response["Location"] == job.get_absolute_url()
    assert len(callbacks) == 1  # the validation task, queued after commit
    tasks.import_job_validate_task(job.pk)
    job.refresh_from_db()
    return job


def confirm_and_import(client, capture, job: ImportJob) -> ImportJob:
    with capture() as callbacks:
        response = client.post(url("import_job_confirm", job))
    assert response.status_code == 302
    assert len(callbacks) == 1  # the import task
    tasks.import_job_execute_task(job.pk)
    job.refresh_from_db()
    return job


def report(client, job: ImportJob) -> list[list[str]]:
    response = client.get(url("import_job_report", job))
    assert response.status_code == 200
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.reader(io.StringIO(body)))


# --- encodings and formats ---------------------------------------------------------


def test_gbk_csv_saved_by_chinese_excel_is_read_and_imported(
    as_manager, manager, django_capture_on_commit_callbacks
):
    content = csv_bytes(
        [
            ["名称", "电话", "类型", "阶段", "等级", "省份", "城市", "区县", "地址"]
            + ["微信号", "邮箱", "标签", "身份证号", "备注", "负责人(username)"],
            ["张三", "138 0013 8000", "业主", "意向", "A", "广东省", "深圳市", "南山区"]
            + ["科技园路1号", "zs_wx", "zs@example.com", "学区房、老带新", ID_ZHANG]
            + ["喜欢安静", ""],
            ["深圳华强贸易有限公司", "0755-88886666", "企业", "成交", "B", "广东省"]
            + ["深圳市", "福田区", "", "", "", "", "", "", ""],
        ],
        encoding="gbk",
    )
    job = upload_and_validate(
        as_manager, django_capture_on_commit_callbacks, "客户.csv", content
    )
    assert (job.status, job.encoding) == ("ready", "gb18030")
    assert (job.total_rows, job.valid_rows, job.invalid_rows) == (2, 2, 0)

    job = confirm_and_import(as_manager, django_capture_on_commit_callbacks, job)
    assert (job.status, job.imported_rows, job.skipped_rows) == ("done", 2, 0)
    zhang = Customer.objects.get(name="张三")
    assert (zhang.kind, zhang.stage, zhang.tier) == ("owner", "prospect", "A")
    assert (zhang.province, zhang.city, zhang.district) == (
        "广东省",
        "深圳市",
        "南山区",
    )
    assert zhang.tags == ["学区房", "老带新"]
    assert zhang.owner == manager and zhang.team == manager.team
    assert zhang.id_number_masked == "1101**********1232"
    assert identity.decrypt(zhang.id_number_cipher) == ID_ZHANG
    assert zhang.profile is not None  # created through customers.services
    company = Customer.objects.get(name="深圳华强贸易有限公司")
    assert (company.kind, company.stage) == ("enterprise", "customer")
    assert list(company.phones.values_list("number", "kind")) == [
        ("075588886666", "landline")
    ]
    assert not job.file  # the uploaded file is gone once imported


def test_utf8_csv_with_bom_and_english_headers(
    as_manager, django_capture_on_commit_callbacks
):
    content = csv_bytes(
        [
            ["name", "phone", "kind", "stage", "tier", "tags"],
            ["王五", "+86 139 1234 5678", "dealer", "lead", "c", "华南"],
        ]
    )
    assert content.startswith(b"\xef\xbb\xbf")
    job = upload_and_validate(
        as_manager, django_capture_on_commit_callbacks, "customers.csv", content
    )
    assert (job.encoding, job.valid_rows) == ("utf-8-sig", 1)
    confirm_and_import(as_manager, django_capture_on_commit_callbacks, job)
    wang = Customer.objects.get(name="王五")
    assert (wang.phone, wang.kind, wang.tier, wang.tags) == (
        "13912345678",
        "dealer",
        "C",
        ["华南"],
    )


def test_xlsx_with_numeric_phone_cells_is_imported(
    as_manager, django_capture_on_commit_callbacks
):
    content = xlsx_bytes(
        [
            ["姓名", "手机", "身份证号", "重点客户", "来源"],
            ["李四", 13700137000, ID_LI, "是", "老带新"],
            ["赵六", 13600136000.0, None, None, None],
            [None, None, None, None, None],  # blank rows are ignored
        ]
    )
    job = upload_and_validate(
        as_manager, django_capture_on_commit_callbacks, "名单.xlsx", content
    )
    assert (job.file_format, job.valid_rows, job.invalid_rows) == ("xlsx", 2, 0)
    confirm_and_import(as_manager, django_capture_on_commit_callbacks, job)
    li = Customer.objects.get(name="李四")
    assert (li.phone, li.is_key_account, li.source) == ("13700137000", True, "referral")
    assert li.id_number_masked == "4403**********4565"
    assert Customer.objects.get(name="赵六").phone == "13600136000"


# --- the preview ----------------------------------------------------------------------


@pytest.fixture
def existing(manager):
    return services.customer_create(
        by=manager,
        data={"name": "老客户"},
        phone_numbers=["13500135000"],
        id_number=ID_LI,
    )


@pytest.fixture
def mixed_file(existing, sales_rep, far_outsider) -> bytes:
    """Rows 2, 7 and 9 are valid (9 with a warning); every other row has one fault."""
    return csv_bytes(
        [
            ["名称", "电话", "身份证号", "类型", "负责人"],
            ["好客户", "13800138000", ID_ZHANG, "", sales_rep.username],  # 2
            ["", "13800138001", "", "", ""],  # 3 missing name
            ["坏电话", "12345", "", "", ""],  # 4 bad phone
            ["坏身份证", "", ID_BAD_CHECKSUM, "", ""],  # 5 bad ID number
            ["同文件重复", "138-0013-8000", "", "", ""],  # 6 phone of row 2
            ["另一好客户", "13800138002", "", "企业", "公海"],  # 7
            ["已存在电话", "13500135000", "", "", ""],  # 8 existing phone
            ["外部门负责人", "13800138003", "", "", far_outsider.username],  # 9
            ["已存在身份证", "", ID_LI, "", ""],  # 10 existing ID number
            ["类型不对", "13800138004", "", "VIP", ""],  # 11 bad kind
            ["同文件身份证", "", ID_ZHANG, "", ""],  # 12 ID of row 2
        ]
    )


def test_preview_lists_every_bad_row_with_its_reason(
    as_manager, manager, sales_rep, mixed_file, django_capture_on_commit_callbacks
):
    count_before = Customer.objects.count()
    job = upload_and_validate(
        as_manager, django_capture_on_commit_callbacks, "mixed.csv", mixed_file
    )
    assert (job.total_rows, job.valid_rows, job.invalid_rows) == (11, 3, 8)
    assert Customer.objects.count() == count_before  # a preview writes no customer

    page = as_manager.get(job.get_absolute_url())
    assertContains(page, 'data-testid="valid-rows">3<')
    assertContains(page, 'data-testid="invalid-rows">8<')
    assertContains(page, "导入全部 3 条有效数据")
    reasons = dict(ImportRow.objects.filter(job=job).values_list("line", "errors"))
    expected = {
        3: "缺少名称。",
        4: "“12345”不是有效的电话号码。",
        5: "身份证号码无效，请核对（含校验位）。",
        6: "电话 13800138000 与第 2 行重复。",
        8: "电话 13500135000 已属于现有客户“老客户”。",
        10: "身份证号已属于现有客户“老客户”。",
        11: "类型“VIP”无效",
        12: "身份证号与第 2 行重复。",
    }
    for line, reason in expected.items():
        assert any(reason in text for text in reasons[line]), (line, reasons[line])
        assertContains(page, reason)
    for line in (2, 7, 9):
        assert reasons[line] == []
    assert ImportRow.objects.get(job=job, line=4).phone == "12345"  # as written
    sample = page.content.decode().split('data-testid="valid-sample"')[1]
    for owner in (sales_rep.username, "公海", manager.username):
        assert f"<td>{owner}</td>" in sample
    warning = ImportRow.objects.get(job=job, line=9).warnings
    assert "不在您的管理范围内，将由您负责" in warning[0]
    assertContains(page, "不在您的管理范围内，将由您负责")
    assertContains(page, 'data-testid="owner-rule"', count=0)  # upload page only
    assertContains(page, "填“公海”放入公海")


def test_existing_customer_of_another_department_is_not_named(
    as_manager, far_outsider, django_capture_on_commit_callbacks
):
    services.customer_create(
        by=far_outsider, data={"name": "华南的客户"}, phone_numbers=["13300133000"]
    )
    content = csv_bytes([["名称", "电话"], ["新客户", "13300133000"]])
    job = upload_and_validate(
        as_manager, django_capture_on_commit_callbacks, "x.csv", content
    )
    page = as_manager.get(job.get_absolute_url())
    assertContains(page, "已属于另一团队的现有客户")
    assertNotContains(page, "华南的客户")


def test_import_nothing_writes_nothing_and_deletes_the_upload(
    as_manager, mixed_file, django_capture_on_commit_callbacks
):
    count_before = Customer.objects.count()
    job = upload_and_validate(
        as_manager, django_capture_on_commit_callbacks, "mixed.csv", mixed_file
    )
    # The file went once its rows were stored (tests/customers/test_import_expiry.py).
    assert not job.file
    with django_capture_on_commit_callbacks(execute=True):
        response = as_manager.post(url("import_job_cancel", job))
    assert response["Location"] == UPLOAD_URL
    job.refresh_from_db()
    assert job.status == "cancelled"
    assert Customer.objects.count() == count_before
    assert not ImportRow.objects.filter(job=job).exists()
    assert not job.file
    # A cancelled job cannot be confirmed afterwards.
    response = as_manager.post(url("import_job_confirm", job), follow=True)
    assertContains(response, "该导入已确认或已取消")
    assert Customer.objects.count() == count_before


def test_import_valid_rows_writes_exactly_them_with_the_owner_rule(
    as_manager, manager, sales_rep, mixed_file, django_capture_on_commit_callbacks
):
    count_before = Customer.objects.count()
    job = upload_and_validate(
        as_manager, django_capture_on_commit_callbacks, "mixed.csv", mixed_file
    )
    job = confirm_and_import(as_manager, django_capture_on_commit_callbacks, job)
    assert (job.status, job.imported_rows, job.skipped_rows) == ("done", 3, 0)
    new = Customer.objects.exclude(name="老客户")
    assert Customer.objects.count() == count_before + 3
    owners = dict(new.values_list("name", "owner__username"))
    assert owners == {
        "好客户": sales_rep.username,  # the named salesperson
        "另一好客户": None,  # 公海
        "外部门负责人": manager.username,  # unknown to the importer: the importer
    }
    assert Customer.objects.get(name="另一好客户").pool_entered_at is not None

    rows = report(as_manager, job)
    assert rows[0] == ["行号", "名称", "电话", "结果", "原因", "客户编号"]
    by_line = {int(r[0]): r for r in rows[1:]}
    assert len(by_line) == 11
    assert by_line[2][3] == "已导入"
    assert by_line[2][5] == str(Customer.objects.get(name="好客户").pk)
    assert by_line[4][3] == "有错误"
    assert "不是有效的电话号码" in by_line[4][4]
    assert "将由您负责" in by_line[9][4]

    page = as_manager.get(job.get_absolute_url())
    assertContains(page, "导入完成：已导入 3 位客户")
    assertContains(page, 'data-testid="skipped-rows"')


def test_rerunning_the_import_task_never_duplicates(
    as_manager, django_capture_on_commit_callbacks
):
    content = csv_bytes(
        [["名称", "电话"]] + [[f"客户{n}", f"1380013{n:04d}"] for n in range(5)]
    )
    job = upload_and_validate(
        as_manager, django_capture_on_commit_callbacks, "five.csv", content
    )
    with django_capture_on_commit_callbacks():
        as_manager.post(url("import_job_confirm", job))

    # A first run that gets through two rows; its successor task is lost
    # (the worker died before the broker got it).
    with django_capture_on_commit_callbacks() as successor:
        imports.import_job_execute(job_id=job.pk, limit=2)
    assert len(successor) == 1
    job.refresh_from_db()
    assert (job.status, job.imported_rows) == ("importing", 2)
    assert Customer.objects.filter(name__startswith="客户").count() == 2

    # The task delivered again carries on from the third row.
    tasks.import_job_execute_task(job.pk)
    job.refresh_from_db()
    assert (job.status, job.imported_rows, job.skipped_rows) == ("done", 5, 0)
    # Delivered yet again (a duplicate message): nothing happens.
    tasks.import_job_execute_task(job.pk)
    imports.import_job_execute(job_id=job.pk)
    job.refresh_from_db()
    assert (job.imported_rows, job.skipped_rows) == (5, 0)
    assert Customer.objects.filter(name__startswith="客户").count() == 5
    assert CustomerPhone.objects.filter(number__startswith="1380013").count() == 5


def test_a_killed_workers_lease_is_taken_over_when_it_expires(
    as_manager, django_capture_on_commit_callbacks
):
    content = csv_bytes([["名称"], ["甲"], ["乙"]])
    job = upload_and_validate(
        as_manager, django_capture_on_commit_callbacks, "two.csv", content
    )
    with django_capture_on_commit_callbacks():
        as_manager.post(url("import_job_confirm", job))
    # A worker claimed the job and was killed: its lease still stands.
    ImportJob.objects.filter(pk=job.pk).update(
        lease_until=timezone.now() + imports.LEASE
    )
    with pytest.raises(imports.JobBusy):
        imports.import_job_execute(job_id=job.pk)
    assert not Customer.objects.filter(name__in=["甲", "乙"]).exists()
    with time_machine.travel(timezone.now() + imports.LEASE + dt.timedelta(seconds=1)):
        imports.import_job_execute(job_id=job.pk)
    job.refresh_from_db()
    assert (job.status, job.imported_rows) == ("done", 2)


def test_row_taken_after_the_preview_is_skipped_with_the_reason(
    as_manager, manager, django_capture_on_commit_callbacks
):
    content = csv_bytes([["名称", "电话"], ["抢先", "13800138000"], ["正常", ""]])
    job = upload_and_validate(
        as_manager, django_capture_on_commit_callbacks, "race.csv", content
    )
    services.customer_create(
        by=manager, data={"name": "别人先录入"}, phone_numbers=["13800138000"]
    )
    job = confirm_and_import(as_manager, django_capture_on_commit_callbacks, job)
    assert (job.imported_rows, job.skipped_rows) == (1, 1)
    assert not Customer.objects.filter(name="抢先").exists()
    row = ImportRow.objects.get(job=job, line=2)
    assert row.status == "skipped"
    assert "已属于客户“别人先录入”" in row.errors[0]


def test_a_file_over_one_task_slice_is_imported_in_successive_tasks(
    as_manager, settings, django_capture_on_commit_callbacks
):
    settings.KEHU_IMPORT_SLICE_ROWS = 20
    total = 60  # more than one slice: imported by a chain of tasks
    content = csv_bytes([["名称"]] + [[f"批量{n}"] for n in range(total)])
    job = upload_and_validate(
        as_manager, django_capture_on_commit_callbacks, "big.csv", content
    )
    assert job.valid_rows == total
    with django_capture_on_commit_callbacks():
        as_manager.post(url("import_job_confirm", job))
    with django_capture_on_commit_callbacks() as successor:
        tasks.import_job_execute_task(job.pk)
    assert len(successor) == 1
    job.refresh_from_db()
    assert (job.status, job.imported_rows, job.percent) == ("importing", 20, 33)
    page = as_manager.get(url("import_job_progress", job), HTTP_HX_REQUEST="true")
    assertContains(page, f"正在导入：20 / {total} 行")
    assertContains(page, 'aria-valuenow="33"')
    settings.KEHU_IMPORT_SLICE_ROWS = 500
    tasks.import_job_execute_task(job.pk)
    job.refresh_from_db()
    assert (job.status, job.imported_rows) == ("done", total)
    assert Customer.objects.filter(name__startswith="批量").count() == total


# --- the progress partial -------------------------------------------------------------


def test_progress_partial_polls_while_running_and_stops_when_done(
    as_manager, django_capture_on_commit_callbacks
):
    content = csv_bytes([["名称"], ["甲"]])
    with django_capture_on_commit_callbacks():
        as_manager.post(UPLOAD_URL, {"file": SimpleUploadedFile("a.csv", content)})
    job = ImportJob.objects.latest("pk")
    page = as_manager.get(job.get_absolute_url())
    assertContains(page, 'hx-trigger="every 1s"')
    assertContains(page, "正在校验：0 / 1 行")

    tasks.import_job_validate_task(job.pk)
    partial = as_manager.get(url("import_job_progress", job), HTTP_HX_REQUEST="true")
    assert "<html" not in partial.content.decode()
    assertNotContains(partial, "every 1s")
    assertContains(partial, 'data-testid="import-decision"')

    with django_capture_on_commit_callbacks():
        as_manager.post(url("import_job_confirm", job))
    partial = as_manager.get(url("import_job_progress", job), HTTP_HX_REQUEST="true")
    assertContains(partial, 'hx-trigger="every 1s"')
    assertContains(partial, 'role="progressbar"')

    tasks.import_job_execute_task(job.pk)
    partial = as_manager.get(url("import_job_progress", job), HTTP_HX_REQUEST="true")
    assertNotContains(partial, "every 1s")
    assertContains(partial, "导入完成")


def test_polling_requeues_a_job_no_worker_has_taken(
    as_manager, django_capture_on_commit_callbacks
):
    content = csv_bytes([["名称"], ["甲"]])
    with django_capture_on_commit_callbacks():
        as_manager.post(UPLOAD_URL, {"file": SimpleUploadedFile("a.csv", content)})
    job = ImportJob.objects.latest("pk")
    progress = url("import_job_progress", job)
    with django_capture_on_commit_callbacks() as fresh:
        as_manager.get(progress, HTTP_HX_REQUEST="true")
    assert fresh == []  # just queued: leave it to the worker
    # Redis lost the message (restarted without persistence): a minute later the
    # poll queues the job again, once.
    later = timezone.now() + imports.REQUEUE_AFTER + dt.timedelta(seconds=1)
    with time_machine.travel(later), django_capture_on_commit_callbacks() as requeued:
        as_manager.get(progress, HTTP_HX_REQUEST="true")
        as_manager.get(progress, HTTP_HX_REQUEST="true")
    assert len(requeued) == 1


def test_job_page_query_count_does_not_grow_with_bad_rows(
    as_manager, django_capture_on_commit_callbacks
):
    counts = []
    for size in (5, 60):
        content = csv_bytes([["名称", "电话"]] + [["", "1"] for _ in range(size)])
        job = upload_and_validate(
            as_manager, django_capture_on_commit_callbacks, "bad.csv", content
        )
        assert job.invalid_rows == size
        with CaptureQueriesContext(connection) as queries:
            response = as_manager.get(job.get_absolute_url())
        assert response.status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1]


# --- who may import, and bad uploads ---------------------------------------------------


@pytest.mark.parametrize("persona", ["sales_rep", "service_agent", "readonly_user"])
def test_roles_without_the_import_permission_get_403(client, request, persona):
    client.force_login(request.getfixturevalue(persona))
    assert client.get(UPLOAD_URL).status_code == 403
    assert client.get(reverse("customers:import_template")).status_code == 403
    content = csv_bytes([["名称"], ["甲"]])
    response = client.post(UPLOAD_URL, {"file": SimpleUploadedFile("a.csv", content)})
    assert response.status_code == 403
    assert not ImportJob.objects.exists()


def test_admin_may_import(client, admin_user):
    client.force_login(admin_user)
    assertContains(client.get(UPLOAD_URL), 'data-testid="import-upload"')


def test_another_users_job_is_404(
    as_manager, client, admin_user, django_capture_on_commit_callbacks
):
    job = upload_and_validate(
        as_manager,
        django_capture_on_commit_callbacks,
        "a.csv",
        csv_bytes([["名称"], ["甲"]]),
    )
    client.force_login(admin_user)
    for name in ("import_job_detail", "import_job_progress", "import_job_report"):
        assert client.get(url(name, job)).status_code == 404
    assert client.post(url("import_job_confirm", job)).status_code == 404
    assert client.post(url("import_job_cancel", job)).status_code == 404


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("customers.txt", b"name\nZhang", "只能上传 .csv 或 .xlsx 文件"),
        ("customers.xls", b"\xd0\xcf\x11\xe0", "只能上传 .csv 或 .xlsx 文件"),
        ("empty.csv", b"", "所提交的是空文件"),
        ("garbage.csv", bytes(range(256)) * 8, "不是文本格式的 CSV"),
        ("garbage2.csv", b"\x80\xff\xfd\x81" * 50, "无法识别文件编码"),
        ("garbage.xlsx", b"PK\x03\x04 not really a zip" * 10, "无法打开该 Excel"),
        ("noname.csv", "电话,城市\n13800138000,深圳\n".encode(), "没有找到“名称”"),
        ("header.csv", "名称,电话\n".encode(), "没有数据行"),
        ("blank.csv", b"\r\n\r\n", "文件是空的"),
    ],
)
def test_bad_upload_rerenders_with_a_clear_message(as_manager, name, content, message):
    response = as_manager.post(UPLOAD_URL, {"file": SimpleUploadedFile(name, content)})
    assert response.status_code == 200
    assertContains(response, message)
    assertContains(response, 'data-testid="import-upload"')
    assert not ImportJob.objects.exists()


def test_upload_without_a_file_asks_for_one(as_manager):
    response = as_manager.post(UPLOAD_URL, {})
    assert response.status_code == 200
    assertContains(response, "这个字段是必填项")


def test_row_and_size_limits_are_enforced(as_manager, settings):
    settings.KEHU_IMPORT_MAX_ROWS = 3
    content = csv_bytes([["名称"]] + [[f"客户{n}"] for n in range(4)])
    response = as_manager.post(
        UPLOAD_URL, {"file": SimpleUploadedFile("a.csv", content)}
    )
    assertContains(response, "一次最多导入 3 行")
    settings.KEHU_IMPORT_MAX_BYTES = 10
    response = as_manager.post(
        UPLOAD_URL, {"file": SimpleUploadedFile("a.csv", content)}
    )
    assertContains(response, "文件超过 0 MB")
    assert not ImportJob.objects.exists()


def test_upload_is_stored_under_a_random_name(
    as_manager, media_root, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks():
        as_manager.post(
            UPLOAD_URL,
            {
                "file": SimpleUploadedFile(
                    "../../etc/客户.csv", csv_bytes([["名称"], ["甲"]])
                )
            },
        )
    job = ImportJob.objects.get()
    assert job.original_name == "客户.csv"
    assert job.file.name.startswith("imports/")
    assert job.file.name.endswith(".csv")
    assert "客户" not in job.file.name
    assert (media_root / job.file.name).exists()


def test_template_download_is_a_csv_with_bom_that_imports_cleanly(
    as_manager, django_capture_on_commit_callbacks
):
    response = as_manager.get(reverse("customers:import_template"))
    body = b"".join(response.streaming_content)
    assert body.startswith(b"\xef\xbb\xbf")
    job = upload_and_validate(
        as_manager, django_capture_on_commit_callbacks, "template.csv", body
    )
    assert (job.valid_rows, job.invalid_rows, job.columns["ignored"]) == (1, 0, [])
