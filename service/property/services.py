"""Every write to the property register: projects, phases, buildings, units, who owns a
unit and who may act for an owner. Forms, the import (service/property/imports.py)
and other apps' demo data all come through here.

A unit's owner is a customer. `owner_find_or_create` finds the person by phone or ID
number among existing customers (one person, one customer record) and creates one
through customers.services.customer_create otherwise, so the customers app's
normalisation, uniqueness and audit apply unchanged. An ownership makes the unit an
asset of its owner (service.Asset, kind unit), which service tickets already know.
"""

from __future__ import annotations

import datetime as dt
from pathlib import PurePath
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.accounts.roles import Role
from crm.core.db import audited
from customers import identity, phones
from customers import services as customer_services
from customers.models import Customer, CustomerPhone
from service import services as service_services
from service.models import Asset
from service.property.models import (
    Building,
    Phase,
    Project,
    ProxyAuthorisation,
    Unit,
    UnitOwnership,
)

# Admins and managers keep the register; every staff role may read it.
EDIT_ROLES = (Role.MANAGER, Role.ADMIN)
VIEW_ROLES = tuple(Role.values)

PROJECT_FIELDS = ("code", "name", "city", "developer", "property_company")
PHASE_FIELDS = ("code", "name")
BUILDING_FIELDS = ("code", "name", "product_type", "contract_delivery_date")
UNIT_FIELDS = (
    "entrance",
    "floor",
    "room",
    "code",
    "layout",
    "fit_out",
    "contract_area",
    "measured_area",
    "contract_delivery_date",
)
# The authorisation document: a scan or a photo of the signed 授权委托书.
DOCUMENT_MAX_BYTES = 5 * 1024 * 1024
DOCUMENT_TYPES = {
    ".pdf": (b"%PDF-",),
    ".jpg": (b"\xff\xd8\xff",),
    ".jpeg": (b"\xff\xd8\xff",),
    ".png": (b"\x89PNG\r\n\x1a\n",),
}


def can_edit(user: Any) -> bool:
    return getattr(user, "role", None) in EDIT_ROLES


def _require_edit(by: Any) -> None:
    if not can_edit(by):
        raise PermissionDenied


def _apply(obj: Any, data: dict[str, Any], fields: tuple[str, ...]) -> list[str]:
    """Set the given fields; the names of those that changed."""
    changed = []
    for name in fields:
        if name in data and getattr(obj, name) != data[name]:
            setattr(obj, name, data[name])
            changed.append(name)
    return changed


def _save(by: Any, obj: Any, changed: list[str]) -> Any:
    obj.full_clean()
    with transaction.atomic(), audited(by):
        if obj.pk is None:
            obj.save(force_insert=True)
        elif changed:
            obj.save(update_fields=changed)
    return obj


# --- the hierarchy ---------------------------------------------------------------------


def project_save(
    *, by: Any, data: dict[str, Any], project: Project | None = None
) -> Project:
    _require_edit(by)
    project = project or Project()
    data = {**data}
    if "code" in data:
        data["code"] = data["code"].strip().upper()
    return _save(by, project, _apply(project, data, PROJECT_FIELDS))


def phase_save(
    *, by: Any, project: Project, data: dict[str, Any], phase: Phase | None = None
) -> Phase:
    _require_edit(by)
    phase = phase or Phase(project=project)
    data = {**data}
    if "code" in data:
        data["code"] = data["code"].strip().upper()
    return _save(by, phase, _apply(phase, data, PHASE_FIELDS))


def building_save(
    *,
    by: Any,
    phase: Phase,
    data: dict[str, Any],
    building: Building | None = None,
) -> Building:
    _require_edit(by)
    building = building or Building(phase=phase)
    data = {**data}
    if "code" in data:
        data["code"] = data["code"].strip().upper()
    return _save(by, building, _apply(building, data, BUILDING_FIELDS))


def unit_code(building: Building, entrance: str, room: str) -> str:
    """PRJ-PH-BLD-ENT-RM, the entrance left out when the building has none."""
    phase = building.phase
    parts = [phase.project.code, phase.code, building.code, entrance, room]
    return "-".join(p.strip() for p in parts if p and p.strip()).upper()


def unit_save(
    *, by: Any, building: Building, data: dict[str, Any], unit: Unit | None = None
) -> Unit:
    """Create or edit a unit; an empty code is made from its place (unit_code)."""
    _require_edit(by)
    unit = unit or Unit(building=building)
    data = {**data}
    for name in ("entrance", "room", "code"):
        if name in data:
            data[name] = (data[name] or "").strip()
    if not data.get("code") and unit.pk is None:
        data["code"] = unit_code(
            building, data.get("entrance", ""), data.get("room", "")
        )
    elif data.get("code"):
        data["code"] = data["code"].upper()
    else:
        data.pop("code", None)
    return _save(by, unit, _apply(unit, data, UNIT_FIELDS))


# --- owners ----------------------------------------------------------------------------


