"""The property pages: every staff role reads, admins and managers write."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    StreamingHttpResponse,
)
from django.shortcuts import redirect, render
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from crm.accounts import access
from crm.core import bounds
from crm.core.once import submit_once
from crm.core.pagination import paginate
from customers import exports, imports
from customers.io_forms import ImportUploadForm
from customers.models import Customer, ImportJob
from service.property import forms, selectors, services
from service.property.models import (
    Building,
    Phase,
    Project,
    ProxyAuthorisation,
    Unit,
    UnitOwnership,
)

VIEW_ROLES = services.VIEW_ROLES
EDIT_ROLES = services.EDIT_ROLES
PAGE_SIZE = 25


def _add_errors(form: Any, error: ValidationError) -> None:
    if hasattr(error, "error_dict"):
        for field, errors in error.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, error)


def _form_page(request: HttpRequest, form: Any, title: str, back: str) -> HttpResponse:
    status = 400 if form.is_bound and form.errors else 200
    context = {"form": form, "title": title, "back": back}
    return render(request, "property/property_form.html", context, status=status)


def _edit(
    request: HttpRequest,
    form: Any,
    save: Any,
    *,
    title: str,
    back: str,
    done: str,
) -> HttpResponse:
    """Bind, call the service, then redirect to what it saved or show the errors."""
    if request.method == "POST" and form.is_valid():
        try:
            saved = save(form.cleaned_data)
        except ValidationError as error:
            _add_errors(form, error)
        else:
            messages.success(request, done)
            return redirect(saved)
    return _form_page(request, form, title, back)


def _data(request: HttpRequest) -> Any:
    """A POST's data, even an empty one (an error, not a blank form), or None."""
    return request.POST if request.method == "POST" else None


def _bound(request: HttpRequest) -> tuple[Any, Any]:
    """(data, files) of a POST, or (None, None)."""
    return _data(request), request.FILES if request.method == "POST" else None


def _get(model: type, pk: Any, *related: str) -> Any:
    return access.get_object_for(model.objects.select_related(*related), pk)


# --- projects ---------------------------------------------------------------------------


@require_http_methods(["GET"])
@access.role_required(*VIEW_ROLES)
def project_list(request: HttpRequest) -> HttpResponse:
    params = bounds.params(request)
    page = paginate(selectors.project_list(), params.page(), PAGE_SIZE)
    context = {"page": page, "can_edit": services.can_edit(request.user)}
    return render(request, "property/project_list.html", context)


@require_http_methods(["GET", "POST"])
@access.role_required(*EDIT_ROLES)
@submit_once
def project_create(request: HttpRequest) -> HttpResponse:
    form = forms.ProjectForm(_data(request))
    return _edit(
        request,
        form,
        lambda data: services.project_save(by=request.user, data=data),
        title=_("新建楼盘"),
        back="property:project_list",
        done=_("楼盘已创建。"),
    )


@require_http_methods(["GET"])
@access.role_required(*VIEW_ROLES)
def project_detail(request: HttpRequest, pk: int) -> HttpResponse:
    project = _get(Project, pk)
    context = selectors.project_page(project=project)
    context["can_edit"] = services.can_edit(request.user)
    return render(request, "property/project_detail.html", context)


@require_http_methods(["GET", "POST"])
@access.role_required(*EDIT_ROLES)
def project_edit(request: HttpRequest, pk: int) -> HttpResponse:
    project = _get(Project, pk)
    form = forms.ProjectForm(_data(request), instance=project)
    return _edit(
        request,
        form,
        lambda data: services.project_save(by=request.user, project=project, data=data),
        title=_("编辑楼盘"),
        back="property:project_list",
        done=_("楼盘已保存。"),
    )


@require_http_methods(["GET", "POST"])
@access.role_required(*EDIT_ROLES)
@submit_once
def phase_create(request: HttpRequest, pk: int) -> HttpResponse:
    project = _get(Project, pk)
    form = forms.PhaseForm(_data(request))

    def save(data: dict) -> Project:
        services.phase_save(by=request.user, project=project, data=data)
        return project

    return _edit(
        request,
        form,
        save,
        title=_("新建分期 · %(project)s") % {"project": project.name},
        back="property:project_list",
        done=_("分期已创建。"),
    )


