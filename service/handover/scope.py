"""An event's scope and batches: which units are handed over, whether each may be,
and in which batch (with its own booking window and slots). docs/handover.md,
"Scope and batches".

Every write is a manager's or admin's, in one transaction under `audited(by)`; the
bulk writes are single UPDATE/INSERT statements whose rows pghistory records one by
one (its triggers are per row), so each unit's change keeps who made it.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.core.db import audited, retry_transient
from service.handover import services
from service.handover.models import (
    Appointment,
    Batch,
    EventUnit,
    HandoverEvent,
    Notice,
)
from service.property.models import Unit

# A bulk action names at most this many units (a page's checkboxes, or a filter).
MAX_BULK = 10_000


def _require_open(event: HandoverEvent) -> None:
    if event.status == HandoverEvent.Status.CLOSED:
        raise ValidationError(_("已关闭的活动不能再修改交付范围或批次。"))


def _floor_filter(floor_from: int | None, floor_to: int | None) -> Q:
    query = Q()
    if floor_from is not None:
        query &= Q(floor__gte=floor_from)
    if floor_to is not None:
        query &= Q(floor__lte=floor_to)
    return query


def _check_floors(floor_from: int | None, floor_to: int | None) -> None:
    if floor_from is not None and floor_to is not None and floor_to < floor_from:
        raise ValidationError({"floor_to": _("结束楼层不能低于起始楼层。")})


# --- scope -------------------------------------------------------------------------------


@retry_transient
def scope_add(
    *,
    by: Any,
    event: HandoverEvent,
    building_ids: Iterable[int] = (),
    floor_from: int | None = None,
    floor_to: int | None = None,
) -> int:
    """Put the event's project's units in scope (all, or those of the chosen buildings
    and floors), as eligible and without a batch; returns how many were new. Units
    already in scope are left as they are, so adding twice is harmless."""
    services._require_role(by, services.EVENT_ROLES)
    _require_open(event)
    if event.project_id is None:
        raise ValidationError(_("请先在活动中选择楼盘，再划定交付范围。"))
    _check_floors(floor_from, floor_to)
    units = Unit.objects.filter(building__phase__project_id=event.project_id)
    building_ids = list(building_ids)
    if building_ids:
        units = units.filter(building_id__in=building_ids)
    units = units.filter(_floor_filter(floor_from, floor_to))
    # Place order, so the scope page (ordered by id) reads building by building.
    unit_ids = units.order_by(
        "building__code", "entrance", "floor", "room", "id"
    ).values_list("id", flat=True)
    rows = [EventUnit(event=event, unit_id=unit_id) for unit_id in unit_ids]
    with transaction.atomic(), audited(by):
        before = EventUnit.objects.filter(event=event).count()
        EventUnit.objects.bulk_create(rows, ignore_conflicts=True, batch_size=1000)
        return EventUnit.objects.filter(event=event).count() - before


def _in_event(event: HandoverEvent, ids: Iterable[int]) -> Any:
    ids = list(ids)
    if len(ids) > MAX_BULK:
        raise ValidationError(_("一次最多处理 %(max)s 个房间。") % {"max": MAX_BULK})
    return EventUnit.objects.filter(event=event, pk__in=ids)


@retry_transient
def scope_remove(
    *, by: Any, event: HandoverEvent, event_unit_ids: Iterable[int]
) -> tuple[int, int]:
    """Take units out of scope; returns (removed, kept). A unit with a booking (a
    cancelled one too: its history stays with the unit) or a notice sent is kept."""
    services._require_role(by, services.EVENT_ROLES)
    _require_open(event)
    chosen = _in_event(event, event_unit_ids)
    with transaction.atomic(), audited(by):
        # Locked so that a booking cannot slip in between the check and the delete.
        ids = list(
            chosen.select_for_update(no_key=False)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        removable = EventUnit.objects.filter(pk__in=ids).exclude(
            Exists(Appointment.objects.filter(event_unit=OuterRef("pk")))
        )
        removable = removable.exclude(
            Exists(
                Notice.objects.filter(event_unit=OuterRef("pk")).exclude(
                    state=Notice.State.QUEUED
                )
            )
        )
        removed, _detail = removable.delete()
        removed_units = _detail.get(EventUnit._meta.label, 0)
    return removed_units, len(ids) - removed_units


@retry_transient
def eligibility_set(
    *,
    by: Any,
    event: HandoverEvent,
    event_unit_ids: Iterable[int],
    eligibility: str,
    note: str = "",
) -> int:
    """Set the eligibility (and its note) of many units at once; returns how many
    changed. Bookings already made stay: staff decide, unit by unit, whether to cancel."""
    services._require_role(by, services.EVENT_ROLES)
    _require_open(event)
    if eligibility not in EventUnit.Eligibility.values:
        raise ValidationError({"eligibility": _("请选择有效的交付资格。")})
    note = note.strip()
    if len(note) > 200:
        raise ValidationError({"note": _("说明最多 200 个字。")})
    if eligibility != EventUnit.Eligibility.ELIGIBLE and not note:
        raise ValidationError({"note": _("不可交付时请写明原因，业主预约时会看到。")})
    chosen = _in_event(event, event_unit_ids).exclude(
        eligibility=eligibility, eligibility_note=note
    )
    with transaction.atomic(), audited(by):
        return chosen.update(
            eligibility=eligibility, eligibility_note=note, updated_at=timezone.now()
        )


@retry_transient
def batch_set(
    *,
    by: Any,
    event: HandoverEvent,
    event_unit_ids: Iterable[int],
    batch: Batch | None,
) -> int:
    """Put the chosen units in `batch` (None: no batch); returns how many changed."""
    services._require_role(by, services.EVENT_ROLES)
    _require_open(event)
    if batch is not None and batch.event_id != event.pk:
        raise ValidationError({"batch": _("批次不属于此活动。")})
    chosen = _in_event(event, event_unit_ids)
    if batch is None:
        chosen = chosen.exclude(batch__isnull=True)
    else:
        chosen = chosen.exclude(batch=batch)
    with transaction.atomic(), audited(by):
        return chosen.update(batch=batch, updated_at=timezone.now())


@retry_transient
def batch_assign_units(
    *,
    by: Any,
    batch: Batch,
    building_ids: Iterable[int],
    floor_from: int | None = None,
    floor_to: int | None = None,
) -> int:
    """Put the units in scope of the chosen buildings (and floor range) in the batch;
    returns how many changed."""
    building_ids = list(building_ids)
    if not building_ids:
        raise ValidationError({"buildings": _("请至少选择一栋楼。")})
    _check_floors(floor_from, floor_to)
    chosen = EventUnit.objects.filter(
        event_id=batch.event_id, unit__building_id__in=building_ids
    )
    unit_floors = _floor_filter(floor_from, floor_to)
    if unit_floors:
        chosen = chosen.filter(
            unit__in=Unit.objects.filter(unit_floors, building_id__in=building_ids)
        )
    ids = chosen.values_list("pk", flat=True)
    return batch_set(by=by, event=batch.event, event_unit_ids=list(ids), batch=batch)


# --- batches -----------------------------------------------------------------------------

BATCH_FIELDS = ("name", "booking_opens_at", "booking_closes_at", "description")


@retry_transient
def batch_save(
    *, by: Any, event: HandoverEvent, data: dict[str, Any], batch: Batch | None = None
) -> Batch:
    """Create or edit a batch: its name and the owners' booking window."""
    services._require_role(by, services.EVENT_ROLES)
    _require_open(event)
    if batch is None:
        batch = Batch(event=event)
    for field in BATCH_FIELDS:
        if field in data:
            setattr(batch, field, data[field])
    batch.full_clean()
    try:
        with transaction.atomic(), audited(by):
            batch.save()
    except IntegrityError as exc:  # the same name saved at the same moment
        raise ValidationError({"name": _("该活动已有同名批次。")}) from exc
    return batch


