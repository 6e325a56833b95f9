"""入伙 on the day (issue 17): the event's stations, check-in into a handover case, and
each case's way through the stations.

Stations. An event gets the default sequence on demand (`ensure_default_stations`);
managers edit names, order, prerequisites, counters and target times
(`stations_save`): a prerequisite must come earlier in the order, which also rules
out cycles. They add a station of a kind the event lacks (`station_add`, same rules)
and delete one nobody has visited yet (`station_delete`; its dependents inherit its
prerequisites).

Check-in. `check_in` checks the appointment in (services.appointment_check_in) and, in
the same transaction, opens the unit's case (UnitHandover, round = earlier rounds + 1)
with its queue number, one StationVisit per station (WAITING for stations without
prerequisites, PENDING for gated ones), a CaseLog row and the board's counters. A
walk-in (`walk_in`) takes a seat of one of today's slots, the held-back share
included (services.hold_applies never holds seats back from walk-ins), or is refused
with the reason.

Queue numbers run per event and day from 1; the next one is read under a
transaction-scoped advisory lock per event (the unique constraint is the backstop).

Station work. Every transition locks the case row first, then changes the visit with
an UPDATE conditional on its state and version (optimistic concurrency), so two
tablets never serve the same owner and a stale page is told so (Conflict). Calling the
next owner skips owners that another station has called or is serving. Finishing or
skipping a station queues the gated stations whose prerequisites are all done or
skipped. The first station started moves the case CHECKED_IN → IN_PROGRESS.

Lock order (as services.py): appointment row, event advisory lock, case row, visit
rows, counter rows (counters.bump sorts its keys).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, F, Max, OuterRef, ProtectedError, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.core.db import audited, retry_transient
from customers.models import Customer
from service.handover import counters, services
from service.handover.models import (
    Appointment,
    BoardCounter,
    CaseLog,
    EventUnit,
    HandoverEvent,
    StationDefinition,
    StationVisit,
    TimeSlot,
    UnitHandover,
)
from service.property.models import ProxyAuthorisation

# The desk and the stations: the roles that book (services.BOOKING_ROLES).
ONSITE_ROLES = services.BOOKING_ROLES
# The station sequence: managers and admins (services.EVENT_ROLES).
CONFIG_ROLES = services.EVENT_ROLES

Code = StationDefinition.Code
VState = StationVisit.State
CState = UnitHandover.State
ACTIVE_VISIT_STATES = (VState.WAITING, VState.CALLED, VState.IN_SERVICE)
BUSY_STATES = (VState.CALLED, VState.IN_SERVICE)
CLEARED_STATES = (VState.DONE, VState.SKIPPED)
MAX_STATIONS = 20

# (code, prerequisites, required, target minutes): handover.md §1.2, §2.4.
DEFAULT_SEQUENCE: tuple[tuple[str, tuple[str, ...], bool, int], ...] = (
    (Code.IDENTITY, (), True, 5),
    (Code.DOCUMENTS, (), True, 15),
    (Code.SETTLEMENT, (), True, 15),
    (Code.FEES, (), True, 10),
    (Code.SIGNING, (Code.IDENTITY,), True, 15),
    (Code.INSPECTION, (Code.IDENTITY,), True, 40),
    (Code.METERS, (Code.INSPECTION,), True, 10),
    (
        Code.KEYS,
        (Code.INSPECTION, Code.FEES, Code.SIGNING, Code.SETTLEMENT),
        True,
        10,
    ),
    (Code.ACCEPTANCE, (Code.KEYS,), True, 5),
    (Code.SURVEY, (Code.ACCEPTANCE,), False, 3),
)


class OnsiteError(services.BookingError):
    """Refused on-site work; `message` is shown as is."""


class Conflict(OnsiteError):
    """The visit or case changed since the page was loaded (another tablet)."""


def _require(by: Any, roles: tuple[str, ...]) -> None:
    if getattr(by, "role", None) not in roles:
        raise PermissionDenied


def _hour_key(moment: dt.datetime) -> str:
    return f"hour:{timezone.localtime(moment):%Y%m%d%H}"


def _log(
    case: UnitHandover,
    action: str,
    *,
    by: Any,
    station: StationDefinition | None = None,
    from_state: str = "",
    to_state: str = "",
    note: str = "",
) -> None:
    CaseLog.objects.create(
        case=case,
        action=action,
        station=station,
        from_state=from_state,
        to_state=to_state,
        note=note[:300],
        actor=by,
    )


# --- stations ------------------------------------------------------------------------------


def ensure_default_stations(event: HandoverEvent) -> list[StationDefinition]:
    """The event's stations; the default sequence is created when it has none.
    Safe when two check-ins do it at once (conflicting rows are skipped)."""
    stations = list(event.stations.order_by("position"))
    if stations:
        return stations
    labels = dict(Code.choices)
    with transaction.atomic():
        StationDefinition.objects.bulk_create(
            [
                StationDefinition(
                    event=event,
                    code=code,
                    name=str(labels[code]),
                    position=(n + 1) * 10,
                    required=required,
                    target_minutes=minutes,
                )
                for n, (code, _prereqs, required, minutes) in enumerate(
                    DEFAULT_SEQUENCE
                )
            ],
            ignore_conflicts=True,
        )
        by_code = {s.code: s for s in event.stations.all()}
        through = StationDefinition.prerequisites.through
        through.objects.bulk_create(
            [
                through(
                    from_stationdefinition_id=by_code[code].pk,
                    to_stationdefinition_id=by_code[prereq].pk,
                )
                for code, prereqs, _required, _minutes in DEFAULT_SEQUENCE
                for prereq in prereqs
                if code in by_code and prereq in by_code
            ],
            ignore_conflicts=True,
        )
    return list(event.stations.order_by("position"))


@dataclass
class StationRow:
    """One station as the configuration page submits it."""

    station: StationDefinition
    name: str
    position: int
    required: bool
    prerequisites: list[int]
    counters: int
    target_minutes: int


def validate_sequence(rows: list[StationRow]) -> list[str]:
    """What is wrong with the sequence: duplicate positions or names, unknown
    prerequisites (another event's stations are unknown here), a prerequisite not
    earlier in the order (which also rules out cycles)."""
    errors: list[str] = []
    positions = Counter(row.position for row in rows)
    if any(n > 1 for n in positions.values()):
        errors.append(_("站点顺序不能重复。"))
    names = Counter(row.name.strip().casefold() for row in rows if row.name.strip())
    if any(n > 1 for n in names.values()):
        errors.append(_("站点名称不能重复。"))
    by_id = {row.station.pk: row for row in rows}
    for row in rows:
        if not row.name.strip():
            errors.append(_("站点名称不能为空。"))
        if not 1 <= row.counters <= 50:
            errors.append(
                _("“%(name)s”的窗口数应在 1 到 50 之间。") % {"name": row.name}
            )
        if not 1 <= row.target_minutes <= 240:
            errors.append(
                _("“%(name)s”的目标办理时长应在 1 到 240 分钟之间。")
                % {"name": row.name}
            )
        for prereq in row.prerequisites:
            other = by_id.get(prereq)
            if other is None:
                errors.append(_("前置站点无效。"))
            elif other is row:
                errors.append(
                    _("“%(name)s”不能以自己为前置站点。") % {"name": row.name}
                )
            elif other.position >= row.position:
                errors.append(
                    _("“%(name)s”的前置站点“%(prereq)s”必须排在它之前。")
                    % {"name": row.name, "prereq": other.name}
                )
    return list(dict.fromkeys(errors))


def stations_save(*, by: Any, event: HandoverEvent, rows: list[StationRow]) -> None:
    """Save the edited sequence, or raise ValidationError with every problem."""
    _require(by, CONFIG_ROLES)
    errors = validate_sequence(rows)
    if errors:
        raise ValidationError(errors)
    with transaction.atomic(), audited(by):
        stations = list(
            StationDefinition.objects.select_for_update(no_key=True)
            .filter(event=event)
            .order_by("pk")
        )
        if {s.pk for s in stations} != {row.station.pk for row in rows}:
            raise ValidationError(_("站点已被他人修改，请刷新页面后再保存。"))
        # Two passes: positions are unique, so a swap goes through free numbers.
        StationDefinition.objects.filter(event=event).update(
            position=F("position") + 10000
        )
        for row in rows:
            StationDefinition.objects.filter(pk=row.station.pk).update(
                name=row.name.strip()[:40],
                position=row.position,
                required=row.required,
                counters=row.counters,
                target_minutes=row.target_minutes,
            )
            row.station.prerequisites.set(row.prerequisites)


def _current_rows(stations: list[StationDefinition]) -> list[StationRow]:
    """The saved sequence as rows (prerequisites prefetched by the caller)."""
    return [
        StationRow(
            station=s,
            name=s.name,
            position=s.position,
            required=s.required,
            prerequisites=[p.pk for p in s.prerequisites.all()],
            counters=s.counters,
            target_minutes=s.target_minutes,
        )
        for s in stations
    ]


def _locked_stations(event: HandoverEvent) -> list[StationDefinition]:
    # FOR NO KEY UPDATE, as stations_save: an add or a delete waits for an edit of
    # the same event and sees its result.
    return list(
        StationDefinition.objects.select_for_update(no_key=True)
        .filter(event=event)
        .order_by("pk")
        .prefetch_related("prerequisites")
    )


def station_codes_free(event: HandoverEvent) -> list[tuple[str, str]]:
    """The kinds (codes) the event has no station of: what a new station may be."""
    used = set(event.stations.values_list("code", flat=True))
    return [(code, label) for code, label in Code.choices if code not in used]


def station_add(
    *,
    by: Any,
    event: HandoverEvent,
    code: str,
    name: str,
    position: int,
    required: bool = True,
    prerequisites: Iterable[int] = (),
    counters: int = 1,
    target_minutes: int = 10,
) -> StationDefinition:
    """A new station in the event's sequence, or ValidationError with every problem:
    one station per kind (code) and event, name and order unique in the event, the
    prerequisites stations of this event placed before it (so no cycle), at most
    MAX_STATIONS. Cases already checked in get no visit of it (their route is fixed
    at check-in; a prerequisite without a visit does not block them), so the board's
    counters do not move."""
    _require(by, CONFIG_ROLES)
    prerequisites = list(dict.fromkeys(prerequisites))
    with transaction.atomic(), audited(by):
        stations = _locked_stations(event)
        errors: list[str] = []
        if code not in Code.values:
            errors.append(_("请选择站点类型。"))
        elif any(s.code == code for s in stations):
            errors.append(
                _("本活动已有“%(kind)s”站点，每类站点只能有一个。")
                % {"kind": Code(code).label}
            )
        if len(stations) >= MAX_STATIONS:
            errors.append(_("每个活动最多 %(max)s 个站点。") % {"max": MAX_STATIONS})
        new = StationDefinition(event=event, code=code)
        row = StationRow(
            station=new,
            name=name,
            position=position,
            required=required,
            prerequisites=prerequisites,
            counters=counters,
            target_minutes=target_minutes,
        )
        errors.extend(validate_sequence([*_current_rows(stations), row]))
        errors = list(dict.fromkeys(errors))
        if errors:
            raise ValidationError(errors)
        new.name = name.strip()[:40]
        new.position = position
        new.required = required
        new.counters = counters
        new.target_minutes = target_minutes
        new.full_clean(exclude=["prerequisites"])
        try:
            with transaction.atomic():
                new.save()
        except IntegrityError as exc:  # the unique constraints: a parallel add
            raise ValidationError(_("站点已被他人修改，请刷新页面后再保存。")) from exc
        new.prerequisites.set(prerequisites)
    return new


@dataclass
class StationDeletion:
    """What deleting a station would do: refused (with why), or which stations take
    over its prerequisites."""

    station: StationDefinition
    refused: str
    visits: int
    # (dependent station, the prerequisites it will have instead of this one)
    rewired: list[tuple[StationDefinition, list[StationDefinition]]]


def station_deletion(station: StationDefinition) -> StationDeletion:
    """The confirmation page's preview (and the rule station_delete applies)."""
    visits = StationVisit.objects.filter(station=station).count()
    refused = ""
    if visits:
        refused = _(
            "“%(name)s”已有 %(n)s 条办理记录（业主已在此站排队或办理），不能删除；"
            "如不再使用，可将其改为非必经站点，或在办理时跳过。"
        ) % {"name": station.name, "n": visits}
    elif (
        not StationDefinition.objects.filter(event_id=station.event_id)
        .exclude(pk=station.pk)
        .exists()
    ):
        refused = _("至少要保留一个站点。")
    own = list(station.prerequisites.order_by("position"))
    rewired = []
    for dependent in station.unlocks.prefetch_related("prerequisites").order_by(
        "position"
    ):
        kept = [p for p in dependent.prerequisites.all() if p.pk != station.pk]
        kept_ids = {p.pk for p in kept}
        merged = kept + [p for p in own if p.pk not in kept_ids]
        rewired.append((dependent, sorted(merged, key=lambda p: p.position)))
    return StationDeletion(
        station=station, refused=refused, visits=visits, rewired=rewired
    )


def station_delete(*, by: Any, station: StationDefinition) -> None:
    """Delete a station nobody has visited, or ValidationError (with the reason).
    The stations that needed it inherit its own prerequisites (A → B → C without B
    is A → C), so no gate is lost and nothing points at a deleted station. Refused
    once any case has a visit of it (visits are the day's record and the board's
    counters); refused for the event's last station (an event without stations gets
    the default sequence again at the next check-in)."""
    _require(by, CONFIG_ROLES)
    with transaction.atomic(), audited(by):
        _locked_stations(station.event)
        # FOR UPDATE (a key lock): a check-in inserting a visit of this station waits
        # for the delete, or the delete sees its visit.
        target = (
            StationDefinition.objects.select_for_update(no_key=False)
            .filter(pk=station.pk, event_id=station.event_id)
            .first()
        )
        if target is None:
            raise ValidationError(_("站点已被他人删除，请刷新页面。"))
        plan = station_deletion(target)
        if plan.refused:
            raise ValidationError(plan.refused)
        for dependent, prerequisites in plan.rewired:
            dependent.prerequisites.set([p.pk for p in prerequisites])
        # Its counters are all zero (no visit ever): the keys go with it.
        BoardCounter.objects.filter(
            event_id=target.event_id, key__startswith=f"station:{target.pk}:"
        ).delete()
        try:
            with transaction.atomic():
                target.delete()
        except (IntegrityError, ProtectedError) as exc:
            raise ValidationError(
                _("“%(name)s”已有办理记录，不能删除。") % {"name": target.name}
            ) from exc


# --- check-in ------------------------------------------------------------------------------


@dataclass
class Arrival:
    """Who came and what the desk checked."""

    attendee: str = UnitHandover.Attendee.OWNER
    proxy_authorisation_id: int | None = None
    proxy_verified_by_phone: bool = False
    identity_checked: bool = False


def valid_proxies(unit_id: int) -> list[ProxyAuthorisation]:
    """The unit's handover proxy authorisations in force today."""
    return list(
        ProxyAuthorisation.objects.filter(
            unit_id=unit_id,
            scope=ProxyAuthorisation.Scope.HANDOVER,
            revoked_at__isnull=True,
        )
        .exclude(valid_until__lt=timezone.localdate())
        .select_related("proxy", "owner")
        .order_by("pk")
    )


def _check_arrival(event_unit: EventUnit, arrival: Arrival) -> None:
    if arrival.attendee not in UnitHandover.Attendee.values:
        raise OnsiteError(_("请选择到场人。"))
    if arrival.attendee != UnitHandover.Attendee.PROXY:
        arrival.proxy_authorisation_id = None
        arrival.proxy_verified_by_phone = False
        return
    ids = {p.pk for p in valid_proxies(event_unit.unit_id)}
    if arrival.proxy_authorisation_id not in ids:
        raise OnsiteError(
            _("受托人到场须有该房间有效的收楼委托书，请先在房产档案中登记委托书。")
        )


def _next_queue_number(event_id: int, day: dt.date) -> int:
    """Under the event's advisory lock (held to the end of the transaction)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtext('handover.queue'), %s)", [event_id]
        )
    last = UnitHandover.objects.filter(event_id=event_id, queue_date=day).aggregate(
        last=Max("queue_number")
    )["last"]
    return (last or 0) + 1


def _hold_station_keys(event_id: int) -> None:
    """FOR KEY SHARE on the event's stations until the check-in commits: a station
    deleted meanwhile (`station_delete`, FOR UPDATE) is either gone before the list is
    read or waits for the new visits and then sees them, instead of the check-in
    failing on a visit of a deleted station at commit. Check-ins share the lock with
    each other and with the station transitions (FOR NO KEY UPDATE). Django has no
    FOR KEY SHARE, hence the SQL."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id FROM handover_stationdefinition WHERE event_id = %s"
            " FOR KEY SHARE",
            [event_id],
        )


