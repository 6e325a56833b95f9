"""Reads for the service desk's pages; each page costs a fixed number of queries.

Remaining SLA time is counted in business minutes on one BusinessCalendar that the
caller loads once per request (two queries) and passes in, never once per row; a
ticket whose policy counts 24×7 is counted in plain minutes instead (sla.calendar_for).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import (
    Avg,
    Case,
    Count,
    DateTimeField,
    F,
    Q,
    QuerySet,
    When,
)
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.accounts.models import Department
from customers import search
from customers.models import Customer, CustomerProfile
from service import routing, sla
from service.models import (
    Asset,
    CannedReply,
    Category,
    SLAPolicy,
    Ticket,
    TicketLink,
    TicketMessage,
    TicketTransition,
    WorkOrder,
)
from service.sla import BusinessCalendar

# "Breaching soon": the next deadline is within this many business minutes (or past).
SOON_MINUTES = 120
QUEUES = ("mine", "team", "unassigned", "breaching", "all")
TICKET_RELATED = (
    "customer",
    "assignee",
    "team",
    "category__parent__parent",
    "sla_policy",
)


@dataclass(frozen=True)
class Clock:
    """What a row shows of one SLA clock: text plus a state for its colour."""

    state: str  # "none", "paused", "met", "ok", "soon", "breached"
    text: str
    minutes: int | None = None
    note: str = ""

    @property
    def css(self) -> str:
        return {
            "breached": "text-danger fw-semibold",
            "soon": "text-warning-emphasis fw-semibold",
            "paused": "text-secondary",
            "met": "text-success",
        }.get(self.state, "")


def duration_text(minutes: int) -> str:
    """1小时20分 / 35分, from business minutes."""
    hours, rest = divmod(abs(minutes), 60)
    if hours and rest:
        return _("%(h)d小时%(m)d分") % {"h": hours, "m": rest}
    if hours:
        return _("%(h)d小时") % {"h": hours}
    return _("%(m)d分") % {"m": rest}


def clock_for(due: datetime | None, calendar: sla.Calendar, now: datetime) -> Clock:
    if due is None:
        return Clock("none", "—")
    left = calendar.minutes_between(now, due)
    if due <= now:
        # Overdue since outside business hours: nothing to count yet, still overdue.
        text = _("已超时 %(t)s") % {"t": duration_text(left)} if left else _("已超时")
        return Clock("breached", text, minutes=left)
    state = "soon" if left <= SOON_MINUTES else "ok"
    return Clock(state, _("剩 %(t)s") % {"t": duration_text(left)}, minutes=left)


def ticket_clock(ticket: Ticket, calendar: BusinessCalendar, now: datetime) -> Clock:
    """The clock of the deadline that comes first (what the queues sort by)."""
    if not ticket.is_open:
        return Clock("met", ticket.get_status_display())
    if ticket.paused_at:
        return Clock("paused", _("已暂停（等待客户）"))
    return clock_for(ticket.next_due_at, _calendar_of(ticket, calendar), now)


def _calendar_of(ticket: Ticket, business: BusinessCalendar) -> sla.Calendar:
    """The ticket's own calendar; its policy is select_related (TICKET_RELATED)."""
    if ticket.sla_policy_id is None:
        return business
    return sla.calendar_for(ticket.sla_policy, business)


def with_next_due(tickets: QuerySet) -> QuerySet:
    """Annotate `next_due`: the first-response deadline while unanswered, else the
    resolution deadline; NULL while paused, so that paused tickets sort last."""
    return tickets.annotate(
        next_due=Case(
            When(paused_at__isnull=False, then=None),
            When(
                first_responded_at__isnull=True,
                first_response_due_at__isnull=False,
                then=F("first_response_due_at"),
            ),
            default=F("resolution_due_at"),
            output_field=DateTimeField(),
        )
    )


def soon_limit(calendar: BusinessCalendar, now: datetime) -> datetime:
    try:
        return calendar.add_minutes(now, SOON_MINUTES)
    except ValueError:  # a calendar with no working time at all
        return now + timedelta(minutes=SOON_MINUTES)