@require_http_methods(["GET", "POST"])
@access.role_required(*EDIT_ROLES)
@submit_once
def building_create(request: HttpRequest, pk: int) -> HttpResponse:
    phase = _get(Phase, pk, "project")
    form = forms.BuildingForm(_data(request))
    return _edit(
        request,
        form,
        lambda data: services.building_save(by=request.user, phase=phase, data=data),
        title=_("新建楼栋 · %(project)s %(phase)s")
        % {"project": phase.project.name, "phase": phase.name},
        back="property:project_list",
        done=_("楼栋已创建。"),
    )


# --- buildings and units -----------------------------------------------------------------


@require_http_methods(["GET"])
@access.role_required(*VIEW_ROLES)
def building_detail(request: HttpRequest, pk: int) -> HttpResponse:
    building = _get(Building, pk, "phase__project")
    context = selectors.building_page(building=building, user=request.user)
    context["can_edit"] = services.can_edit(request.user)
    return render(request, "property/building_detail.html", context)


@require_http_methods(["GET", "POST"])
@access.role_required(*EDIT_ROLES)
def building_edit(request: HttpRequest, pk: int) -> HttpResponse:
    building = _get(Building, pk, "phase__project")
    form = forms.BuildingForm(_data(request), instance=building)
    return _edit(
        request,
        form,
        lambda data: services.building_save(
            by=request.user, phase=building.phase, building=building, data=data
        ),
        title=_("编辑楼栋"),
        back="property:project_list",
        done=_("楼栋已保存。"),
    )


@require_http_methods(["GET", "POST"])
@access.role_required(*EDIT_ROLES)
@submit_once
def unit_create(request: HttpRequest, pk: int) -> HttpResponse:
    building = _get(Building, pk, "phase__project")
    form = forms.UnitForm(_data(request))
    return _edit(
        request,
        form,
        lambda data: services.unit_save(by=request.user, building=building, data=data),
        title=_("新建房间 · %(building)s") % {"building": building.name},
        back="property:project_list",
        done=_("房间已创建。"),
    )


@require_http_methods(["GET"])
@access.role_required(*VIEW_ROLES)
def unit_detail(request: HttpRequest, pk: int) -> HttpResponse:
    unit = access.get_object_for(Unit.objects.with_place(), pk)
    context = selectors.unit_page(unit=unit, user=request.user)
    context["can_edit"] = services.can_edit(request.user)
    return render(request, "property/unit_detail.html", context)


@require_http_methods(["GET", "POST"])
@access.role_required(*EDIT_ROLES)
def unit_edit(request: HttpRequest, pk: int) -> HttpResponse:
    unit = access.get_object_for(Unit.objects.with_place(), pk)
    form = forms.UnitForm(_data(request), instance=unit)
    return _edit(
        request,
        form,
        lambda data: services.unit_save(
            by=request.user, building=unit.building, unit=unit, data=data
        ),
        title=_("编辑房间 %(unit)s") % {"unit": unit.label},
        back="property:project_list",
        done=_("房间已保存。"),
    )


# --- owners and proxies -------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@access.role_required(*EDIT_ROLES)
@submit_once
def owner_add(request: HttpRequest, pk: int) -> HttpResponse:
    unit = access.get_object_for(Unit.objects.with_place(), pk)
    form = forms.OwnerForm(_data(request))

    def save(data: dict) -> Unit:
        customer, _created = services.owner_find_or_create(
            by=request.user,
            name=data["name"],
            phone=data["phone"],
            id_number=data["id_number"],
        )
        services.ownership_add(
            by=request.user,
            unit=unit,
            customer=customer,
            role=data["role"],
            contract_no=data["contract_no"],
        )
        return unit

    return _edit(
        request,
        form,
        save,
        title=_("添加业主 · %(unit)s") % {"unit": unit.label},
        back="property:project_list",
        done=_("业主已添加。"),
    )


