"""Units with owners imported through the customer import's machinery: upload, a
preview with row-level reasons, confirm, the task imports the good rows; owners
matched by phone and ID number; GBK; a second upload imports nothing twice."""

from __future__ import annotations

import csv
import io
import time
from decimal import Decimal

import openpyxl
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from pytest_django.asserts import assertContains

from customers import tasks
from customers.models import Customer, ImportJob
from service.models import Asset
from service.property import services
from service.property.models import Building, Phase, Project, Unit, UnitOwnership
from tests.property import builders

pytestmark = pytest.mark.django_db

UPLOAD_URL = reverse("property:import_upload")
HEADER = [
    "项目编码",
    "项目名称",
    "分期",
    "楼栋",
    "单元",
    "楼层",
    "房号",
    "户型",
    "装修",
    "合同面积",
    "实测面积",
    "合同交付日期",
    "业主姓名",
    "业主电话",
    "业主证件号",
    "共有人姓名",
    "共有人电话",
    "共有人证件号",
    "购房合同号",
]
ID_A = "11010519491231002X"
ID_B = "110105198001011238"


def row(room, name="王建国", phone="13800000001", **extra):
    cells = dict.fromkeys(HEADER, "")
    cells.update(
        {
            "项目编码": "CHG",
            "项目名称": "翠湖花园",
            "分期": "1",
            "楼栋": "3",
            "单元": "2",
            "房号": room,
            "户型": "三室两厅",
            "装修": "精装",
            "合同面积": "89.50",
            "实测面积": "90.12",
            "合同交付日期": "2026-12-31",
            "业主姓名": name,
            "业主电话": phone,
            "购房合同号": f"HT-{room}",
        }
    )
    cells.update(extra)
    return [cells[h] for h in HEADER]


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.KEHU_IMPORT_PAUSE_RATIO = 0


def csv_bytes(rows, encoding="utf-8-sig"):
    text = io.StringIO()
    csv.writer(text).writerows(rows)
    return text.getvalue().encode(encoding)


def xlsx_bytes(rows):
    book = openpyxl.Workbook()
    for cells in rows:
        book.active.append(cells)
    data = io.BytesIO()
    book.save(data)
    return data.getvalue()


def upload(client, capture, content, name="units.csv"):
    with capture() as callbacks:
        response = client.post(UPLOAD_URL, {"file": SimpleUploadedFile(name, content)})
    assert response.status_code == 302, response.content.decode()[:3000]
    job = ImportJob.objects.latest("pk")
    assert job.kind == "units"
    assert len(callbacks) == 1
    tasks.import_job_validate_task(job.pk)
    job.refresh_from_db()
    return job


def confirm(client, capture, job):
    with capture() as callbacks:
        response = client.post(reverse("customers:import_job_confirm", args=[job.pk]))
    assert response.status_code == 302
    assert len(callbacks) == 1
    while True:
        # Each task imports a slice and queues the next (a resumable job).
        with capture(execute=False) as more:
            tasks.import_job_execute_task(job.pk)
        job.refresh_from_db()
        if job.status != "importing" or not more:
            return job


ROWS = [
    HEADER,
    # 2: good, new owner with an ID number and a co-owner
    row(
        "1502",
        **{"业主证件号": ID_A, "共有人姓名": "李秀英", "共有人电话": "13800000002"},
    ),
    # 3: good, the same owner's second unit (an investor): one customer
    row("1503", name="王建国", phone="138 0000 0001"),
    # 4: no room
    row(""),
    # 5: bad phone
    row("1601", name="张三", phone="12345"),
    # 6: area not a number
    row("1602", name="李四", phone="13800000004", **{"合同面积": "八十九"}),
    # 7: the same unit again in the file
    row("1502", name="赵六", phone="13800000006"),
    # 8: a floor from the room number; shell; other building in words
    row("801", name="钱七", phone="13800000007", **{"楼栋": "5栋", "装修": "毛坯"}),
]


