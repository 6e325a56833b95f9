"""The outcome of a unit's handover (issue 17 part 3; handover.md §2.4, §1.3(5)).

Each outcome is a state of the case (UnitHandover.State) with its rule. A rule that
does not hold raises OutcomeRefused with a message for the user, and nothing is
written. An outcome is one transaction: the case row locked and its version checked
(the page's hidden version; of two posts at once, one wins, the other gets
OutcomeConflict), the state changed, one CaseLog row, and the live board's counters
(`case:<from>` −1, `case:<to>` +1, `hour:<local YYYYMMDDHH of outcome_at>:finished`
+1, counters.py; an absent case moves `case:absent` alone, as counters.recount counts).
The same transaction finishes (办结) the case's appointment (`Appointment.finished_at`):
it stays checked in and keeps its seat, but no longer holds the unit or the customer
in the partial unique indexes, so a re-inspection can be booked (reinspection.py).
Lock order: the case row, then the appointment row (nothing locks a checked-in
appointment before its case: check-in creates the case, it locks none).

- accepted (已收楼): every required station done or skipped (the acceptance and survey
  stations excepted: the outcome is decided at the first, the second follows it), the
  acceptance signature captured, the keys' destination recorded where the event has a
  keys station, and no open defect of the case;
- accepted with open defects (带问题收楼): the same, with open defects;
- not accepted (验收未通过): the owner will not sign; a reason and the re-inspection
  date the owner asked for (`reinspection_on`). Staff then book the re-inspection
  (reinspection.reinspection_book, through services.appointment_book) into a slot
  of the event or of a later event of the project; its check-in opens the next round;
- refused (拒收): a RefusalRecord (reason category, details, owner statement, the
  notice's deadline = the deemed-delivery date) and 1–MAX_EVIDENCE evidence files,
  each checked by service.forms.check_upload;
- absent (未到访): made by the daily sweep `no_shows_record` for each booked
  appointment of a unit in scope whose day has passed without check-in. The missed
  appointment is cancelled (its past seat given back) so that the unit and customer
  may be booked again; staff then choose the next step (`no_show_next`: second notice
  or scattered handover).

After an accepted or refused outcome committed, `events.handover_finished(appointment)`
runs (the satisfaction survey subscribes; it makes one survey per appointment). 验收未通过
does not: the handover goes on with the re-inspection.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import F, Max
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.accounts.roles import Role
from crm.core.db import audited, retry_transient
from crm.scheduler import services as scheduler
from service.defects.models import Defect
from service.handover import counters, events
from service.handover.models import (
    Appointment,
    CaseLog,
    HandoverEvent,
    RefusalEvidence,
    RefusalRecord,
    StationDefinition,
    StationVisit,
    TimeSlot,
    UnitHandover,
)
from service.handover.services import reminder_key

# Every staff role works at a station (the front desk is whoever is on duty).
ONSITE_ROLES = tuple(Role.values)
MAX_EVIDENCE = 10
State = UnitHandover.State
Code = StationDefinition.Code
# Decided at the acceptance station; the survey follows the outcome.
NOT_BEFORE_OUTCOME = (Code.ACCEPTANCE, Code.SURVEY)
ACCEPTED_STATES = (State.ACCEPTED, State.ACCEPTED_WITH_DEFECTS)


class OutcomeRefused(ValueError):
    """The outcome's rule does not hold; `message` is shown to the user as is."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


class OutcomeConflict(OutcomeRefused):
    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or _("交房单已被他人修改，请刷新页面后再操作。"))


def require_onsite(by: Any) -> None:
    if getattr(by, "role", None) not in ONSITE_ROLES:
        raise PermissionDenied


def hour_key(at: dt.datetime) -> str:
    return f"hour:{timezone.localtime(at):%Y%m%d%H}:finished"


def lock_case(case: UnitHandover, version: int | None) -> UnitHandover:
    """The case's row, locked (FOR NO KEY UPDATE: the log's and captures' foreign keys
    still insert); OutcomeConflict if its version is not the page's."""
    current = (
        UnitHandover.objects.select_for_update(no_key=True, of=("self",))
        .select_related("event")
        .get(pk=case.pk)
    )
    if version is not None and current.version != version:
        raise OutcomeConflict
    return current


def _require_open(current: UnitHandover) -> None:
    if current.state not in UnitHandover.OPEN_STATES:
        raise OutcomeRefused(
            _("交房单当前为“%(state)s”，不能再登记结果。")
            % {"state": current.get_state_display()}
        )


def open_defects(case: UnitHandover) -> int:
    return Defect.objects.filter(case=case, state__in=Defect.OPEN_STATES).count()


