"""Warranty expiry reminders: 30 days before an asset's warranty_until, its customer's
owner (the salesperson) and the desk (the leads of the desk teams, routing.desk_teams)
are told, through the scheduled-action pipeline.

One action per asset and warranty date (the idempotency key holds the date): moving
the date cancels the pending reminder and schedules a new one; a reminder already sent
for a date is never sent again. The handler re-reads the asset and does nothing when
the date it was made for is no longer the asset's (a stale action).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from crm.notifications import services as notifications
from crm.scheduler import services as scheduler
from crm.scheduler.models import ScheduledAction
from service import routing
from service.models import Asset

WARRANTY_REMINDER = "service.warranty_expiry"
DAYS_BEFORE = 30
# Reminders go out in the morning of their day, local time.
AT = time(9, 0)
State = ScheduledAction.State


def reminder_key(asset_id: int, until: date) -> str:
    return f"asset:{asset_id}:warranty:{until.isoformat()}"


def reminder_due(until: date, now: datetime | None = None) -> datetime | None:
    """When to remind of a warranty ending on `until`; None when it has ended."""
    now = now or timezone.now()
    if until < timezone.localdate(now):
        return None
    due = timezone.make_aware(datetime.combine(until - timedelta(days=DAYS_BEFORE), AT))
    return max(due, now)


def reminder_schedule(asset: Asset, *, now: datetime | None = None) -> None:
    """Schedule (or move) the asset's reminder; call in the transaction that saves it."""
    pending = ScheduledAction.objects.filter(
        kind=WARRANTY_REMINDER,
        target_id=asset.pk,
        state__in=[State.PENDING, State.DISPATCHED],
    )
    due = reminder_due(asset.warranty_until, now) if asset.warranty_until else None
    if due is None:
        pending.update(state=State.CANCELLED)
        return
    key = reminder_key(asset.pk, asset.warranty_until)
    pending.exclude(idempotency_key=key).update(state=State.CANCELLED)
    scheduler.action_schedule(
        kind=WARRANTY_REMINDER, target_id=asset.pk, due_at=due, key=key
    )


def reminders_backfill(*, now: datetime | None = None) -> int:
    """Schedule the reminders of every asset still in warranty (assets saved before
    reminders existed, or bulk-loaded); idempotent. Returns how many were looked at."""
    today = timezone.localdate(now or timezone.now())
    count = 0
    for asset in Asset.objects.filter(warranty_until__gte=today).iterator(
        chunk_size=2000
    ):
        reminder_schedule(asset, now=now)
        count += 1
    return count


def recipients(asset: Asset) -> list[tuple[Any, str]]:
    """(user, why they are told): the desk leads, and the customer's owner."""
    owner = asset.customer.owner
    desk_leads = get_user_model().objects.filter(
        Q(pk__in=routing.desk_teams().values("lead")), is_active=True
    )
    people = {user.pk: (user, gettext_noop("你是服务台组长")) for user in desk_leads}
    if owner is not None and owner.is_active:
        people[owner.pk] = (owner, gettext_noop("你是该客户的负责销售"))
    return list(people.values())


def warranty_remind(action: ScheduledAction) -> None:
    """The handler: tell the owner and the desk, once per recipient (keyed)."""
    _prefix, asset_id, _kind, until = action.idempotency_key.split(":")
    asset = (
        Asset.objects.select_related("customer__owner").filter(pk=int(asset_id)).first()
    )
    if asset is None or asset.warranty_until is None:
        return
    if asset.warranty_until.isoformat() != until:
        return  # the date moved since: a newer action reminds of the new one
    title = _("保修即将到期：%(asset)s（%(customer)s），%(date)s 到期") % {
        "asset": asset.name,
        "customer": asset.customer.name,
        "date": asset.warranty_until.isoformat(),
    }
    for person, reason in recipients(asset):
        notifications.notification_send(
            recipient=person,
            reason=reason,
            key=f"{action.idempotency_key}:{person.pk}",
            title=title,
            body=_("可以联系客户续保或安排保修期内的检修。"),
            url=reverse("service:asset_detail", args=[asset.pk]),
        )