def normalised_phone(raw: str) -> str:
    """The stored form of a phone number ("" when empty); ValidationError if bad."""
    if not raw or not raw.strip():
        return ""
    number, _kind = phones.normalise_phone(raw)
    return number


def id_index(raw: str) -> str:
    """The blind index of an ID number ("" when empty); ValidationError if bad."""
    if not raw or not raw.strip():
        return ""
    return identity.blind_index(identity.normalise_id_number(raw))


def customers_matching(
    *, phone: str = "", index: str = ""
) -> tuple[Customer | None, Customer | None]:
    """(holder of the normalised phone, holder of the ID number's blind index)."""
    by_phone = by_id = None
    if phone:
        held = (
            CustomerPhone.objects.filter(number=phone)
            .select_related("customer")
            .order_by("pk")
            .first()
        )
        by_phone = held.customer if held else None
    if index:
        by_id = Customer.objects.filter(id_number_index=index).first()
    return by_phone, by_id


def _live(customer: Customer | None) -> Customer | None:
    """A merged duplicate stands for the customer it was merged into."""
    seen = 0
    while customer is not None and customer.merged_into_id and seen < 5:
        customer = Customer.objects.get(pk=customer.merged_into_id)
        seen += 1
    return customer


def owner_match(*, phone: str = "", id_number: str = "") -> Customer | None:
    """The existing customer with this phone or ID number, or None.

    ValidationError when the phone and the ID number belong to two different
    customers: the person cannot be told apart, so nothing is linked.
    """
    by_phone, by_id = customers_matching(
        phone=normalised_phone(phone), index=id_index(id_number)
    )
    by_phone, by_id = _live(by_phone), _live(by_id)
    if by_phone and by_id and by_phone.pk != by_id.pk:
        raise ValidationError(
            {"phone": _("电话和证件号分别属于两位不同的现有客户，请核对。")}
        )
    return by_phone or by_id


def owner_find_or_create(
    *, by: Any, name: str, phone: str = "", id_number: str = ""
) -> tuple[Customer, bool]:
    """(the customer for this person, whether it was created).

    An existing customer holding the phone or ID number is the person (their record
    is not changed). A new one is created as an owner (业主, 成交) by customer_create,
    owned by `by` like a customer import with an empty 负责人.
    """
    found = owner_match(phone=phone, id_number=id_number)
    if found is not None:
        return found, False
    if not name or not name.strip():
        raise ValidationError({"name": _("请填写业主姓名。")})
    if not (phone and phone.strip()):
        raise ValidationError({"phone": _("新业主须填写电话，用于交付通知。")})
    customer = customer_services.customer_create(
        by=by,
        data={
            "name": name.strip(),
            "kind": Customer.Kind.OWNER,
            "stage": Customer.Stage.CUSTOMER,
            "source": Customer.Source.OTHER,
        },
        phone_numbers=[phone],
        id_number=id_number or None,
    )
    return customer, True


def ownership_add(
    *,
    by: Any,
    unit: Unit,
    customer: Customer,
    role: str = UnitOwnership.Role.PRIMARY,
    contract_no: str = "",
) -> UnitOwnership:
    """Make `customer` an owner of `unit`, with the unit as their asset."""
    _require_edit(by)
    if customer.merged_into_id:
        raise ValidationError({"customer": _("该客户已被合并，请选择合并后的客户。")})
    ownership = UnitOwnership(
        unit=unit, customer=customer, role=role, contract_no=contract_no.strip()
    )
    with transaction.atomic(), audited(by):
        # Two owners added at once must not both become the primary: the unit's row
        # lock orders them, then the checks below see the earlier one.
        Unit.objects.select_for_update(no_key=True).filter(pk=unit.pk).first()
        active = UnitOwnership.objects.filter(unit=unit, is_active=True)
        if active.filter(customer=customer).exists():
            raise ValidationError({"customer": _("该客户已是本房间的业主。")})
        if role == UnitOwnership.Role.PRIMARY and active.filter(role=role).exists():
            raise ValidationError({"role": _("每个房间只能有一位主业主。")})
        ownership.full_clean(exclude=["asset"])
        ownership.asset = service_services.asset_create(
            by=by,
            customer=customer,
            data={
                "kind": Asset.Kind.UNIT,
                "name": unit.label[:100],
                "serial": unit.code[:60],
            },
        )
        ownership.save(force_insert=True)
    return ownership


def ownership_end(*, by: Any, ownership: UnitOwnership) -> UnitOwnership:
    """The person no longer owns the unit (sold, removed from the contract).

    The ownership stays as history, inactive; the asset stays on the customer's
    record (what they once owned matters to the service desk), its note says when
    the ownership ended.
    """
    _require_edit(by)
    with transaction.atomic(), audited(by):
        ended = UnitOwnership.objects.filter(pk=ownership.pk, is_active=True).update(
            is_active=False
        )
        if not ended:
            raise ValidationError(_("该业主关系已结束。"))
        if ownership.asset_id:
            note = _("%(date)s 起不再是该房间的业主。") % {
                "date": timezone.localdate().isoformat()
            }
            Asset.objects.filter(pk=ownership.asset_id).update(notes=note)
    ownership.refresh_from_db()
    return ownership