def _open_case(
    appointment: Appointment,
    *,
    by: Any,
    now: dt.datetime,
    arrival: Arrival,
    walk_in: bool,
) -> UnitHandover:
    """The case, its visits, its first log row and the counters: in the caller's
    transaction."""
    event_id = appointment.event_id
    day = timezone.localdate(now)
    event = HandoverEvent.objects.get(pk=event_id)
    _hold_station_keys(event_id)
    stations = ensure_default_stations(event)
    previous = UnitHandover.objects.filter(
        event_unit_id=appointment.event_unit_id
    ).aggregate(last=Max("round"))["last"]
    # A re-inspection (reinspection.py) continues the not-accepted case's rounds,
    # also when it was booked into a later event of the project.
    reinspected = (
        UnitHandover.objects.filter(reinspection_appointment_id=appointment.pk)
        .values_list("round", flat=True)
        .first()
    )
    case = UnitHandover.objects.create(
        event_id=event_id,
        event_unit_id=appointment.event_unit_id,
        appointment=appointment,
        customer_id=appointment.customer_id,
        round=max(previous or 0, reinspected or 0) + 1,
        queue_date=day,
        walk_in=walk_in,
        attendee=arrival.attendee,
        proxy_authorisation_id=arrival.proxy_authorisation_id,
        proxy_verified_by_phone=arrival.proxy_verified_by_phone,
        identity_checked_at=now if arrival.identity_checked else None,
        identity_checked_by=by if arrival.identity_checked else None,
        checked_in_at=now,
        checked_in_by=by,
    )
    needs: dict[int, set[int]] = {}
    for from_id, to_id in StationDefinition.prerequisites.through.objects.filter(
        from_stationdefinition__event_id=event_id
    ).values_list("from_stationdefinition_id", "to_stationdefinition_id"):
        needs.setdefault(from_id, set()).add(to_id)
    # The desk checked the ID: the identity station is cleared (skipped, so that it
    # adds no zero wait or service time to the station's figures).
    cleared = {
        s.pk for s in stations if arrival.identity_checked and s.code == Code.IDENTITY
    }
    visits = []
    for station in stations:
        visit = StationVisit(case=case, station=station)
        if station.pk in cleared:
            visit.state, visit.finished_at, visit.operator = VState.SKIPPED, now, by
            visit.skip_reason = _("签到时已核验身份")
        elif needs.get(station.pk, set()) <= cleared:
            visit.state, visit.queued_at = VState.WAITING, now
        else:
            visit.state = VState.PENDING
        visits.append(visit)
    StationVisit.objects.bulk_create(visits)
    checked_in = CaseLog.objects.create(
        case=case, action="checked_in", to_state=CState.CHECKED_IN, actor=by
    )
    if reinspected is not None:
        _log(
            case,
            "reinspection",
            by=by,
            note=_("复验，第 %(round)s 轮") % {"round": case.round},
        )
    if arrival.identity_checked:
        _log(case, "identity_checked", by=by)
        for visit in visits:
            if visit.state == VState.SKIPPED:
                _log(
                    case,
                    "station_skipped",
                    by=by,
                    station=visit.station,
                    to_state=VState.SKIPPED,
                    note=visit.skip_reason,
                )
    if arrival.attendee == UnitHandover.Attendee.PROXY:
        _log(
            case,
            "proxy_checked",
            by=by,
            note=_("已电话核实") if arrival.proxy_verified_by_phone else "",
        )
    # Last, because every check-in of the event queues here until the one before
    # commits (the queue number's lock, the counters' rows): the shorter that stretch,
    # the more check-ins the desks get through at once.
    case.queue_number = _next_queue_number(event_id, day)
    case.save(update_fields=["queue_number"])
    note = _("排队号 %(n)s") % {"n": case.queue_number}
    if walk_in:
        note = _("现场无预约，%(note)s") % {"note": note}
    CaseLog.objects.filter(pk=checked_in.pk).update(note=note[:300])
    deltas: Counter[str] = Counter({f"case:{CState.CHECKED_IN}": 1})
    deltas[f"{_hour_key(now)}:arrived"] += 1
    for visit in visits:
        deltas[f"station:{visit.station_id}:{visit.state}"] += 1
    counters.bump(event_id, deltas)
    return case


