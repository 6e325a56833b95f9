"""The customer timeline's entries for deals (customers/timeline.py sources): each
stage change of the customer's deals and each payment received from the customer.
One query each, whatever the number of deals."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib.humanize.templatetags.humanize import intcomma
from django.utils.translation import gettext as _

from culture.deals.models import Deal, DealStageChange, Payment
from customers.timeline import Entry


def stage_entries(customer: Any, before: datetime | None, limit: int) -> list[Entry]:
    changes = DealStageChange.objects.filter(deal__customer=customer).select_related(
        "deal", "from_stage", "to_stage", "by"
    )
    if before:
        changes = changes.filter(at__lte=before)
    entries = []
    for change in changes.order_by("-at", "-id")[:limit]:
        if change.from_stage is None:
            title = _("新建商机“%(title)s”：%(stage)s")
        elif change.to_status == "lost":
            title = _("商机“%(title)s”输单")
        elif change.from_status == "lost":
            title = _("商机“%(title)s”重新打开：%(stage)s")
        else:
            title = _("商机“%(title)s”：%(from)s → %(stage)s")
        entries.append(
            Entry(
                at=change.at,
                kind="deal",
                icon="briefcase",
                title=title
                % {
                    "title": change.deal.title,
                    "stage": change.to_stage.name,
                    "from": change.from_stage.name if change.from_stage else "",
                },
                body=change.deal.lost_reason if change.to_status == "lost" else "",
                actor=str(change.by) if change.by else "",
                url=change.deal.get_absolute_url(),
                badge=Deal.Status(change.to_status).label,
                id=change.pk,
            )
        )
    return entries


def payment_entries(customer: Any, before: datetime | None, limit: int) -> list[Entry]:
    payments = Payment.objects.filter(customer=customer).select_related(
        "deal", "created_by"
    )
    if before:
        payments = payments.filter(created_at__lte=before)
    return [
        Entry(
            at=payment.created_at,
            kind="payment",
            icon="cash-coin",
            title=_("回款 ¥%(amount)s（%(title)s）")
            % {
                "amount": intcomma(f"{payment.amount:.2f}"),
                "title": payment.deal.title,
            },
            body=_("回款日期 %(day)s") % {"day": payment.received_on.isoformat()},
            actor=str(payment.created_by) if payment.created_by else "",
            url=payment.deal.get_absolute_url(),
            id=payment.pk,
        )
        for payment in payments.order_by("-created_at", "-id")[:limit]
    ]
