"""Answered surveys for the recovery tests, made as rows (the survey flow is tested in
its own files): one per ticket, answered at a given moment with a given score."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from culture.satisfaction.models import Survey
from tests.factories import TicketFactory


def answered_survey(
    *,
    kind: str = "csat",
    score: int = 2,
    team: Any = None,
    customer: Any = None,
    staff: Any = None,
    answered_at: datetime | None = None,
    comment: str = "师傅迟到两个小时，态度也不好。",
) -> Survey:
    answered_at = answered_at or timezone.now()
    ticket = TicketFactory(**({"customer": customer} if customer else {}))
    return Survey.objects.create(
        source=Survey.Source.TICKET,
        kind=kind,
        customer=ticket.customer,
        ticket=ticket,
        team=team,
        staff=staff,
        channel="sms",
        status=Survey.Status.ANSWERED,
        expires_at=answered_at + timedelta(days=7),
        sent_at=answered_at - timedelta(hours=1),
        answered_at=answered_at,
        score=score,
        comment=comment,
    )