@retry_transient
def batch_delete(*, by: Any, batch: Batch) -> int:
    """Delete a batch with its empty slots; its units go back to no batch. Refused
    while any of its slots has a booking (cancelled ones too: their history stays).
    Returns how many slots were deleted."""
    services._require_role(by, services.EVENT_ROLES)
    _require_open(batch.event)
    with transaction.atomic(), audited(by):
        # The batch row locked: a slot added to it meanwhile waits, then finds it gone.
        Batch.objects.select_for_update(no_key=False).filter(pk=batch.pk).first()
        if Appointment.objects.filter(slot__batch=batch).exists():
            raise ValidationError(_("该批次的时段已有预约，不能删除。"))
        slots, _detail = batch.slots.all().delete()
        batch.delete()
    return slots


def walk_in_hold_for(capacity: int, share_percent: int) -> int:
    """Seats held for walk-ins: the share of the capacity, rounded down."""
    return math.floor(capacity * share_percent / 100)


def batch_slots_add_day(
    *,
    by: Any,
    batch: Batch,
    date: dt.date,
    start_time: dt.time,
    end_time: dt.time,
    interval_minutes: int,
    capacity: int,
    walk_in_percent: int = 0,
) -> int:
    """A day of slots for the batch, each holding `walk_in_percent` % of its seats
    for walk-ins (rounded down); returns how many were new."""
    if not 0 <= walk_in_percent <= 100:
        raise ValidationError(
            {"walk_in_percent": _("现场预留比例应在 0 到 100 之间。")}
        )
    return services.slots_add_day(
        by=by,
        event=batch.event,
        date=date,
        start_time=start_time,
        end_time=end_time,
        interval_minutes=interval_minutes,
        capacity=capacity,
        batch=batch,
        walk_in_hold=walk_in_hold_for(capacity, walk_in_percent),
    )
