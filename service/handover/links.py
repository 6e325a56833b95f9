"""Owners' personal booking links: make, open, revoke (docs/handover.md, "Owner links").

The URL carries `signing.dumps({"l": link id, "n": nonce})` under its own salt, so a
token cannot be forged or reused from another purpose. The row decides the rest: a
revoked or expired link opens nothing, and revoking needs no key change. A link has
one holder (an owner, co-owner or proxy of the unit); every holder of the unit books
for the same unit, and the unit has at most one active booking.
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from django.conf import settings
from django.core import signing
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from service.handover.models import EventUnit, OwnerLink

LINK_SALT = "handover.owner_link"


class LinkError(Exception):
    """A link that opens nothing. `reason` is one of: invalid, expired, revoked."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def link_lifetime() -> dt.timedelta:
    return dt.timedelta(days=settings.KEHU_OWNER_LINK_DAYS)


def _expiry_for(event_unit: EventUnit) -> dt.datetime:
    """Open until the end of the event's last day, and never longer than the lifetime."""
    event = event_unit.event
    last_day = dt.datetime.combine(
        event.end_date + dt.timedelta(days=1),
        dt.time.min,
        tzinfo=timezone.get_current_timezone(),
    )
    return min(last_day, timezone.now() + link_lifetime())


def link_for(*, event_unit: EventUnit, holder: Any) -> OwnerLink:
    """The holder's live link to the unit, made once and reused by later notices.

    A link that has expired is replaced; a revoked one stays revoked (a new live link
    is made: revoking protects against a leaked URL, not against the owner)."""
    now = timezone.now()
    live = (
        OwnerLink.objects.filter(
            event_unit=event_unit, holder=holder, revoked_at__isnull=True
        )
        .order_by("-id")
        .first()
    )
    if live is not None and live.expires_at > now:
        return live
    with transaction.atomic():
        if live is not None:
            # Expired: retire it so the partial unique index admits the new one.
            OwnerLink.objects.filter(pk=live.pk, revoked_at__isnull=True).update(
                revoked_at=now
            )
        try:
            with transaction.atomic():
                return OwnerLink.objects.create(
                    event_unit=event_unit,
                    holder=holder,
                    nonce=secrets.token_urlsafe(12),
                    expires_at=_expiry_for(event_unit),
                )
        except IntegrityError:
            # Made at the same moment by a parallel notice job: use that one.
            return OwnerLink.objects.get(
                event_unit=event_unit, holder=holder, revoked_at__isnull=True
            )


def token_for(link: OwnerLink) -> str:
    return signing.dumps({"l": link.pk, "n": link.nonce}, salt=LINK_SALT)


def url_for(link: OwnerLink) -> str:
    """The personal link as the owner opens it (KEHU_PUBLIC_URL + path)."""
    path = reverse("owner_booking", args=[token_for(link)])
    return settings.KEHU_PUBLIC_URL.rstrip("/") + path


def open_link(token: str) -> OwnerLink:
    """The live link a token names, with its unit, event and holder; LinkError if none."""
    try:
        data = signing.loads(token, salt=LINK_SALT, max_age=link_lifetime())
    except signing.SignatureExpired as exc:
        raise LinkError("expired") from exc
    except signing.BadSignature as exc:
        raise LinkError("invalid") from exc
    if not isinstance(data, dict) or not isinstance(data.get("l"), int):
        raise LinkError("invalid")
    link = (
        OwnerLink.objects.select_related(
            "event_unit__event",
            "event_unit__batch",
            "event_unit__unit__building",
            "holder",
        )
        .filter(pk=data["l"])
        .first()
    )
    if link is None or not secrets.compare_digest(link.nonce, str(data.get("n", ""))):
        raise LinkError("invalid")
    if link.revoked_at is not None:
        raise LinkError("revoked")
    if link.expires_at <= timezone.now():
        raise LinkError("expired")
    return link


def link_revoke(link: OwnerLink, *, by: Any) -> bool:
    """Revoke a link; True if it was live. Audited through the row's revoked_by."""
    return bool(
        OwnerLink.objects.filter(pk=link.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now(), revoked_by=by
        )
    )
