"""The printable acceptance form (验房交接单) of one handover case, as PDF: the owner
and unit, the stations done with their times, the meter readings, the keys, the fees
(valid lines only: voided ones are out of the list and the total),
the defects recorded and the owner's signature image (WeasyPrint with Noto Sans CJK
SC from fonts-noto-cjk, as the 入伙通知书 in notice_pdf.py)."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.template.loader import render_to_string
from django.utils import timezone

from customers import masking
from service.defects.models import Defect
from service.handover.captures import KEY_ITEMS
from service.handover.onsite_models import StationVisit, UnitHandover

# A drawn signature is a few KB; anything far larger is not one and is not embedded.
SIGNATURE_MAX_BYTES = 2 * 1024 * 1024
# UnitHandover.signature's upload_to.
SIGNATURE_FOLDER = "handover/signatures/"
_IMAGE_TYPES = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"))


@dataclass
class Form:
    case: UnitHandover
    phone: str
    visits: list[StationVisit]
    readings: list[Any]
    fees: list[Any]
    total_fees: Any
    defects: list[Defect]
    keys: list[tuple[str, Any]]
    signature: str  # a data: URI, or "" when the case has none (or not an image)


def signature_image(case: UnitHandover) -> tuple[bytes, str] | None:
    """The case's signature file and its content type (PNG or JPEG only, by content),
    or None: no signature, a file missing or too large, a name outside the signatures'
    folder (captures.signature_save names them), or not an image. What the PDF embeds
    and the case page shows (capture_views.case_signature)."""
    name = case.signature.name if case.signature else ""
    if not name.startswith(SIGNATURE_FOLDER) or ".." in name:
        return None
    try:
        with case.signature.open("rb") as handle:
            data = handle.read(SIGNATURE_MAX_BYTES + 1)
    except (OSError, ValueError):
        return None
    if len(data) > SIGNATURE_MAX_BYTES:
        return None
    for magic, content_type in _IMAGE_TYPES:
        if data.startswith(magic):
            return data, content_type
    return None


def signature_data_uri(case: UnitHandover) -> str:
    """The case's signature file as a data: URI (PNG or JPEG only, by content)."""
    image = signature_image(case)
    if image is None:
        return ""
    data, content_type = image
    return f"data:{content_type};base64,{base64.b64encode(data).decode()}"


def form_for(case: UnitHandover, *, user: Any) -> Form:
    """Everything the form prints, in five queries (the case comes with its unit,
    event and owner)."""
    visits = list(
        case.visits.filter(state=StationVisit.State.DONE)
        .select_related("station", "operator")
        .order_by("finished_at", "station__position")
    )
    readings = list(case.meter_readings.order_by("kind"))
    fees = list(case.fee_payments.valid().order_by("paid_at", "id"))
    defects = list(
        Defect.objects.filter(case=case)
        .select_related("category", "contractor")
        .order_by("created_at", "id")
    )
    # The key items by their names (入户门钥匙 …), as the keys station shows them.
    items = case.key_items if isinstance(case.key_items, dict) else {}
    keys = [(KEY_ITEMS.get(item, item), count) for item, count in items.items()]
    phone = case.customer.phone
    return Form(
        case=case,
        phone=phone if masking.can_see_pii(user) else masking.mask_phone(phone),
        visits=visits,
        readings=readings,
        fees=fees,
        total_fees=sum((f.amount for f in fees), start=0),
        defects=defects,
        keys=keys,
        signature=signature_data_uri(case),
    )


def render(form: Form) -> bytes:
    from weasyprint import HTML  # heavy: loaded by the view that prints

    html = render_to_string(
        "handover/reports/acceptance_pdf.html",
        {"form": form, "case": form.case, "printed_at": timezone.localtime()},
    )
    return HTML(string=html, base_url=str(settings.BASE_DIR)).write_pdf()