@require_http_methods(["POST"])
@access.role_required(*EDIT_ROLES)
def owner_end(request: HttpRequest, pk: int) -> HttpResponse:
    ownership = _get(UnitOwnership, pk, "unit")
    try:
        services.ownership_end(by=request.user, ownership=ownership)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, _("已结束该业主关系。"))
    return redirect(ownership.unit)


@require_http_methods(["GET", "POST"])
@access.role_required(*EDIT_ROLES)
@submit_once
def proxy_add(request: HttpRequest, pk: int) -> HttpResponse:
    unit = access.get_object_for(Unit.objects.with_place(), pk)
    owners = Customer.objects.filter(
        unit_ownerships__unit=unit, unit_ownerships__is_active=True
    ).order_by("pk")
    form = forms.ProxyForm(*_bound(request), owners=owners)

    def save(data: dict) -> Unit:
        proxy, _created = services.owner_find_or_create(
            by=request.user,
            name=data["name"],
            phone=data["phone"],
            id_number=data["id_number"],
        )
        services.proxy_add(
            by=request.user,
            unit=unit,
            owner=data["owner"],
            proxy=proxy,
            document=data["document"],
            scope=data["scope"],
            valid_until=data["valid_until"],
        )
        return unit

    return _edit(
        request,
        form,
        save,
        title=_("添加委托 · %(unit)s") % {"unit": unit.label},
        back="property:project_list",
        done=_("委托已登记。"),
    )


@require_http_methods(["POST"])
@access.role_required(*EDIT_ROLES)
def proxy_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    authorisation = _get(ProxyAuthorisation, pk, "unit")
    try:
        services.proxy_revoke(by=request.user, authorisation=authorisation)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, _("委托已撤销。"))
    return redirect(authorisation.unit)


@require_http_methods(["GET"])
@access.role_required(*EDIT_ROLES)
def proxy_document(request: HttpRequest, pk: int) -> HttpResponse:
    """The signed 授权委托书: personal data, so only the roles that keep the register
    open it, through this view (never a public media URL)."""
    authorisation = _get(ProxyAuthorisation, pk)
    if not authorisation.document:
        raise Http404
    try:
        handle = authorisation.document.open("rb")
    except FileNotFoundError as exc:
        raise Http404 from exc
    name = authorisation.document.name.rsplit("/", 1)[-1]
    return FileResponse(handle, as_attachment=True, filename=name)


# --- import (customers/imports.py machinery; service/property/imports.py) -----------------


@require_http_methods(["GET", "POST"])
@access.role_required(*EDIT_ROLES)
@submit_once
def import_upload(request: HttpRequest) -> HttpResponse:
    from service.property import imports as unit_imports

    access.require_perm(request.user, unit_imports.UNITS.perm)
    form = ImportUploadForm(*_bound(request), kind=unit_imports.KIND)
    if request.method == "POST" and form.is_valid():
        job = imports.import_job_create(
            by=request.user,
            upload=form.cleaned_data["file"],
            inspection=form.inspection,
            kind=unit_imports.KIND,
        )
        return redirect(job)
    context = {
        "form": form,
        "columns": unit_imports.TEMPLATE_HEADERS,
        "max_rows": imports.max_rows(),
        "max_mb": imports.max_upload_bytes() // (1024 * 1024),
        "recent_jobs": ImportJob.objects.filter(
            created_by=request.user, kind=unit_imports.KIND
        ).order_by("-created_at")[:10],
    }
    status = 400 if form.is_bound and form.errors else 200
    return render(request, "property/import_upload.html", context, status=status)


@require_http_methods(["GET"])
@access.role_required(*EDIT_ROLES)
def import_template(request: HttpRequest) -> HttpResponse:
    from service.property import imports as unit_imports

    access.require_perm(request.user, unit_imports.UNITS.perm)
    rows = [
        [header for header, _hint in unit_imports.TEMPLATE_HEADERS],
        unit_imports.TEMPLATE_EXAMPLE,
    ]
    response = StreamingHttpResponse(
        exports.csv_chunks(rows), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = content_disposition_header(
        True, _("房间业主导入模板.csv")
    )
    return response
