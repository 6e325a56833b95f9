"""入伙 reports (service/handover/reports.py, report_views.py): the daily report's
figures for a known set of cases, the rectification board, the refusal and no-show
lists, their XLSX, the acceptance form PDF (Chinese text, signature image), who may
open each, and a constant number of queries."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal

import pytest
from django.core.files.base import ContentFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from openpyxl import load_workbook
from PIL import Image
from pypdf import PdfReader

from crm.core.models import AccessLog
from service.defects.models import Defect
from service.handover import acceptance_pdf, reports
from service.handover.models import HandoverEvent
from service.handover.onsite_models import UnitHandover
from tests.handover.notice_builders import make_units
from tests.handover.onsite_builders import (
    add_defect,
    add_fee,
    add_reading,
    add_refusal,
    add_visit,
    at,
    make_case,
    make_category,
    make_contractor,
    make_station,
)

pytestmark = pytest.mark.django_db

S = UnitHandover.State
TODAY = None  # set per test from timezone.localdate()


def sheet_rows(response) -> list[tuple]:
    """The XLSX download's rows, without the empty cells openpyxl pads them with."""
    sheet = load_workbook(io.BytesIO(b"".join(response.streaming_content))).active
    rows = []
    for row in sheet.iter_rows(values_only=True):
        cells = ["" if cell is None else cell for cell in row]
        while cells and cells[-1] == "":
            cells.pop()
        rows.append(tuple(cells))
    return rows


def running_event(by, *, name: str = "翠湖花园二期集中交付") -> HandoverEvent:
    """A published event from yesterday to tomorrow (so today is one of its days)."""
    today = timezone.localdate()
    return HandoverEvent.objects.create(
        name=name,
        project_name="翠湖花园",
        venue="翠湖花园会所一楼",
        start_date=today - dt.timedelta(days=1),
        end_date=today + dt.timedelta(days=1),
        status=HandoverEvent.Status.PUBLISHED,
        created_by=by,
    )


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def day_scene(admin_user):
    """Six units in two buildings, cases over yesterday (Y) and today (D)."""
    event = running_event(admin_user)
    d = timezone.localdate()
    y = d - dt.timedelta(days=1)
    b3 = make_units(event, count=4, building="3")
    b5 = make_units(event, count=2, building="5")
    by = admin_user
    u1 = make_case(
        b3[0],
        state=S.ACCEPTED,
        checked_in_at=at(y, 9),
        finished_at=at(y, 11),
        outcome_at=at(y, 11),
        rating=5,
        by=by,
    )
    u2 = make_case(
        b3[1],
        state=S.ACCEPTED_WITH_DEFECTS,
        checked_in_at=at(d, 9),
        finished_at=at(d, 10, 30),
        outcome_at=at(d, 10, 30),
        rating=4,
        by=by,
    )
    u3 = make_case(
        b3[2],
        state=S.REFUSED,
        checked_in_at=at(d, 9, 30),
        finished_at=at(d, 10),
        outcome_at=at(d, 10),
        by=by,
    )
    add_refusal(u3, by=by, deadline=d + dt.timedelta(days=15))
    make_case(
        b3[3],
        state=S.ABSENT,
        checked_in_at=at(d, 8),
        outcome_at=at(d, 17),
        no_show_next=UnitHandover.NoShowNext.SECOND_NOTICE,
        by=by,
    )
    make_case(b5[0], state=S.IN_PROGRESS, checked_in_at=at(d, 10), by=by)
    make_case(
        b5[1],
        state=S.NOT_ACCEPTED,
        checked_in_at=at(d, 11),
        finished_at=at(d, 12),
        outcome_at=at(d, 12),
        rating=2,
        by=by,
    )
    category = make_category()
    for severity, created in (
        ("P0", at(d, 9)),
        ("P1", at(y, 9)),
        ("P2", at(d, 9, 10)),
        ("P2", at(d, 9, 20)),
        ("P2", at(d + dt.timedelta(days=1), 9)),  # after the day: never counted
    ):
        add_defect(
            event_unit=b3[1],
            case=u2,
            category=category,
            by=by,
            severity=severity,
            created_at=created,
            due_at=created + dt.timedelta(days=3),
        )
    add_fee(u2, "property_fee", "1000.00", by=by, paid_at=at(d, 10))
    add_fee(u1, "property_fee", "500.00", by=by, paid_at=at(y, 10))
    add_fee(u2, "maintenance_fund", "2000.00", by=by, paid_at=at(d, 10, 5))
    return event


