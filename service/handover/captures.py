"""What the stations record on a case (issue 17 part 2; handover.md §1.2, §2.5, §2.7):
the area-difference settlement, fee payments, meter readings, the keys, the
acceptance signature and the quick satisfaction rating.

Every capture locks the case row and bumps its version, so an outcome decided on a
page loaded before the capture is refused as stale (outcomes.lock_case) rather than
made on what the deciding clerk did not see. Captures are taken while the case is
open (checked in or in progress); the rating also after it was accepted (the survey
station follows the acceptance). Fees and ratings move the live board's counters
(`fees:cents`, `rating:sum`, `rating:count`) in the same transaction.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import io
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import F, Sum
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from crm.core.db import audited, retry_transient
from service.handover import counters
from service.handover.models import (
    CaseLog,
    FeePayment,
    MeterReading,
    StationDefinition,
    UnitHandover,
)
from service.handover.outcomes import (
    ACCEPTED_STATES,
    OutcomeRefused,
    lock_case,
    require_onsite,
)

State = UnitHandover.State
Code = StationDefinition.Code
# A signature drawn on a phone or tablet is a few tens of KB; 300 KB is plenty.
SIGNATURE_MAX_BYTES = 300 * 1024
SIGNATURE_MAX_SIDE = 4000
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
DATA_URL_PREFIX = "data:image/png;base64,"
# Key items the keys station counts (key_items JSON: item → count).
KEY_ITEMS = {
    "entrance": gettext_lazy("入户门钥匙"),
    "mailbox": gettext_lazy("信箱钥匙"),
    "access_card": gettext_lazy("门禁卡"),
    "meter_box": gettext_lazy("表箱钥匙"),
    "window": gettext_lazy("窗户钥匙"),
    "other": gettext_lazy("其他钥匙"),
}
KEY_ITEM_MAX = 50
CENT = Decimal("0.01")
FEE_VOID_REASON_MAX = 200


class CaptureRefused(OutcomeRefused):
    """The capture cannot be taken; `message` is shown to the user as is."""


def _lock_open(case: UnitHandover, *, also: tuple[str, ...] = ()) -> UnitHandover:
    current = lock_case(case, None)
    if current.state not in (*UnitHandover.OPEN_STATES, *also):
        raise CaptureRefused(
            _("交房单当前为“%(state)s”，不能再修改。")
            % {"state": current.get_state_display()}
        )
    return current


def _touch(current: UnitHandover, **fields: Any) -> None:
    UnitHandover.objects.filter(pk=current.pk).update(
        version=F("version") + 1, updated_at=timezone.now(), **fields
    )


def _log(current: UnitHandover, action: str, code: str, note: str, by: Any) -> None:
    station = StationDefinition.objects.filter(
        event_id=current.event_id, code=code
    ).first()
    CaseLog.objects.create(
        case=current,
        action=action,
        station=station,
        from_state=current.state,
        to_state=current.state,
        note=note[:300],
        actor=by,
    )


# --- settlement (面积补差) -------------------------------------------------------------------


def area_difference_suggestion(
    case: UnitHandover, price_per_m2: Decimal | None
) -> Decimal | None:
    """(measured − contract area) × price per m², to the fen; None when an area or the
    price is unknown. Positive: the owner pays; negative: a refund."""
    unit = case.event_unit.unit
    if price_per_m2 is None or unit.contract_area is None or unit.measured_area is None:
        return None
    amount = (unit.measured_area - unit.contract_area) * price_per_m2
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


@retry_transient
def settlement_save(case: UnitHandover, *, by: Any, amount: Decimal) -> UnitHandover:
    require_onsite(by)
    with transaction.atomic(), audited(by):
        current = _lock_open(case)
        _touch(current, area_difference_amount=amount)
        _log(current, "settlement", Code.SETTLEMENT, f"{amount}", by)
    case.refresh_from_db()
    return case


# --- fees ----------------------------------------------------------------------------------


def fee_lines(case: UnitHandover) -> tuple[list[FeePayment], Decimal]:
    """The case's valid fee lines (voided ones left out) and their total."""
    lines = list(
        case.fee_payments.valid().select_related("cashier").order_by("paid_at", "pk")
    )
    return lines, sum((line.amount for line in lines), Decimal("0.00"))


