"""入伙 on the day, demo data (called by service/handover/demo.py's `seed_demo` after
demo_before.py's event is made).

The same 1,000-unit event, moved so that today is its second day: its calendar (days,
slots, booking windows, notices, links, bookings) goes back by STARTS_IN_DAYS + 1
days, as demo_before moves its times. Yesterday's owners came (a few did not: absent)
and reached an outcome; today's morning owners too; about forty are at the stations
now (queued, called, in service); the afternoon's are still to come.

- outcomes: accepted, accepted with open defects, not accepted (re-inspection date),
  refused (a RefusalRecord), absent (the no-show sweep's case, the booking cancelled);
- station visits as the station services leave them (done, skipped identity at the
  desk, waiting, called, in service, pending behind a gate);
- defects of the inspected units in every state (open, assigned, in progress, ready,
  closed, in dispute, void, force-closed), with contractors, categories of the default
  tree and their history rows;
- property fees, meter readings, keys, the drawn signature (one small PNG shared by
  the demo's cases) and ratings.

Written in bulk (a few statements per table) rather than through the services, which
cost tens of milliseconds a step: the board's counters are then rebuilt from the rows
(counters.rebuild, the recount `handover_board_rebuild` runs), so they equal a recount.
Idempotent: nothing is added once the event has a case.
"""

from __future__ import annotations

import datetime as dt
import io
import random
from decimal import Decimal
from typing import Any

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db.models import F
from django.utils import timezone

from crm.channels.models import OutboundMessage
from service.defects import services as defect_services
from service.defects.models import Contractor, Defect, DefectCategory, DefectEvent
from service.handover import counters, onsite
from service.handover.models import (
    Appointment,
    Batch,
    CaseLog,
    EventUnit,
    FeePayment,
    HandoverEvent,
    MeterReading,
    Notice,
    NoticeRun,
    OwnerLink,
    RefusalRecord,
    StationDefinition,
    StationVisit,
    TimeSlot,
    UnitHandover,
)

CState = UnitHandover.State
VState = StationVisit.State
DState = Defect.State
Code = StationDefinition.Code

FINISHED = 150  # cases through an outcome (yesterday's and this morning's)
IN_PROGRESS = 40  # at the stations now
CONTRACTORS = [
    ("中建八局第三分公司", "王建国", "13800138001"),
    ("华帆门窗工程有限公司", "李华", "13800138002"),
    ("鑫源水电安装队", "张鑫", "13800138003"),
    ("雨虹防水工程部", "陈雨", "13800138004"),
]
DESCRIPTIONS = [
    "客厅墙面空鼓约 30cm²",
    "主卧窗户密封条脱落，雨天渗水",
    "卫生间地漏反味",
    "厨房插座无电",
    "入户门锁芯卡滞",
    "阳台地面积水，找坡不足",
    "次卧门吸缺失",
    "玄关顶棚有裂纹",
]
SIGNATURE_PATH = "handover/signatures/demo/signature.png"