# --- 交楼日报表 -------------------------------------------------------------------------


def test_the_daily_report_counts_the_day_and_up_to_it(day_scene):
    report = reports.daily_report(day_scene, timezone.localdate())
    counts = {key: (f.day, f.total) for key, _l, f in report.count_rows}
    assert counts == {
        "checked_in": (4, 5),
        "accepted": (0, 1),
        "accepted_defects": (1, 1),
        "not_accepted": (1, 1),
        "refused": (1, 1),
        "absent": (1, 1),
    }
    assert report.in_scope == 6
    assert (report.rate_day, report.rate) == (16.7, 33.3)
    # (90 + 30 + 60) / 3 that day; with yesterday's 120 minutes: 300 / 4.
    assert (report.onsite_minutes.day, report.onsite_minutes.total) == (60.0, 75.0)
    assert (report.satisfaction.day, report.satisfaction.total) == (3.0, 3.67)
    buildings = {
        b.name: (
            b.in_scope,
            b.checked_in,
            b.accepted_day,
            b.accepted,
            b.refused,
            b.absent,
            b.rate,
        )
        for b in report.buildings
    }
    assert buildings == {
        "3栋": (4, 3, 1, 2, 1, 1, 50.0),
        "5栋": (2, 2, 0, 0, 0, 0, 0.0),
    }
    assert {k: (f.day, f.total) for k, _l, f in report.defects} == {
        "P0": (1, 1),
        "P1": (0, 1),
        "P2": (2, 2),
    }
    assert {k: (a.day, a.total, n.day, n.total) for k, _l, a, n in report.fees} == {
        "property_fee": (Decimal("1000.00"), Decimal("1500.00"), 1, 2),
        "maintenance_fund": (Decimal("2000.00"), Decimal("2000.00"), 1, 1),
    }


def test_yesterday_s_report_knows_nothing_of_today(day_scene):
    report = reports.daily_report(day_scene, timezone.localdate() - dt.timedelta(1))
    counts = {key: (f.day, f.total) for key, _l, f in report.count_rows}
    assert counts["checked_in"] == (1, 1)
    assert counts["accepted"] == (1, 1)
    assert counts["refused"] == (0, 0)
    assert (report.rate_day, report.rate) == (16.7, 16.7)
    assert report.onsite_minutes.total == 120.0
    assert {k: f.total for k, _l, f in report.defects} == {"P0": 0, "P1": 1, "P2": 0}


def test_the_daily_report_page_shows_today_and_exports_it(login, manager, day_scene):
    client = login(manager)
    url = reverse("handover:daily_report", args=[day_scene.pk])
    response = client.get(url)
    assert response.status_code == 200
    assert response.context["report"].day == timezone.localdate()
    body = response.content.decode()
    assert "交楼日报表" in body and "3栋" in body
    response = client.get(
        url, {"day": timezone.localdate().isoformat(), "export": "xlsx"}
    )
    assert response.status_code == 200
    assert response["Content-Type"].startswith(
        "application/vnd.openxmlformats-officedocument.spreadsheetml"
    )
    assert "attachment" in response["Content-Disposition"]
    rows = sheet_rows(response)
    assert rows[2] == ("指标", "当日", "累计")
    assert ("已签到", "4", "5") in rows
    assert ("3栋", "4", "3", "1", "2", "1", "1", "50.0") in rows
    assert AccessLog.objects.filter(action="export", object_id=day_scene.pk).exists()