@retry_transient
def fee_add(
    case: UnitHandover,
    *,
    by: Any,
    item: str,
    amount: Decimal,
    method: str,
    receipt_number: str = "",
) -> FeePayment:
    require_onsite(by)
    with transaction.atomic(), audited(by):
        current = _lock_open(case)
        payment = FeePayment(
            case=current,
            item=item,
            amount=amount,
            method=method,
            receipt_number=receipt_number.strip(),
            cashier=by,
        )
        payment.full_clean(exclude=["case", "cashier"])
        payment.save()
        _touch(current)
        _log(
            current,
            "fee",
            Code.FEES,
            f"{payment.get_item_display()} {amount} {payment.get_method_display()}",
            by,
        )
        counters.bump(current.event_id, {"fees:cents": int(amount * 100)})
    return payment


@retry_transient
def fee_void(payment: FeePayment, *, by: Any, reason: str) -> FeePayment:
    """作废 a wrong fee line, with the reason: the row stays (money is never deleted),
    out of every total; `fees:cents` goes down by its amount and the case's log says
    who voided what and why. The corrected line is then entered with `fee_add`. The
    same people and the same time as `fee_add`: any on-site role, while the case is
    open. A line voided twice (two tablets) is refused the second time."""
    require_onsite(by)
    reason = (reason or "").strip()
    if not reason:
        raise CaptureRefused(_("请填写作废原因。"))
    if len(reason) > FEE_VOID_REASON_MAX:
        raise CaptureRefused(
            _("作废原因不能超过 %(max)s 个字。") % {"max": FEE_VOID_REASON_MAX}
        )
    with transaction.atomic(), audited(by):
        # The case row first (the lock order of every capture), then the line.
        current = _lock_open(UnitHandover(pk=payment.case_id))
        line = (
            FeePayment.objects.select_for_update(no_key=True)
            .filter(pk=payment.pk, case=current)
            .first()
        )
        if line is None:
            raise CaptureRefused(_("收费记录不存在。"))
        if line.voided_at is not None:
            raise CaptureRefused(_("该收费记录已作废。"))
        now = timezone.now()
        FeePayment.objects.filter(pk=line.pk).update(
            voided_at=now, voided_by=by, void_reason=reason
        )
        _touch(current)
        _log(
            current,
            "fee_void",
            Code.FEES,
            _("%(item)s %(amount)s %(method)s，原因：%(reason)s")
            % {
                "item": line.get_item_display(),
                "amount": line.amount,
                "method": line.get_method_display(),
                "reason": reason,
            },
            by,
        )
        counters.bump(current.event_id, {"fees:cents": -int(line.amount * 100)})
    line.refresh_from_db()
    return line


def fees_total(case: UnitHandover) -> Decimal:
    return case.fee_payments.valid().aggregate(
        total=Sum("amount", default=Decimal("0.00"))
    )["total"]


# --- meters --------------------------------------------------------------------------------


@retry_transient
def meter_readings_save(
    case: UnitHandover, *, by: Any, readings: dict[str, tuple[str, Decimal | None]]
) -> None:
    """`readings`: kind → (meter number, reading); a None reading leaves the kind as it
    is. A kind read again replaces its reading (one per kind)."""
    require_onsite(by)
    with transaction.atomic(), audited(by):
        current = _lock_open(case)
        noted = []
        for kind, (number, reading) in readings.items():
            if reading is None:
                continue
            MeterReading.objects.update_or_create(
                case=current,
                kind=kind,
                defaults={
                    "meter_number": number.strip(),
                    "reading": reading,
                    "read_by": by,
                    "read_at": timezone.now(),
                },
            )
            noted.append(f"{MeterReading.Kind(kind).label} {reading}")
        if not noted:
            raise CaptureRefused(_("请至少填写一个表的读数。"))
        _touch(current)
        _log(current, "meters", Code.METERS, "；".join(noted), by)


# --- keys ----------------------------------------------------------------------------------


@retry_transient
def keys_save(
    case: UnitHandover, *, by: Any, action: str, items: dict[str, int]
) -> UnitHandover:
    require_onsite(by)
    if action not in UnitHandover.KeyAction.values:
        raise CaptureRefused(_("请选择钥匙去向。"))
    items = {k: int(v) for k, v in items.items() if k in KEY_ITEMS and v}
    if any(not 0 < v <= KEY_ITEM_MAX for v in items.values()):
        raise CaptureRefused(
            _("每项钥匙数量应在 0 到 %(max)s 之间。") % {"max": KEY_ITEM_MAX}
        )
    if not items:
        raise CaptureRefused(_("请填写交接的钥匙数量。"))
    with transaction.atomic(), audited(by):
        current = _lock_open(case)
        _touch(
            current,
            key_action=action,
            key_items=items,
            keys_handed_at=timezone.now(),
        )
        label = UnitHandover.KeyAction(action).label
        listed = "、".join(f"{KEY_ITEMS[k]}×{v}" for k, v in items.items())
        _log(current, "keys", Code.KEYS, f"{label}：{listed}", by)
    case.refresh_from_db()
    return case


