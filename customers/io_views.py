"""Import and export pages. Both need their own permission (managers and admins)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import (
    FileResponse,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    StreamingHttpResponse,
)
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _
from django.utils.translation import pgettext
from django.views.decorators.http import require_http_methods

from crm.accounts import access
from crm.accounts.roles import Role
from customers import exports, imports, masking, selectors
from customers.forms import CustomerFilterForm
from customers.io_forms import ImportUploadForm
from customers.models import ImportJob

ALL_ROLES = tuple(Role.values)
RECENT_JOBS = 10


def _job(request: HttpRequest, pk: int) -> ImportJob:
    """Only the importing user sees a job (404 for everyone else)."""
    access.require_perm(request.user, imports.IMPORT_PERM)
    return access.get_object_for(
        ImportJob.objects.filter(created_by=request.user).select_related("created_by"),
        pk,
    )


def _csv_download(chunks: Any, filename: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(chunks, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = content_disposition_header(True, filename)
    return response


# --- import ----------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@access.role_required(*ALL_ROLES)
def import_upload(request: HttpRequest) -> HttpResponse:
    access.require_perm(request.user, imports.IMPORT_PERM)
    if request.method == "POST":
        form = ImportUploadForm(request.POST, request.FILES)
        if form.is_valid():
            job = imports.import_job_create(
                by=request.user,
                upload=form.cleaned_data["file"],
                inspection=form.inspection,
            )
            return redirect(job)
    else:
        form = ImportUploadForm()
    context = {
        "form": form,
        "columns": imports.TEMPLATE_HEADERS,
        "max_rows": imports.max_rows(),
        "recent_jobs": ImportJob.objects.filter(created_by=request.user).order_by(
            "-created_at"
        )[:RECENT_JOBS],
    }
    return render(request, "customers/import_upload.html", context)


@require_http_methods(["GET"])
@access.role_required(*ALL_ROLES)
def import_template(request: HttpRequest) -> HttpResponse:
    access.require_perm(request.user, imports.IMPORT_PERM)
    return _csv_download(
        exports.csv_chunks(imports.template_rows()), _("客户导入模板.csv")
    )


@require_http_methods(["GET"])
@access.role_required(*ALL_ROLES)
def import_job_detail(request: HttpRequest, pk: int) -> HttpResponse:
    job = _job(request, pk)
    return render(
        request, "customers/import_job.html", imports.import_job_page(job=job)
    )


@require_http_methods(["GET"])
@access.role_required(*ALL_ROLES)
def import_job_progress(request: HttpRequest, pk: int) -> HttpResponse:
    """The status partial that the job page polls (htmx) while a task works on it."""
    job = _job(request, pk)
    imports.import_job_kick(job=job)
    return render(
        request, "customers/_import_progress.html", imports.import_job_page(job=job)
    )


@require_http_methods(["POST"])
@access.role_required(*ALL_ROLES)
def import_job_confirm(request: HttpRequest, pk: int) -> HttpResponse:
    job = _job(request, pk)
    try:
        imports.import_job_confirm(by=request.user, job=job)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, _("已开始导入，完成后可下载导入报告。"))
    return redirect(job)


@require_http_methods(["POST"])
@access.role_required(*ALL_ROLES)
def import_job_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    job = _job(request, pk)
    try:
        imports.import_job_cancel(by=request.user, job=job)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect(job)
    messages.info(request, _("已取消导入，没有写入任何客户。"))
    return redirect("customers:import_upload")


@require_http_methods(["GET"])
@access.role_required(*ALL_ROLES)
def import_job_report(request: HttpRequest, pk: int) -> HttpResponse:
    job = _job(request, pk)
    return _csv_download(
        exports.csv_chunks(imports.import_report_rows(job=job)),
        _("导入报告-%(id)s.csv") % {"id": job.pk},
    )


# --- export ----------------------------------------------------------------------------


def _filtered_customers(
    request: HttpRequest,
) -> tuple[QuerySet | None, dict[str, Any]]:
    """The list page's customers for these GET parameters, read as customer_list does.

    Also returns how the filters read: `audit` (key=value, for the access log),
    `summary` (labels and values, for the page) and `querystring` (for the links).
    Invalid filters give None: where the list page would fall back to every customer,
    an export must not.
    """
    params = request.GET.copy()
    for key in ("page", "format"):
        params.pop(key, None)
    form = CustomerFilterForm(
        params or None,
        owners=selectors.owner_choices(user=request.user),
        teams=selectors.team_choices(user=request.user),
    )
    if form.is_bound and not form.is_valid():
        return None, {"querystring": params.urlencode()}
    filters = form.filters() if form.is_bound else {}
    cleaned = form.cleaned_data if form.is_bound else {}
    query = cleaned.get("q", "")
    sort = cleaned.get("sort") or "recent"
    customers = selectors.customer_list(
        user=request.user, query=query, sort=sort, filters=filters
    )
    used = {
        key: value
        for key, value in {"q": query, **filters}.items()
        if value not in ("", None, False)
    }
    summary = []
    for key, value in used.items():
        field = form.fields[key]
        if isinstance(field, forms.ModelChoiceField) or not hasattr(field, "choices"):
            shown = _("是") if value is True else str(value)
        else:
            shown = str(dict(field.choices).get(value, value))
        summary.append(
            _("%(label)s：%(value)s")
            % {"label": field.label or _("搜索"), "value": shown}
        )
    return customers, {
        "audit": "; ".join(
            f"{key}={getattr(value, 'pk', value)}"
            for key, value in {**used, "sort": sort}.items()
        ),
        "summary": pgettext("list separator", "；").join(summary),
        "querystring": params.urlencode(),
    }


@require_http_methods(["GET"])
@access.role_required(*ALL_ROLES)
def export_confirm(request: HttpRequest) -> HttpResponse:
    access.require_perm(request.user, exports.EXPORT_PERM)
    customers, filters = _filtered_customers(request)
    if customers is None:
        context = {"is_invalid": True, "row_count": 0, **filters}
        return render(request, "customers/export_confirm.html", context, status=400)
    row_count, is_capped = exports.count_bounded(customers)
    context = {
        "row_count": row_count,
        "is_capped": is_capped,
        "max_rows": exports.max_rows(),
        "can_see_pii": masking.can_see_pii(request.user),
        **filters,
    }
    return render(request, "customers/export_confirm.html", context)


@require_http_methods(["GET"])
@access.role_required(*ALL_ROLES)
def export_download(request: HttpRequest) -> HttpResponse:
    access.require_perm(request.user, exports.EXPORT_PERM)
    file_format = "xlsx" if request.GET.get("format") == "xlsx" else "csv"
    customers, filters = _filtered_customers(request)
    if customers is None:
        return HttpResponseBadRequest(_("筛选条件无效，没有导出任何数据。"))
    export = exports.customers_export(
        by=request.user,
        customers=customers,
        file_format=file_format,
        description=filters["audit"],
    )
    stem = _("客户导出-%(when)s") % {
        "when": timezone.localtime().strftime("%Y%m%d-%H%M")
    }
    if file_format == "xlsx":
        return FileResponse(
            exports.xlsx_file(export.rows, title=_("客户")),
            as_attachment=True,
            filename=f"{stem}.xlsx",
            content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        )
    return _csv_download(exports.csv_chunks(export.rows), f"{stem}.csv")
