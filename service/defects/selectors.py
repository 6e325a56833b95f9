"""Reads for the defect pages: each page's rows in a fixed number of queries."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import QuerySet
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.accounts.roles import Role
from service.defects.models import (
    Contractor,
    Defect,
    DefectCategory,
    DefectEvent,
)

OPEN_STATES = list(Defect.OPEN_STATES)
TICKET_PANEL_ROWS = 20
CONTRACTOR_ROWS = 200


def defects_for(user: Any) -> QuerySet:
    """Every staff role sees every defect (inspection and rectification are shared
    work on the day, as the event pages are); a user without a role sees none."""
    if getattr(user, "role", None) is None:
        return Defect.objects.none()
    return Defect.objects.all()


def defect_list(
    *,
    user: Any,
    event_id: int | None = None,
    state: str = "",
    severity: str = "",
    contractor_id: int | None = None,
    overdue: bool = False,
    unit_id: int | None = None,
    now: dt.datetime | None = None,
) -> QuerySet:
    rows = defects_for(user)
    if event_id:
        rows = rows.filter(event_id=event_id)
    if unit_id:
        rows = rows.filter(unit_id=unit_id)
    if state == "open":
        rows = rows.filter(state__in=OPEN_STATES)
    elif state in Defect.State.values:
        rows = rows.filter(state=state)
    if severity:
        rows = rows.filter(severity=severity)
    if contractor_id:
        rows = rows.filter(contractor_id=contractor_id)
    if overdue:
        rows = rows.filter(state__in=OPEN_STATES, due_at__lt=now or timezone.now())
    return rows.select_related(
        "unit__building", "category__parent__parent", "contractor"
    ).order_by("-created_at", "-id")


def defect_for_page(user: Any) -> QuerySet:
    return defects_for(user).select_related(
        "unit__building",
        "category__parent__parent",
        "contractor",
        "event",
        "case",
        "ticket",
        "reported_by",
        "closed_by",
        "approved_by",
    )


def history(defect: Defect) -> list[DefectEvent]:
    """The defect's events, oldest first, each with its states' labels."""
    labels = dict(Defect.State.choices)
    rows = list(
        defect.events.select_related("actor", "contractor").order_by("at", "id")
    )
    for row in rows:
        row.from_label = labels.get(row.from_state, row.from_state)
        row.to_label = labels.get(row.to_state, row.to_state)
    return rows


def photos(defect: Defect) -> list[Any]:
    return list(defect.photos.order_by("uploaded_at", "id"))


def category_children(parent_id: int | None, level: int) -> list[DefectCategory]:
    rows = DefectCategory.objects.filter(level=level)
    rows = rows.filter(parent_id=parent_id) if parent_id else rows.filter(parent=None)
    return list(rows.order_by("position", "name"))


def active_contractors() -> QuerySet:
    return Contractor.objects.filter(active=True).order_by("name")


def contractor_items(contractor: Contractor) -> list[Defect]:
    """The contractor's open items, soonest due first (the partial index)."""
    return list(
        Defect.objects.filter(contractor=contractor, state__in=OPEN_STATES)
        .select_related("unit__building", "category__parent__parent")
        .order_by("due_at", "id")[:CONTRACTOR_ROWS]
    )


def ticket_defects(ticket: Any) -> list[Defect]:
    return list(
        Defect.objects.filter(ticket=ticket)
        .select_related("unit__building", "category", "contractor")
        .order_by("-created_at", "-id")[:TICKET_PANEL_ROWS]
    )


def ticket_panel(user: Any, ticket: Any) -> dict[str, Any] | None:
    """The ticket page's card (service/panels.py): the defects this ticket handles."""
    if getattr(user, "role", None) is None:
        return None
    units: list[Any] = []
    if user.role in (Role.SERVICE, Role.MANAGER, Role.ADMIN):
        from service.property.models import Unit

        units = list(
            Unit.objects.with_place()
            .filter(
                ownerships__customer_id=ticket.customer_id,
                ownerships__is_active=True,
            )
            .order_by("code")[:10]
        )
    return {"ticket": ticket, "defects": ticket_defects(ticket), "units": units}


def timeline_entries(customer: Any, before: dt.datetime | None, limit: int) -> list:
    """The defects of the customer's units (active ownerships), newest first."""
    from customers.timeline import Entry
    from service.property.models import UnitOwnership

    units = UnitOwnership.objects.filter(customer=customer, is_active=True).values(
        "unit_id"
    )
    rows = Defect.objects.filter(unit_id__in=units)
    if before:
        rows = rows.filter(created_at__lte=before)
    rows = rows.select_related("unit__building", "category").order_by(
        "-created_at", "-id"
    )[:limit]
    return [
        Entry(
            at=defect.created_at,
            kind="defect",
            icon="tools",
            title=_("问题 %(unit)s：%(category)s %(desc)s")
            % {
                "unit": defect.unit.label,
                "category": defect.category.name,
                "desc": defect.description[:80],
            },
            body=defect.get_room_display(),
            badge=defect.get_state_display(),
            url=reverse("defects:defect_detail", args=[defect.pk]),
            id=defect.pk,
        )
        for defect in rows
    ]
