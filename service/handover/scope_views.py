"""The event's scope (units, eligibility, batches) and its batches' pages. Every staff
role views; managers and admins edit (the event pages' rule)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from crm.accounts import access
from crm.core import bounds
from customers import masking, search
from service.handover import scope, scope_selectors, selectors
from service.handover.models import Batch, EventUnit, HandoverEvent
from service.handover.scope_forms import (
    BatchAssignForm,
    BatchForm,
    BatchSlotDayForm,
    BulkForm,
    ScopeAddForm,
)
from service.handover.views import (
    EVENT_ROLES,
    STAFF_ROLES,
    _add_errors,
    _status,
    _visible_event,
)


def _visible_batch(request: HttpRequest, pk: Any) -> Batch:
    batches = Batch.objects.filter(
        event__in=selectors.events_for(request.user)
    ).select_related("event")
    return access.get_object_for(batches, pk)


def _filters(params: Any) -> scope_selectors.ScopeFilters:
    p = bounds.Params(params)
    batch = p.text("batch", max_length=20)
    if batch not in ("", scope_selectors.NO_BATCH) and bounds.as_id(batch) is None:
        batch = ""
    return scope_selectors.ScopeFilters(
        building=p.id("building"),
        batch=batch,
        eligibility=p.choice("eligibility", EventUnit.Eligibility.values),
        booked=p.choice("booked", (scope_selectors.BOOKED, scope_selectors.NOT_BOOKED)),
        query=p.search(),
    )


@require_http_methods(["GET"])
@access.role_required(*STAFF_ROLES)
def event_scope(request: HttpRequest, pk: int) -> HttpResponse:
    """The units in scope: filters, search by room or owner phone, keyset pages, and
    (for managers) ticks with the bulk action bar."""
    event = _visible_event(request, pk)
    params = search.resolved(request.session, request.GET)
    if params is None:  # a phone in the address: swap it for a session token
        return search.redirect_without_pii(request, request.path, request.GET)
    filters = _filters(params)
    after = bounds.Params(params).id("after")
    rows, next_after = scope_selectors.scope_page(event, filters, after=after)
    batches = scope_selectors.event_batches(event)
    can_see_pii = masking.can_see_pii(request.user)
    for row in rows:
        row.owner_lines = [
            (
                o.customer.name,
                o.customer.phone
                if can_see_pii
                else masking.mask_phone(o.customer.phone),
                o.get_role_display(),
            )
            for o in row.unit.owners
        ]
        row.booking = row.active_bookings[0] if row.active_bookings else None
    # The filters as they may stand in an address (a phone searched for as its token).
    query = search.url_params(request.session, params)
    query.pop("after", None)
    context = {
        "event": event,
        "rows": rows,
        "next_after": next_after,
        "is_first_page": after is None,
        "filters": filters,
        "filter_query": query.urlencode(),
        "totals": scope_selectors.scope_totals(event),
        "matching_count": scope_selectors.scope_units(event, filters).count(),
        "buildings": scope_selectors.event_buildings(event),
        "batches": batches,
        "eligibility_choices": EventUnit.Eligibility.choices,
        "bulk_form": BulkForm(batches=batches),
        "can_manage": request.user.role in EVENT_ROLES,
    }
    template = (
        "handover/scope/_scope_results.html"
        if request.htmx
        else "handover/scope/event_scope.html"
    )
    return render(request, template, context)


@require_http_methods(["GET", "POST"])
@access.role_required(*EVENT_ROLES)
def scope_add(request: HttpRequest, pk: int) -> HttpResponse:
    event = _visible_event(request, pk)
    buildings = scope_selectors.event_buildings(event)
    form = ScopeAddForm(
        request.POST if request.method == "POST" else None, buildings=buildings
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            added = scope.scope_add(
                by=request.user,
                event=event,
                building_ids=[b.pk for b in data["buildings"]],
                floor_from=data["floor_from"],
                floor_to=data["floor_to"],
            )
        except ValidationError as error:
            _add_errors(form, error)
        else:
            messages.success(
                request, _("已将 %(n)s 个房间加入交付范围。") % {"n": added}
            )
            return redirect("handover:event_scope", event.pk)
    context = {"event": event, "form": form, "buildings": buildings}
    return render(
        request, "handover/scope/scope_add.html", context, status=_status(form)
    )


def _bulk_ids(
    request: HttpRequest, event: HandoverEvent, data: dict, filter_query: str
) -> list[int]:
    """The ticked units, or with "all matching" every unit the page's filters match
    (the filters as the page's address carried them; a phone as its session token)."""
    if not data["all_matching"]:
        return data["units"]
    params = search.resolved(request.session, QueryDict(filter_query))
    filters = _filters(params or QueryDict())
    units = scope_selectors.scope_units(event, filters).order_by("pk")
    return list(units.values_list("pk", flat=True)[: scope.MAX_BULK + 1])


def _bulk_apply(
    request: HttpRequest, event: HandoverEvent, ids: list, data: dict
) -> str:
    if data["action"] == BulkForm.ELIGIBILITY:
        changed = scope.eligibility_set(
            by=request.user,
            event=event,
            event_unit_ids=ids,
            eligibility=data["eligibility"],
            note=data["note"],
        )
        return _("已修改 %(n)s 个房间的交付资格（选中 %(total)s 个）。") % {
            "n": changed,
            "total": len(ids),
        }
    if data["action"] == BulkForm.BATCH:
        changed = scope.batch_set(
            by=request.user, event=event, event_unit_ids=ids, batch=data["batch"]
        )
        return _("已修改 %(n)s 个房间的批次（选中 %(total)s 个）。") % {
            "n": changed,
            "total": len(ids),
        }
    removed, kept = scope.scope_remove(by=request.user, event=event, event_unit_ids=ids)
    message = _("已将 %(n)s 个房间移出交付范围。") % {"n": removed}
    if kept:
        message += _("%(n)s 个房间已有预约或已发通知，保留在范围内。") % {"n": kept}
    return message


@require_http_methods(["POST"])
@access.role_required(*EVENT_ROLES)
def scope_bulk(request: HttpRequest, pk: int) -> HttpResponse:
    """The action bar (the button asks to confirm first); back to the same filters."""
    event = _visible_event(request, pk)
    form = BulkForm(request.POST, batches=scope_selectors.event_batches(event))
    back = reverse("handover:event_scope", args=[event.pk])
    filter_query = bounds.Params(request.POST).text("filter_query", max_length=1000)
    if filter_query:
        back = f"{back}?{filter_query}"
    if not form.is_valid():
        errors = [e for errs in form.errors.values() for e in errs]
        messages.error(request, " ".join(errors))
        return redirect(back)
    try:
        ids = _bulk_ids(request, event, form.cleaned_data, filter_query)
        message = _bulk_apply(request, event, ids, form.cleaned_data)
        messages.success(request, message)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    return redirect(back)


# --- batches -----------------------------------------------------------------------------


@require_http_methods(["GET"])
@access.role_required(*STAFF_ROLES)
def batch_list(request: HttpRequest, pk: int) -> HttpResponse:
    event = _visible_event(request, pk)
    context = {
        "event": event,
        "batches": scope_selectors.event_batches(event),
        "can_manage": request.user.role in EVENT_ROLES,
    }
    return render(request, "handover/scope/batch_list.html", context)


def _batch_form_page(
    request: HttpRequest, event: HandoverEvent, batch: Batch | None
) -> HttpResponse:
    form = BatchForm(request.POST if request.method == "POST" else None, instance=batch)
    if request.method == "POST" and form.is_valid():
        try:
            scope.batch_save(
                by=request.user, event=event, data=form.cleaned_data, batch=batch
            )
        except ValidationError as error:
            _add_errors(form, error)
        else:
            messages.success(request, _("批次已保存。"))
            return redirect("handover:batch_list", event.pk)
    context = {"event": event, "batch": batch, "form": form}
    return render(
        request, "handover/scope/batch_form.html", context, status=_status(form)
    )


@require_http_methods(["GET", "POST"])
@access.role_required(*EVENT_ROLES)
def batch_create(request: HttpRequest, pk: int) -> HttpResponse:
    return _batch_form_page(request, _visible_event(request, pk), None)


@require_http_methods(["GET", "POST"])
@access.role_required(*EVENT_ROLES)
def batch_edit(request: HttpRequest, pk: int) -> HttpResponse:
    batch = _visible_batch(request, pk)
    return _batch_form_page(request, batch.event, batch)


@require_http_methods(["POST"])
@access.role_required(*EVENT_ROLES)
def batch_delete(request: HttpRequest, pk: int) -> HttpResponse:
    batch = _visible_batch(request, pk)
    try:
        slots = scope.batch_delete(by=request.user, batch=batch)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(
            request,
            _("已删除批次“%(name)s”及其 %(n)s 个时段。")
            % {"name": batch.name, "n": slots},
        )
    return redirect("handover:batch_list", batch.event_id)


@require_http_methods(["GET", "POST"])
@access.role_required(*EVENT_ROLES)
def batch_assign(request: HttpRequest, pk: int) -> HttpResponse:
    batch = _visible_batch(request, pk)
    buildings = scope_selectors.event_buildings(batch.event)
    form = BatchAssignForm(
        request.POST if request.method == "POST" else None, buildings=buildings
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            changed = scope.batch_assign_units(
                by=request.user,
                batch=batch,
                building_ids=[b.pk for b in data["buildings"]],
                floor_from=data["floor_from"],
                floor_to=data["floor_to"],
            )
        except ValidationError as error:
            _add_errors(form, error)
        else:
            messages.success(
                request,
                _("已将 %(n)s 个房间分配到批次“%(name)s”。")
                % {"n": changed, "name": batch.name},
            )
            return redirect("handover:batch_list", batch.event_id)
    context = {"event": batch.event, "batch": batch, "form": form}
    return render(
        request, "handover/scope/batch_assign.html", context, status=_status(form)
    )


@require_http_methods(["GET", "POST"])
@access.role_required(*EVENT_ROLES)
def batch_slots_add(request: HttpRequest, pk: int) -> HttpResponse:
    batch = _visible_batch(request, pk)
    event = batch.event
    form = BatchSlotDayForm(
        request.POST if request.method == "POST" else None,
        initial={"date": event.start_date, "start_time": "09:00", "end_time": "17:00"},
    )
    if request.method == "POST" and form.is_valid():
        try:
            added = scope.batch_slots_add_day(
                by=request.user, batch=batch, **form.cleaned_data
            )
        except ValidationError as error:
            _add_errors(form, error)
        else:
            if added:
                messages.success(request, _("已添加 %(n)s 个时段。") % {"n": added})
            else:
                messages.info(
                    request,
                    _("这些开始时间已有时段（可能属于其他批次），没有新增。"),
                )
            return redirect("handover:batch_list", event.pk)
    context = {"event": event, "batch": batch, "form": form}
    return render(
        request, "handover/scope/batch_slots_add.html", context, status=_status(form)
    )
