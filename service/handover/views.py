from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods

from crm.accounts import access
from crm.accounts.roles import Role
from crm.core import bounds
from crm.core.once import submit_once
from crm.core.pagination import paginate
from customers import masking, search
from customers import selectors as customer_selectors
from customers.models import Customer
from service.handover import onsite, scope_selectors, selectors, services
from service.handover.forms import (
    BookingForm,
    EventForm,
    RescheduleForm,
    SlotDayForm,
    VersionForm,
)
from service.handover.models import Appointment, EventUnit, HandoverEvent, TimeSlot

STAFF_ROLES = tuple(Role.values)
EVENT_ROLES = (Role.MANAGER, Role.ADMIN)
PAGE_SIZE = 25
STATUS_TABS = [("", gettext_lazy("全部")), *HandoverEvent.Status.choices]


def _visible_event(request: HttpRequest, pk: Any) -> HandoverEvent:
    return access.get_object_for(selectors.events_for(request.user), pk)


def _visible_appointment(request: HttpRequest, pk: Any) -> Appointment:
    return access.get_object_for(selectors.appointment_for_page(request.user), pk)


def _add_errors(form: Any, error: ValidationError) -> None:
    if hasattr(error, "error_dict"):
        for field, errors in error.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, error)


def _status(form: Any) -> int:
    return 400 if form.is_bound and form.errors else 200


# --- events ------------------------------------------------------------------------------


@require_http_methods(["GET"])
@access.role_required(*STAFF_ROLES)
def event_list(request: HttpRequest) -> HttpResponse:
    params = bounds.params(request)
    status = params.choice("status", HandoverEvent.Status.values)
    events = selectors.event_list(user=request.user, status=status)
    page = paginate(events, params.page(), PAGE_SIZE)
    page.object_list = list(page.object_list)
    for event in page.object_list:
        event.fill_rate = selectors.fill_rate(event.booked, event.seats)
    context = {
        "page": page,
        "status": status,
        "tabs": STATUS_TABS,
        "can_manage": request.user.role in EVENT_ROLES,
    }
    return render(request, "handover/event_list.html", context)


@require_http_methods(["GET", "POST"])
@access.role_required(*EVENT_ROLES)
@submit_once
def event_create(request: HttpRequest) -> HttpResponse:
    form = EventForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            event = services.event_save(by=request.user, data=form.cleaned_data)
        except ValidationError as error:
            _add_errors(form, error)
        else:
            messages.success(request, _("活动已创建（草稿）。请添加时段后发布。"))
            return redirect(event)
    return render(
        request,
        "handover/event_form.html",
        {"form": form, "event": None},
        status=_status(form),
    )


@require_http_methods(["GET", "POST"])
@access.role_required(*EVENT_ROLES)
def event_edit(request: HttpRequest, pk: int) -> HttpResponse:
    event = _visible_event(request, pk)
    form = EventForm(request.POST if request.method == "POST" else None, instance=event)
    if request.method == "POST" and form.is_valid():
        try:
            event = services.event_save(
                by=request.user, event=event, data=form.cleaned_data
            )
        except ValidationError as error:
            _add_errors(form, error)
        else:
            messages.success(request, _("活动已保存。"))
            return redirect(event)
    return render(
        request,
        "handover/event_form.html",
        {"form": form, "event": event},
        status=_status(form),
    )


def _event_action(
    request: HttpRequest, pk: int, action: Any, done: str
) -> HttpResponse:
    event = _visible_event(request, pk)
    try:
        action(by=request.user, event=event)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, done)
    return redirect(event)


@require_http_methods(["POST"])
@access.role_required(*EVENT_ROLES)
def event_publish(request: HttpRequest, pk: int) -> HttpResponse:
    return _event_action(
        request, pk, services.event_publish, _("活动已发布，可以开始预约。")
    )


@require_http_methods(["POST"])
@access.role_required(*EVENT_ROLES)
def event_close(request: HttpRequest, pk: int) -> HttpResponse:
    return _event_action(
        request, pk, services.event_close, _("活动已关闭，不再接受预约和改约。")
    )


@require_http_methods(["GET"])
@access.role_required(*STAFF_ROLES)
def event_detail(request: HttpRequest, pk: int) -> HttpResponse:
    event = _visible_event(request, pk)
    context = {
        "event": event,
        "days": selectors.event_days(event),
        "totals": selectors.event_totals(event),
        "can_manage": request.user.role in EVENT_ROLES,
    }
    return render(request, "handover/event_detail.html", context)


