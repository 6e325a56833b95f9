"""Reads for customer pages; each returns what its page needs in a fixed number of queries."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.postgres.aggregates import ArrayAgg
from django.contrib.postgres.expressions import ArraySubquery
from django.db.models import (
    BooleanField,
    Count,
    DateTimeField,
    ExpressionWrapper,
    F,
    Func,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.functions import Concat
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy, pgettext

from crm.accounts import access
from crm.accounts.models import Team
from customers import hooks, masking, search, timeline
from customers.models import ContactLog, Customer, FollowUp, PoolEvent

SORTS = {
    "recent": ("-updated_at", "-id"),
    "name": ("name", "id"),
    "created": ("-created_at", "-id"),
    # Never contacted first: they are the most neglected.
    "last_contact": (F("last_contacted_at").asc(nulls_first=True), "id"),
}


# The same orders with their first key hidden from the indexes (an expression no
# index holds), so that PostgreSQL sorts the matches instead of walking an index.
SORTED_MATCHES = {
    "recent": (
        ExpressionWrapper(
            F("updated_at") + Value(timedelta(0)), output_field=DateTimeField()
        ).desc(),
        "-id",
    ),
    "name": (Concat("name", Value("")).asc(), "id"),
    "created": (
        ExpressionWrapper(
            F("created_at") + Value(timedelta(0)), output_field=DateTimeField()
        ).desc(),
        "-id",
    ),
    "last_contact": (
        ExpressionWrapper(
            F("last_contacted_at") + Value(timedelta(0)), output_field=DateTimeField()
        ).asc(nulls_first=True),
        "id",
    ),
}
# How many of all customers, in the list's order, a name search looks through for its
# page before it sorts every match instead (list_page).
SEARCH_WINDOW = 2_000


def customer_list(
    *, user: Any, query: str = "", sort: str = "recent", filters: dict | None = None
) -> QuerySet:
    """The customers `user` may see, searched, filtered and sorted (sort from SORTS only)."""
    customers = (
        Customer.objects.visible_to(user)
        .filter(merged_into__isnull=True)
        .select_related("owner", "team")
        # The row names a person's company (a company's name also finds its people).
        # Fetched for the page's rows only: a join would run before the sort, for
        # every match of a broad search.
        .prefetch_related(
            Prefetch("organization", queryset=Customer.objects.only("pk", "name"))
        )
    )
    condition = search.condition(query, with_members=True)
    if condition is not None:
        customers = search.annotate_for(customers, query).filter(condition)
    for field, value in (filters or {}).items():
        if not value:  # unset filters and unticked boxes
            continue
        if field == "tag":
            customers = customers.filter(tags__contains=[value])
        elif field == "days_since_contact":
            cutoff = timezone.now() - timedelta(days=value)
            customers = customers.filter(
                Q(last_contacted_at__lt=cutoff)
                | Q(last_contacted_at__isnull=True, created_at__lt=cutoff)
            )
        elif field == "pool":
            customers = customers.filter(owner__isnull=True, is_verified=True)
        elif field == "needs_review":
            # Kept by an import without an invalid value (index customer_needs_review).
            customers = customers.exclude(review_flags={})
        elif field == "unverified":
            # The desk's contacts waiting for verification (index customer_unverified).
            customers = customers.filter(is_verified=False)
        elif field in {"kind", "stage", "tier", "owner", "team", "province", "city"}:
            customers = customers.filter(**{field: value})
        elif field == "is_key_account":
            customers = customers.filter(is_key_account=True)
        elif field in hooks.list_filters:
            customers = hooks.list_filters[field].apply(customers, value)
    return customers.order_by(*SORTS.get(sort, SORTS["recent"]))


def list_page(page: Any, *, query: str, sort: str) -> Any:
    """Fetch the rows of a page of customer_list for a search (issue 18).

    A broad name (有限, 王) matches customers all through the order, and PostgreSQL
    finds a page by walking the order's index and testing each row: quick when the
    matches are spread, but where they all arrived long ago (organisations imported
    before their people) it walks every newer row first. So the page is taken from the
    first SEARCH_WINDOW customers in the order when it lies there, which is exact (they
    precede every other row), and otherwise from all the matches sorted (their count,
    not their age, decides the time); a search of at most MAX_COUNT matches (the
    paginator counted them), or by phone number (at most MAX_PHONE_MATCHES ids),
    sorts them straight away. Other pages are left as they are: a filter's own index
    serves each order (customers/models.py).
    """
    normalised = search.normalise(query)
    if not normalised:
        return page
    paginator = page.paginator
    customers = paginator.object_list
    offset = page.start_index() - 1 if paginator.count else 0
    limit = paginator.per_page
    sorted_matches = customers.order_by(
        *SORTED_MATCHES.get(sort, SORTED_MATCHES["recent"])
    )
    if not paginator.is_capped or search.PHONE_QUERY.match(normalised):
        # At most MAX_COUNT matches (counted already), or a number's at most
        # MAX_PHONE_MATCHES ids: sorting them is cheap. Walking the order's index
        # for the ids of "1859" tested 54,644 rows of the scope (412 ms at full size,
        # 34 ms sorted).
        page.object_list = list(sorted_matches[offset : offset + limit])
        return page
    window = Customer.objects.order_by(*SORTS.get(sort, SORTS["recent"])).values("pk")
    # id = ANY(ARRAY(...)): the window's ids drive the page (primary-key lookups);
    # as IN (subquery) the planner fetched every match first and joined.
    in_window = Func(
        F("pk"),
        ArraySubquery(window[:SEARCH_WINDOW]),
        template="(%(expressions)s))",
        arg_joiner=" = ANY(",
        output_field=BooleanField(),
    )
    rows = list(customers.filter(in_window)[offset : offset + limit])
    if len(rows) < limit:
        rows = list(sorted_matches[offset : offset + limit])
    page.object_list = rows
    return page


# How many of the user's latest contacts decide their usual channel.
CHANNEL_SAMPLE = 200


def usual_channel(*, user: Any) -> str:
    """The channel of most of `user`'s latest CHANNEL_SAMPLE contacts (a tie goes to
    the most recent), "" for someone who logged none: one query, bounded, on the
    index contact_author_recent."""
    channels = Counter(
        ContactLog.objects.filter(author=user)
        .order_by("-occurred_at")
        .values_list("channel", flat=True)[:CHANNEL_SAMPLE]
    )
    return channels.most_common(1)[0][0] if channels else ""


def customer_row(*, user: Any, customer: Customer) -> Customer | None:
    """One row of the customer list, fetched as customer_list fetches it (after a
    quick contact, the list swaps in the updated row)."""
    return customer_list(user=user).filter(pk=customer.pk).first()


def owner_choices(*, user: Any) -> QuerySet:
    """People whose customers `user` may filter by: the same scope as customers."""
    users = (
        get_user_model()
        .objects.filter(is_active=True, groups__name__in=["sales", "manager"])
        .distinct()
    )
    scope = access.visibility_scope(user)
    if scope == "all":
        return users.order_by("username")
    if scope == "department" and user.team_id:
        return users.filter(team__department=user.team.department_id).order_by(
            "username"
        )
    if scope == "team" and user.team_id:
        return users.filter(team=user.team_id).order_by("username")
    return users.filter(pk=user.pk)


def team_choices(*, user: Any) -> QuerySet:
    scope = access.visibility_scope(user)
    teams = Team.objects.all()
    if scope == "all":
        return teams
    if scope == "department" and user.team_id:
        return teams.filter(department=user.team.department_id)
    return teams.filter(pk=user.team_id) if user.team_id else teams.none()


def customer_page(
    *, user: Any, customer: Customer, cursor: timeline.Cursor | None = None
) -> dict[str, Any]:
    """Everything the 360° page shows; the query count does not grow with history."""
    from customers.models import CustomerProfile

    profile = CustomerProfile.objects.filter(customer=customer).first()
    entries, next_cursor = timeline.entries(customer, cursor=cursor)
    return {
        "customer": customer,
        "profile": profile,
        "phones": list(customer.phones.order_by("-is_primary", "id")),
        **_relatives(user, customer),
        "open_followups": list(
            customer.followups.filter(status=FollowUp.Status.OPEN)
            .select_related("assignee")
            .order_by("due_at")[:10]
        ),
        "owner_history": list(
            customer.pool_events.select_related("user", "actor").order_by(
                "-created_at"
            )[:10]
        ),
        "timeline": entries,
        "timeline_next": str(next_cursor or ""),
        "can_see_pii": masking.can_see_pii(user),
    }


def _relatives(user: Any, customer: Customer) -> dict[str, Any]:
    """The organisation's members and sub-organisations the user may see, how many
    others there are (never who), and whether the customer's own organisation and
    parent are in scope (linked) or not (name only): three queries whatever the sizes.
    """
    in_scope = access.owner_filter(user) or Q(pk__isnull=False)
    visible = Customer.objects.visible_to(user).filter(merged_into__isnull=True)
    is_member = Q(organization=customer, merged_into__isnull=True)
    is_child = Q(parent=customer, merged_into__isnull=True)
    above = [pk for pk in (customer.organization_id, customer.parent_id) if pk]
    counts = Customer.objects.filter(is_member | is_child | Q(pk__in=above)).aggregate(
        members=Count("pk", filter=is_member),
        members_seen=Count("pk", filter=is_member & in_scope),
        children=Count("pk", filter=is_child),
        children_seen=Count("pk", filter=is_child & in_scope),
        above_seen=ArrayAgg("pk", filter=Q(pk__in=above) & in_scope, default=[]),
    )
    return {
        "members": list(visible.filter(organization=customer).order_by("name")[:20]),
        "hidden_members": counts["members"] - counts["members_seen"],
        "children": list(visible.filter(parent=customer).order_by("name")[:20]),
        "hidden_children": counts["children"] - counts["children_seen"],
        "organization_visible": customer.organization_id in counts["above_seen"],
        "parent_visible": customer.parent_id in counts["above_seen"],
    }


def my_day(*, user: Any) -> dict[str, Any]:
    """The sales home page: today's and overdue follow-ups, and recent customers."""
    now = timezone.localtime()
    end_of_today = now.replace(hour=23, minute=59, second=59)
    # Only customers the user still sees: a follow-up can outlive its customer's move
    # to another team (a merge), and the row would name it.
    mine = FollowUp.objects.filter(
        assignee=user,
        status=FollowUp.Status.OPEN,
        customer__in=Customer.objects.visible_to(user),
    )
    due = list(
        mine.filter(due_at__lte=end_of_today)
        .select_related("customer", "customer__profile")
        .order_by("due_at")[:50]
    )
    for followup in due:
        followup.is_overdue = followup.due_at < now
    upcoming = list(
        mine.filter(due_at__gt=end_of_today)
        .select_related("customer")
        .order_by("due_at")[:10]
    )
    recent = list(
        Customer.objects.filter(owner=user, merged_into__isnull=True).order_by(
            "-updated_at", "-id"
        )[:10]
    )
    return {
        "due_followups": due,
        "overdue_count": sum(1 for f in due if f.is_overdue),
        "upcoming_followups": upcoming,
        "recent_customers": recent,
    }