def breaching_soon(calendar: BusinessCalendar, now: datetime) -> Q:
    """Next deadline within SOON_MINUTES of the ticket's own calendar, or breached.

    SOON_MINUTES of business time are never shorter than as many minutes of the clock,
    so a 24×7 ticket is soon within plain minutes, any other within business ones.
    """
    on_business_hours = Q(sla_policy__isnull=True) | ~Q(
        sla_policy__calendar=SLAPolicy.Calendar.ROUND_THE_CLOCK
    )
    return (
        Q(next_due__lte=now + timedelta(minutes=SOON_MINUTES))
        | (Q(next_due__lte=soon_limit(calendar, now)) & on_business_hours)
        | Q(resolution_breached=True)
    )


def ticket_queue(
    *,
    user: Any,
    queue: str,
    calendar: BusinessCalendar,
    now: datetime,
    query: str = "",
    filters: dict[str, Any] | None = None,
) -> QuerySet:
    """A queue of the tickets `user` may see, deadline first (paused ones last)."""
    filters = filters or {}
    tickets = with_next_due(
        Ticket.objects.visible_to(user).select_related(*TICKET_RELATED)
    )
    if filters.get("status"):
        tickets = tickets.filter(status=filters["status"])
    else:
        tickets = tickets.open()
    for field in ("ticket_type", "priority", "category"):
        if filters.get(field):
            tickets = tickets.filter(**{field: filters[field]})
    if queue == "mine":
        tickets = tickets.filter(assignee=user)
    elif queue == "team":
        # The user's own team, and the teams they lead (escalations go to the lead).
        led = Q(team__lead=user)
        tickets = tickets.filter(led | Q(team=user.team_id) if user.team_id else led)
    elif queue == "unassigned":
        tickets = tickets.filter(assignee__isnull=True)
    elif queue == "breaching":
        tickets = tickets.filter(breaching_soon(calendar, now)).exclude(
            paused_at__isnull=False
        )
    query = search.normalise(query)[:100]
    if query:
        tickets = tickets.filter(_ticket_search(query))
    return tickets.order_by(F("next_due").asc(nulls_last=True), "id")


def _ticket_search(query: str) -> Q:
    """By reference (the whole number or its last digits), subject or customer."""
    condition = Q(subject__icontains=query)
    if query.isdigit():
        condition |= (
            Q(reference=query) if len(query) >= 10 else Q(reference__endswith=query)
        )
    by_customer = search.condition(query)
    if by_customer is not None:
        customers = search.annotate_for(Customer.objects.all(), query).filter(
            by_customer
        )
        condition |= Q(customer__in=customers.values("pk"))
    return condition


def attach_clocks(
    tickets: list[Ticket], calendar: BusinessCalendar, now: datetime
) -> list[Ticket]:
    for ticket in tickets:
        ticket.clock = ticket_clock(ticket, calendar, now)
    return tickets


def category_choices() -> QuerySet:
    return Category.objects.select_related("parent__parent").order_by(
        "parent__name", "name"
    )


def desk_summary(*, user: Any, now: datetime | None = None) -> dict[str, Any]:
    """The agent's home: my open tickets by deadline, breaching soon, unassigned."""
    now = now or timezone.now()
    calendar = BusinessCalendar.load()
    visible = with_next_due(
        Ticket.objects.visible_to(user).open().select_related(*TICKET_RELATED)
    ).order_by(F("next_due").asc(nulls_last=True), "id")
    mine = list(visible.filter(assignee=user)[:10])
    breaching = list(
        visible.filter(breaching_soon(calendar, now)).exclude(paused_at__isnull=False)[
            :10
        ]
    )
    return {
        "my_tickets": attach_clocks(mine, calendar, now),
        "breaching_tickets": attach_clocks(breaching, calendar, now),
        "unassigned_count": Ticket.objects.visible_to(user)
        .open()
        .filter(assignee__isnull=True)[:1000]
        .count(),
    }


# --- the ticket page ---------------------------------------------------------------------


