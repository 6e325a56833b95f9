"""Units with their owners from CSV/XLSX, through the customer import's machinery
(customers/imports.py: reading, GBK, header mapping, preview of rows with reasons,
confirmation, a resumable chunked Celery job with progress, expiry, report). This
module adds what is particular to units: the columns, the row checks and the import
of a chunk, registered as the "units" ImportKind in PropertyConfig.ready().

One row is one unit with its primary owner and optionally one co-owner. The project,
phase and building are found by code (or name) and created when new. An owner is an
existing customer when one holds the phone or the ID number (customers/phones.py and
customers/identity.py normalise both, as the customer import does), else a new
customer made by customers.services.customer_create. Re-uploading a file imports
nothing twice: a unit whose code exists with the same primary owner and the same
data is refused in the preview ("已导入"); with other data it is updated; with a
different primary owner it is refused. docs/property.md has the rules.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation
from typing import Any

import pghistory
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from crm.core import audit
from customers import builder, identity, imports, phones
from customers.models import Customer, ImportJob, ImportRow
from service.models import Asset
from service.property import services
from service.property.models import Building, Phase, Project, Unit, UnitOwnership

KIND = "units"
COLUMNS: dict[str, tuple[str, ...]] = {
    "project_code": ("项目编码", "楼盘编码", "project_code"),
    "project_name": ("项目名称", "楼盘名称", "项目", "楼盘", "project"),
    "phase": ("分期", "期数", "phase"),
    "building": ("楼栋", "楼号", "栋号", "building"),
    "entrance": ("单元", "entrance"),
    "floor": ("楼层", "floor"),
    "room": ("房号", "房间号", "room"),
    "code": ("房间编码", "unit_code"),
    "layout": ("户型", "layout"),
    "fit_out": ("装修", "装修标准", "fit_out"),
    "contract_area": ("合同面积", "contract_area"),
    "measured_area": ("实测面积", "measured_area"),
    "delivery": ("合同交付日期", "合同约定交付日期", "交付日期", "delivery_date"),
    "owner_name": ("业主姓名", "业主", "owner_name"),
    "owner_phone": ("业主电话", "业主手机", "owner_phone"),
    "owner_id": ("业主证件号", "业主身份证号", "owner_id_number"),
    "co_name": ("共有人姓名", "共有人", "co_owner_name"),
    "co_phone": ("共有人电话", "共有人手机", "co_owner_phone"),
    "co_id": ("共有人证件号", "共有人身份证号", "co_owner_id_number"),
    "contract_no": ("购房合同号", "合同号", "contract_no"),
}
REQUIRED = (
    (
        "project_code",
        gettext_lazy("第一行没有找到“项目编码”列。请使用导入模板中的表头。"),
    ),
    ("building", gettext_lazy("第一行没有找到“楼栋”列。请使用导入模板中的表头。")),
    ("room", gettext_lazy("第一行没有找到“房号”列。请使用导入模板中的表头。")),
    (
        "owner_name",
        gettext_lazy("第一行没有找到“业主姓名”列。请使用导入模板中的表头。"),
    ),
)
TEMPLATE_HEADERS = [
    ("项目编码", gettext_lazy("必填；如 CHG，同一项目各行相同")),
    ("项目名称", gettext_lazy("新项目必填")),
    ("分期", gettext_lazy("如 1 或 一期；留空为 1")),
    ("楼栋", gettext_lazy("必填；如 3 或 3栋")),
    ("单元", gettext_lazy("如 2；没有单元留空")),
    ("楼层", gettext_lazy("整数；留空时按房号推算（1502 为 15 层）")),
    ("房号", gettext_lazy("必填；如 1502")),
    ("户型", gettext_lazy("如 三室两厅")),
    ("装修", gettext_lazy("毛坯 或 精装")),
    ("合同面积", gettext_lazy("平方米")),
    ("实测面积", gettext_lazy("平方米")),
    ("合同交付日期", gettext_lazy("如 2026-12-31")),
    ("业主姓名", gettext_lazy("必填；主业主")),
    ("业主电话", gettext_lazy("新业主必填；按电话或证件号匹配现有客户")),
    ("业主证件号", gettext_lazy("身份证号，18 位")),
    ("共有人姓名", gettext_lazy("可选")),
    ("共有人电话", ""),
    ("共有人证件号", ""),
    ("购房合同号", ""),
]
TEMPLATE_EXAMPLE = [
    "CHG",
    "翠湖花园",
    "1",
    "3",
    "2",
    "15",
    "1502",
    "三室两厅",
    "精装",
    "89.50",
    "90.12",
    "2026-12-31",
    "王建国",
    "13800138000",
    "",
    "李秀英",
    "0755-88886666",
    "",
    "CHG-2025-0001",
]
DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d", "%Y年%m月%d日", "%Y-%m-%d %H:%M")
FIT_OUT = {
    "毛坯": Unit.FitOut.SHELL,
    "shell": Unit.FitOut.SHELL,
    "精装": Unit.FitOut.FINISHED,
    "精装修": Unit.FitOut.FINISHED,
    "finished": Unit.FitOut.FINISHED,
}
UNIT_DATA = ("layout", "fit_out", "contract_area", "measured_area", "delivery")
UNIT_LABELS = {
    "layout": gettext_lazy("户型"),
    "fit_out": gettext_lazy("装修"),
    "contract_area": gettext_lazy("合同面积"),
    "measured_area": gettext_lazy("实测面积"),
    "delivery": gettext_lazy("合同交付日期"),
    "floor": gettext_lazy("楼层"),
}
MAX_AREA = Decimal(100000)


# --- places ------------------------------------------------------------------------------


def place_code(raw: str) -> str:
    return raw.strip().upper()


def phase_name(code: str) -> str:
    return _("%(n)s期") % {"n": code} if code.isdigit() else code


def building_name(code: str) -> str:
    return _("%(n)s栋") % {"n": code} if code.isdigit() else code


def compose_code(
    project: str, phase: str, building: str, entrance: str, room: str
) -> str:
    """As services.unit_code does for a saved building."""
    parts = [project, phase, building, entrance, room]
    return "-".join(p.strip() for p in parts if p and p.strip()).upper()


class _Places:
    """Existing phases and buildings of the batch's projects, matched by code or name,
    so that a file saying 一期 or 3栋 finds the phase 1 or building 3 already there."""

    def __init__(self, project_codes: set[str]) -> None:
        self.phases: dict[tuple[str, str], str] = {}
        self.buildings: dict[tuple[str, str, str], str] = {}
        for code, name, project in Phase.objects.filter(
            project__code__in=project_codes
        ).values_list("code", "name", "project__code"):
            self.phases.setdefault((project, name.upper()), code)
            self.phases[(project, code)] = code
        for code, name, phase, project in Building.objects.filter(
            phase__project__code__in=project_codes
        ).values_list("code", "name", "phase__code", "phase__project__code"):
            self.buildings.setdefault((project, phase, name.upper()), code)
            self.buildings[(project, phase, code)] = code

    def phase(self, project: str, raw: str) -> str:
        raw = place_code(raw) or "1"
        return self.phases.get((project, raw), raw)

    def building(self, project: str, phase: str, raw: str) -> str:
        raw = place_code(raw)
        return self.buildings.get((project, phase, raw), raw)


# --- cells ---------------------------------------------------------------------------------


def _date(raw: str, label: str, errors: list[str]) -> dt.date | None:
    if not raw:
        return None
    for pattern in DATE_FORMATS:
        try:
            value = dt.datetime.strptime(raw, pattern).date()
        except ValueError:
            continue
        if dt.date(2000, 1, 1) <= value <= dt.date(2199, 12, 31):
            return value
        break
    errors.append(
        _("%(label)s“%(value)s”不是有效日期。") % {"label": label, "value": raw}
    )
    return None


def _area(raw: str, label: str, errors: list[str]) -> Decimal | None:
    text = re.sub(r"[,，\s㎡]|平方米|平米", "", raw)
    if not text:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        value = None
    if value is None or not value.is_finite() or not 0 <= value <= MAX_AREA:
        errors.append(
            _("%(label)s“%(value)s”不是有效的面积数字。")
            % {"label": label, "value": raw}
        )
        return None
    return value.quantize(Decimal("0.01"))


def _floor(raw: str, room: str, errors: list[str]) -> int | None:
    text = raw.strip()
    if not text:
        digits = re.match(r"^(\d{1,3})\d{2}$", room)
        if digits:
            return int(digits.group(1))
        errors.append(_("缺少楼层，且无法从房号推算。"))
        return None
    if text.endswith(("层", "F", "f")):
        text = text[:-1]
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or not -10 <= value <= 200:
        errors.append(_("楼层“%(value)s”不是有效的整数。") % {"value": raw})
        return None
    return value


class _Person:
    """An owner or co-owner as the row gives them."""

    def __init__(self, name: str, raw_phone: str) -> None:
        self.name = name.strip()
        self.raw_phone = raw_phone.strip()
        self.phone = ""
        self.id_number = ""
        self.index = ""
        self.customer_id: int | None = None

    @property
    def is_given(self) -> bool:
        return bool(self.name or self.raw_phone or self.index)

    def parse(self, raw_id: str, label: str, errors: list[str]) -> None:
        if self.raw_phone:
            try:
                self.phone, _kind = phones.normalise_phone(self.raw_phone)
            except ValidationError as error:
                errors.extend(
                    _("%(label)s：%(text)s") % {"label": label, "text": m}
                    for m in error.messages
                )
        if raw_id.strip():
            try:
                self.id_number = identity.normalise_id_number(raw_id)
            except ValidationError as error:
                errors.extend(
                    _("%(label)s：%(text)s") % {"label": label, "text": m}
                    for m in error.messages
                )
            else:
                self.index = identity.blind_index(self.id_number)

    def data(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "phone": self.phone,
            # The waiting rows must not hold the number in clear (as customer imports).
            "id_cipher": identity.encrypt(self.id_number) if self.id_number else "",
            "customer_id": self.customer_id,
        }


# --- checking rows ------------------------------------------------------------------------


class UnitRowChecker:
    """Validates rows batch by batch (one query per lookup per batch), remembering
    the units and people earlier rows of the file named."""

    def __init__(self, *, by: Any, fields: dict[int, str]) -> None:
        self.by = by
        self.fields = fields
        self.seen_units: dict[str, int] = {}
        # A person named twice in the file must be the same person both times.
        self.phone_ids: dict[str, tuple[str, int]] = {}
        self.known_projects: set[str] = set()

    def check(self, batch: list[tuple[int, list[str]]]) -> list[ImportRow]:
        values = [
            (
                line,
                {
                    name: cells[index].strip() if index < len(cells) else ""
                    for index, name in self.fields.items()
                },
            )
            for line, cells in batch
        ]
        project_codes = {place_code(v.get("project_code", "")) for _l, v in values}
        self.known_projects |= set(
            Project.objects.filter(code__in=project_codes).values_list(
                "code", flat=True
            )
        )
        places = _Places(project_codes)
        drafts = [self._parse(line, v, places) for line, v in values]
        self._match_people(drafts)
        self._match_units(drafts)
        return [self._finish(d) for d in drafts]

    def _parse(self, line: int, v: dict[str, str], places: _Places) -> dict[str, Any]:
        errors: list[str] = []
        project = place_code(v.get("project_code", ""))
        building_raw, room = v.get("building", ""), v.get("room", "").strip()
        if not project:
            errors.append(_("缺少项目编码。"))
        elif len(project) > 30:
            errors.append(_("项目编码不能超过 30 个字符。"))
        elif project not in self.known_projects and not v.get("project_name"):
            errors.append(_("新项目“%(code)s”须填写项目名称。") % {"code": project})
        if not building_raw.strip():
            errors.append(_("缺少楼栋。"))
        if not room:
            errors.append(_("缺少房号。"))
        phase = places.phase(project, v.get("phase", ""))
        building = places.building(project, phase, building_raw)
        entrance = v.get("entrance", "").strip()
        if entrance.endswith("单元"):
            entrance = entrance[:-2]
        for label, value, limit in (
            (_("分期"), phase, 20),
            (_("楼栋"), building, 20),
            (_("单元"), entrance, 10),
            (_("房号"), room, 20),
            (_("户型"), v.get("layout", ""), 40),
            (_("购房合同号"), v.get("contract_no", ""), 60),
        ):
            if len(value) > limit:
                errors.append(
                    _("%(label)s不能超过 %(limit)d 个字符。")
                    % {"label": label, "limit": limit}
                )
        floor = _floor(v.get("floor", ""), room, errors) if room else None
        fit_out = None
        if v.get("fit_out"):
            fit_out = FIT_OUT.get(v["fit_out"].lower())
            if fit_out is None:
                errors.append(
                    _("装修“%(value)s”无效，可选：毛坯、精装。")
                    % {"value": v["fit_out"]}
                )
        unit = {
            "entrance": entrance,
            "floor": floor,
            "room": room,
            "layout": v.get("layout", ""),
            "fit_out": fit_out,
            "contract_area": _area(v.get("contract_area", ""), _("合同面积"), errors),
            "measured_area": _area(v.get("measured_area", ""), _("实测面积"), errors),
            "delivery": _date(v.get("delivery", ""), _("合同交付日期"), errors),
        }
        code = place_code(v.get("code", "")) or compose_code(
            project, phase, building, entrance, room
        )
        if len(code) > 80:
            errors.append(_("房间编码不能超过 80 个字符。"))
        owner = _Person(v.get("owner_name", ""), v.get("owner_phone", ""))
        owner.parse(v.get("owner_id", ""), _("业主"), errors)
        if not owner.name:
            errors.append(_("缺少业主姓名。"))
        elif len(owner.name) > 100:
            errors.append(_("业主姓名不能超过 100 个字符。"))
        if not owner.raw_phone and not v.get("owner_id"):
            errors.append(_("缺少业主电话。"))
        co = _Person(v.get("co_name", ""), v.get("co_phone", ""))
        co.parse(v.get("co_id", ""), _("共有人"), errors)
        if co.is_given and not co.name:
            errors.append(_("缺少共有人姓名。"))
        if co.is_given and not co.raw_phone and not v.get("co_id"):
            errors.append(_("缺少共有人电话。"))
        if co.is_given and (
            (co.phone and co.phone == owner.phone)
            or (co.index and co.index == owner.index)
        ):
            errors.append(_("共有人与业主是同一人。"))
        place = f"{building_name(building)}{entrance and _('%(e)s单元') % {'e': entrance}}{room}"
        return {
            "line": line,
            "errors": errors,
            "warnings": [],
            "project": {"code": project, "name": v.get("project_name", "")[:100]},
            "phase": phase,
            "building": building,
            "code": code,
            "unit": unit,
            "owner": owner,
            "co": co if co.is_given else None,
            "contract_no": v.get("contract_no", ""),
            "place": place,
            "existing": None,
        }

    def _match_people(self, drafts: list[dict[str, Any]]) -> None:
        """Existing customers by phone and by ID number: one query each per batch."""
        people = [p for d in drafts for p in (d["owner"], d["co"]) if p is not None]
        phone_holder = {}
        for number, (pk, _name) in imports.held_phones(
            {p.phone for p in people} - {""}
        ):
            phone_holder.setdefault(number, pk)
        id_holder = dict(
            Customer.objects.filter(
                id_number_index__in={p.index for p in people} - {""}
            ).values_list("id_number_index", "pk")
        )
        holders = {
            c.pk: c
            for c in Customer.objects.filter(
                pk__in={*phone_holder.values(), *id_holder.values()}
            ).only("pk", "name", "id_number_index", "merged_into_id")
        }
        visible = set(
            Customer.objects.visible_to(self.by)
            .filter(pk__in=holders.keys())
            .values_list("pk", flat=True)
        )
        hidden = holders.keys() - visible
        if hidden:
            # The preview tells the importer these people are customers outside their
            # scope: on record, one row per batch (as the customer import does).
            audit.record(
                None,
                audit.DUPLICATE_HIDDEN,
                user=self.by,
                object_type=ImportJob._meta.model_name,
                outcome=audit.DENIED,
                row_count=len(hidden),
                detail="unit import preview",
            )
        for draft in drafts:
            for person, label in (
                (draft["owner"], _("业主")),
                (draft["co"], _("共有人")),
            ):
                if person is None:
                    continue
                self._match(
                    person, label, draft, phone_holder, id_holder, holders, visible
                )

    def _match(
        self,
        person: _Person,
        label: str,
        draft: dict[str, Any],
        phone_holder: dict[str, int],
        id_holder: dict[str, int],
        holders: dict[int, Customer],
        visible: set[int],
    ) -> None:
        errors, warnings = draft["errors"], draft["warnings"]
        by_phone = holders.get(phone_holder.get(person.phone, 0))
        by_id = holders.get(id_holder.get(person.index, 0))
        if by_phone and by_id and by_phone.pk != by_id.pk:
            errors.append(
                _("%(label)s的电话与证件号分别属于两位不同的现有客户，请核对。")
                % {"label": label}
            )
            return
        if (
            by_phone
            and person.index
            and by_phone.id_number_index
            and (by_phone.id_number_index != person.index)
        ):
            errors.append(
                _("%(label)s电话 %(phone)s 属于现有客户，但证件号与其不同，请核对。")
                % {"label": label, "phone": person.phone}
            )
            return
        # Within the file: one phone, one person.
        if person.phone:
            earlier = self.phone_ids.get(person.phone)
            if earlier and person.index and earlier[0] and earlier[0] != person.index:
                errors.append(
                    _("%(label)s电话 %(phone)s 在第 %(line)d 行对应另一个证件号。")
                    % {"label": label, "phone": person.phone, "line": earlier[1]}
                )
                return
        found = by_phone or by_id
        if found is not None:
            person.customer_id = found.merged_into_id or found.pk
            if found.pk not in visible:
                warnings.append(
                    _("%(label)s已匹配到一位现有客户（不在您的范围内，不显示名称）。")
                    % {"label": label}
                )
            elif person.name and person.name != found.name:
                warnings.append(
                    _(
                        "%(label)s姓名“%(given)s”与现有客户“%(name)s”不同，已按电话或证件号匹配。"
                    )
                    % {"label": label, "given": person.name, "name": found.name}
                )
        elif not person.phone and not errors:
            errors.append(_("%(label)s是新客户，须填写电话。") % {"label": label})

    def _match_units(self, drafts: list[dict[str, Any]]) -> None:
        codes = {d["code"] for d in drafts}
        units = {u.code: u for u in Unit.objects.filter(code__in=codes)}
        owners: dict[int, dict[str, Any]] = {}
        for unit_id, customer_id, role, name in UnitOwnership.objects.filter(
            unit__in=units.values(), is_active=True
        ).values_list("unit_id", "customer_id", "role", "customer__name"):
            entry = owners.setdefault(unit_id, {"primary": None, "others": set()})
            if role == UnitOwnership.Role.PRIMARY:
                entry["primary"] = (customer_id, name)
            else:
                entry["others"].add(customer_id)
        for draft in drafts:
            unit = units.get(draft["code"])
            if unit is not None:
                draft["existing"] = (unit, owners.get(unit.pk))

    def _finish(self, draft: dict[str, Any]) -> ImportRow:
        errors, warnings = draft["errors"], draft["warnings"]
        mode = "create"
        if not errors and draft["code"] in self.seen_units:
            errors.append(
                _("与第 %(line)d 行是同一房间（%(code)s）。")
                % {"line": self.seen_units[draft["code"]], "code": draft["code"]}
            )
        if not errors and draft["existing"] is not None:
            mode = self._against_existing(draft)
        owner, co = draft["owner"], draft["co"]
        if not errors:
            self.seen_units[draft["code"]] = draft["line"]
            for person in (owner, co):
                if person is not None and person.phone:
                    self.phone_ids.setdefault(
                        person.phone, (person.index, draft["line"])
                    )
        unit = draft["unit"]
        data: dict[str, Any] = {}
        if not errors:
            data = {
                "mode": mode,
                "project": draft["project"],
                "phase": draft["phase"],
                "building": draft["building"],
                "code": draft["code"],
                "unit": {
                    **unit,
                    "contract_area": _text(unit["contract_area"]),
                    "measured_area": _text(unit["measured_area"]),
                    "delivery": _text(unit["delivery"]),
                },
                "owner": owner.data(),
                "co_owner": co.data() if co else None,
                "contract_no": draft["contract_no"],
                "owner_label": _("现有客户") if owner.customer_id else self.by.username,
            }
        return ImportRow(
            line=draft["line"],
            status=ImportRow.Status.INVALID if errors else ImportRow.Status.VALID,
            name=f"{draft['place']} · {owner.name}"[:200],
            phone=(owner.phone or owner.raw_phone)[:60],
            data=data,
            errors=errors,
            warnings=warnings,
        )

    def _against_existing(self, draft: dict[str, Any]) -> str:
        """ "update" or "add_owner" for a unit already registered, or an error."""
        unit, owners = draft["existing"]
        owner, co = draft["owner"], draft["co"]
        primary = owners["primary"] if owners else None
        if primary is not None and primary[0] != owner.customer_id:
            draft["errors"].append(
                _(
                    "房间 %(code)s 已有主业主（%(name)s），与表中业主不同，不导入；如有过户请在房间页办理。"
                )
                % {"code": unit.code, "name": selectors_mask(primary[1])}
            )
            return ""
        changed = _changes(unit, draft["unit"])
        others = owners["others"] if owners else set()
        new_co = co is not None and (
            co.customer_id is None or co.customer_id not in others
        )
        if primary is not None and not changed and not new_co:
            draft["errors"].append(
                _("房间 %(code)s 已导入，业主和资料均相同，不再导入。")
                % {"code": unit.code}
            )
            return ""
        notes = [str(UNIT_LABELS[name]) for name in changed]
        if new_co:
            notes.append(str(_("共有人")))
        if primary is None:
            draft["warnings"].append(
                _("房间 %(code)s 已存在、尚无主业主：将登记业主。")
                % {"code": unit.code}
            )
            return "add_owner"
        draft["warnings"].append(
            _("房间 %(code)s 已存在：将更新 %(fields)s。")
            % {"code": unit.code, "fields": "、".join(notes)}
        )
        return "update"


def selectors_mask(name: str) -> str:
    """The other owner's surname only: the importer learns the unit is taken."""
    return name[:1] + "*" * max(1, len(name) - 1) if name else ""


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.isoformat() if isinstance(value, dt.date) else str(value)