@pytest.mark.parametrize("fmt", ["csv", "gbk", "xlsx"])
def test_good_rows_are_imported_and_bad_rows_reported(
    client, manager, django_capture_on_commit_callbacks, fmt
):
    client.force_login(manager)
    content = {
        "csv": lambda: csv_bytes(ROWS),
        "gbk": lambda: csv_bytes(ROWS, "gbk"),
        "xlsx": lambda: xlsx_bytes(ROWS),
    }[fmt]()
    name = "units.xlsx" if fmt == "xlsx" else "units.csv"
    job = upload(client, django_capture_on_commit_callbacks, content, name)
    assert (job.status, job.valid_rows, job.invalid_rows) == ("ready", 3, 4)
    page = client.get(job.get_absolute_url())
    assertContains(page, "有错误的 4 行不会导入")
    for reason in (
        "缺少房号",
        "“12345”不是有效的电话号码",
        "合同面积“八十九”不是有效的面积数字",
        "与第 2 行是同一房间（CHG-1-3-2-1502）",
    ):
        assertContains(page, reason)
    assert not Unit.objects.exists()

    job = confirm(client, django_capture_on_commit_callbacks, job)
    assert (job.status, job.imported_rows, job.skipped_rows) == ("done", 3, 0)
    assertContains(client.get(job.get_absolute_url()), "已导入 3 条房间")
    project = Project.objects.get()
    assert (project.code, project.name) == ("CHG", "翠湖花园")
    assert Phase.objects.get().name == "1期"
    assert sorted(Building.objects.values_list("code", "name")) == [
        ("3", "3栋"),
        ("5栋", "5栋"),
    ]
    unit = Unit.objects.get(code="CHG-1-3-2-1502")
    assert (unit.floor, unit.fit_out, unit.contract_area, unit.layout) == (
        15,
        "finished",
        Decimal("89.50"),
        "三室两厅",
    )
    assert str(unit.contract_delivery_date) == "2026-12-31"
    assert Unit.objects.get(room="801").floor == 8
    wang = Customer.objects.get(name="王建国")
    assert (wang.kind, wang.phone, wang.owner) == ("owner", "13800000001", manager)
    assert wang.id_number_masked.endswith("002X")
    assert sorted(
        UnitOwnership.objects.filter(customer=wang).values_list("unit__room", flat=True)
    ) == ["1502", "1503"]
    co = unit.ownerships.get(role="co_owner")
    assert co.customer.name == "李秀英"
    assert Asset.objects.filter(customer=wang, kind="unit").count() == 2
    assert Customer.objects.count() == 3


def test_owners_are_matched_to_existing_customers_by_phone_and_by_id(
    client, manager, admin_user, django_capture_on_commit_callbacks
):
    by_phone = builders.make_owner(admin_user, name="老客户甲", phone="13800000011")
    by_id, _c = services.owner_find_or_create(
        by=admin_user, name="老客户乙", phone="13800000012", id_number=ID_B
    )
    client.force_login(manager)
    rows = [
        HEADER,
        row("101", name="甲", phone="+86 138-0000-0011"),
        row("102", name="老客户乙", phone="", **{"业主证件号": ID_B.lower()}),
        # phone of one customer, ID number of another
        row("103", name="丙", phone="13800000011", **{"业主证件号": ID_B}),
    ]
    job = upload(client, django_capture_on_commit_callbacks, csv_bytes(rows))
    assert (job.valid_rows, job.invalid_rows) == (2, 1)
    page = client.get(job.get_absolute_url())
    assertContains(page, "电话与证件号分别属于两位不同的现有客户")
    assertContains(page, "已匹配到一位现有客户")  # outside the manager's scope
    from crm.core.models import AccessLog

    assert AccessLog.objects.filter(
        action="duplicate_hidden", detail="unit import preview"
    ).exists()
    confirm(client, django_capture_on_commit_callbacks, job)
    assert Customer.objects.count() == 2
    assert Unit.objects.get(room="101").ownerships.get().customer == by_phone
    assert Unit.objects.get(room="102").ownerships.get().customer == by_id
    assert Customer.objects.get(pk=by_phone.pk).name == "老客户甲"  # not changed


def test_the_same_file_twice_imports_nothing_twice(
    client, manager, django_capture_on_commit_callbacks
):
    client.force_login(manager)
    rows = ROWS[:3]
    confirm(
        client,
        django_capture_on_commit_callbacks,
        upload(client, django_capture_on_commit_callbacks, csv_bytes(rows)),
    )
    again = upload(client, django_capture_on_commit_callbacks, csv_bytes(rows))
    assert (again.valid_rows, again.invalid_rows) == (0, 2)
    assertContains(client.get(again.get_absolute_url()), "已导入，业主和资料均相同")
    assert Unit.objects.count() == 2
    assert UnitOwnership.objects.count() == 3
    assert Customer.objects.count() == 2