def acceptance_blockers(case: UnitHandover) -> list[str]:
    """What still stands between the case and 收楼 (empty: it may be accepted)."""
    stations = list(
        StationDefinition.objects.filter(event_id=case.event_id).order_by("position")
    )
    finished = set(
        StationVisit.objects.filter(
            case=case,
            state__in=(StationVisit.State.DONE, StationVisit.State.SKIPPED),
        ).values_list("station_id", flat=True)
    )
    blockers = []
    missing = [
        s.name
        for s in stations
        if s.required and s.code not in NOT_BEFORE_OUTCOME and s.pk not in finished
    ]
    if missing:
        blockers.append(
            _("以下必经站点尚未完成：%(stations)s。") % {"stations": "、".join(missing)}
        )
    if any(s.code == Code.KEYS for s in stations) and not case.key_action:
        blockers.append(_("尚未登记钥匙去向。"))
    if not case.signature:
        blockers.append(_("业主尚未在签收确认上签名。"))
    return blockers


def _finish(
    current: UnitHandover, to_state: str, *, by: Any, note: str = "", **fields: Any
) -> None:
    """The transition, the log row and the counters, in the caller's transaction."""
    now = timezone.now()
    from_state = current.state
    changed = UnitHandover.objects.filter(
        pk=current.pk, state=from_state, version=current.version
    ).update(
        state=to_state,
        outcome_at=now,
        outcome_by=by,
        outcome_note=note,
        finished_at=now,
        version=F("version") + 1,
        updated_at=now,
        **fields,
    )
    if not changed:  # cannot happen while the row lock is held; kept as the guard
        raise OutcomeConflict
    if current.appointment_id is not None:
        # 办结: the visit is over. The seat stays counted (the capacity rule counts
        # checked-in appointments); the unit and customer are free to book again.
        Appointment.objects.filter(
            pk=current.appointment_id, finished_at__isnull=True
        ).update(finished_at=now, version=F("version") + 1, updated_at=now)
    CaseLog.objects.create(
        case=current,
        action="outcome",
        from_state=from_state,
        to_state=to_state,
        note=note[:300],
        actor=by,
    )
    counters.bump(
        current.event_id,
        {f"case:{from_state}": -1, f"case:{to_state}": 1, hour_key(now): 1},
    )


def _announce_finished(appointment_id: int | None) -> None:
    if appointment_id is None:
        return

    def _hook() -> None:
        appointment = Appointment.objects.filter(pk=appointment_id).first()
        if appointment is not None:
            events.handover_finished(appointment)

    transaction.on_commit(_hook)


@retry_transient
def case_accept(
    case: UnitHandover, *, by: Any, version: int | None, with_defects: bool = False
) -> UnitHandover:
    """收楼, or 带问题收楼 when `with_defects` (then open defects must exist)."""
    require_onsite(by)
    with transaction.atomic(), audited(by):
        current = lock_case(case, version)
        _require_open(current)
        blockers = acceptance_blockers(current)
        if blockers:
            raise OutcomeRefused(" ".join(blockers))
        defects = open_defects(current)
        if with_defects and not defects:
            raise OutcomeRefused(_("本户没有未关闭的问题，请选择“收楼”。"))
        if not with_defects and defects:
            raise OutcomeRefused(
                _("本户有 %(count)s 项问题未关闭，请选择“带问题收楼”。")
                % {"count": defects}
            )
        to_state = State.ACCEPTED_WITH_DEFECTS if with_defects else State.ACCEPTED
        note = (
            _("带 %(count)s 项未关闭问题收楼") % {"count": defects}
            if with_defects
            else ""
        )
        _finish(current, to_state, by=by, note=note)
        _announce_finished(current.appointment_id)
    case.refresh_from_db()
    return case


@retry_transient
def case_not_accepted(
    case: UnitHandover,
    *,
    by: Any,
    version: int | None,
    reason: str,
    reinspection_on: dt.date,
) -> UnitHandover:
    """验收未通过: the owner will not sign; re-inspection asked for on a date."""
    require_onsite(by)
    reason = reason.strip()
    if not reason:
        raise OutcomeRefused(_("请填写业主不签收的原因。"))
    if reinspection_on < timezone.localdate():
        raise OutcomeRefused(_("复验日期不能早于今天。"))
    with transaction.atomic(), audited(by):
        current = lock_case(case, version)
        _require_open(current)
        _finish(
            current,
            State.NOT_ACCEPTED,
            by=by,
            note=reason,
            reinspection_on=reinspection_on,
        )
    case.refresh_from_db()
    return case


