"""交付准备: the event's numbers before the day, and the call list (待联系业主)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from crm.accounts import access
from crm.accounts.roles import Role
from crm.core import audit, bounds
from crm.core.pagination import paginate
from customers import masking
from service.handover import calls, readiness, readiness_charts, selectors
from service.handover.models import Batch, HandoverEvent
from service.handover.readiness_forms import CallForm

# Every staff role: the numbers are counts, and the call list shows each caller only
# the owners their role may see (customers' visibility scope).
STAFF_ROLES = tuple(Role.values)
PAGE_SIZE = 25
# The filters a call-list page carries over to the call form and back.
CALL_FILTERS = ("batch", "reason", "days", "page")


def _visible_event(request: HttpRequest, pk: Any) -> HandoverEvent:
    return access.get_object_for(selectors.events_for(request.user), pk)


def _batch_filter(params: bounds.Params, event: HandoverEvent) -> tuple[Any, str]:
    """?batch=<id of one of the event's batches> or ?batch=none; an unknown id 404s."""
    if params.text("batch", max_length=20) == readiness.NO_BATCH:
        return None, readiness.NO_BATCH
    batch_id = params.id("batch")
    if batch_id is None:
        return None, ""
    return access.get_object_for(Batch.objects.filter(event=event), batch_id), str(
        batch_id
    )


@require_http_methods(["GET"])
@access.role_required(*STAFF_ROLES)
def event_readiness(request: HttpRequest, pk: int) -> HttpResponse:
    event = _visible_event(request, pk)
    # The per-day chart may be narrowed to one batch; the table always shows all.
    batch, _value = _batch_filter(bounds.params(request), event)
    numbers = readiness.event_readiness(event, batch)
    context = {
        "event": event,
        "numbers": numbers,
        "batch": batch,
        "chart": readiness_charts.days_chart(numbers.days),
    }
    return render(request, "handover/readiness/event_readiness.html", context)


@require_http_methods(["GET"])
@access.role_required(*STAFF_ROLES)
def call_list(request: HttpRequest, pk: int) -> HttpResponse:
    event = _visible_event(request, pk)
    params = bounds.params(request)
    batch, batch_value = _batch_filter(params, event)
    reason = params.choice("reason", [key for key, _label in readiness.Reason.CHOICES])
    days = params.integer(
        "days",
        min_value=0,
        max_value=readiness.MAX_WAIT_DAYS,
        default=readiness.DEFAULT_WAIT_DAYS,
    )
    units = readiness.call_list(
        event,
        batch=batch,
        without_batch=batch_value == readiness.NO_BATCH,
        reason=reason,
        wait_days=days,
    )
    page = paginate(units, params.page(), PAGE_SIZE)
    page.object_list = readiness.call_rows(
        event, list(page.object_list), user=request.user
    )
    context = {
        "event": event,
        "page": page,
        "batches": list(event.batches.order_by("booking_opens_at", "id")),
        "batch_value": batch_value,
        "reason": reason,
        "reasons": readiness.Reason.CHOICES,
        "days": days,
        "back": _filters_query(request.GET),
        "can_see_pii": masking.can_see_pii(request.user),
    }
    template = "handover/readiness/call_list.html"
    if request.htmx:
        template = "handover/readiness/_call_rows.html"
    return render(request, template, context)


def _filters_query(data: Any) -> str:
    """The call list's own filters, re-encoded (never an arbitrary `next` URL)."""
    kept = {key: data.get(key) for key in CALL_FILTERS if data.get(key)}
    return urlencode({key: value[:20] for key, value in kept.items()})


@require_http_methods(["GET", "POST"])
@access.role_required(*STAFF_ROLES)
def call_record(request: HttpRequest, pk: int, unit_pk: int) -> HttpResponse:
    """记录通话: the outcome of a call to one owner of the unit, on their timeline."""
    event = _visible_event(request, pk)
    event_unit = readiness.event_unit_for_call(event, unit_pk)
    owners = readiness.owners_for_call(event_unit, user=request.user)
    if not owners:
        raise Http404
    # The form posts to its own address, query string included: the list's filters.
    back = _filters_query(request.GET)
    form = CallForm(request.POST if request.method == "POST" else None, owners=owners)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        customer = next(o.customer for o in owners if o.customer_id == data["customer"])
        try:
            calls.owner_call_record(
                by=request.user,
                event_unit=event_unit,
                customer=customer,
                outcome=data["outcome"],
                note=data["note"],
                call_back_at=data["call_back_at"],
            )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(
                request,
                _("已记录对 %(name)s 的通话（%(unit)s）。")
                % {"name": customer.name, "unit": event_unit.unit.label},
            )
            url = reverse("handover:call_list", args=[event.pk])
            return redirect(f"{url}?{back}" if back else url)
    context = {
        "event": event,
        "event_unit": event_unit,
        "owners": owners,
        "form": form,
        "back": back,
        "can_see_pii": masking.can_see_pii(request.user),
    }
    status = 400 if form.is_bound and form.errors else 200
    return render(
        request, "handover/readiness/call_record.html", context, status=status
    )


@require_http_methods(["POST"])
@access.role_required(*STAFF_ROLES)
def call_dial(
    request: HttpRequest, pk: int, unit_pk: int, customer_pk: int
) -> HttpResponse:
    """The full number of one owner, to dial, for a role that sees numbers masked:
    one number per click, only of a unit's owner the caller may see, and audited as
    a read of the customer's personal data."""
    event = _visible_event(request, pk)
    event_unit = readiness.event_unit_for_call(event, unit_pk)
    owner = next(
        (
            o
            for o in readiness.owners_for_call(event_unit, user=request.user)
            if o.customer_id == customer_pk
        ),
        None,
    )
    if owner is None:
        raise Http404
    audit.record(
        request,
        audit.CUSTOMER_VIEWED,
        obj=owner.customer,
        detail=f"handover call list: phone for event {event.pk} unit {event_unit.pk}",
    )
    return render(
        request, "handover/readiness/_dial.html", {"phone": owner.customer.phone}
    )