def _changes(unit: Unit, given: dict[str, Any]) -> list[str]:
    """The unit fields the file sets (non-empty) to a value other than the stored one."""
    stored = {
        "layout": unit.layout,
        "fit_out": unit.fit_out,
        "contract_area": unit.contract_area,
        "measured_area": unit.measured_area,
        "delivery": unit.contract_delivery_date,
        "floor": unit.floor,
    }
    changed = []
    for name in (*UNIT_DATA, "floor"):
        value = given.get(name)
        if value in (None, ""):
            continue
        if value != stored[name]:
            changed.append(name)
    return changed


# --- importing a chunk ----------------------------------------------------------------------


class _PlaceCache:
    """Projects, phases and buildings of one chunk: found or created once."""

    def __init__(self, by: Any) -> None:
        self.by = by
        self.projects: dict[str, Project] = {}
        self.phases: dict[tuple[int, str], Phase] = {}
        self.buildings: dict[tuple[int, str], Building] = {}

    def building(self, data: dict[str, Any]) -> Building:
        code = data["project"]["code"]
        project = self.projects.get(code)
        if project is None:
            project = Project.objects.filter(
                code=code
            ).first() or services.project_save(
                by=self.by, data={"code": code, "name": data["project"]["name"]}
            )
            self.projects[code] = project
        key = (project.pk, data["phase"])
        phase = self.phases.get(key)
        if phase is None:
            phase = Phase.objects.filter(
                project=project, code=data["phase"]
            ).first() or services.phase_save(
                by=self.by,
                project=project,
                data={"code": data["phase"], "name": phase_name(data["phase"])},
            )
            self.phases[key] = phase
        key = (phase.pk, data["building"])
        building = self.buildings.get(key)
        if building is None:
            building = Building.objects.filter(
                phase=phase, code=data["building"]
            ).first() or services.building_save(
                by=self.by,
                phase=phase,
                data={
                    "code": data["building"],
                    "name": building_name(data["building"]),
                },
            )
            building.phase = phase
            phase.project = project
            self.buildings[key] = building
        return building