def seed_the_day(users: dict[str, Any], event: HandoverEvent, *, seed: int) -> str:
    if UnitHandover.objects.filter(event=event).exists():
        return ""
    rng = random.Random(seed + 17)  # noqa: S311 - demo data, not security
    _move_calendar(event)
    event.refresh_from_db()
    stations = onsite.ensure_default_stations(event)
    staff = [users[u] for u in ("service1", "admin", "manager1") if u in users]
    now = timezone.now()
    today = timezone.localdate(now)
    appointments = list(
        Appointment.objects.filter(
            event=event,
            state=Appointment.State.BOOKED,
            slot__date__in=(today - dt.timedelta(days=1), today),
            event_unit__isnull=False,
        )
        .select_related("slot")
        .order_by("slot__date", "slot__start_time", "pk")
    )
    finished = appointments[: min(FINISHED, len(appointments) * 2 // 3)]
    rest = appointments[len(finished) :]
    moving = rest[: min(IN_PROGRESS, len(rest) // 2)]
    plan = _plan(finished, moving, today, rng)
    cases = _cases(event, plan, staff, now, today, rng)
    _visits(cases, plan, stations, staff, now, rng)
    defects = _defects(event, cases, plan, staff, now, rng)
    _captures(cases, plan, staff, rng)
    _appointments(plan, now)
    counters.rebuild(event.pk)
    done = sum(1 for p in plan if p["case"].outcome_at)
    return f"{done} handover outcomes, {len(moving)} owners at the stations, {defects} defects"


# --- the calendar ---------------------------------------------------------------------


def _move_calendar(event: HandoverEvent) -> None:
    """Everything dated by demo_before goes back so that today is the event's second
    day (the booking burst then happened before the event, as it does)."""
    from service.handover import demo_before

    back = dt.timedelta(days=demo_before.STARTS_IN_DAYS + 1)
    HandoverEvent.objects.filter(pk=event.pk).update(
        start_date=F("start_date") - back, end_date=F("end_date") - back
    )
    TimeSlot.objects.filter(event=event).update(date=F("date") - back)
    Batch.objects.filter(event=event).update(
        booking_opens_at=F("booking_opens_at") - back,
        booking_closes_at=F("booking_closes_at") - back,
    )
    Appointment.objects.filter(event=event).update(created_at=F("created_at") - back)
    OwnerLink.objects.filter(event_unit__event=event).update(
        expires_at=F("expires_at") - back, created_at=F("created_at") - back
    )
    notices = Notice.objects.filter(event_unit__event=event)
    OutboundMessage.objects.filter(
        pk__in=notices.exclude(message=None).values("message_id")
    ).update(sent_at=F("sent_at") - back)
    notices.update(
        sent_at=F("sent_at") - back,
        delivered_at=F("delivered_at") - back,
        created_at=F("created_at") - back,
    )
    NoticeRun.objects.filter(event=event).update(
        created_at=F("created_at") - back, finished_at=F("finished_at") - back
    )


# --- the cases ------------------------------------------------------------------------


def _outcome_for(n: int, yesterday: bool) -> str:
    """Most owners accept; some with open defects, a few not accepted or refused, and
    some of yesterday's never came."""
    if yesterday and n % 11 == 5:
        return CState.ABSENT
    return {
        3: CState.ACCEPTED_WITH_DEFECTS,
        7: CState.ACCEPTED_WITH_DEFECTS,
        5: CState.NOT_ACCEPTED,
        9: CState.REFUSED,
    }.get(n % 12, CState.ACCEPTED)


def _plan(
    finished: list[Appointment],
    moving: list[Appointment],
    today: dt.date,
    rng: random.Random,
) -> list[dict[str, Any]]:
    plan = []
    for n, appointment in enumerate(finished):
        yesterday = appointment.slot.date < today
        plan.append(
            {
                "appointment": appointment,
                "state": _outcome_for(n, yesterday),
                "day": appointment.slot.date,
            }
        )
    for n, appointment in enumerate(moving):
        # The station the owner is at now (by position) and how far along.
        plan.append(
            {
                "appointment": appointment,
                "state": CState.CHECKED_IN if n % 8 == 0 else CState.IN_PROGRESS,
                "day": today,
                "at": 0 if n % 8 == 0 else 1 + n % 8,
                "visit_state": (VState.WAITING, VState.CALLED, VState.IN_SERVICE)[
                    n % (2 if n % 8 == 0 else 3)
                ],
            }
        )
    return plan


def _arrivals(plan: list[dict[str, Any]], now: dt.datetime, today: dt.date) -> None:
    """Arrival times: yesterday's at their slot; today's from the morning (or from
    midnight when the demo is seeded early) to a few minutes ago, in booking order."""
    tz = timezone.get_current_timezone()
    midnight = dt.datetime.combine(today, dt.time(0, 5), tzinfo=tz)
    todays = [p for p in plan if p["day"] == today]
    first = max(midnight, now - dt.timedelta(hours=6))
    last = now - dt.timedelta(minutes=3)
    step = (last - first) / max(len(todays), 1)
    for n, item in enumerate(todays):
        item["arrived"] = first + step * n
    for item in plan:
        if item["day"] < today:
            slot = item["appointment"].slot
            item["arrived"] = dt.datetime.combine(
                item["day"], slot.start_time, tzinfo=tz
            ) + dt.timedelta(minutes=7 * (item["appointment"].pk % 8))


def _cases(
    event: HandoverEvent,
    plan: list[dict[str, Any]],
    staff: list[Any],
    now: dt.datetime,
    today: dt.date,
    rng: random.Random,
) -> list[UnitHandover]:
    _arrivals(plan, now, today)
    rounds = {}
    numbers: dict[dt.date, int] = {}
    rows = []
    for item in sorted(plan, key=lambda p: p["arrived"]):
        appointment = item["appointment"]
        state = item["state"]
        arrived = item["arrived"]
        desk = staff[appointment.pk % len(staff)]
        case = UnitHandover(
            event=event,
            event_unit_id=appointment.event_unit_id,
            appointment=appointment,
            customer_id=appointment.customer_id,
            round=rounds.setdefault(appointment.event_unit_id, 1),
            state=state,
        )
        if state == CState.ABSENT:
            case.outcome_at = dt.datetime.combine(
                item["day"] + dt.timedelta(days=1),
                dt.time(0, 30),
                tzinfo=arrived.tzinfo,
            )
            case.outcome_at = min(case.outcome_at, now)
            case.outcome_note = f"预约日 {item['day']:%Y-%m-%d} 未到访"
            case.no_show_next = UnitHandover.NoShowNext.SECOND_NOTICE
        else:
            day = timezone.localdate(arrived)
            numbers[day] = numbers.get(day, 0) + 1
            case.queue_date, case.queue_number = day, numbers[day]
            case.checked_in_at, case.checked_in_by = arrived, desk
            case.identity_checked_at, case.identity_checked_by = arrived, desk
            if state != CState.CHECKED_IN:
                case.started_at = arrived + dt.timedelta(minutes=4)
            if state not in (CState.CHECKED_IN, CState.IN_PROGRESS):
                case.outcome_at = case.finished_at = _finished_at(item, now)
                case.outcome_by = desk
        item["case"] = case
        rows.append(case)
    UnitHandover.objects.bulk_create(rows)
    # auto_now_add stamps now: the log and the case read as of their arrival.
    for case in rows:
        case.created_at = case.checked_in_at or case.outcome_at
    UnitHandover.objects.bulk_update(rows, ["created_at"], batch_size=500)
    logs = []
    for item in plan:
        case = item["case"]
        if case.state == CState.ABSENT:
            logs.append(
                CaseLog(
                    case=case,
                    action="no_show",
                    to_state=CState.ABSENT,
                    note=case.outcome_note,
                )
            )
            continue
        logs.append(
            CaseLog(
                case=case,
                action="checked_in",
                to_state=CState.CHECKED_IN,
                note=f"排队号 {case.queue_number}",
                actor=case.checked_in_by,
            )
        )
        if case.outcome_at:
            logs.append(
                CaseLog(
                    case=case,
                    action="outcome",
                    from_state=CState.IN_PROGRESS,
                    to_state=case.state,
                    note=_outcome_note(case.state),
                    actor=case.outcome_by,
                )
            )
    made = CaseLog.objects.bulk_create(logs)
    for log in made:
        log.at = (
            log.case.outcome_at
            if log.action != "checked_in"
            else log.case.checked_in_at
        )
    CaseLog.objects.bulk_update(made, ["at"], batch_size=1000)
    return rows


def _finished_at(item: dict[str, Any], now: dt.datetime) -> dt.datetime:
    return min(
        item["arrived"] + dt.timedelta(minutes=95), now - dt.timedelta(minutes=1)
    )


def _outcome_note(state: str) -> str:
    return {
        CState.ACCEPTED_WITH_DEFECTS: "带未关闭问题收楼",
        CState.NOT_ACCEPTED: "卫生间渗漏，整改后复验",
        CState.REFUSED: "外墙渗水，业主要求整改后再收楼",
    }.get(state, "")


# --- the stations ---------------------------------------------------------------------


def _visits(
    cases: list[UnitHandover],
    plan: list[dict[str, Any]],
    stations: list[StationDefinition],
    staff: list[Any],
    now: dt.datetime,
    rng: random.Random,
) -> None:
    needs: dict[int, set[int]] = {}
    for from_id, to_id in StationDefinition.prerequisites.through.objects.filter(
        from_stationdefinition__event_id=stations[0].event_id
    ).values_list("from_stationdefinition_id", "to_stationdefinition_id"):
        needs.setdefault(from_id, set()).add(to_id)
    stop_at = {CState.NOT_ACCEPTED: Code.INSPECTION, CState.REFUSED: Code.INSPECTION}
    rows = []
    for item in plan:
        case = item["case"]
        if case.state == CState.ABSENT:
            continue
        at = case.checked_in_at
        by = staff[case.appointment_id % len(staff)]
        finished: set[int] = set()
        current = item.get("at")  # index of the station the owner is at now
        last = stop_at.get(case.state)
        stopped = False
        # The owners at the stations now: the stations behind them fit before now.
        pace = (now - at) / ((current or 0) + 2)
        for k, station in enumerate(stations):
            visit = StationVisit(case=case, station=station, counter=1 + k % 2)
            if station.code == Code.IDENTITY:
                visit.state, visit.finished_at, visit.operator = VState.SKIPPED, at, by
                visit.skip_reason = "签到时已核验身份"
                finished.add(station.pk)
                rows.append(visit)
                continue
            gated = not needs.get(station.pk, set()) <= finished
            if case.outcome_at and not stopped:
                # Served one after another, 8-14 minutes each after a short wait.
                wait = dt.timedelta(minutes=rng.randint(1, 12))
                service = dt.timedelta(minutes=rng.randint(4, 14))
                start = at + wait
                if start + service > case.outcome_at:  # squeeze into the case's time
                    start, service = at, dt.timedelta(minutes=1)
                visit.state, visit.operator = VState.DONE, by
                visit.queued_at, visit.called_at = at, start
                visit.started_at, visit.finished_at = start, start + service
                at = min(start + service, case.outcome_at)
                finished.add(station.pk)
                if station.code == last:
                    stopped = True
            elif case.outcome_at:  # not accepted or refused: the rest never opened
                visit.state = VState.PENDING
            elif current is not None and k < current and not gated:
                visit.state, visit.operator = VState.DONE, by
                visit.queued_at = at
                visit.called_at = visit.started_at = at + pace / 3
                visit.finished_at = at = at + pace
                finished.add(station.pk)
            elif gated:
                visit.state = VState.PENDING
            elif k == current or (current == 0 and k == 1):
                visit.state, visit.queued_at = item["visit_state"], at
                if visit.state != VState.WAITING:
                    visit.called_at, visit.operator = at + pace / 2, by
                if visit.state == VState.IN_SERVICE:
                    visit.started_at = at + pace / 2
            else:
                visit.state, visit.queued_at = VState.WAITING, at
            rows.append(visit)
    StationVisit.objects.bulk_create(rows, batch_size=2000)


# --- defects --------------------------------------------------------------------------


def _contractors() -> list[Contractor]:
    made = []
    for name, contact, phone in CONTRACTORS:
        contractor, _created = Contractor.objects.get_or_create(
            name=name, defaults={"contact_name": contact, "phone": phone}
        )
        made.append(contractor)
    return made


# Each state's path from open (the history rows the services would have written).
_PATHS = {
    DState.OPEN: [],
    DState.ASSIGNED: [DState.ASSIGNED],
    DState.IN_PROGRESS: [DState.ASSIGNED, DState.IN_PROGRESS],
    DState.READY_FOR_REVIEW: [
        DState.ASSIGNED,
        DState.IN_PROGRESS,
        DState.READY_FOR_REVIEW,
    ],
    DState.CLOSED: [
        DState.ASSIGNED,
        DState.IN_PROGRESS,
        DState.READY_FOR_REVIEW,
        DState.CLOSED,
    ],
    DState.IN_DISPUTE: [DState.ASSIGNED, DState.IN_DISPUTE],
    DState.VOID: [DState.VOID],
    DState.FORCE_CLOSED: [DState.ASSIGNED, DState.FORCE_CLOSED],
}
_OPEN_CYCLE = [
    DState.OPEN,
    DState.ASSIGNED,
    DState.IN_PROGRESS,
    DState.READY_FOR_REVIEW,
    DState.IN_DISPUTE,
    DState.ASSIGNED,
]
_DONE_CYCLE = [DState.CLOSED, DState.CLOSED, DState.VOID, DState.FORCE_CLOSED]


def _defects(
    event: HandoverEvent,
    cases: list[UnitHandover],
    plan: list[dict[str, Any]],
    staff: list[Any],
    now: dt.datetime,
    rng: random.Random,
) -> int:
    defect_services.categories_ensure_default()
    contractors = _contractors()
    leaves = list(
        DefectCategory.objects.filter(level=3)
        .select_related("parent__parent")
        .order_by("pk")
    )
    if not leaves:
        return 0
    manager = staff[-1]
    unit_of = dict(EventUnit.objects.filter(event=event).values_list("pk", "unit_id"))
    inspected = {
        item["case"].pk
        for item in plan
        if item["case"].outcome_at
        and item["case"].state != CState.ABSENT
        or item.get("at", 0) > 5
    }
    rows: list[tuple[Defect, list[str]]] = []
    n_open = n_done = 0
    for item in plan:
        case = item["case"]
        if case.pk not in inspected:
            continue
        if case.state == CState.ACCEPTED_WITH_DEFECTS:
            states = [_OPEN_CYCLE[(n_open + k) % len(_OPEN_CYCLE)] for k in range(2)]
            n_open += 2
        elif case.state in (CState.NOT_ACCEPTED, CState.REFUSED):
            states = [DState.OPEN, DState.ASSIGNED, DState.IN_PROGRESS][
                : 1 + case.pk % 3
            ]
        elif case.state == CState.ACCEPTED and case.pk % 3 == 0:
            states = [_DONE_CYCLE[n_done % len(_DONE_CYCLE)]]  # fixed on the spot
            n_done += 1
        elif case.state == CState.IN_PROGRESS:
            states = [DState.OPEN]
        else:
            continue
        for k, state in enumerate(states):
            leaf = leaves[(case.pk * 7 + k * 13) % len(leaves)]
            severity = leaf.default_severity
            if case.state == CState.NOT_ACCEPTED and k == 0:
                severity = "P0"
            found = (case.checked_in_at or now) + dt.timedelta(minutes=30 + 5 * k)
            contractor = contractors[(leaf.parent.parent_id or 0) % len(contractors)]
            defect = Defect(
                unit_id=unit_of[case.event_unit_id],
                case=case,
                event=event,
                source=Defect.Source.HANDOVER,
                room=list(Defect.Room.values)[(case.pk + k) % len(Defect.Room.values)],
                category=leaf,
                description=DESCRIPTIONS[(case.pk + k) % len(DESCRIPTIONS)],
                severity=severity,
                state=state,
                contractor=contractor if state != DState.OPEN else None,
                due_at=defect_services.due_at_for(severity, found),
                reported_by=staff[0],
            )
            path = _PATHS[state]
            if DState.ASSIGNED in path:
                defect.assigned_at = found + dt.timedelta(minutes=20)
            if DState.READY_FOR_REVIEW in path:
                defect.ready_at = min(found + dt.timedelta(hours=3), now)
            if state in (DState.CLOSED, DState.VOID, DState.FORCE_CLOSED):
                defect.closed_at = min(found + dt.timedelta(hours=4), now)
                defect.closed_by = manager
            if state == DState.VOID:
                defect.close_reason = "重复登记"
            if state == DState.FORCE_CLOSED:
                defect.close_reason = "业主同意现状接收，给予补偿"
                defect.approved_by = manager
            defect.found_at = found  # type: ignore[attr-defined]
            rows.append((defect, path))
    made = Defect.objects.bulk_create([d for d, _path in rows], batch_size=1000)
    history = []
    for defect, path in rows:
        history.append(DefectEvent(defect=defect, to_state=DState.OPEN, actor=staff[0]))
        previous = DState.OPEN
        for step in path:
            history.append(
                DefectEvent(
                    defect=defect,
                    from_state=previous,
                    to_state=step,
                    actor=manager,
                    contractor=defect.contractor if step == DState.ASSIGNED else None,
                    comment=defect.close_reason
                    if step in (DState.VOID, DState.FORCE_CLOSED)
                    else "",
                )
            )
            previous = step
    events = DefectEvent.objects.bulk_create(history, batch_size=2000)
    # The services stamp now; the story needs the inspection's time.
    for defect in made:
        defect.created_at = defect.found_at  # type: ignore[attr-defined]
    Defect.objects.bulk_update(made, ["created_at"], batch_size=1000)
    step = {id(e): n for n, e in enumerate(events)}
    for event_row in events:
        event_row.at = min(
            event_row.defect.found_at  # type: ignore[attr-defined]
            + dt.timedelta(minutes=10 * (step[id(event_row)] % 5)),
            now,
        )
    DefectEvent.objects.bulk_update(events, ["at"], batch_size=2000)
    for defect in made:  # the overdue escalation, as defect_record arms it
        if defect.is_open:
            defect_services._overdue_schedule(defect)
    return len(made)


# --- captures, refusals, bookings -----------------------------------------------------


def _signature() -> str:
    """One drawn signature (a PNG as the signature pad sends) for the demo's cases."""
    if default_storage.exists(SIGNATURE_PATH):
        return SIGNATURE_PATH
    from PIL import Image, ImageDraw

    image = Image.new("RGBA", (300, 100), (255, 255, 255, 0))
    pen = ImageDraw.Draw(image)
    points = [(20 + 13 * n, 60 + (18 if n % 2 else -14) + n % 3 * 4) for n in range(20)]
    pen.line(points, fill=(20, 20, 60, 255), width=4, joint="curve")
    pen.line([(40, 80), (260, 72)], fill=(20, 20, 60, 255), width=3)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return default_storage.save(SIGNATURE_PATH, ContentFile(buffer.getvalue()))


def _captures(
    cases: list[UnitHandover],
    plan: list[dict[str, Any]],
    staff: list[Any],
    rng: random.Random,
) -> None:
    signature = _signature()
    accepted = (CState.ACCEPTED, CState.ACCEPTED_WITH_DEFECTS)
    fees, readings, refusals, changed = [], [], [], []
    for item in plan:
        case = item["case"]
        by = staff[case.pk % len(staff)]
        if case.state not in accepted and not (
            case.state == CState.IN_PROGRESS and item.get("at", 0) > 4
        ):
            if case.state == CState.REFUSED:
                refusals.append(
                    RefusalRecord(
                        case=case,
                        reason=(
                            RefusalRecord.Reason.QUALITY,
                            RefusalRecord.Reason.AREA,
                            RefusalRecord.Reason.DELAY,
                        )[case.pk % 3],
                        details="外墙渗水、卫生间闭水不合格，要求整改后再收楼",
                        owner_statement="整改完成并复验合格后再来收楼。",
                        notice_deadline=item["day"],
                        recorded_by=by,
                    )
                )
            continue
        fees.append(
            FeePayment(
                case=case,
                item=FeePayment.Item.PROPERTY_FEE,
                amount=Decimal(3600 + 120 * (case.pk % 7)),
                method=(FeePayment.Method.WECHAT, FeePayment.Method.ALIPAY)[
                    case.pk % 2
                ],
                receipt_number=f"WY{case.pk:08d}",
                cashier=by,
            )
        )
        if case.pk % 4 == 0:
            fees.append(
                FeePayment(
                    case=case,
                    item=FeePayment.Item.MAINTENANCE_FUND,
                    amount=Decimal(8000 + 500 * (case.pk % 5)),
                    method=FeePayment.Method.POS,
                    cashier=by,
                )
            )
        if case.state not in accepted:
            continue
        for kind, base in (
            (MeterReading.Kind.WATER, 2),
            (MeterReading.Kind.ELECTRICITY, 15),
            (MeterReading.Kind.GAS, 0),
        ):
            readings.append(
                MeterReading(
                    case=case,
                    kind=kind,
                    meter_number=f"{kind[:1].upper()}{case.event_unit_id:07d}",
                    reading=Decimal(base) + Decimal(case.pk % 97) / 10,
                    read_by=by,
                )
            )
        case.key_action = (
            UnitHandover.KeyAction.TO_OWNER
            if case.pk % 10
            else UnitHandover.KeyAction.CUSTODY
        )
        case.key_items = {"entrance": 2, "mailbox": 1, "access_card": 2}
        case.keys_handed_at = case.signed_at = case.outcome_at
        case.signature = signature
        if case.pk % 6:
            case.rating = (5, 5, 4, 5, 3, 4)[case.pk % 6]
            case.rating_comment = "流程顺畅，工作人员很耐心" if case.rating >= 4 else ""
        changed.append(case)
    for case in cases:
        if case.state == CState.NOT_ACCEPTED:
            case.reinspection_on = case.outcome_at.date() + dt.timedelta(days=14)
            changed.append(case)
    FeePayment.objects.bulk_create(fees, batch_size=1000)
    MeterReading.objects.bulk_create(readings, batch_size=1000)
    RefusalRecord.objects.bulk_create(refusals)
    UnitHandover.objects.bulk_update(
        changed,
        [
            "key_action",
            "key_items",
            "keys_handed_at",
            "signed_at",
            "signature",
            "rating",
            "rating_comment",
            "reinspection_on",
        ],
        batch_size=500,
    )
    # The services stamp now: payments and readings at the case's outcome.
    for model, field in ((FeePayment, "paid_at"), (MeterReading, "read_at")):
        rows = list(model.objects.filter(case__in=cases).select_related("case"))
        for row in rows:
            setattr(row, field, row.case.outcome_at or row.case.checked_in_at)
        model.objects.bulk_update(rows, [field], batch_size=1000)


def _appointments(plan: list[dict[str, Any]], now: dt.datetime) -> None:
    """Arrived bookings are checked in; the no-shows' cancelled (the sweep's way)."""
    arrived, absent = [], []
    for item in plan:
        appointment, case = item["appointment"], item["case"]
        if case.state == CState.ABSENT:
            absent.append(appointment.pk)
        else:
            appointment.state = Appointment.State.CHECKED_IN
            appointment.checked_in_at = case.checked_in_at
            # An outcome finishes the visit (outcomes._finish): the unit is free
            # for a re-inspection booking.
            if case.state not in UnitHandover.OPEN_STATES:
                appointment.finished_at = case.outcome_at
            arrived.append(appointment)
    Appointment.objects.bulk_update(
        arrived, ["state", "checked_in_at", "finished_at"], batch_size=500
    )
    for appointment in Appointment.objects.filter(pk__in=absent):
        Appointment.objects.filter(pk=appointment.pk).update(
            state=Appointment.State.CANCELLED,
            cancelled_at=now,
            version=F("version") + 1,
        )
        TimeSlot.objects.filter(pk=appointment.slot_id, booked_count__gt=0).update(
            booked_count=F("booked_count") - 1
        )