def check_in(
    appointment: Appointment, *, by: Any, arrival: Arrival | None = None
) -> UnitHandover | None:
    """Check the booked owner in and open the unit's case; None for an appointment
    without a unit (events without a scope have no cases). Raises BookingError."""
    _require(by, ONSITE_ROLES)
    arrival = arrival or Arrival()
    event_unit = (
        EventUnit.objects.filter(pk=appointment.event_unit_id).first()
        if appointment.event_unit_id
        else None
    )
    if event_unit is not None:
        _check_arrival(event_unit, arrival)
    opened: list[UnitHandover] = []

    def then(current: Appointment, now: dt.datetime) -> None:
        if current.event_unit_id is not None:
            opened.append(
                _open_case(current, by=by, now=now, arrival=arrival, walk_in=False)
            )

    services.appointment_check_in(appointment, by=by, then=then)
    return opened[0] if opened else None


def _walk_in_slots(
    event: HandoverEvent, event_unit: EventUnit, now: dt.datetime
) -> list[TimeSlot]:
    """Today's slots not yet over, in the unit's batch (or without one), in order."""
    local = timezone.localtime(now)
    slots = TimeSlot.objects.filter(
        event=event, date=local.date(), end_time__gt=local.time()
    )
    if event_unit.batch_id is not None:
        slots = slots.filter(Q(batch_id=event_unit.batch_id) | Q(batch__isnull=True))
    return list(slots.select_related("event").order_by("start_time", "pk"))