def test_the_report_date_defaults_to_the_event_s_nearest_day(admin_user):
    event = running_event(admin_user)
    today = timezone.localdate()
    assert reports.report_day(event) == today
    event.start_date = event.end_date = today + dt.timedelta(days=5)
    assert reports.report_day(event) == today + dt.timedelta(days=5)
    event.start_date = event.end_date = today - dt.timedelta(days=5)
    assert reports.report_day(event) == today - dt.timedelta(days=5)


@pytest.mark.parametrize(
    "day", ["2000-01-01", "2199-12-31", "0001-01-01", "9999-12-31", "2026-02-30", "x"]
)
def test_a_day_outside_the_event_is_a_form_error(login, manager, day_scene, day):
    response = login(manager).get(
        reverse("handover:daily_report", args=[day_scene.pk]), {"day": day}
    )
    assert response.status_code == 400
    assert response.context["form"].errors["day"]
    assert 'data-testid="form-error"' in response.content.decode()


def test_the_day_after_the_event_is_refused_too(login, manager, day_scene):
    after = (day_scene.end_date + dt.timedelta(days=1)).isoformat()
    response = login(manager).get(
        reverse("handover:daily_report", args=[day_scene.pk]), {"day": after}
    )
    assert response.status_code == 400
    assert "日期须在" in response.content.decode()


# --- 整改看板 -----------------------------------------------------------------------------


@pytest.fixture
def board_scene(admin_user):
    event = running_event(admin_user)
    (eu,) = make_units(event, count=1)
    category = make_category()
    a, b = make_contractor("甲建筑公司"), make_contractor("乙门窗公司")
    now = timezone.now()
    days = dt.timedelta(days=1)
    st = Defect.State
    specs = {
        "d1": (a, st.OPEN, "P2", 2, 1, None),
        "d2": (a, st.IN_PROGRESS, "P1", 10, -1, None),
        "d3": (a, st.CLOSED, "P2", 5, -1, -2),
        "d4": (a, st.CLOSED, "P2", 20, -10, -5),
        "d5": (b, st.ASSIGNED, "P0", 40, -30, None),
        "d6": (None, st.OPEN, "P2", 1, 0.1, None),
        "d7": (b, st.VOID, "P2", 3, 1, None),
        "d8": (b, st.FORCE_CLOSED, "P1", 6, 2, -1),
    }
    made = {}
    for key, (who, state, severity, age, due, closed) in specs.items():
        made[key] = add_defect(
            event_unit=eu,
            category=category,
            by=admin_user,
            contractor=who,
            state=state,
            severity=severity,
            created_at=now - age * days,
            due_at=now + due * days,
            closed_at=now + closed * days if closed is not None else None,
            description=f"问题{key}",
        )
    return {"event": event, "a": a, "b": b, "defects": made, "now": now}


def test_the_board_counts_open_overdue_closed_and_on_time(admin_user, board_scene):
    defects = reports.board_defects(admin_user, event=board_scene["event"])
    board = reports.rectification_board(defects, now=board_scene["now"])
    assert (board.open, board.overdue, board.closed, board.on_time) == (4, 2, 3, 2)
    assert board.on_time_rate == 66.7
    assert board.ages == [("0-7", 2), ("8-30", 1), ("30+", 1)]
    assert {k: (o, late) for k, _l, o, late in board.severities} == {
        "P0": (1, 1),
        "P1": (1, 1),
        "P2": (2, 0),
    }
    rows = {
        c.name: (c.open, c.overdue, c.closed, c.on_time, c.on_time_rate)
        for c in board.contractors
    }
    assert rows == {
        "甲建筑公司": (2, 1, 2, 1, 50.0),
        "乙门窗公司": (1, 1, 1, 1, 100.0),
        "": (1, 0, 0, 0, None),
    }


