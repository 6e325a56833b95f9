"""Two-step verification (TOTP + backup codes, django-otp): who must use it, and what a
signed-in session still owes before it may open pages.

A session "owes" verification when its user has a confirmed device and the session has
not been verified with one, and "owes" enrolment when the user's role must use two-step
verification (`KEHU_MFA_REQUIRED_ROLES`, `KEHU_MFA_REQUIRED_FOR_ALL`) but has no device.
"""

from __future__ import annotations

from base64 import b32encode
from typing import Any

import django_otp
import segno
from django.conf import settings
from django.http import HttpRequest
from django.utils.safestring import SafeString, mark_safe
from django_otp.plugins.otp_totp.models import TOTPDevice

VERIFY = "verify"
ENROL = "enrol"

# Whether the session's user has a confirmed device, decided at login and kept in the
# session so that pages cost no device query for users who have none.
ENROLLED_SESSION_KEY = "kehu_two_step_enrolled"
# The secret offered on the enrolment page until the user confirms it with a code.
PENDING_KEY_SESSION_KEY = "kehu_two_step_pending_key"

BACKUP_CODE_COUNT = 10


def is_required(user: Any) -> bool:
    """Whether `user` may use Kehu only after two-step verification."""
    if settings.KEHU_MFA_REQUIRED_FOR_ALL:
        return True
    required = settings.KEHU_MFA_REQUIRED_ROLES
    return bool(required) and user.role in required


def is_enrolled(user: Any) -> bool:
    return django_otp.user_has_device(user)


def session_enrolled_reset(request: HttpRequest, *, enrolled: bool | None) -> None:
    """Remember (or forget, with None) whether the session's user has a device."""
    if enrolled is None:
        request.session.pop(ENROLLED_SESSION_KEY, None)
    else:
        request.session[ENROLLED_SESSION_KEY] = enrolled


def step_owed(request: HttpRequest) -> str | None:
    """VERIFY, ENROL or None for the signed-in user of `request`."""
    user = request.user
    if user.is_verified():
        return None
    enrolled = request.session.get(ENROLLED_SESSION_KEY)
    if enrolled is None:
        enrolled = is_enrolled(user)
        session_enrolled_reset(request, enrolled=enrolled)
    if enrolled:
        return VERIFY
    if is_required(user):
        return ENROL
    return None


def totp_device_unsaved(user: Any, key: str) -> TOTPDevice:
    return TOTPDevice(user=user, key=key, name="totp", confirmed=False)


def secret_for_display(device: TOTPDevice) -> str:
    """The base32 secret in groups of four, for typing into an app by hand."""
    secret = b32encode(device.bin_key).decode()
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def qr_code_svg(device: TOTPDevice) -> SafeString:
    """The otpauth:// address as an inline SVG QR code (drawn on the server: no script)."""
    svg = segno.make(device.config_url, error="m").svg_inline(
        scale=5, border=2, title="otpauth QR"
    )
    return mark_safe(svg)  # noqa: S308  # nosec B308 B703 # segno draws the SVG from our own URL


def backup_code_display(code: str) -> str:
    return f"{code[:4]} {code[4:]}"


def normalise_code(code: str) -> str:
    """A typed code without spaces or dashes, lower case (backup codes are base32)."""
    return "".join(ch for ch in code if ch not in " -\t").lower()
