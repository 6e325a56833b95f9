"""Defects built through the real services: a unit with an owner, an event case on it,
a contractor, a leaf category of the default tree, a small JPEG."""

from __future__ import annotations

from typing import Any

from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from service.defects import services
from service.defects.models import Contractor, Defect, DefectCategory
from service.handover.models import EventUnit, UnitHandover
from tests.handover.builders import make_event
from tests.property.builders import unit_with_owner

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01" + b"\x00" * 64


def photo(name: str = "fixed.jpg") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, JPEG, content_type="image/jpeg")


def leaf(
    trade: str = "水电", part: str = "给水", symptom: str = "漏水"
) -> DefectCategory:
    services.categories_ensure_default()
    return DefectCategory.objects.get(
        level=3, name=symptom, parent__name=part, parent__parent__name=trade
    )


def contractor(
    name: str = "深圳市宏达水电安装有限公司", staff: Any = None
) -> Contractor:
    found = Contractor.objects.filter(name=name).first()
    return found or Contractor.objects.create(
        name=name, contact_name="陈师傅", phone="0755-1234567", staff=staff
    )


def case_for(by: Any, unit: Any = None, event: Any = None) -> UnitHandover:
    unit = unit or unit_with_owner()
    event = event or make_event(by, days_ahead=0)
    event_unit, _ = EventUnit.objects.get_or_create(event=event, unit=unit)
    ownership = unit.ownerships.filter(is_active=True).first()
    return UnitHandover.objects.create(
        event=event,
        event_unit=event_unit,
        customer=ownership.customer,
        checked_in_at=timezone.now(),
        checked_in_by=by,
    )


def defect(
    by: Any,
    *,
    case: UnitHandover | None = None,
    unit: Any = None,
    with_contractor: Contractor | None = None,
    category: DefectCategory | None = None,
    **kwargs: Any,
) -> Defect:
    if case is None and unit is None:
        case = case_for(by)
    return services.defect_record(
        by=by,
        unit=unit or case.event_unit.unit,
        case=case,
        room=Defect.Room.BATHROOM,
        category=category or leaf(),
        description="洗手盆下水管接口漏水",
        contractor=with_contractor,
        **kwargs,
    )


def step(by: Any, item: Defect, action: str, **kwargs: Any) -> Defect:
    item.refresh_from_db()
    return services.defect_transition(
        by=by, defect=item, action=action, version=item.version, **kwargs
    )