def _unit_fields(given: dict[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "entrance": given["entrance"],
        "floor": given["floor"],
        "room": given["room"],
    }
    if given.get("layout"):
        fields["layout"] = given["layout"]
    if given.get("fit_out"):
        fields["fit_out"] = given["fit_out"]
    for name in ("contract_area", "measured_area"):
        if given.get(name) is not None:
            fields[name] = Decimal(given[name])
    if given.get("delivery"):
        fields["contract_delivery_date"] = dt.date.fromisoformat(given["delivery"])
    return fields


def _person(by: Any, given: dict[str, Any]) -> Customer:
    cipher = given.get("id_cipher")
    customer, _created = services.owner_find_or_create(
        by=by,
        name=given["name"],
        phone=given.get("phone", ""),
        id_number=identity.decrypt(cipher) if cipher else "",
    )
    return customer


def import_unit_row(*, by: Any, data: dict[str, Any], places: _PlaceCache) -> Customer:
    """One row: the places, the unit (created or updated), its owners. ValidationError
    (with the reason for the report) when the row cannot be imported now."""
    building = places.building(data)
    fields = _unit_fields(data["unit"])
    unit = Unit.objects.filter(code=data["code"]).first()
    if unit is None:
        unit = services.unit_save(
            by=by, building=building, data={**fields, "code": data["code"]}
        )
    else:
        fields.pop("entrance"), fields.pop("room")
        unit = services.unit_save(by=by, building=unit.building, unit=unit, data=fields)
    owner = _person(by, data["owner"])
    primary = (
        UnitOwnership.objects.filter(unit=unit, is_active=True, role="primary")
        .select_related("customer")
        .first()
    )
    if primary is None:
        services.ownership_add(
            by=by, unit=unit, customer=owner, contract_no=data.get("contract_no", "")
        )
    elif primary.customer_id != owner.pk:
        raise ValidationError(
            _("房间 %(code)s 已有另一位主业主，不导入。") % {"code": unit.code}
        )
    if data.get("co_owner"):
        co = _person(by, data["co_owner"])
        if not UnitOwnership.objects.filter(
            unit=unit, customer=co, is_active=True
        ).exists():
            services.ownership_add(
                by=by, unit=unit, customer=co, role=UnitOwnership.Role.CO_OWNER
            )
    return owner


def import_rows(job: ImportJob, rows: list[ImportRow], by: Any) -> None:
    """Import locked VALID rows inside the chunk's transaction.

    The chunk goes in with one INSERT per table (customers through
    customers.builder.save_many, as the customer import stores them); should that
    collide with a concurrent write (a phone, an ID number or a unit registered since
    the checks), the chunk is rolled back and goes row by row through the services,
    each row in a savepoint, so only the rows concerned are skipped.
    """
    try:
        with transaction.atomic():
            imported, skipped = _import_bulk(job, rows, by)
    except IntegrityError:
        for row in rows:
            row.status, row.errors, row.customer_id = ImportRow.Status.VALID, [], None
        imported, skipped = _import_one_by_one(job, rows, by)
    ImportJob.objects.filter(pk=job.pk).update(
        imported_rows=F("imported_rows") + imported,
        skipped_rows=F("skipped_rows") + skipped,
    )


def _import_one_by_one(
    job: ImportJob, rows: list[ImportRow], by: Any
) -> tuple[int, int]:
    places = _PlaceCache(by)
    imported = skipped = 0
    for row in rows:
        try:
            with transaction.atomic(), pghistory.context(import_job=job.pk):
                customer = import_unit_row(by=by, data=row.data, places=places)
        except (ValidationError, IntegrityError) as error:
            # The savepoint rolled back anything the places cache created in it.
            places = _PlaceCache(by)
            row.status = ImportRow.Status.SKIPPED
            row.errors = getattr(error, "messages", None) or [str(error)]
            skipped += 1
        else:
            row.status = ImportRow.Status.IMPORTED
            row.customer = customer
            imported += 1
        row.save(update_fields=["status", "errors", "customer"])
    return imported, skipped


class _People:
    """The chunk's owners and co-owners: existing customers by phone and by ID number
    (one query each), new ones built once per person however many rows name them."""

    def __init__(self, persons: list[dict[str, Any]], by: Any, now: Any) -> None:
        self.by, self.now = by, now
        for person in persons:
            cipher = person.get("id_cipher")
            number = identity.decrypt(cipher) if cipher else ""
            person["_id"] = number
            person["_index"] = identity.blind_index(number) if number else ""
        self.by_phone: dict[str, int] = {}
        for number, (pk, _name) in imports.held_phones(
            {p["phone"] for p in persons} - {""}
        ):
            self.by_phone.setdefault(number, pk)
        self.by_index = dict(
            Customer.objects.filter(
                id_number_index__in={p["_index"] for p in persons} - {""}
            ).values_list("id_number_index", "pk")
        )
        self.merged = dict(
            Customer.objects.filter(
                pk__in={*self.by_phone.values(), *self.by_index.values()},
                merged_into__isnull=False,
            ).values_list("pk", "merged_into_id")
        )
        self.new: list[builder.NewCustomer] = []
        self.new_by_key: dict[str, builder.NewCustomer] = {}

    def resolve(self, person: dict[str, Any]) -> int | builder.NewCustomer:
        """The existing customer's id, or the (unsaved) new customer; ValidationError
        for a person the checks now refuse."""
        by_phone = self.by_phone.get(person["phone"])
        by_index = self.by_index.get(person["_index"])
        by_phone = self.merged.get(by_phone, by_phone)
        by_index = self.merged.get(by_index, by_index)
        if by_phone and by_index and by_phone != by_index:
            raise ValidationError(_("电话和证件号分别属于两位不同的现有客户，请核对。"))
        if by_phone or by_index:
            return by_phone or by_index
        keys = [
            k
            for k in (person["phone"], person["_index"] and "id:" + person["_index"])
            if k
        ]
        for key in keys:
            if key in self.new_by_key:
                return self.new_by_key[key]
        new = builder.build(
            data={
                "name": person["name"],
                "kind": Customer.Kind.OWNER,
                "stage": Customer.Stage.CUSTOMER,
                "source": Customer.Source.OTHER,
            },
            phone_numbers=[person["phone"]],
            id_number=person["_id"] or None,
            owner=self.by,
            now=self.now,
        )
        builder.clean(new, in_bulk=True)
        self.new.append(new)
        for key in keys:
            self.new_by_key[key] = new
        return new


def _customer_id(found: int | builder.NewCustomer) -> int:
    return found if isinstance(found, int) else found.customer.pk


def _import_bulk(job: ImportJob, rows: list[ImportRow], by: Any) -> tuple[int, int]:
    """The chunk with one INSERT per table; (imported, skipped)."""
    places = _PlaceCache(by)
    buildings = {row.pk: places.building(row.data) for row in rows}
    units = {
        u.code: u
        for u in Unit.objects.filter(code__in={row.data["code"] for row in rows})
    }
    holders: dict[int, dict[int, str]] = {}
    for unit_id, customer_id, role in UnitOwnership.objects.filter(
        unit__in=units.values(), is_active=True
    ).values_list("unit_id", "customer_id", "role"):
        holders.setdefault(unit_id, {})[customer_id] = role
    people = _People(
        [p for row in rows for p in (row.data["owner"], row.data.get("co_owner")) if p],
        by,
        timezone.now(),
    )
    plans, skipped = [], []
    for row in rows:
        try:
            owner = people.resolve(row.data["owner"])
            co = (
                people.resolve(row.data["co_owner"])
                if row.data.get("co_owner")
                else None
            )
        except ValidationError as error:
            row.status, row.errors = ImportRow.Status.SKIPPED, error.messages
            skipped.append(row)
            continue
        plans.append((row, owner, co))
    with builder.history(by, import_job=job.pk):
        builder.save_many(people.new, by=by, import_job=job.pk)
        creating = []
        for row, _owner, _co in plans:
            if row.data["code"] in units:
                unit = units[row.data["code"]]
                fields = _unit_fields(row.data["unit"])
                fields.pop("entrance"), fields.pop("room")
                # A re-import that changes a unit: rare, through the service.
                units[unit.code] = services.unit_save(
                    by=by, building=unit.building, unit=unit, data=fields
                )
            else:
                unit = Unit(
                    building=buildings[row.pk],
                    code=row.data["code"],
                    **_unit_fields(row.data["unit"]),
                )
                unit.full_clean(
                    exclude=["building"],
                    validate_unique=False,
                    validate_constraints=False,
                )
                units[unit.code] = unit
                creating.append(unit)
        Unit.objects.bulk_create(creating)
        assets, ownerships, imported = [], [], []
        for row, owner, co in plans:
            unit = units[row.data["code"]]
            held = holders.setdefault(unit.pk, {})
            owner_id = _customer_id(owner)
            primary = next((c for c, r in held.items() if r == "primary"), None)
            if primary is not None and primary != owner_id:
                row.status = ImportRow.Status.SKIPPED
                row.errors = [
                    _("房间 %(code)s 已有另一位主业主，不导入。") % {"code": unit.code}
                ]
                skipped.append(row)
                continue
            wanted = [] if primary is not None else [(owner_id, "primary")]
            if co is not None and _customer_id(co) not in held:
                wanted.append((_customer_id(co), UnitOwnership.Role.CO_OWNER))
            for customer_id, role in wanted:
                held[customer_id] = role
                # Units carry no warranty date: no reminder to schedule (asset_create).
                asset = Asset(
                    customer_id=customer_id,
                    kind=Asset.Kind.UNIT,
                    name=unit.label[:100],
                    serial=unit.code[:60],
                )
                assets.append(asset)
                ownerships.append(
                    UnitOwnership(
                        unit=unit,
                        customer_id=customer_id,
                        role=role,
                        contract_no=row.data.get("contract_no", "")
                        if role == "primary"
                        else "",
                        asset=asset,
                    )
                )
            row.status, row.customer_id = ImportRow.Status.IMPORTED, owner_id
            imported.append(row)
        Asset.objects.bulk_create(assets)
        for ownership in ownerships:
            ownership.asset_id = ownership.asset.pk
        UnitOwnership.objects.bulk_create(ownerships)
    ImportRow.objects.bulk_update(
        [*imported, *skipped], ["status", "errors", "customer"]
    )
    return len(imported), len(skipped)


UNITS = imports.ImportKind(
    key=KIND,
    label=gettext_lazy("房间"),
    perm="property.add_unit",
    create_perm="property.add_unitownership",
    columns=COLUMNS,
    required=REQUIRED,
    checker=UnitRowChecker,
    import_rows=import_rows,
    template_headers=TEMPLATE_HEADERS,
    template_example=TEMPLATE_EXAMPLE,
    upload_url="property:import_upload",
    list_url="property:project_list",
    owner_note=gettext_lazy(
        "业主按电话或证件号匹配现有客户（不修改其资料）；找不到的新建为客户（类型“业主”），"
        "由您负责。项目、分期、楼栋按编码或名称匹配，没有则新建。"
    ),
)