def test_a_changed_row_updates_the_unit_and_another_owner_is_refused(
    client, manager, django_capture_on_commit_callbacks
):
    client.force_login(manager)
    confirm(
        client,
        django_capture_on_commit_callbacks,
        upload(client, django_capture_on_commit_callbacks, csv_bytes(ROWS[:3])),
    )
    rows = [
        HEADER,
        row("1502", **{"实测面积": "91.00"}),
        row("1503", name="别人", phone="13800000099"),
    ]
    job = upload(client, django_capture_on_commit_callbacks, csv_bytes(rows))
    assert (job.valid_rows, job.invalid_rows) == (1, 1)
    page = client.get(job.get_absolute_url())
    assertContains(page, "将更新 实测面积")
    assertContains(page, "已有主业主（王**），与表中业主不同")
    confirm(client, django_capture_on_commit_callbacks, job)
    assert Unit.objects.get(room="1502").measured_area == Decimal("91.00")
    assert not Customer.objects.filter(name="别人").exists()


def test_a_file_without_the_required_columns_is_refused(client, manager):
    client.force_login(manager)
    response = client.post(
        UPLOAD_URL,
        {
            "file": SimpleUploadedFile(
                "x.csv", csv_bytes([["楼栋", "房号"], ["1", "101"]])
            )
        },
    )
    assertContains(response, "项目编码", status_code=400)
    assert not ImportJob.objects.exists()


def test_the_template_downloads_and_reads_back(
    client, manager, django_capture_on_commit_callbacks
):
    client.force_login(manager)
    response = client.get(reverse("property:import_template"))
    content = b"".join(response.streaming_content)
    body = content.decode("utf-8-sig")
    assert body.splitlines()[0].startswith("项目编码,项目名称,分期,楼栋,单元,楼层,房号")
    job = upload(client, django_capture_on_commit_callbacks, content)
    assert (job.valid_rows, job.invalid_rows) == (1, 0)


def test_only_managers_and_admins_import_units(client, sales_rep, manager):
    client.force_login(manager)
    client.post(UPLOAD_URL, {"file": SimpleUploadedFile("u.csv", csv_bytes(ROWS[:2]))})
    job = ImportJob.objects.get()
    client.force_login(sales_rep)
    assert client.get(UPLOAD_URL).status_code == 403
    assert client.get(job.get_absolute_url()).status_code in (403, 404)


def test_a_thousand_rows_import(client, admin_user, django_capture_on_commit_callbacks):
    client.force_login(admin_user)
    rows = [HEADER]
    for n in range(1000):
        building, rest = divmod(n, 100)
        floor, position = divmod(rest, 4)
        rows.append(
            row(
                f"{floor + 1}{position + 1:02d}",
                name=f"业主{n}",
                phone=f"1390000{n:04d}",
                **{"楼栋": str(building + 1), "单元": "1"},
            )
        )
    started = time.monotonic()
    job = upload(client, django_capture_on_commit_callbacks, csv_bytes(rows, "gbk"))
    assert (job.valid_rows, job.invalid_rows) == (1000, 0)
    job = confirm(client, django_capture_on_commit_callbacks, job)
    elapsed = time.monotonic() - started
    assert (job.status, job.imported_rows) == ("done", 1000)
    assert Unit.objects.count() == 1000
    assert UnitOwnership.objects.filter(is_active=True).count() == 1000
    print(f"1,000 rows validated and imported in {elapsed:.1f} s")  # noqa: T201


def test_a_unit_registered_since_the_preview_skips_only_its_row(
    client, manager, admin_user, django_capture_on_commit_callbacks
):
    client.force_login(manager)
    job = upload(client, django_capture_on_commit_callbacks, csv_bytes(ROWS[:3]))
    assert job.valid_rows == 2
    # Someone registers room 1503 by hand, under another code, before the import.
    project, phase = builders.make_project(admin_user, code="CHG", phase="1")
    building = builders.make_building(admin_user, phase=phase, code="3")
    services.unit_save(
        by=admin_user,
        building=building,
        data={"entrance": "2", "floor": 15, "room": "1503", "code": "HAND-1503"},
    )
    job = confirm(client, django_capture_on_commit_callbacks, job)
    assert (job.imported_rows, job.skipped_rows) == (1, 1)
    assertContains(client.get(job.get_absolute_url()), "该楼栋的同一单元已有此房号")
    assert Unit.objects.get(code="CHG-1-3-2-1502").ownerships.count() == 2
    assert not Unit.objects.get(code="HAND-1503").ownerships.exists()