def test_the_board_filters_by_contractor_and_severity(admin_user, board_scene):
    a = board_scene["a"]
    board = reports.rectification_board(
        reports.board_defects(admin_user, contractor=a), now=board_scene["now"]
    )
    assert (board.open, board.closed) == (2, 2)
    board = reports.rectification_board(
        reports.board_defects(admin_user, severity="P0"), now=board_scene["now"]
    )
    assert (board.open, board.overdue) == (1, 1)


def test_the_board_s_items_come_most_urgent_first_in_keyset_pages(
    admin_user, board_scene
):
    d = board_scene["defects"]
    defects = reports.board_defects(admin_user, event=board_scene["event"])
    first, after = reports.board_items(defects, limit=2)
    assert first == [d["d5"], d["d2"]]
    assert after == d["d2"].pk
    second, after = reports.board_items(defects, after=d["d2"], limit=2)
    assert second == [d["d6"], d["d1"]]
    assert after is None


def test_the_board_page_filters_pages_and_exports(login, manager, board_scene):
    client = login(manager)
    url = reverse("handover:rectification_board")
    event = board_scene["event"]
    response = client.get(url, {"event": event.pk})
    assert response.status_code == 200
    body = response.content.decode()
    assert "甲建筑公司" in body and "问题d5" in body and "问题d7" not in body
    response = client.get(
        url, {"event": event.pk, "after": board_scene["defects"]["d6"].pk}
    )
    assert [d.description for d in response.context["items"]] == ["问题d1"]
    response = client.get(
        url, {"event": event.pk, "export": "xlsx", "table": "contractors"}
    )
    rows = list(
        load_workbook(
            io.BytesIO(b"".join(response.streaming_content))
        ).active.iter_rows(values_only=True)
    )
    assert rows[0][:3] == ("责任单位", "未完成", "已超期")
    assert ("甲建筑公司", "2", "1", "2", "1", "50.0") in rows
    response = client.get(url, {"event": event.pk, "export": "xlsx", "table": "items"})
    rows = list(
        load_workbook(
            io.BytesIO(b"".join(response.streaming_content))
        ).active.iter_rows(values_only=True)
    )
    assert rows[0][0] == "编号" and len(rows) == 5
    assert [r[5] for r in rows[1:]] == ["问题d5", "问题d2", "问题d6", "问题d1"]


@pytest.mark.parametrize(
    "query",
    [
        {"contractor": "abc"},
        {"severity": "P9"},
        {"event": "999999999999999999999"},
        {"contractor": "987654321"},
    ],
)
def test_bad_board_filters_are_form_errors(login, manager, board_scene, query):
    response = login(manager).get(reverse("handover:rectification_board"), query)
    assert response.status_code == 400
    assert 'data-testid="form-error"' in response.content.decode()


def test_a_draft_event_s_defects_are_not_on_a_sales_visible_board(
    login, manager, admin_user, board_scene
):
    board_scene["event"].status = HandoverEvent.Status.DRAFT
    board_scene["event"].save()
    # Managers plan drafts, so they still see them; the filter names only events seen.
    response = login(manager).get(
        reverse("handover:rectification_board"), {"event": board_scene["event"].pk}
    )
    assert response.status_code == 200


# --- 拒收 and 未到访 ----------------------------------------------------------------------


def test_the_refusal_list_shows_reason_details_and_deemed_delivery(
    login, manager, day_scene
):
    response = login(manager).get(reverse("handover:refusal_list", args=[day_scene.pk]))
    assert response.status_code == 200
    body = response.content.decode()
    deadline = (timezone.localdate() + dt.timedelta(days=15)).isoformat()
    assert "质量问题" in body and "客厅墙面大面积开裂" in body and deadline in body
    assert response.context["pareto"] == [("quality", "质量问题", 1)]
    response = login(manager).get(
        reverse("handover:refusal_list", args=[day_scene.pk]), {"reason": "area"}
    )
    assert not response.context["page"].object_list