def ticket_for_page(*, user: Any) -> QuerySet:
    """The tickets `user` may open, with what the header and customer panel read."""
    return Ticket.objects.visible_to(user).select_related(
        "customer",
        "assignee",
        "team",
        "category__parent__parent",
        "asset__dealer",
        "dealer",
        "merged_into",
        "sla_policy",
    )


# A long conversation shows its latest messages; the rest on request. Rendering costs
# ~0.15 ms a message, which a 200-message ticket turned into most of its page time.
CONVERSATION_LATEST = 50
CONVERSATION_MAX = 2000


def ticket_page(
    *,
    user: Any,
    ticket: Ticket,
    calendar: BusinessCalendar,
    now: datetime,
    whole_conversation: bool = False,
) -> dict[str, Any]:
    """Everything the ticket page shows; the query count does not grow with its history."""
    from service import services

    links = list(
        TicketLink.objects.filter(Q(a=ticket) | Q(b=ticket)).select_related(
            "a__customer", "b__customer"
        )
    )
    related = [link.b if link.a_id == ticket.pk else link.a for link in links]
    visible_related = set(
        Ticket.objects.visible_to(user)
        .filter(pk__in=[t.pk for t in related])
        .values_list("pk", flat=True)
    )
    work_orders = list(
        ticket.work_orders.select_related("department", "assignee").order_by(
            "due_at", "id"
        )
    )
    for order in work_orders:
        order.is_late = order.is_overdue or (
            order.status in (WorkOrder.Status.OPEN, WorkOrder.Status.IN_PROGRESS)
            and order.due_at < now
        )
    return {
        "ticket": ticket,
        "customer": ticket.customer,
        "profile": CustomerProfile.objects.filter(customer=ticket.customer_id).first(),
        "clock": ticket_clock(ticket, calendar, now),
        "first_response_clock": _first_response_clock(ticket, calendar, now),
        "resolution_clock": _resolution_clock(ticket, calendar, now),
        **_conversation(ticket, whole=whole_conversation),
        "attachments": list(
            ticket.attachments.select_related("uploaded_by").order_by("created_at")
        ),
        "work_orders": work_orders,
        "transitions": list(
            TicketTransition.objects.filter(ticket=ticket)
            .select_related("by")
            .order_by("created_at", "id")
        ),
        "related": [t for t in related if t.pk in visible_related],
        "next_statuses": [
            Ticket.Status(s)
            for s in Ticket.Status.values
            if s in services.TRANSITIONS.get(ticket.status, set())
        ],
        "history": ticket_history(ticket=ticket),
    }


def _conversation(ticket: Ticket, *, whole: bool) -> dict[str, Any]:
    """The latest messages, oldest first, and whether earlier ones were left out."""
    limit = CONVERSATION_MAX if whole else CONVERSATION_LATEST
    newest_first = list(
        ticket.messages.select_related("author", "delivery").order_by(
            "-created_at", "-id"
        )[: limit + 1]
    )
    return {
        "conversation": newest_first[:limit][::-1],
        "earlier_messages_hidden": len(newest_first) > limit,
        "whole_conversation": whole,
    }


def _paused(left: int | None) -> Clock:
    note = "" if left is None else _("恢复后剩 %(t)s") % {"t": duration_text(left)}
    return Clock("paused", _("已暂停（等待客户）"), minutes=left, note=note)


def _first_response_clock(
    ticket: Ticket, calendar: BusinessCalendar, now: datetime
) -> Clock:
    if ticket.first_responded_at:
        return Clock("met", _("已响应"))
    if ticket.paused_at:
        return _paused(ticket.first_response_left)
    if not ticket.is_open:
        return Clock("none", "—")
    return clock_for(ticket.first_response_due_at, _calendar_of(ticket, calendar), now)


def _resolution_clock(
    ticket: Ticket, calendar: BusinessCalendar, now: datetime
) -> Clock:
    if ticket.resolved_at:
        return Clock("met", _("已解决"))
    if ticket.paused_at:
        return _paused(ticket.resolution_left)
    if not ticket.is_open:
        return Clock("none", "—")
    return clock_for(ticket.resolution_due_at, _calendar_of(ticket, calendar), now)