def department_overview(*, user: Any) -> dict[str, Any]:
    """The manager's home: the visible customers by stage and by owner (top 20)."""
    visible = Customer.objects.visible_to(user)
    by_owner = list(
        visible.values("owner__username", "owner__display_name")
        .annotate(
            total=Count("id"),
            key_accounts=Count("id", filter=Q(is_key_account=True)),
            customers=Count("id", filter=Q(stage=Customer.Stage.CUSTOMER)),
        )
        .order_by("-total")[:20]
    )
    by_stage = dict(
        visible.values_list("stage").annotate(n=Count("id")).values_list("stage", "n")
    )
    stages = [
        (label, by_stage.get(value, 0)) for value, label in Customer.Stage.choices
    ]
    return {"by_owner": by_owner, "stages": stages}


def customer_total(*, user: Any) -> dict[str, Any]:
    """The administrator's home: how many customers the system holds."""
    return {"customer_count": Customer.objects.count()}


def _masked_diff(diff: dict) -> dict:
    """Personal fields in an audit diff, masked as on the profile tab."""
    masked = dict(diff)
    for field in ("phone", "number"):
        if field in masked:
            masked[field] = [masking.mask_phone(v or "") for v in masked[field]]
    for field in ("address", "review_flags"):
        # review_flags may hold the invalid phone an import left out.
        if field in masked:
            masked[field] = [gettext("（已隐藏）") if v else v for v in masked[field]]
    return masked