def test_the_no_show_list_shows_the_next_step(login, manager, day_scene):
    url = reverse("handover:no_show_list", args=[day_scene.pk])
    response = login(manager).get(url)
    assert response.status_code == 200
    (case,) = response.context["page"].object_list
    assert case.state == S.ABSENT
    assert "再次通知" in response.content.decode()
    assert (
        not login(manager).get(url, {"next": "scattered"}).context["page"].object_list
    )
    response = login(manager).get(url, {"export": "xlsx"})
    rows = list(
        load_workbook(
            io.BytesIO(b"".join(response.streaming_content))
        ).active.iter_rows(values_only=True)
    )
    assert rows[0] == ("房间", "业主", "电话", "预约日期", "登记时间", "后续", "说明")
    assert rows[1][5] == "再次通知"


def test_phones_are_masked_for_a_role_that_may_not_see_them(
    login, manager, day_scene, settings
):
    phone = UnitHandover.objects.get(state=S.REFUSED).customer.phone
    url = reverse("handover:refusal_list", args=[day_scene.pk])
    assert phone in login(manager).get(url).content.decode()
    settings.KEHU_UNMASKED_ROLES = ["admin"]
    body = login(manager).get(url).content.decode()
    assert phone not in body and phone[:3] + "****" + phone[-4:] in body
    response = login(manager).get(url, {"export": "xlsx"})
    rows = list(
        load_workbook(
            io.BytesIO(b"".join(response.streaming_content))
        ).active.iter_rows(values_only=True)
    )
    assert rows[0][:4] == ("房间", "业主", "电话", "拒收原因")
    assert rows[1][2] == phone[:3] + "****" + phone[-4:]
    assert rows[1][3] == "质量问题"


# --- 验房交接单 -----------------------------------------------------------------------------


def signature_png() -> bytes:
    image = Image.new("RGB", (120, 40), "white")
    for x in range(10, 110):
        image.putpixel((x, 20 + (x % 7) - 3), (0, 0, 0))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


@pytest.fixture
def signed_case(admin_user, service_agent, media):
    event = running_event(admin_user)
    (eu,) = make_units(event, count=1)
    d = timezone.localdate()
    case = make_case(
        eu,
        state=S.ACCEPTED_WITH_DEFECTS,
        checked_in_at=at(d, 9),
        finished_at=at(d, 10, 40),
        outcome_at=at(d, 10, 40),
        key_action=UnitHandover.KeyAction.TO_OWNER,
        key_items={"entrance": 3, "access_card": 2},  # as the keys station stores them
        keys_handed_at=at(d, 10, 35),
        signed_at=at(d, 10, 38),
        by=admin_user,
    )
    case.signature.save("sign.png", ContentFile(signature_png()), save=True)
    inspection = make_station(event, "inspection", 1)
    keys = make_station(event, "keys", 2)
    add_visit(
        case,
        inspection,
        started_at=at(d, 9, 10),
        finished_at=at(d, 9, 50),
        operator=service_agent,
    )
    add_visit(case, keys, started_at=at(d, 10, 30), finished_at=at(d, 10, 35))
    add_reading(case, "water", "123.45", by=admin_user, number="W-778")
    add_reading(case, "electricity", "88.10", by=admin_user)
    add_fee(case, "property_fee", "3600.00", by=admin_user, paid_at=at(d, 10, 10))
    add_defect(
        event_unit=eu,
        case=case,
        category=make_category("瓷砖空鼓"),
        by=admin_user,
        severity="P1",
        created_at=at(d, 9, 30),
        due_at=at(d + dt.timedelta(days=1), 9, 30),
        description="主卧地砖空鼓两块",
    )
    return case