def ticket_history(*, ticket: Ticket, limit: int = 50) -> list:
    """The audit trail of one ticket, newest first, with the acting user's name."""
    import pghistory.models

    rows = list(
        pghistory.models.Events.objects.tracks(ticket).order_by("-pgh_created_at")[
            :limit
        ]
    )
    user_ids = {(row.pgh_context or {}).get("user") for row in rows} - {None}
    names = {u.pk: str(u) for u in get_user_model().objects.filter(pk__in=user_ids)}
    for row in rows:
        row.actor = names.get((row.pgh_context or {}).get("user"), "")
    return rows


def assignee_choices(*, ticket: Ticket) -> QuerySet:
    """Service-desk people a ticket can go to: its team's agents, or every agent."""
    people = get_user_model().objects.filter(is_active=True, groups__name="service")
    if ticket.team_id:
        people = people.filter(team=ticket.team_id)
    return people.order_by("display_name", "username").distinct()


def canned_replies() -> QuerySet:
    return CannedReply.objects.order_by("title")


def departments() -> QuerySet:
    return Department.objects.order_by("name")


def ticket_by_reference(*, user: Any, reference: str) -> Ticket | None:
    reference = search.normalise(reference).replace(" ", "")
    if not reference:
        return None
    return (
        Ticket.objects.visible_to(user)
        .select_related("customer")
        .filter(reference=reference)
        .first()
    )


# --- work orders -------------------------------------------------------------------------


def workorder_queue(*, user: Any, finished: bool = False) -> QuerySet:
    """The work orders of the user's department (admins: every department), by due."""
    orders = WorkOrder.objects.select_related(
        "department", "assignee", "ticket__customer"
    )
    if user.role != "admin":
        if not user.team_id:
            return orders.none()
        orders = orders.filter(department=user.team.department_id)
    active = [WorkOrder.Status.OPEN, WorkOrder.Status.IN_PROGRESS]
    if finished:
        return orders.exclude(status__in=active).order_by("-completed_at", "-id")
    return orders.filter(status__in=active).order_by("due_at", "id")


def is_back_office(user: Any) -> bool:
    """Whether `user` works in the back office: their team is no desk team (no category
    routes tickets to it, service/routing.py) and the desk sends their department work
    orders (it has received at least one), such as 工程部's 工程维修组. Their home page
    shows their department's work orders instead of the desk's queue. Two indexed
    queries, once per request (the answer is kept on the user object)."""
    if "_kehu_back_office" not in user.__dict__:
        department_id = user.team.department_id if user.team_id else None
        user.__dict__["_kehu_back_office"] = (
            department_id is not None
            and WorkOrder.objects.filter(department=department_id).exists()
            and not routing.desk_teams().filter(pk=user.team_id).exists()
        )
    return user.__dict__["_kehu_back_office"]


def is_desk(user: Any) -> bool:
    return not is_back_office(user)


def department_workorders(*, user: Any, now: datetime | None = None) -> dict[str, Any]:
    """The back-office member's home: the department's open work orders by due date
    (the first ten), how many are open and how many late; three queries."""
    now = now or timezone.now()
    department = user.team.department if user.team_id else None
    queue = workorder_queue(user=user)
    return {
        "department": department,
        "orders": mark_late(list(queue[:10]), now),
        "open_count": queue.order_by()[:1000].count(),
        "late_count": queue.filter(Q(is_overdue=True) | Q(due_at__lt=now))
        .order_by()[:1000]
        .count(),
    }


def mark_late(orders: list[WorkOrder], now: datetime) -> list[WorkOrder]:
    for order in orders:
        order.is_late = order.is_overdue or (
            order.status in (WorkOrder.Status.OPEN, WorkOrder.Status.IN_PROGRESS)
            and order.due_at < now
        )
    return orders


