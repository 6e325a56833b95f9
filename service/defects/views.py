"""The defect pages: list, detail with history and photos, recording on a phone (from a
handover case, by unit, or from a repair ticket), transitions, the service-desk link,
the contractor page (staff) and the contractor's own page (signed link, no login)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from crm.accounts import access
from crm.accounts.roles import Role
from crm.core import audit, bounds, limits, network
from crm.core.once import submit_once
from crm.core.pagination import paginate
from service.defects import selectors, services
from service.defects.forms import (
    DefectRecordForm,
    DueForm,
    ReadyForm,
    TicketLinkForm,
    TransitionForm,
)
from service.defects.models import Contractor, Defect, DefectPhoto, Severity

STAFF_ROLES = tuple(Role.values)
APPROVER_ROLES = services.APPROVER_ROLES
PAGE_SIZE = 30
HOUR = services.dt.timedelta(hours=1)
TOKEN_MAX = 300


def _add_errors(form: Any, error: ValidationError) -> None:
    if hasattr(error, "error_dict"):
        for field, errors in error.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, error)


def _defect(request: HttpRequest, pk: Any) -> Defect:
    return access.get_object_for(selectors.defect_for_page(request.user), pk)


# --- list and detail ----------------------------------------------------------------------


@require_http_methods(["GET"])
@access.role_required(*STAFF_ROLES)
def defect_list(request: HttpRequest) -> HttpResponse:
    params = bounds.params(request)
    filters = {
        "event_id": params.id("event"),
        "state": params.choice("state", ["open", *Defect.State.values]),
        "severity": params.choice("severity", Severity.values),
        "contractor_id": params.id("contractor"),
        "overdue": params.flag("overdue"),
        "unit_id": params.id("unit"),
    }
    page = paginate(
        selectors.defect_list(user=request.user, **filters), params.page(), PAGE_SIZE
    )
    context = {
        "page": page,
        "filters": filters,
        "states": [("open", _("未销项")), *Defect.State.choices],
        "severities": Severity.choices,
        "contractors": selectors.active_contractors(),
        "now": services.timezone.now(),
    }
    return render(request, "defects/defect_list.html", context)


@require_http_methods(["GET"])
@access.role_required(*STAFF_ROLES)
def defect_detail(request: HttpRequest, pk: int) -> HttpResponse:
    defect = _defect(request, pk)
    return _render_detail(request, defect, TransitionForm(), TicketLinkForm())


def _render_detail(
    request: HttpRequest,
    defect: Defect,
    form: TransitionForm,
    ticket_form: TicketLinkForm,
    status: int = 200,
) -> HttpResponse:
    context = {
        "defect": defect,
        "history": selectors.history(defect),
        "photos": selectors.photos(defect),
        "actions": services.allowed_actions(defect, request.user),
        "form": form,
        "ticket_form": ticket_form,
        "contractors": selectors.active_contractors(),
        "trade": services.trade_of(defect.category),
        "overdue": defect.is_open and defect.due_at < services.timezone.now(),
    }
    return render(request, "defects/defect_detail.html", context, status=status)


IMAGE_TYPES = {
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
}


@require_http_methods(["GET"])
@access.role_required(*STAFF_ROLES)
def defect_photo(request: HttpRequest, pk: int) -> FileResponse:
    """A defect's photo, shown in the page (uploads are not served from /media/)."""
    photo = access.get_object_for(
        DefectPhoto.objects.filter(defect__in=selectors.defects_for(request.user)), pk
    )
    extension = photo.file.name.rsplit(".", 1)[-1].lower()
    try:
        handle = photo.file.open("rb")
    except FileNotFoundError as exc:
        raise Http404 from exc
    response = FileResponse(
        handle, content_type=IMAGE_TYPES.get(extension, "application/octet-stream")
    )
    # An uploaded file never runs as a page of ours.
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "private, max-age=3600"
    return response


# --- recording ----------------------------------------------------------------------------