@retry_transient
def walk_in(
    event_unit: EventUnit,
    customer: Customer,
    *,
    by: Any,
    arrival: Arrival | None = None,
) -> UnitHandover:
    """An owner (or proxy) of the unit arrives without an appointment: a walk-in
    appointment in one of today's slots that has a seat (the held-back share is
    theirs), checked in at once, and the case opened. Refused (OnsiteError) when the
    event is not open today, the unit is not eligible or already booked, or today's
    seats are gone."""
    _require(by, ONSITE_ROLES)
    arrival = arrival or Arrival()
    event_unit = EventUnit.objects.select_related("unit__building", "event").get(
        pk=event_unit.pk
    )
    event = event_unit.event
    now = timezone.now()
    today = timezone.localdate(now)
    if event.status != HandoverEvent.Status.PUBLISHED:
        raise OnsiteError(
            _("活动“%(event)s”当前为“%(status)s”，不能签到。")
            % {"event": event.name, "status": event.get_status_display()}
        )
    if not event.start_date <= today <= event.end_date:
        raise OnsiteError(_("今天不是本次入伙活动的交付日，不能现场签到。"))
    if not services.is_unit_party(customer, event_unit.unit_id, today):
        raise OnsiteError(
            _("%(name)s 不是房间 %(unit)s 的业主或受托人。")
            % {"name": customer.name, "unit": event_unit.unit.label}
        )
    if not event_unit.is_eligible:
        raise OnsiteError(
            _("房间暂不可交付：%(why)s。")
            % {"why": event_unit.get_eligibility_display()}
        )
    # A finished visit (its case has an outcome) no longer holds the unit: a
    # not-accepted owner may come back for the re-inspection without a booking.
    active = Appointment.objects.current().filter(event_unit=event_unit).first()
    if active is not None:
        if active.state == Appointment.State.CHECKED_IN:
            raise OnsiteError(_("该房间已签到，请勿重复签到。"))
        raise OnsiteError(_("该房间已有预约，请按预约签到（或先改约到今天的时段）。"))
    services._require_not_handed_over(event_unit)  # noqa: SLF001 - the booking rule
    _check_arrival(event_unit, arrival)
    slots = [
        s
        for s in _walk_in_slots(event, event_unit, now)
        if services.seats_open(s, Appointment.Channel.WALK_IN, now) > 0
    ]
    if not slots:
        raise OnsiteError(
            _("今天的现场名额（含预留名额）已满，无法现场签到。请为业主预约其他时段。")
        )
    with transaction.atomic(), audited(by):
        services._lock_customer_unmerged(customer)  # noqa: SLF001 - one lock order
        services._lock_event_unit_in_scope(event_unit)  # noqa: SLF001
        appointment = Appointment(
            event=event,
            slot=slots[0],
            customer=customer,
            unit=event_unit.unit.label[:50],
            event_unit=event_unit,
            channel=Appointment.Channel.WALK_IN,
            state=Appointment.State.CHECKED_IN,
            checked_in_at=now,
            created_by=by,
        )
        try:
            with transaction.atomic():
                appointment.save()
        except IntegrityError as exc:
            raise OnsiteError(
                _("该房间已有预约，请按预约签到（或先改约到今天的时段）。")
            ) from exc
        taken = None
        for slot in slots:
            if services._take_seat(slot, Appointment.Channel.WALK_IN):  # noqa: SLF001
                taken = slot
                break
        if taken is None:
            raise OnsiteError(_("今天的现场名额（含预留名额）已满，无法现场签到。"))
        if taken.pk != appointment.slot_id:
            Appointment.objects.filter(pk=appointment.pk).update(slot=taken)
            appointment.slot = taken
        return _open_case(appointment, by=by, now=now, arrival=arrival, walk_in=True)