def workorder_for(*, user: Any, pk: Any) -> WorkOrder | None:
    """A work order its department (or admins) may work on, or whose ticket the user
    may see; None otherwise."""
    from service import services

    order = (
        WorkOrder.objects.select_related(
            "department", "assignee", "created_by", "ticket__customer"
        )
        .filter(pk=pk)
        .first()
        if str(pk).isdigit()
        else None
    )
    if order is None:
        return None
    if services.can_work_on(user, order):
        return order
    if Ticket.objects.visible_to(user).filter(pk=order.ticket_id).exists():
        return order
    return None


# --- assets and dealers ------------------------------------------------------------------


def customer_assets(*, customer: Customer) -> list[Asset]:
    return list(
        Asset.objects.filter(customer=customer)
        .select_related("dealer")
        .order_by("-delivered_on", "-id")[:50]
    )


def asset_page(*, asset: Asset) -> dict[str, Any]:
    return {
        "asset": asset,
        "tickets": list(
            asset.tickets.select_related("assignee").order_by("-created_at", "-id")[
                :100
            ]
        ),
    }


def dealer_choices(*, user: Any) -> QuerySet:
    return (
        Customer.objects.visible_to(user)
        .filter(
            kind__in=["dealer", "distributor", "agent", "wholesaler"],
            merged_into__isnull=True,
        )
        .order_by("name")
    )


def dealer_report(*, user: Any, since: datetime | None = None) -> list[dict[str, Any]]:
    """Per dealer: tickets, % first responses and resolutions within SLA, average
    satisfaction; one aggregate query."""
    tickets = Ticket.objects.visible_to(user).filter(dealer__isnull=False)
    if since:
        tickets = tickets.filter(created_at__gte=since)
    now = timezone.now()
    # A deadline counts once it is met or missed: answered, flagged as breached by the
    # escalation, or still unanswered after its due time.
    first_measured = (
        Q(first_responded_at__isnull=False)
        | Q(first_response_breached=True)
        | Q(first_response_due_at__lt=now, paused_at__isnull=True)
    )
    first_met = Q(
        first_responded_at__isnull=False,
        first_response_breached=False,
        first_responded_at__lte=F("first_response_due_at"),
    )
    resolved_measured = (
        Q(resolved_at__isnull=False)
        | Q(resolution_breached=True)
        | Q(
            resolution_due_at__lt=now,
            paused_at__isnull=True,
            status__in=[
                Ticket.Status.NEW,
                Ticket.Status.ASSIGNED,
                Ticket.Status.IN_PROGRESS,
                Ticket.Status.WAITING,
            ],
        )
    )
    resolved_met = Q(
        resolved_at__isnull=False,
        resolution_breached=False,
        resolved_at__lte=F("resolution_due_at"),
    )
    rows = list(
        tickets.values("dealer", "dealer__name")
        .annotate(
            total=Count("id"),
            first_measured=Count("id", filter=first_measured),
            first_met=Count("id", filter=first_met),
            resolved_measured=Count("id", filter=resolved_measured),
            resolved_met=Count("id", filter=resolved_met),
            avg_satisfaction=Avg("satisfaction"),
            rated=Count("satisfaction"),
        )
        .order_by("-total", "dealer__name")[:200]
    )
    for row in rows:
        row["first_rate"] = _percent(row["first_met"], row["first_measured"])
        row["resolved_rate"] = _percent(row["resolved_met"], row["resolved_measured"])
    return rows


def _percent(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 1) if whole else None


FOLLOW_MESSAGES = 50


def follow_page(*, ticket: Ticket) -> dict[str, Any]:
    """What the customer's personal page shows: the ticket's status and the public
    conversation (their messages and the replies; never notes or call records)."""
    public = (TicketMessage.Kind.CUSTOMER, TicketMessage.Kind.REPLY)
    newest_first = list(
        ticket.messages.filter(kind__in=public)
        .only("kind", "body", "created_at")
        .order_by("-created_at", "-id")[:FOLLOW_MESSAGES]
    )
    return {"ticket": ticket, "conversation": newest_first[::-1]}
