"""The customer timeline's survey entries (customers/timeline.py source): each answer,
at the moment it was given, with its score. One query."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.utils.translation import gettext as _

from culture.satisfaction.models import CSAT_MAX, NPS_MAX, Survey, SurveyKind
from customers.timeline import Entry


def survey_entries(customer: Any, before: datetime | None, limit: int) -> list[Entry]:
    surveys = Survey.objects.filter(
        customer=customer, answered_at__isnull=False
    ).select_related("ticket")
    if before:
        surveys = surveys.filter(answered_at__lte=before)
    entries = []
    for survey in surveys.order_by("-answered_at", "-id")[:limit]:
        scale = NPS_MAX if survey.kind == SurveyKind.NPS else CSAT_MAX
        if survey.ticket_id:
            title = _("满意度评价（工单 %(ref)s）：%(score)s / %(max)s")
        else:
            title = _("满意度调查（%(source)s）：%(score)s / %(max)s")
        entries.append(
            Entry(
                at=survey.answered_at,
                kind="survey",
                icon="emoji-smile" if not survey.is_unhappy else "emoji-frown",
                title=title
                % {
                    "ref": survey.ticket.reference if survey.ticket_id else "",
                    "source": survey.get_source_display(),
                    "score": survey.score,
                    "max": scale,
                },
                body=survey.comment,
                url=survey.ticket.get_absolute_url() if survey.ticket_id else "",
                badge=_("不满意") if survey.is_unhappy else "",
                id=survey.pk,
            )
        )
    return entries
