"""Calls to owners from the call list (待联系业主): each is a contact on the owner's
timeline, written by the customers app's contact service (which checks the
permission, audits, and turns a call-back time into a follow-up for the caller)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from customers import services as customer_services
from customers.models import ContactLog, Customer
from service.handover.models import EventUnit
from service.handover.readiness import CallOutcome
from service.property.models import UnitOwnership

# Every call's summary starts so: the timeline reads as a handover call.
SUMMARY_PREFIX = "入伙通知回访"


def owner_call_record(
    *,
    by: Any,
    event_unit: EventUnit,
    customer: Customer,
    outcome: str,
    note: str = "",
    call_back_at: dt.datetime | None = None,
) -> ContactLog:
    """Log one call to an owner of `event_unit` about its handover."""
    if outcome not in dict(CallOutcome.CHOICES):
        raise ValidationError({"outcome": _("请选择通话结果。")})
    is_owner = UnitOwnership.objects.filter(
        unit_id=event_unit.unit_id, customer=customer, is_active=True
    ).exists()
    if not is_owner:
        raise ValidationError({"customer": _("该客户不是此房间的业主。")})
    stored = CallOutcome.stored(outcome)
    # The summary names the event and the unit: an owner of two units, or of units in
    # two events, reads on the timeline which call was about what.
    # The timeline shows the summary, not the outcome column: it says both.
    summary = (
        f"{SUMMARY_PREFIX}（{stored}）：{event_unit.event.name} · "
        f"{event_unit.unit.label}"
    )
    if note.strip():
        summary = f"{summary}\n{note.strip()}"
    return customer_services.contact_log_create(
        by=by,
        customer=customer,
        channel=ContactLog.Channel.PHONE,
        summary=summary,
        outcome=stored,
        next_step="预约入伙时段" if call_back_at else "",
        next_step_at=call_back_at,
    )