# --- proxies -----------------------------------------------------------------------------


def check_document(upload: Any) -> None:
    """A PDF, JPG or PNG of at most DOCUMENT_MAX_BYTES, by name and by content."""
    suffix = PurePath(upload.name or "").suffix.lower()
    if suffix not in DOCUMENT_TYPES:
        raise ValidationError(
            {"document": _("授权委托书只能是 PDF、JPG 或 PNG 文件。")}
        )
    if not upload.size:
        raise ValidationError({"document": _("上传的文件是空的。")})
    if upload.size > DOCUMENT_MAX_BYTES:
        raise ValidationError(
            {
                "document": _("授权委托书不能超过 %(mb)d MB。")
                % {"mb": DOCUMENT_MAX_BYTES // (1024 * 1024)}
            }
        )
    upload.seek(0)
    head = upload.read(16)
    upload.seek(0)
    if not head.startswith(DOCUMENT_TYPES[suffix]):
        raise ValidationError(
            {"document": _("文件内容与扩展名不符，请上传 PDF、JPG 或 PNG 原件。")}
        )


def proxy_add(
    *,
    by: Any,
    unit: Unit,
    owner: Customer,
    proxy: Customer,
    document: Any,
    scope: str = ProxyAuthorisation.Scope.HANDOVER,
    valid_until: dt.date | None = None,
) -> ProxyAuthorisation:
    """Record a 委托 checked by `by` against its signed document."""
    _require_edit(by)
    if not UnitOwnership.objects.filter(
        unit=unit, customer=owner, is_active=True
    ).exists():
        raise ValidationError({"owner": _("委托人须是本房间的现有业主。")})
    if document is None:
        raise ValidationError({"document": _("请上传授权委托书。")})
    check_document(document)
    if valid_until and valid_until < timezone.localdate():
        raise ValidationError({"valid_until": _("有效期不能早于今天。")})
    authorisation = ProxyAuthorisation(
        unit=unit,
        owner=owner,
        proxy=proxy,
        scope=scope,
        valid_until=valid_until,
        verified_by=by,
    )
    authorisation.full_clean(exclude=["document"])
    suffix = PurePath(document.name).suffix.lower()
    with transaction.atomic(), audited(by):
        # A random name: the owner's file name may carry their name or ID number.
        authorisation.document.save(
            f"{timezone.now():%Y%m%d%H%M%S}-{owner.pk}{suffix}", document, save=False
        )
        authorisation.save(force_insert=True)
    return authorisation


def proxy_revoke(*, by: Any, authorisation: ProxyAuthorisation) -> ProxyAuthorisation:
    _require_edit(by)
    with transaction.atomic(), audited(by):
        revoked = ProxyAuthorisation.objects.filter(
            pk=authorisation.pk, revoked_at__isnull=True
        ).update(revoked_at=timezone.now())
        if not revoked:
            raise ValidationError(_("该委托已撤销。"))
    authorisation.refresh_from_db()
    return authorisation


# --- customer merges (customers/hooks.py) --------------------------------------------------


def ownerships_follow_customer_merge(survivor: Customer, duplicate: Customer) -> None:
    """Move the duplicate's ownerships and proxies to the survivor, inside
    customer_merge's transaction (both customers locked; their assets are moved by
    the service app's hook).

    A unit both own keeps one active ownership, the survivor's: the duplicate's is
    ended, and if it was the primary one the survivor becomes the primary owner. A
    proxy between the two would make the survivor their own proxy: it is revoked
    and left as it was.
    """
    mine = UnitOwnership.objects.filter(customer=duplicate, is_active=True)
    both = {
        o.unit_id: o
        for o in UnitOwnership.objects.filter(
            customer=survivor,
            is_active=True,
            unit_id__in=mine.values("unit_id"),
        )
    }
    for ownership in mine.filter(unit_id__in=both):
        UnitOwnership.objects.filter(pk=ownership.pk).update(is_active=False)
        if ownership.role == UnitOwnership.Role.PRIMARY:
            UnitOwnership.objects.filter(pk=both[ownership.unit_id].pk).update(
                role=UnitOwnership.Role.PRIMARY
            )
    UnitOwnership.objects.filter(customer=duplicate).update(customer=survivor)
    between = Q(owner=duplicate, proxy=survivor) | Q(owner=survivor, proxy=duplicate)
    ProxyAuthorisation.objects.filter(between, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    others = ProxyAuthorisation.objects.exclude(between)
    others.filter(owner=duplicate).update(owner=survivor)
    others.filter(proxy=duplicate).update(proxy=survivor)


def customer_merge_notes(survivor: Customer, duplicate: Customer) -> list[str]:
    count = UnitOwnership.objects.filter(customer=duplicate, is_active=True).count()
    if not count:
        return []
    return [
        _("%(name)s 名下 %(n)s 套房间的业主身份将转到保留的客户。")
        % {"name": duplicate.name, "n": count}
    ]