CUSTOMER_EVENTS = "customers.CustomerEvent"
PHONE_EVENTS = "customers.CustomerPhoneEvent"
PROFILE_EVENTS = "customers.CustomerProfileEvent"
# What a profile or phone event is called on the history tab, by pgh_label.
SUB_RECORD_ACTIONS = {
    PHONE_EVENTS: {
        "insert": gettext_lazy("添加电话"),
        "update": gettext_lazy("修改电话"),
        "delete": gettext_lazy("删除电话"),
    },
    PROFILE_EVENTS: {
        "insert": gettext_lazy("填写一对一档案"),
        "update": gettext_lazy("修改一对一档案"),
        "delete": gettext_lazy("删除一对一档案"),
    },
}


def customer_history(*, customer: Customer, can_see_pii: bool, limit: int = 50) -> list:
    """The audit trail of one customer, newest first, with the acting user's name: the
    customer's own changes, its one-to-one profile's and its phones' (who added or
    removed which number), in one query plus one for the names."""
    import pghistory.models

    from customers.models import CustomerProfile

    rows = list(
        pghistory.models.Events.objects.references(customer)
        .across(CUSTOMER_EVENTS, PHONE_EVENTS, PROFILE_EVENTS)
        # A customer row referencing this one (a member of this organisation) is
        # another customer's history, which the user may not even see.
        .filter(~Q(pgh_model=CUSTOMER_EVENTS) | Q(pgh_obj_id=str(customer.pk)))
        .order_by("-pgh_created_at", "-pgh_id")[:limit]
    )
    user_ids = {(row.pgh_context or {}).get("user") for row in rows} - {None}
    names = {u.pk: str(u) for u in get_user_model().objects.filter(pk__in=user_ids)}
    empty = CustomerProfile()
    for row in rows:
        row.actor = names.get((row.pgh_context or {}).get("user"), "")
        actions = SUB_RECORD_ACTIONS.get(row.pgh_model)
        if actions:
            row.action_label = str(actions.get(row.pgh_label, row.pgh_label))
            data = row.pgh_data or {}
            if row.pgh_model == PHONE_EVENTS and row.pgh_label != "update":
                # The number added or removed, shown like a change of the number.
                number = data.get("number") or ""
                row.pgh_diff = {
                    "number": [None, number]
                    if row.pgh_label == "insert"
                    else [number, None]
                }
            elif row.pgh_model == PROFILE_EVENTS and row.pgh_label == "insert":
                row.pgh_diff = {
                    name: [None, data.get(name)]
                    for name in CustomerProfile.PREFERENCE_FIELDS
                    if data.get(name) != getattr(empty, name)
                }
        if not can_see_pii and row.pgh_diff:
            row.pgh_diff = _masked_diff(row.pgh_diff)
    # The empty profile every new customer gets says nothing the creation does not.
    return [
        row
        for row in rows
        if row.pgh_diff or (row.pgh_model, row.pgh_label) != (PROFILE_EVENTS, "insert")
    ]