@require_http_methods(["GET", "POST"])
@access.role_required(*EVENT_ROLES)
def slots_add(request: HttpRequest, pk: int) -> HttpResponse:
    event = _visible_event(request, pk)
    initial = {
        "date": event.start_date,
        "start_time": dt.time(9, 0),
        "end_time": dt.time(17, 0),
    }
    form = SlotDayForm(
        request.POST if request.method == "POST" else None, initial=initial
    )
    if request.method == "POST" and form.is_valid():
        try:
            added = services.slots_add_day(
                by=request.user, event=event, **form.cleaned_data
            )
        except ValidationError as error:
            _add_errors(form, error)
        else:
            if added:
                messages.success(request, _("已添加 %(n)s 个时段。") % {"n": added})
            else:
                messages.info(request, _("这些时段已经存在，没有新增。"))
            return redirect(event)
    return render(
        request,
        "handover/slots_add.html",
        {"form": form, "event": event},
        status=_status(form),
    )


# --- slots and appointments --------------------------------------------------------------


@require_http_methods(["GET"])
@access.role_required(*STAFF_ROLES)
def slot_detail(request: HttpRequest, pk: int) -> HttpResponse:
    slot = access.get_object_for(
        TimeSlot.objects.filter(
            event__in=selectors.events_for(request.user)
        ).select_related("event"),
        pk,
    )
    context = {
        "slot": slot,
        "event": slot.event,
        **selectors.slot_appointments(user=request.user, slot=slot),
        "can_see_pii": masking.can_see_pii(request.user),
        # Only a hint for the page: appointment_check_in enforces the rule.
        "can_check_in": slot.event.status == HandoverEvent.Status.PUBLISHED
        and slot.is_today,
    }
    return render(request, "handover/slot_detail.html", context)


def _booking_unit(request: HttpRequest, event: HandoverEvent) -> EventUnit | None:
    """The unit in scope the booking is for (?unit= or the posted event_unit)."""
    unit_id = request.POST.get("event_unit") or bounds.params(request).id("unit")
    if not unit_id:
        return None
    return access.get_object_for(
        EventUnit.objects.filter(event=event).select_related("unit__building", "batch"),
        unit_id,
    )


@require_http_methods(["GET", "POST"])
@access.role_required(*STAFF_ROLES)
@submit_once
def appointment_book(request: HttpRequest, pk: int) -> HttpResponse:
    """Pick a customer the user may see (for an event with a scope: a unit, then one
    of its owners or proxies), then a slot of the event."""
    event = _visible_event(request, pk)
    has_scope = scope_selectors.has_scope(event)
    event_unit = _booking_unit(request, event)  # a unit of another event: 404
    customer_id = request.POST.get("customer") or bounds.params(request).id("customer")
    if has_scope and (event_unit is None or not customer_id):
        return _unit_picker(request, event, event_unit)
    if not customer_id:
        return _customer_picker(request, event)
    customer = access.get_object_for(
        Customer.objects.visible_to(request.user).filter(merged_into__isnull=True),
        customer_id,
    )
    # The reason field shows when a rule may need bending; a refusal shows it too.
    needs_reason = event_unit is not None and (
        not event_unit.is_eligible or event_unit.batch_id is not None
    )
    form_kwargs = {
        "slots": selectors.open_slots(event),
        "initial": {"slot": bounds.params(request).id("slot")},
        "event_unit": event_unit,
    }
    data = request.POST if request.method == "POST" else None
    form = BookingForm(data, needs_reason=needs_reason, **form_kwargs)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            appointment = services.appointment_book(
                slot=data["slot"],
                customer=customer,
                by=request.user,
                unit=data.get("unit", ""),
                party_size=data["party_size"],
                channel=data["channel"],
                event_unit=event_unit,
                override_reason=data["override_reason"],
            )
        except services.OverrideNeeded as error:
            form = BookingForm(request.POST, needs_reason=True, **form_kwargs)
            form.is_valid()
            form.add_error("override_reason", error.message)
        except (services.SlotFull, services.NotBookable) as error:
            form.add_error("slot", error.message)
        except services.BookingError as error:
            form.add_error(None, error.message)
        except ValidationError as error:
            _add_errors(form, error)
        else:
            messages.success(
                request,
                _("已为 %(customer)s 预约 %(slot)s。")
                % {"customer": customer.name, "slot": appointment.slot},
            )
            return redirect(appointment.slot)
    context = {
        "event": event,
        "customer": customer,
        "form": form,
        "event_unit": event_unit,
    }
    return render(
        request, "handover/appointment_book.html", context, status=_status(form)
    )