def record_identity(case: UnitHandover, *, by: Any, version: int) -> UnitHandover:
    """身份核验 after check-in (who and when)."""
    _require(by, ONSITE_ROLES)
    with transaction.atomic(), audited(by):
        current = _lock_case(case.pk, version)
        now = timezone.now()
        UnitHandover.objects.filter(pk=current.pk).update(
            identity_checked_at=now,
            identity_checked_by=by,
            version=F("version") + 1,
            updated_at=now,
        )
        _log(current, "identity_checked", by=by)
    case.refresh_from_db()
    return case


# --- station work --------------------------------------------------------------------------


def _lock_case(case_id: int, version: int | None = None) -> UnitHandover:
    case = UnitHandover.objects.select_for_update(no_key=True).get(pk=case_id)
    if version is not None and case.version != version:
        raise Conflict(_("交房单已被他人修改，请刷新页面后再操作。"))
    return case


def _require_open(case: UnitHandover) -> None:
    if not case.is_open:
        raise Conflict(
            _("交房单当前为“%(state)s”，不能再办理。")
            % {"state": case.get_state_display()}
        )


def _seconds(later: dt.datetime, earlier: dt.datetime | None) -> int:
    if earlier is None:
        return 0
    return max(int((later - earlier).total_seconds()), 0)