POOL_FILTERS = ("kind", "source", "province", "city")


def pool_list(*, query: str = "", filters: dict[str, str] | None = None) -> QuerySet:
    """The public pool (公海): unowned verified customers, open to every salesperson,
    filtered by region, kind and source (indexes customer_pool_*), with the id of
    each one's latest pool record (attach_pool_events reads them for a page)."""
    customers = Customer.objects.in_pool().filter(merged_into__isnull=True)
    condition = search.condition(query)
    if condition is not None:
        customers = search.annotate_for(customers, query).filter(condition)
    for field, value in (filters or {}).items():
        if field in POOL_FILTERS and value:
            customers = customers.filter(**{field: value})
    latest = PoolEvent.objects.filter(customer=OuterRef("pk")).order_by(
        "-created_at", "-id"
    )
    return customers.annotate(
        last_pool_event=Subquery(latest.values("pk")[:1])
    ).order_by("-updated_at", "-id")


def attach_pool_events(customers: list[Customer]) -> list[Customer]:
    """Set `pool_event` (who released it, when and why; None if never owned) on each
    customer of a pool page: one query whatever the page size."""
    ids = [c.last_pool_event for c in customers if c.last_pool_event]
    events = PoolEvent.objects.select_related("user", "actor").in_bulk(ids)
    for customer in customers:
        customer.pool_event = events.get(customer.last_pool_event)
    return customers