def pdf_text(data: bytes) -> str:
    reader = PdfReader(io.BytesIO(data))
    return "".join("".join(page.extract_text().split()) for page in reader.pages)


def test_the_acceptance_form_prints_in_chinese_with_the_signature(
    login, manager, signed_case
):
    response = login(manager).get(
        reverse("handover:acceptance_form_pdf", args=[signed_case.pk])
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"].startswith("attachment;")
    data = response.content
    text = pdf_text(data)
    unit = signed_case.event_unit.unit
    for expected in (
        "验房交接单",
        unit.label,
        signed_case.customer.name,
        "联合验房",
        "钥匙交接",
        "水表",
        "W-778",
        "123.45",
        "88.10",
        "入户门钥匙",
        "物业费",
        "3600.00",
        "主卧地砖空鼓两块",
        "带问题收楼",
    ):
        assert expected in text, expected
    reader = PdfReader(io.BytesIO(data))
    fonts = str(reader.pages[0]["/Resources"]["/Font"].get_object())
    assert "CJK" in "".join(
        str(f.get_object()["/BaseFont"])
        for f in reader.pages[0]["/Resources"]["/Font"].get_object().values()
    ), fonts
    images = [image for page in reader.pages for image in page.images]
    assert images, "the signature image is embedded"
    assert images[0].image.size == (120, 40)
    assert AccessLog.objects.filter(
        action="customer_viewed", object_id=signed_case.pk
    ).exists()


def test_a_case_without_a_signature_says_it_is_not_signed(admin_user, signed_case):
    signed_case.signature = ""
    signed_case.save()
    form = acceptance_pdf.form_for(signed_case, user=admin_user)
    assert form.signature == ""
    assert "业主尚未签收" in pdf_text(acceptance_pdf.render(form))


def test_a_signature_file_that_is_not_an_image_is_left_out(admin_user, signed_case):
    signed_case.signature.save("sign.png", ContentFile(b"<svg/>"), save=True)
    assert acceptance_pdf.signature_data_uri(signed_case) == ""


def test_the_form_masks_the_owner_s_phone_for_a_role_that_may_not_see_it(
    service_agent, signed_case, settings
):
    phone = signed_case.customer.phone
    settings.KEHU_UNMASKED_ROLES = ["admin"]
    form = acceptance_pdf.form_for(signed_case, user=service_agent)
    assert form.phone == phone[:3] + "****" + phone[-4:]


# --- access ---------------------------------------------------------------------------


def report_urls(event):
    return [
        reverse("handover:daily_report", args=[event.pk]),
        reverse("handover:refusal_list", args=[event.pk]),
        reverse("handover:no_show_list", args=[event.pk]),
        reverse("handover:rectification_board"),
    ]


def test_reports_are_for_managers_and_admins(
    login, day_scene, manager, admin_user, sales_rep, service_agent
):
    for url in report_urls(day_scene):
        assert Client().get(url).status_code == 302  # to the login page
        assert login(sales_rep).get(url).status_code == 403
        assert login(service_agent).get(url).status_code == 403
        assert login(manager).get(url).status_code == 200
        assert login(admin_user).get(url).status_code == 200
        assert login(manager).post(url).status_code == 405


def test_a_missing_event_is_a_404(login, manager):
    for name in ("daily_report", "refusal_list", "no_show_list"):
        url = reverse(f"handover:{name}", args=[987654321])
        assert login(manager).get(url).status_code == 404


def test_the_acceptance_form_is_for_managers_and_the_staff_who_handled_it(
    login, signed_case, manager, sales_rep, service_agent
):
    url = reverse("handover:acceptance_form_pdf", args=[signed_case.pk])
    assert Client().get(url).status_code == 302
    assert login(sales_rep).get(url).status_code == 403
    assert login(manager).get(url).status_code == 200
    # The service agent served the inspection station of this case.
    assert login(service_agent).get(url).status_code == 200
    signed_case.visits.update(operator=None)
    assert login(service_agent).get(url).status_code == 404
    # ... or checked the owner in.
    UnitHandover.objects.filter(pk=signed_case.pk).update(checked_in_by=service_agent)
    assert login(service_agent).get(url).status_code == 200


def test_a_draft_event_s_case_is_not_printed_for_the_service_staff(
    login, signed_case, service_agent
):
    HandoverEvent.objects.filter(pk=signed_case.event_id).update(status="draft")
    url = reverse("handover:acceptance_form_pdf", args=[signed_case.pk])
    assert login(service_agent).get(url).status_code == 404


def test_the_event_page_links_to_the_reports_for_managers_only(
    login, manager, sales_rep, day_scene
):
    url = reverse("handover:event_detail", args=[day_scene.pk])
    body = login(manager).get(url).content.decode()
    assert reverse("handover:daily_report", args=[day_scene.pk]) in body
    assert reverse("handover:refusal_list", args=[day_scene.pk]) in body
    assert reverse("handover:rectification_board") in body
    body = login(sales_rep).get(url).content.decode()
    assert reverse("handover:daily_report", args=[day_scene.pk]) not in body


# --- queries --------------------------------------------------------------------------


def queries_of(client, url, params=None) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, params or {})
    assert response.status_code == 200
    return len(captured)