@retry_transient
def case_refuse(
    case: UnitHandover,
    *,
    by: Any,
    version: int | None,
    reason: str,
    details: str,
    notice_deadline: dt.date,
    owner_statement: str = "",
    evidence: Sequence[Any] = (),
) -> UnitHandover:
    """拒收, with its record and evidence files (already checked by check_upload)."""
    require_onsite(by)
    if reason not in RefusalRecord.Reason.values:
        raise OutcomeRefused(_("请选择拒收原因。"))
    details = details.strip()
    if not details:
        raise OutcomeRefused(_("请填写拒收的详细说明。"))
    if not evidence:
        raise OutcomeRefused(_("请上传至少一份拒收证据照片。"))
    if len(evidence) > MAX_EVIDENCE:
        raise OutcomeRefused(_("证据最多上传 %(count)s 份。") % {"count": MAX_EVIDENCE})
    with transaction.atomic(), audited(by):
        current = lock_case(case, version)
        _require_open(current)
        refusal = RefusalRecord.objects.create(
            case=current,
            reason=reason,
            details=details,
            owner_statement=owner_statement.strip(),
            notice_deadline=notice_deadline,
            recorded_by=by,
        )
        for upload in evidence:
            RefusalEvidence.objects.create(refusal=refusal, file=upload, uploaded_by=by)
        _finish(current, State.REFUSED, by=by, note=refusal.get_reason_display())
        # A refusal ends this handover too: the owner is asked how it went (issue 16).
        _announce_finished(current.appointment_id)
    case.refresh_from_db()
    return case


@retry_transient
def no_show_next(
    case: UnitHandover, *, by: Any, version: int | None, next_step: str
) -> UnitHandover:
    """Staff choose what follows a no-show: a second notice or scattered handover."""
    require_onsite(by)
    if next_step not in UnitHandover.NoShowNext.values:
        raise OutcomeRefused(_("请选择后续安排。"))
    with transaction.atomic(), audited(by):
        current = lock_case(case, version)
        if current.state != State.ABSENT:
            raise OutcomeRefused(_("只有未到访的交房单才能安排后续。"))
        UnitHandover.objects.filter(pk=current.pk).update(
            no_show_next=next_step,
            version=F("version") + 1,
            updated_at=timezone.now(),
        )
        CaseLog.objects.create(
            case=current,
            action="no_show_next",
            from_state=current.state,
            to_state=current.state,
            note=str(UnitHandover.NoShowNext(next_step).label),
            actor=by,
        )
    case.refresh_from_db()
    return case


# --- no-shows: the daily sweep -------------------------------------------------------------


def missed_appointments(today: dt.date) -> Any:
    """Booked appointments of units in scope whose day is over, without a case."""
    return (
        Appointment.objects.filter(
            state=Appointment.State.BOOKED,
            slot__date__lt=today,
            event_unit__isnull=False,
            case__isnull=True,
        )
        .exclude(event__status=HandoverEvent.Status.DRAFT)
        .order_by("pk")
    )


@retry_transient
def no_show_record(appointment_id: int, *, today: dt.date | None = None) -> bool:
    """One missed appointment → an ABSENT case (next round of its unit), the
    appointment cancelled. False when it was not missed after all (checked in,
    rescheduled or cancelled meanwhile, or already recorded)."""
    today = today or timezone.localdate()
    now = timezone.now()
    with transaction.atomic(), audited(None):
        current = (
            Appointment.objects.select_for_update(no_key=True, of=("self",))
            .select_related("slot")
            .filter(pk=appointment_id)
            .first()
        )
        if (
            current is None
            or current.state != Appointment.State.BOOKED
            or current.slot.date >= today
            or current.event_unit_id is None
            or UnitHandover.objects.filter(appointment_id=current.pk).exists()
        ):
            return False
        last_round = UnitHandover.objects.filter(
            event_unit_id=current.event_unit_id
        ).aggregate(last=Max("round"))["last"]
        case = UnitHandover.objects.create(
            event_id=current.event_id,
            event_unit_id=current.event_unit_id,
            appointment=current,
            customer_id=current.customer_id,
            round=(last_round or 0) + 1,
            state=State.ABSENT,
            outcome_at=now,
            outcome_note=_("预约日 %(date)s 未到访")
            % {"date": f"{current.slot.date:%Y-%m-%d}"},
        )
        Appointment.objects.filter(pk=current.pk).update(
            state=Appointment.State.CANCELLED,
            cancelled_at=now,
            version=F("version") + 1,
            updated_at=now,
        )
        TimeSlot.objects.filter(pk=current.slot_id, booked_count__gt=0).update(
            booked_count=F("booked_count") - 1
        )
        scheduler.action_cancel(key=reminder_key(current.pk, current.slot_id))
        CaseLog.objects.create(
            case=case, action="no_show", to_state=State.ABSENT, note=case.outcome_note
        )
        # Not in hour:…:finished: a no-show is no throughput (counters.recount).
        counters.bump(case.event_id, {f"case:{State.ABSENT}": 1})
    return True


def no_shows_record(*, today: dt.date | None = None, limit: int = 5000) -> int:
    """The daily sweep: every missed appointment, each in its own transaction."""
    today = today or timezone.localdate()
    ids = list(missed_appointments(today).values_list("pk", flat=True)[:limit])
    return sum(1 for pk in ids if no_show_record(pk, today=today))