def _record(
    request: HttpRequest,
    *,
    unit: Any,
    case: Any = None,
    ticket: Any = None,
    back: str = "",
) -> HttpResponse:
    bound = request.method == "POST"
    form = DefectRecordForm(
        request.POST if bound else None, request.FILES if bound else None
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            defect = services.defect_record(
                by=request.user,
                unit=unit,
                case=case,
                ticket=ticket,
                room=data["room"],
                category=data["category"],
                description=data["description"],
                severity=data["severity"],
                contractor=data["contractor"],
                due_at=data["due_at"],
                photos=data["photos"],
            )
        except ValidationError as error:
            _add_errors(form, error)
        else:
            messages.success(
                request,
                _("已记录问题 #%(id)s，整改时限 %(due)s。")
                % {
                    "id": defect.pk,
                    "due": services.timezone.localtime(defect.due_at).strftime(
                        "%m-%d %H:%M"
                    ),
                },
            )
            if request.POST.get("next") == "again":
                return redirect(request.path)
            return redirect("defects:defect_detail", defect.pk)
    context = {
        "form": form,
        "unit": unit,
        "case": case,
        "ticket": ticket,
        "back": back,
        "trades": selectors.category_children(None, 1),
        "due_hours": {s: services.due_hours(s) for s in Severity.values},
    }
    return render(
        request,
        "defects/defect_record.html",
        context,
        status=400 if form.is_bound and form.errors else 200,
    )


@require_http_methods(["GET", "POST"])
@access.role_required(*STAFF_ROLES)
@submit_once
def defect_record(request: HttpRequest, case_id: int) -> HttpResponse:
    """记录问题 from a handover case (joint inspection on the day)."""
    from service.handover.models import UnitHandover

    case = access.get_object_for(
        UnitHandover.objects.select_related("event_unit__unit__building", "event"),
        case_id,
    )
    return _record(request, unit=case.event_unit.unit, case=case)


@require_http_methods(["GET", "POST"])
@access.role_required(*STAFF_ROLES)
@submit_once
def defect_record_unit(request: HttpRequest, unit_id: int) -> HttpResponse:
    """记录问题 by unit: pre-inspection, open days, later warranty findings."""
    from service.property.models import Unit

    unit = access.get_object_for(Unit.objects.with_place(), unit_id)
    return _record(request, unit=unit, back=unit.get_absolute_url())


@require_http_methods(["GET", "POST"])
@access.role_required(Role.SERVICE, Role.MANAGER, Role.ADMIN)
@submit_once
def defect_record_ticket(
    request: HttpRequest, reference: str, unit_id: int
) -> HttpResponse:
    """A warranty-phase defect recorded from a repair ticket, linked to it."""
    from service.models import Ticket
    from service.property.models import Unit

    if len(reference) > 20 or not reference.isprintable():
        raise Http404
    ticket = Ticket.objects.visible_to(request.user).filter(reference=reference).first()
    if ticket is None:
        raise Http404
    unit = access.get_object_for(
        Unit.objects.with_place().filter(
            ownerships__customer_id=ticket.customer_id, ownerships__is_active=True
        ),
        unit_id,
    )
    return _record(request, unit=unit, ticket=ticket, back=ticket.get_absolute_url())


@require_http_methods(["GET"])
@access.role_required(*STAFF_ROLES)
def category_options(request: HttpRequest) -> HttpResponse:
    """htmx: the <option>s of the next level of the cascade."""
    params = bounds.params(request)
    level = params.integer("level", min_value=2, max_value=3, default=2)
    # The select that changed sends its own value: the trade for level 2, the part
    # for level 3.
    parent = params.id("trade" if level == 2 else "part")
    rows = selectors.category_children(parent, level) if parent else []
    return render(
        request,
        "defects/_category_options.html",
        {"rows": rows, "level": level},
    )


# --- transitions and the ticket link -------------------------------------------------------


@require_http_methods(["POST"])
@access.role_required(*STAFF_ROLES)
@submit_once
def defect_transition(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    if action not in services.TRANSITIONS:
        raise Http404
    if action in services.APPROVER_ACTIONS and request.user.role not in APPROVER_ROLES:
        audit.record_denial(request, audit.DENIED_ROLE)
        raise services.PermissionDenied
    defect = _defect(request, pk)
    form = TransitionForm(request.POST, request.FILES)
    if form.is_valid():
        data = form.cleaned_data
        try:
            services.defect_transition(
                by=request.user,
                defect=defect,
                action=action,
                version=data["version"],
                contractor=data["contractor"],
                comment=data["comment"],
                reason=data["reason"],
                decision=data["decision"],
                photo=data["photo"],
            )
        except ValidationError as error:
            _add_errors(form, error)
        else:
            messages.success(request, _("已更新问题状态。"))
            return redirect("defects:defect_detail", defect.pk)
    defect = _defect(request, pk)
    return _render_detail(request, defect, form, TicketLinkForm(), status=400)


@require_http_methods(["POST"])
@access.role_required(*APPROVER_ROLES)
@submit_once
def defect_due(request: HttpRequest, pk: int) -> HttpResponse:
    """A manager moves an open defect's due time (the escalation moves with it)."""
    defect = _defect(request, pk)
    form = DueForm(request.POST)
    if form.is_valid():
        try:
            services.defect_due_change(
                by=request.user,
                defect=defect,
                version=form.cleaned_data["version"],
                due_at=form.cleaned_data["due_at"],
            )
        except ValidationError as error:
            _add_errors(form, error)
        else:
            messages.success(request, _("已修改整改时限。"))
            return redirect("defects:defect_detail", defect.pk)
    errors = TransitionForm({})
    errors.is_valid()
    for field_errors in form.errors.values():
        for message in field_errors:
            errors.add_error(None, message)
    return _render_detail(request, defect, errors, TicketLinkForm(), status=400)


@require_http_methods(["POST"])
@access.role_required(Role.SERVICE, Role.MANAGER, Role.ADMIN)
@submit_once
def defect_ticket_create(request: HttpRequest, pk: int) -> HttpResponse:
    defect = _defect(request, pk)
    try:
        ticket = services.defect_ticket_create(by=request.user, defect=defect)
    except ValidationError as error:
        for message in error.messages:
            messages.error(request, message)
        return redirect("defects:defect_detail", defect.pk)
    messages.success(request, _("已创建报修工单 %(ref)s。") % {"ref": ticket.reference})
    return redirect("defects:defect_detail", defect.pk)


@require_http_methods(["POST"])
@access.role_required(Role.SERVICE, Role.MANAGER, Role.ADMIN)
@submit_once
def defect_ticket_link(request: HttpRequest, pk: int) -> HttpResponse:
    from service.models import Ticket

    defect = _defect(request, pk)
    form = TicketLinkForm(request.POST)
    if form.is_valid():
        ticket = (
            Ticket.objects.visible_to(request.user)
            .filter(reference=form.cleaned_data["reference"].strip())
            .first()
        )
        if ticket is None:
            form.add_error("reference", _("没有找到该工单。"))
        else:
            services.defect_ticket_link(by=request.user, defect=defect, ticket=ticket)
            messages.success(
                request, _("已关联报修工单 %(ref)s。") % {"ref": ticket.reference}
            )
            return redirect("defects:defect_detail", defect.pk)
    return _render_detail(request, defect, TransitionForm(), form, status=400)


# --- contractors ----------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@access.role_required(*STAFF_ROLES)
def contractor_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The contractor's open items; managers and admins make its personal link here."""
    contractor = access.get_object_for(Contractor.objects.select_related("staff"), pk)
    link = ""
    if request.method == "POST":
        if request.user.role not in APPROVER_ROLES:
            audit.record_denial(request, audit.DENIED_ROLE)
            raise services.PermissionDenied
        if not contractor.active:
            messages.error(request, _("该责任单位已停用，不能生成链接。"))
        else:
            link = services.contractor_url(contractor)
            audit.record(
                request,
                "contractor_link_made",
                obj=contractor,
                detail=f"days={services.settings.KEHU_CONTRACTOR_LINK_DAYS}",
            )
    context = {
        "contractor": contractor,
        "items": selectors.contractor_items(contractor),
        "link": link,
        "link_days": services.settings.KEHU_CONTRACTOR_LINK_DAYS,
        "can_link": request.user.role in APPROVER_ROLES,
        "now": services.timezone.now(),
    }
    return render(request, "defects/contractor_detail.html", context)


@access.public
@require_http_methods(["GET", "POST"])
@submit_once
def contractor_items(request: HttpRequest, token: str) -> HttpResponse:
    """The contractor's own page (signed link, no login): their open items, read-only,
    and a "fixed" photo to mark one ready for re-inspection."""
    address = network.client_ip(request) or "unknown"
    if not limits.take(
        "contractor-ip",
        address,
        limit=services.settings.KEHU_CONTRACTOR_PER_IP_HOUR,
        window=HOUR,
    ):
        return render(request, "defects/contractor_too_many.html", status=429)
    try:
        if len(token) > TOKEN_MAX:
            raise services.LinkError(expired=False)
        contractor = services.contractor_for_token(token)
    except services.LinkError as error:
        return render(
            request,
            "defects/contractor_invalid.html",
            {"expired": error.expired},
            status=410 if error.expired else 404,
        )
    bound = request.method == "POST"
    form = ReadyForm(request.POST if bound else None, request.FILES if bound else None)
    if request.method == "POST" and form.is_valid():
        try:
            services.contractor_mark_ready(
                contractor=contractor,
                defect_id=form.cleaned_data["defect"],
                photo=form.cleaned_data["photo"],
                comment=form.cleaned_data["comment"],
            )
        except Defect.DoesNotExist as exc:
            raise Http404 from exc
        except ValidationError as error:
            _add_errors(form, error)
        else:
            messages.success(request, _("已提交整改完成，等待复验。"))
            return redirect(request.path)
    context = {
        "contractor": contractor,
        "items": selectors.contractor_items(contractor),
        "form": form,
        "now": services.timezone.now(),
    }
    return render(
        request,
        "defects/contractor_items.html",
        context,
        status=400 if form.is_bound and form.errors else 200,
    )
