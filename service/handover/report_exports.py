"""The 入伙 reports' tables as XLSX (customers/exports.py's writer: write-only, formula
neutralised): header row, then at most reports.EXPORT_MAX_ROWS rows; owners' phones
masked unless the viewer's role may see them."""

from __future__ import annotations

from collections.abc import Callable
from typing import IO, Any

from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.core import audit
from customers import exports as customer_exports
from customers import masking
from service.handover import reports

XLSX = customer_exports.CONTENT_TYPES["xlsx"]


def _num(value: Any) -> str:
    return "" if value is None else str(value)


def _when(value: Any) -> str:
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M") if value else ""


def _phone(phone: str, can_see_pii: bool) -> str:
    return phone if can_see_pii else masking.mask_phone(phone)


def daily_rows(report: reports.DailyReport) -> list[list[str]]:
    """One sheet, one block per table, the day's and the cumulative figures."""
    day = report.day.isoformat()
    rows = [
        [_("交楼日报表"), report.event.name, day],
        [],
        [_("指标"), _("当日"), _("累计")],
    ]
    rows += [
        [label, _num(f.day), _num(f.total)] for _key, label, f in report.count_rows
    ]
    rows += [
        [_("范围内房间"), "", _num(report.in_scope)],
        [_("交付率（%）"), _num(report.rate_day), _num(report.rate)],
        [
            _("平均现场时长（分钟）"),
            _num(report.onsite_minutes.day),
            _num(report.onsite_minutes.total),
        ],
        [
            _("满意度均分（1-5）"),
            _num(report.satisfaction.day),
            _num(report.satisfaction.total),
        ],
        [],
        [
            _("楼栋"),
            _("范围内"),
            _("已签到"),
            _("当日收楼"),
            _("累计收楼"),
            _("拒收"),
            _("未到访"),
            _("交付率（%）"),
        ],
    ]
    rows += [
        [
            b.name,
            _num(b.in_scope),
            _num(b.checked_in),
            _num(b.accepted_day),
            _num(b.accepted),
            _num(b.refused),
            _num(b.absent),
            _num(b.rate),
        ]
        for b in report.buildings
    ]
    rows += [[], [_("严重程度"), _("当日新增问题"), _("累计问题")]]
    rows += [[label, _num(f.day), _num(f.total)] for _k, label, f in report.defects]
    rows += [
        [],
        [
            _("费用项"),
            _("当日金额（元）"),
            _("累计金额（元）"),
            _("当日笔数"),
            _("累计笔数"),
        ],
    ]
    rows += [
        [label, _num(a.day), _num(a.total), _num(n.day), _num(n.total)]
        for _k, label, a, n in report.fees
    ]
    return rows


def board_contractor_rows(board: reports.Board) -> list[list[str]]:
    rows = [
        [
            _("责任单位"),
            _("未完成"),
            _("已超期"),
            _("已关闭"),
            _("按期关闭"),
            _("按期关闭率（%）"),
        ]
    ]
    rows += [
        [
            c.name or _("未指派"),
            _num(c.open),
            _num(c.overdue),
            _num(c.closed),
            _num(c.on_time),
            _num(c.on_time_rate),
        ]
        for c in board.contractors
    ]
    rows += [[], [_("账龄（天）"), _("未完成")]]
    rows += [[label, _num(n)] for label, n in board.ages]
    return rows


def board_item_rows(defects: QuerySet, now: Any) -> list[list[str]]:
    rows = [
        [
            _("编号"),
            _("入伙活动"),
            _("房间"),
            _("位置"),
            _("问题分类"),
            _("问题描述"),
            _("严重程度"),
            _("状态"),
            _("责任单位"),
            _("记录时间"),
            _("整改时限"),
            _("已超期"),
        ]
    ]
    items, _next = reports.board_items(defects, limit=reports.EXPORT_MAX_ROWS)
    rows += [
        [
            str(d.pk),
            d.event.name if d.event else "",
            d.unit.label,
            d.get_room_display(),
            d.category.name,
            d.description,
            d.get_severity_display(),
            d.get_state_display(),
            d.contractor.name if d.contractor else "",
            _when(d.created_at),
            _when(d.due_at),
            _("是") if d.due_at < now else "",
        ]
        for d in items
    ]
    return rows


def _owner_rows(
    items: QuerySet,
    *,
    user: Any,
    headers: list[str],
    values: Callable[[Any], list[str]],
    case: Callable[[Any], Any] = lambda item: item,
) -> list[list[str]]:
    """A case list's rows: the room, the owner and their phone (masked unless the
    user may see it), then the list's own columns; at most EXPORT_MAX_ROWS."""
    can_see_pii = masking.can_see_pii(user)
    rows = [[_("房间"), _("业主"), _("电话"), *headers]]
    for item in items[: reports.EXPORT_MAX_ROWS]:
        owner = case(item).customer
        rows.append(
            [
                case(item).event_unit.unit.label,
                owner.name,
                _phone(owner.phone, can_see_pii),
                *values(item),
            ]
        )
    return rows


def refusal_rows(refusals: QuerySet, *, user: Any) -> list[list[str]]:
    return _owner_rows(
        refusals,
        user=user,
        case=lambda r: r.case,
        headers=[
            _("拒收原因"),
            _("详细说明"),
            _("业主陈述"),
            _("视为交付日"),
            _("登记时间"),
            _("登记人"),
        ],
        values=lambda r: [
            r.get_reason_display(),
            r.details,
            r.owner_statement,
            r.notice_deadline.isoformat(),
            _when(r.recorded_at),
            str(r.recorded_by),
        ],
    )


def no_show_rows(cases: QuerySet, *, user: Any) -> list[list[str]]:
    return _owner_rows(
        cases,
        user=user,
        headers=[_("预约日期"), _("登记时间"), _("后续"), _("说明")],
        values=lambda c: [
            c.appointment.slot.date.isoformat() if c.appointment else "",
            _when(c.outcome_at),
            c.get_no_show_next_display() or _("待定"),
            c.outcome_note,
        ],
    )


def _reinspection_booking(case: Any) -> str:
    booking = case.reinspection_appointment
    if booking is None or not booking.is_active:
        return _("未预约")
    when = f"{booking.slot.date.isoformat()} {booking.slot.start_time:%H:%M}"
    if booking.event_id != case.event_id:
        when = f"{booking.slot.event.name} {when}"
    return when


def not_accepted_rows(cases: QuerySet, *, user: Any) -> list[list[str]]:
    return _owner_rows(
        cases,
        user=user,
        headers=[_("不签收原因"), _("登记时间"), _("复验日期"), _("复验预约")],
        values=lambda c: [
            c.outcome_note,
            _when(c.outcome_at),
            c.reinspection_on.isoformat() if c.reinspection_on else "",
            _reinspection_booking(c),
        ],
    )


def xlsx(rows: list[list[str]], *, title: str) -> IO[bytes]:
    return customer_exports.xlsx_file(iter(rows), title=title)


def record(request: Any, *, table: str, count: int, obj: Any = None) -> None:
    audit.record(
        request,
        audit.EXPORTED,
        obj=obj,
        object_type="" if obj is not None else "handover_report",
        detail=f"handover report {table}",
        row_count=count,
    )