def pool_preview(*, customer: Customer) -> dict[str, Any]:
    """What a salesperson may see of a pool customer before claiming: masked, no
    contact notes; its pool history (released by whom, when, why). Two queries."""
    return {
        "customer": customer,
        "masked_phone": masking.mask_phone(customer.phone),
        "history": list(
            customer.pool_events.select_related("user", "actor").order_by(
                "-created_at", "-id"
            )[:10]
        ),
    }


# --- what an export holds ---------------------------------------------------------------


@dataclass
class ExportFilters:
    """The list page's filters as an export reads them.

    `stored` keeps only CustomerFilterForm's field names with the values as typed (what
    an ExportRequest saves and reads back through the same form); `audit` is key=value
    for the log; `summary` labels and values for people.
    """

    customers: QuerySet
    stored: dict[str, str]
    audit: str
    summary: str


def export_filters(*, user: Any, params: Any) -> ExportFilters | None:
    """`user`'s customers for these list parameters, or None if a filter is invalid:
    where the list page would fall back to every customer, an export must not."""
    from django import forms as django_forms
    from django.http import QueryDict

    from customers.forms import CustomerFilterForm

    if isinstance(params, dict):
        data = QueryDict(mutable=True)
        data.update(params)
        params = data
    form = CustomerFilterForm(
        params or None,
        owners=owner_choices(user=user),
        teams=team_choices(user=user),
        user=user,
    )
    if form.is_bound and not form.is_valid():
        return None
    filters = form.filters() if form.is_bound else {}
    cleaned = form.cleaned_data if form.is_bound else {}
    query = cleaned.get("q", "")
    sort = cleaned.get("sort") or "recent"
    customers = customer_list(user=user, query=query, sort=sort, filters=filters)
    used = {
        key: value
        for key, value in {"q": query, **filters}.items()
        if value not in ("", None, False)
    }
    summary = []
    for key, value in used.items():
        field = form.fields[key]
        if isinstance(field, django_forms.ModelChoiceField) or not hasattr(
            field, "choices"
        ):
            shown = gettext("是") if value is True else str(value)
        else:
            shown = str(dict(field.choices).get(value, value))
        summary.append(
            gettext("%(label)s：%(value)s")
            % {"label": field.label or gettext("搜索"), "value": shown}
        )
    stored = {
        name: str(params.get(name))
        for name in form.fields
        if params and params.get(name) not in (None, "")
    }
    return ExportFilters(
        customers=customers,
        stored=stored,
        audit="; ".join(
            f"{key}={getattr(value, 'pk', value)}"
            for key, value in {**used, "sort": sort}.items()
        ),
        summary=pgettext("list separator", "；").join(summary),
    )


def customers_of_request(export_request: Any) -> QuerySet | None:
    """The customers an ExportRequest holds, read as its requester's list (None if its
    stored filters no longer validate, e.g. a filtered owner left the scope)."""
    filters = export_filters(
        user=export_request.requested_by, params=export_request.filters
    )
    return None if filters is None else filters.customers


def reveals_last_hour(user: Any) -> int:
    """What `user` learnt in the past hour about customers outside plain sight, counted
    from the audit log: ID numbers revealed, and duplicate checks that hit a customer
    outside the user's scope (one row per customer, see services.check_numbers_free)."""
    from crm.core import audit
    from crm.core.models import AccessLog

    return AccessLog.objects.filter(
        Q(action=audit.ID_REVEALED, outcome=audit.OK)
        | Q(
            action=audit.DUPLICATE_HIDDEN,
            outcome=audit.DENIED,
            object_type=Customer._meta.model_name,
        ),
        user=user,
        created_at__gte=timezone.now() - timedelta(hours=1),
    ).count()