def _move(
    visit: StationVisit,
    to: str,
    *,
    expected: Iterable[str],
    version: int | None,
    **changes: Any,
) -> None:
    """The visit's transition, conditional on its state and version."""
    query = StationVisit.objects.filter(pk=visit.pk, state__in=list(expected))
    if version is not None:
        query = query.filter(version=version)
    if not query.update(state=to, version=F("version") + 1, **changes):
        raise Conflict(_("该业主已被其他窗口处理，请刷新队列。"))


def _transition(
    case: UnitHandover,
    visit: StationVisit,
    to: str,
    *,
    by: Any,
    action: str,
    version: int | None,
    log_note: str = "",
    **changes: Any,
) -> Counter[str]:
    """The visit moves from the state it was read in to `to` (conditional on both,
    see _move) with its CaseLog row; returns the two station counts it changes."""
    _move(visit, to, expected=[visit.state], version=version, **changes)
    _log(
        case,
        action,
        by=by,
        station=visit.station,
        from_state=visit.state,
        to_state=to,
        note=log_note,
    )
    sid = visit.station_id
    return Counter({f"station:{sid}:{visit.state}": -1, f"station:{sid}:{to}": 1})


def _visit_for_update(
    visit_id: int, version: int | None
) -> tuple[UnitHandover, StationVisit]:
    """The case row locked first (the lock order), then the visit read."""
    case_id = StationVisit.objects.values_list("case_id", flat=True).get(pk=visit_id)
    case = _lock_case(case_id)
    _require_open(case)
    visit = StationVisit.objects.select_related("station").get(pk=visit_id)
    if version is not None and visit.version != version:
        raise Conflict(_("该业主已被其他窗口处理，请刷新队列。"))
    return case, visit


