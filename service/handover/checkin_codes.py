"""Check-in codes: what the owner's QR code carries to the desk (docs/handover.md,
"Owners book themselves").

A code is `<appointment id>-<signature>`: ten base32 characters of an HMAC-SHA256 over
the id under this module's own salt, so nobody can make the code of another
appointment, and a code typed by hand (upper or lower case, spaces) still reads. The
id keeps its code through a reschedule, so a screenshot of the QR code stays good; a
cancelled or already checked-in appointment is refused at the desk by the service.

The QR code holds the desk page's URL with the code, so a staff phone's camera opens
the page directly, and a handheld scanner typing it into the desk's field works too.
"""

from __future__ import annotations

import base64
import secrets
from urllib.parse import parse_qs, urlsplit

from django.conf import settings
from django.urls import reverse
from django.utils.crypto import salted_hmac

CHECK_IN_SALT = "handover.check_in_code"
SIGNATURE_LENGTH = 10  # 50 bits: the desk page is for signed-in staff only
CODE_MAX = 400  # anything longer than a URL with a code is not one


def _signature(appointment_id: int) -> str:
    digest = salted_hmac(
        CHECK_IN_SALT, str(appointment_id), algorithm="sha256"
    ).digest()
    return base64.b32encode(digest).decode("ascii")[:SIGNATURE_LENGTH]


def code_for(appointment_id: int) -> str:
    return f"{appointment_id}-{_signature(appointment_id)}"


def desk_url_for(appointment_id: int) -> str:
    """The desk page for this appointment, as the QR code carries it."""
    path = reverse("handover:desk_check_in")
    return (
        f"{settings.KEHU_PUBLIC_URL.rstrip('/')}{path}?code={code_for(appointment_id)}"
    )


def appointment_id_from(raw: str) -> int | None:
    """The appointment id a scanned or typed code names, or None if it is not a code
    Kehu signed (a URL from the QR code is read for its `code` parameter)."""
    text = (raw or "").strip()
    if not text or len(text) > CODE_MAX or not text.isprintable():
        return None
    if "://" in text or text.startswith("/"):
        values = parse_qs(urlsplit(text).query).get("code") or [""]
        text = values[0].strip()
    text = "".join(text.split()).upper()
    number, dash, signature = text.partition("-")
    if not dash or not (number.isascii() and number.isdigit()) or len(number) > 18:
        return None
    appointment_id = int(number)
    if appointment_id < 1:
        return None
    if not secrets.compare_digest(signature, _signature(appointment_id)):
        return None
    return appointment_id
