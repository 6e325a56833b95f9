"""Personal data is shown masked unless the viewer's role may see it (PIPL, GB/T 35273 §7.2)."""

from __future__ import annotations

from typing import Any

from django.conf import settings


def can_see_pii(user: Any) -> bool:
    return user.is_authenticated and user.role in settings.KEHU_UNMASKED_ROLES


def mask_phone(phone: str) -> str:
    """138****5678: keep the first 3 and last 4 digits."""
    if len(phone) <= 7:
        return "*" * len(phone)
    return phone[:3] + "*" * (len(phone) - 7) + phone[-4:]