# --- acceptance signature ----------------------------------------------------------------


def signature_png(data_url: str) -> bytes:
    """The PNG bytes of a canvas's data URL, or CaptureRefused: not a PNG data URL, not
    base64, over SIGNATURE_MAX_BYTES, not a PNG inside, or an image Pillow cannot read
    (when Pillow is installed)."""
    data_url = (data_url or "").strip()
    if not data_url:
        raise CaptureRefused(_("请先签名。"))
    if not data_url.startswith(DATA_URL_PREFIX):
        raise CaptureRefused(_("签名必须是 PNG 图片。"))
    encoded = data_url[len(DATA_URL_PREFIX) :]
    # Base64 is 4/3 of the bytes: refuse a huge string before decoding it.
    if len(encoded) > SIGNATURE_MAX_BYTES * 4 // 3 + 8:
        raise CaptureRefused(_("签名图片过大（上限 300 KB）。"))
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as error:
        raise CaptureRefused(_("签名数据无法读取，请重新签名。")) from error
    if len(raw) > SIGNATURE_MAX_BYTES:
        raise CaptureRefused(_("签名图片过大（上限 300 KB）。"))
    if not raw.startswith(PNG_MAGIC):
        raise CaptureRefused(_("签名必须是 PNG 图片。"))
    _check_with_pillow(raw)
    return raw


def _check_with_pillow(raw: bytes) -> None:
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow is installed with WeasyPrint
        return
    try:
        with Image.open(io.BytesIO(raw)) as image:
            if image.format != "PNG":
                raise CaptureRefused(_("签名必须是 PNG 图片。"))
            width, height = image.size
            image.verify()
    except CaptureRefused:
        raise
    except Exception as error:  # Pillow raises many kinds for a broken file
        raise CaptureRefused(_("签名数据无法读取，请重新签名。")) from error
    if not (0 < width <= SIGNATURE_MAX_SIDE and 0 < height <= SIGNATURE_MAX_SIDE):
        raise CaptureRefused(_("签名图片尺寸不正确。"))


@retry_transient
def signature_save(case: UnitHandover, *, by: Any, data_url: str) -> UnitHandover:
    """The owner's acceptance signature; a second one replaces the first."""
    require_onsite(by)
    raw = signature_png(data_url)
    with transaction.atomic(), audited(by):
        current = _lock_open(case)
        old_name = current.signature.name
        now = timezone.now()
        current.signature.save(
            f"case-{current.pk}-{now:%Y%m%d%H%M%S}.png", ContentFile(raw), save=False
        )
        _touch(current, signature=current.signature.name, signed_at=now)
        _log(current, "signature", Code.ACCEPTANCE, "", by)
        if old_name:
            storage = current.signature.storage
            transaction.on_commit(lambda: storage.delete(old_name))
    case.refresh_from_db()
    return case


# --- survey --------------------------------------------------------------------------------


@retry_transient
def rating_save(
    case: UnitHandover, *, by: Any, rating: int, comment: str = ""
) -> UnitHandover:
    """The 1–5 quick rating; rated again, the counters move by the difference."""
    require_onsite(by)
    if not 1 <= rating <= 5:
        raise CaptureRefused(_("评分应在 1 到 5 之间。"))
    with transaction.atomic(), audited(by):
        current = _lock_open(case, also=ACCEPTED_STATES)
        before = current.rating
        _touch(current, rating=rating, rating_comment=comment.strip()[:200])
        _log(current, "rating", Code.SURVEY, f"{rating}", by)
        counters.bump(
            current.event_id,
            {
                "rating:sum": rating - (before or 0),
                "rating:count": 0 if before else 1,
            },
        )
    case.refresh_from_db()
    return case


def default_notice_deadline(case: UnitHandover) -> dt.date:
    """The refusal form's first guess at the notice's deadline: the event's last day."""
    return case.event.end_date