def _busy_elsewhere(case_id: int, visit_id: int) -> bool:
    return (
        StationVisit.objects.filter(case_id=case_id, state__in=BUSY_STATES)
        .exclude(pk=visit_id)
        .exists()
    )


def _call(
    case: UnitHandover,
    visit: StationVisit,
    *,
    by: Any,
    counter: int | None,
    version: int | None,
) -> None:
    if visit.state != VState.WAITING:
        raise Conflict(_("该业主已被其他窗口处理，请刷新队列。"))
    if _busy_elsewhere(case.pk, visit.pk):
        raise Conflict(_("该业主正在其他站点办理。"))
    deltas = _transition(
        case,
        visit,
        VState.CALLED,
        by=by,
        action="station_called",
        version=version,
        called_at=timezone.now(),
        counter=counter,
        operator=by,
    )
    counters.bump(case.event_id, deltas)


@retry_transient
def visit_call(
    visit: StationVisit, *, by: Any, version: int | None, counter: int | None = None
) -> StationVisit:
    """叫号 for one waiting owner."""
    _require(by, ONSITE_ROLES)
    with transaction.atomic(), audited(by):
        case, current = _visit_for_update(visit.pk, version)
        _call(case, current, by=by, counter=counter, version=version)
    return StationVisit.objects.get(pk=visit.pk)


def _queue(station: StationDefinition):
    busy = StationVisit.objects.filter(
        case_id=OuterRef("case_id"), state__in=BUSY_STATES
    )
    return (
        StationVisit.objects.filter(
            station=station,
            state=VState.WAITING,
            case__state__in=UnitHandover.OPEN_STATES,
        )
        .exclude(Exists(busy))
        .order_by("queued_at", "pk")
    )


@retry_transient
def call_next(
    station: StationDefinition, *, by: Any, counter: int | None = None
) -> StationVisit | None:
    """叫下一位: the owner waiting longest at this station who is not at another
    station now; None when nobody waits. Two tablets calling at once call two
    different owners (the case row is taken with SKIP LOCKED, then re-checked)."""
    _require(by, ONSITE_ROLES)
    passed: list[int] = []
    for _attempt in range(10):
        with transaction.atomic(), audited(by):
            candidate = (
                _queue(station)
                .exclude(pk__in=passed)
                .values_list("pk", "case_id")
                .first()
            )
            if candidate is None:
                return None
            visit_id, case_id = candidate
            case = (
                UnitHandover.objects.select_for_update(no_key=True, skip_locked=True)
                .filter(pk=case_id)
                .first()
            )
            if case is None or not case.is_open:
                passed.append(visit_id)
                continue
            visit = StationVisit.objects.select_related("station").get(pk=visit_id)
            if visit.state != VState.WAITING or _busy_elsewhere(case_id, visit_id):
                passed.append(visit_id)
                continue
            _call(case, visit, by=by, counter=counter, version=visit.version)
        return StationVisit.objects.get(pk=visit_id)
    return None


@retry_transient
def visit_start(
    visit: StationVisit, *, by: Any, version: int | None, counter: int | None = None
) -> StationVisit:
    """开始办理: from called (or straight from the queue). The case's first start
    moves it to IN_PROGRESS."""
    _require(by, ONSITE_ROLES)
    with transaction.atomic(), audited(by):
        case, current = _visit_for_update(visit.pk, version)
        if current.state not in (VState.WAITING, VState.CALLED):
            raise Conflict(_("该业主已被其他窗口处理，请刷新队列。"))
        if _busy_elsewhere(case.pk, current.pk):
            raise Conflict(_("该业主正在其他站点办理。"))
        now = timezone.now()
        changes: dict[str, Any] = {"started_at": now, "operator": by}
        if counter is not None:
            changes["counter"] = counter
        deltas = _transition(
            case,
            current,
            VState.IN_SERVICE,
            by=by,
            action="station_started",
            version=version,
            **changes,
        )
        sid = current.station_id
        deltas[f"station:{sid}:served"] += 1
        deltas[f"station:{sid}:wait_s"] += _seconds(now, current.queued_at)
        if case.state == CState.CHECKED_IN:
            UnitHandover.objects.filter(pk=case.pk).update(
                state=CState.IN_PROGRESS,
                started_at=now,
                version=F("version") + 1,
                updated_at=now,
            )
            deltas[f"case:{CState.CHECKED_IN}"] -= 1
            deltas[f"case:{CState.IN_PROGRESS}"] += 1
            _log(
                case,
                "case_started",
                by=by,
                from_state=CState.CHECKED_IN,
                to_state=CState.IN_PROGRESS,
            )
        counters.bump(case.event_id, deltas)
    return StationVisit.objects.get(pk=visit.pk)