def grow(event, by, n: int) -> None:
    """`n` more units, each refused and with a defect of a new contractor."""
    d = timezone.localdate()
    category = make_category()
    for i, eu in enumerate(make_units(event, count=n, building=f"9{n}")):
        case = make_case(
            eu,
            state=S.REFUSED,
            checked_in_at=at(d, 9),
            finished_at=at(d, 9, 30),
            outcome_at=at(d, 9, 30),
            rating=3,
            by=by,
        )
        add_refusal(case, by=by)
        add_fee(case, "deed_tax", "10.00", by=by, paid_at=at(d, 9, 10))
        add_defect(
            event_unit=eu,
            case=case,
            category=category,
            by=by,
            contractor=make_contractor(f"承建{n}-{i}"),
            created_at=at(d, 9),
            due_at=at(d, 18),
        )
        make_case(
            eu, round=2, state=S.ABSENT, checked_in_at=at(d, 8), outcome_at=at(d, 18)
        )


def test_each_report_runs_the_same_queries_for_3_and_30_rows(
    login, manager, admin_user, day_scene
):
    client = login(manager)
    urls = [
        (reverse("handover:daily_report", args=[day_scene.pk]), None),
        (reverse("handover:rectification_board"), {"event": day_scene.pk}),
        (reverse("handover:refusal_list", args=[day_scene.pk]), None),
        (reverse("handover:no_show_list", args=[day_scene.pk]), None),
    ]
    grow(day_scene, admin_user, 3)
    small = [queries_of(client, url, params) for url, params in urls]
    grow(day_scene, admin_user, 30)
    large = [queries_of(client, url, params) for url, params in urls]
    assert small == large


def test_the_acceptance_form_runs_the_same_queries_for_more_rows(
    admin_user, signed_case
):
    acceptance_pdf.form_for(signed_case, user=admin_user)  # the user's role, cached
    with CaptureQueriesContext(connection) as before:
        acceptance_pdf.form_for(signed_case, user=admin_user)
    eu = signed_case.event_unit
    category = make_category("门窗")
    for i in range(10):
        add_defect(
            event_unit=eu,
            case=signed_case,
            category=category,
            by=admin_user,
            contractor=make_contractor(f"门窗{i}"),
            created_at=timezone.now(),
            due_at=timezone.now(),
        )
        add_fee(signed_case, "other", "1.00", by=admin_user, paid_at=timezone.now())
    with CaptureQueriesContext(connection) as after:
        acceptance_pdf.form_for(signed_case, user=admin_user)
    assert len(before) == len(after) == 4