def _unit_picker(
    request: HttpRequest, event: HandoverEvent, event_unit: EventUnit | None
) -> HttpResponse:
    """Find the unit by room or owner phone, then pick who books: one of its owners or
    proxies (only those the user may see can be chosen). A phone searched for comes
    back as ?s=<token>, never as digits in the address."""
    if request.method == "POST":
        return search.redirect_without_pii(request, request.path, request.POST)
    params = search.resolved(request.session, request.GET)
    if params is None:
        return search.redirect_without_pii(request, request.path, request.GET)
    query = bounds.Params(params).search()
    if event_unit is not None:
        units = scope_selectors.with_parties([event_unit])
    else:
        units = scope_selectors.with_parties(scope_selectors.unit_picker(event, query))
    visible = scope_selectors.visible_party_ids(request.user, units)
    context = {
        "event": event,
        "query": query,
        "units": units,
        "visible_ids": visible,
        "picked": event_unit,
        "slot_id": bounds.Params(params).id("slot") or "",
        "can_see_pii": masking.can_see_pii(request.user),
    }
    template = (
        "handover/scope/_unit_picker.html"
        if request.htmx
        else "handover/scope/appointment_pick_unit.html"
    )
    return render(request, template, context)


def _customer_picker(request: HttpRequest, event: HandoverEvent) -> HttpResponse:
    """Find the customer to book. The look-up posts: a phone or ID number comes back
    as ?s=<token>, never as digits in the address (customers/search.py)."""
    if request.method == "POST":
        return search.redirect_without_pii(request, request.path, request.POST)
    params = search.resolved(request.session, request.GET)
    if params is None:
        return search.redirect_without_pii(request, request.path, request.GET)
    query = bounds.Params(params).search()
    customers = (
        list(customer_selectors.customer_list(user=request.user, query=query)[:10])
        if query
        else []
    )
    context = {
        "event": event,
        "query": query,
        "slot_id": bounds.Params(params).id("slot") or "",
        "customers": customers,
    }
    template = (
        "handover/_customer_picker.html"
        if request.htmx
        else "handover/appointment_pick_customer.html"
    )
    return render(request, template, context)


def _appointment_action(
    request: HttpRequest, pk: int, action: Any, done: str
) -> HttpResponse:
    appointment = _visible_appointment(request, pk)
    form = VersionForm(request.POST)
    version = form.cleaned_data.get("version") if form.is_valid() else None
    try:
        action(appointment, by=request.user, version=version)
    except services.BookingError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, done % {"customer": appointment.customer.name})
    return redirect("handover:slot_detail", appointment.slot_id)


@require_http_methods(["POST"])
@access.role_required(*STAFF_ROLES)
def appointment_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    return _appointment_action(
        request, pk, services.appointment_cancel, _("已取消 %(customer)s 的预约。")
    )


@require_http_methods(["POST"])
@access.role_required(*STAFF_ROLES)
def appointment_check_in(request: HttpRequest, pk: int) -> HttpResponse:
    def check_in(appointment: Appointment, *, by: Any, **_: Any) -> Appointment:
        # Opens the unit's handover case too (issue 17), in the same transaction.
        onsite.check_in(appointment, by=by)
        appointment.refresh_from_db()
        return appointment

    return _appointment_action(request, pk, check_in, _("%(customer)s 已签到。"))


@require_http_methods(["GET", "POST"])
@access.role_required(*STAFF_ROLES)
def appointment_reschedule(request: HttpRequest, pk: int) -> HttpResponse:
    appointment = _visible_appointment(request, pk)
    form = RescheduleForm(
        request.POST if request.method == "POST" else None,
        slots=selectors.open_slots(appointment.event).exclude(pk=appointment.slot_id),
        initial={"version": appointment.version},
        has_unit=appointment.event_unit_id is not None,
    )
    if request.method == "POST" and form.is_valid():
        try:
            appointment = services.appointment_reschedule(
                appointment,
                new_slot=form.cleaned_data["slot"],
                by=request.user,
                version=form.cleaned_data["version"],
                override_reason=form.cleaned_data.get("override_reason", ""),
                as_walk_in=form.cleaned_data["is_walk_in"],
            )
        except services.OverrideNeeded as error:
            form.add_error("override_reason", error.message)
        except (services.SlotFull, services.NotBookable) as error:
            form.add_error("slot", error.message)
        except services.BookingError as error:
            form.add_error(None, error.message)
        else:
            messages.success(
                request,
                _("已将 %(customer)s 改约到 %(slot)s。")
                % {"customer": appointment.customer.name, "slot": appointment.slot},
            )
            return redirect(appointment.slot)
    context = {"appointment": appointment, "event": appointment.event, "form": form}
    return render(
        request,
        "handover/appointment_reschedule.html",
        context,
        status=_status(form),
    )