def _unlock_gated(case: UnitHandover, *, by: Any, now: dt.datetime) -> Counter[str]:
    """Queue the case's pending stations whose prerequisites are all cleared."""
    visits = {
        v.station_id: v
        for v in StationVisit.objects.filter(case=case).select_related("station")
    }
    cleared = {sid for sid, v in visits.items() if v.state in CLEARED_STATES}
    needs: dict[int, set[int]] = {}
    for from_id, to_id in StationDefinition.prerequisites.through.objects.filter(
        from_stationdefinition__event_id=case.event_id
    ).values_list("from_stationdefinition_id", "to_stationdefinition_id"):
        needs.setdefault(from_id, set()).add(to_id)
    deltas: Counter[str] = Counter()
    for sid, visit in visits.items():
        if visit.state != VState.PENDING:
            continue
        # A prerequisite station without a visit (added later) does not block.
        if all(p in cleared or p not in visits for p in needs.get(sid, set())):
            deltas.update(
                _transition(
                    case,
                    visit,
                    VState.WAITING,
                    by=by,
                    action="station_queued",
                    version=None,
                    queued_at=now,
                )
            )
    return deltas


@retry_transient
def visit_finish(
    visit: StationVisit, *, by: Any, version: int | None, note: str = ""
) -> StationVisit:
    """办理完成: the gated stations it was the last prerequisite of are queued."""
    _require(by, ONSITE_ROLES)
    with transaction.atomic(), audited(by):
        case, current = _visit_for_update(visit.pk, version)
        if current.state != VState.IN_SERVICE:
            raise Conflict(_("该站点尚未开始办理，或已被其他窗口处理。"))
        now = timezone.now()
        # The DONE count is also the "visits finished" key of counters.py.
        deltas = _transition(
            case,
            current,
            VState.DONE,
            by=by,
            action="station_done",
            version=version,
            log_note=note,
            finished_at=now,
            note=note.strip()[:300],
        )
        deltas[f"station:{current.station_id}:service_s"] += _seconds(
            now, current.started_at
        )
        if current.station.code == Code.IDENTITY and case.identity_checked_at is None:
            UnitHandover.objects.filter(pk=case.pk).update(
                identity_checked_at=now, identity_checked_by=by, updated_at=now
            )
        deltas.update(_unlock_gated(case, by=by, now=now))
        counters.bump(case.event_id, deltas)
    return StationVisit.objects.get(pk=visit.pk)


@retry_transient
def visit_skip(
    visit: StationVisit, *, by: Any, version: int | None, reason: str
) -> StationVisit:
    """跳过 (with a reason): a waiting, called or gated station; counts as cleared
    for the stations that need it."""
    _require(by, ONSITE_ROLES)
    reason = (reason or "").strip()
    if not reason:
        raise OnsiteError(_("请填写跳过原因。"))
    with transaction.atomic(), audited(by):
        case, current = _visit_for_update(visit.pk, version)
        if current.state not in (VState.PENDING, VState.WAITING, VState.CALLED):
            raise Conflict(_("该站点已在办理或已结束，不能跳过。"))
        now = timezone.now()
        deltas = _transition(
            case,
            current,
            VState.SKIPPED,
            by=by,
            action="station_skipped",
            version=version,
            log_note=reason,
            finished_at=now,
            skip_reason=reason[:200],
            operator=by,
        )
        deltas.update(_unlock_gated(case, by=by, now=now))
        counters.bump(case.event_id, deltas)
    return StationVisit.objects.get(pk=visit.pk)


@retry_transient
def visit_requeue(visit: StationVisit, *, by: Any, version: int | None) -> StationVisit:
    """过号: a called owner did not come to the counter; back into the queue, keeping
    the place (queued_at unchanged)."""
    _require(by, ONSITE_ROLES)
    with transaction.atomic(), audited(by):
        case, current = _visit_for_update(visit.pk, version)
        if current.state != VState.CALLED:
            raise Conflict(_("该业主已被其他窗口处理，请刷新队列。"))
        deltas = _transition(
            case,
            current,
            VState.WAITING,
            by=by,
            action="station_requeued",
            version=version,
            called_at=None,
            counter=None,
        )
        counters.bump(case.event_id, deltas)
    return StationVisit.objects.get(pk=visit.pk)
