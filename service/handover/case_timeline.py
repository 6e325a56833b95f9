"""The customer's timeline (customers/timeline.py): their 入伙 cases as the case log
tells them — checked in, each station finished or skipped, the outcome (or the no-show),
a re-inspection booked — one bounded query, newest first. The calls, station calls and captures stay on the
case page; the defects of the customer's units are service/defects' own source."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.urls import reverse
from django.utils.translation import gettext as _

from service.handover.onsite_models import CaseLog, StationVisit, UnitHandover

SHOWN = (
    "checked_in",
    "station_done",
    "station_skipped",
    "outcome",
    "no_show",
    "no_show_next",
    "reinspection_booked",
)


def case_entries(customer: Any, before: dt.datetime | None, limit: int) -> list:
    from customers.timeline import Entry

    rows = CaseLog.objects.filter(case__customer=customer, action__in=SHOWN)
    if before:
        rows = rows.filter(at__lte=before)
    rows = rows.select_related(
        "case__event", "case__event_unit__unit__building", "station", "actor"
    ).order_by("-at", "-id")[:limit]
    states = {**dict(StationVisit.State.choices), **dict(UnitHandover.State.choices)}
    entries = []
    for log in rows:
        case = log.case
        where = {"unit": case.event_unit.unit.label, "event": case.event.name}
        if log.action == "checked_in":
            title = _("入伙签到 %(unit)s（%(event)s）") % where
            icon = "person-check"
        elif log.action in ("station_done", "station_skipped"):
            title = _("入伙 %(unit)s：%(station)s") % {
                **where,
                "station": log.station.name if log.station else "",
            }
            icon = "signpost-split"
        elif log.action == "no_show_next":
            title = _("入伙 %(unit)s：未到访后续") % where
            icon = "calendar-x"
        elif log.action == "reinspection_booked":
            title = _("入伙 %(unit)s：预约复验") % where
            icon = "calendar-plus"
        else:
            title = _("入伙结果 %(unit)s（%(event)s）") % where
            icon = "house-check"
        entries.append(
            Entry(
                at=log.at,
                kind="handover",
                icon=icon,
                title=title,
                body=log.note,
                actor=str(log.actor) if log.actor else "",
                badge=states.get(log.to_state, log.to_state),
                url=reverse("handover:case_detail", args=[case.pk]),
                id=log.pk,
            )
        )
    return entries
