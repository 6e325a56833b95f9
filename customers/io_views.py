"""Import and export pages. Both need their own permission (managers and admins)."""

from __future__ import annotations

import io
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import (
    FileResponse,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    StreamingHttpResponse,
)
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from crm.accounts import access
from crm.accounts.roles import Role
from crm.core import bounds
from crm.core.once import submit_once
from customers import exports, imports, masking, permissions, search, selectors
from customers.io_forms import ExportDecisionForm, ExportRequestForm, ImportUploadForm
from customers.models import ExportRequest, ImportJob

ALL_ROLES = tuple(Role.values)
RECENT_JOBS = 10
RECENT_REQUESTS = 50


def _job(request: HttpRequest, pk: int) -> ImportJob:
    """Only the importing user sees a job (404 for everyone else), and only while
    allowed to import its kind of records (customers, or another app's: deals).
    A role that may import nothing is refused first (403), as before any lookup."""
    if not any(
        imports.may_import(request.user, kind)
        for kind in (imports.CUSTOMERS, *imports.KINDS)
    ):
        permissions.require(request.user, imports.IMPORT_PERM)
    job = access.get_object_for(
        ImportJob.objects.filter(created_by=request.user).select_related("created_by"),
        pk,
    )
    if not imports.may_import(request.user, job.kind):
        raise PermissionDenied
    return job


def _csv_download(chunks: Any, filename: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(chunks, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = content_disposition_header(True, filename)
    return response


# --- import ----------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@access.role_required(*ALL_ROLES)
@submit_once
def import_upload(request: HttpRequest) -> HttpResponse:
    permissions.require(request.user, imports.IMPORT_PERM)
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
        "max_mb": imports.max_upload_bytes() // (1024 * 1024),
        "recent_jobs": ImportJob.objects.filter(
            created_by=request.user, kind=imports.CUSTOMERS
        ).order_by("-created_at")[:RECENT_JOBS],
    }
    return render(request, "customers/import_upload.html", context)


@require_http_methods(["GET"])
@access.role_required(*ALL_ROLES)
def import_template(request: HttpRequest) -> HttpResponse:
    permissions.require(request.user, imports.IMPORT_PERM)
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
        imports.import_job_confirm(
            by=request.user,
            job=job,
            fallbacks={
                name: request.POST.get(f"fallback_{name}", imports.REFUSE)
                for name in imports.FALLBACK_FIELDS
            },
        )
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
    if job.kind != imports.CUSTOMERS:
        messages.info(request, _("已取消导入，没有写入任何数据。"))
        return redirect(imports.KINDS[job.kind].upload_url)
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


def _export_params(request: HttpRequest) -> Any:
    """The list's parameters as the export pages get them: a ?s= search token stands
    for its query; paging and the format are not filters."""
    params = search.resolved(request.session, request.GET)
    if params is None:
        return None
    for key in ("page", "format"):
        params.pop(key, None)
    return params


def _address_params(request: HttpRequest) -> str:
    """This page's own parameters for its links (the token, never the digits)."""
    params = request.GET.copy()
    for key in ("page", "format"):
        params.pop(key, None)
    return params.urlencode()


def _back_to_confirm(request: HttpRequest) -> HttpResponse:
    confirm = reverse("customers:export_confirm")
    querystring = _address_params(request)
    return redirect(f"{confirm}?{querystring}" if querystring else confirm)


@require_http_methods(["GET"])
@access.role_required(*ALL_ROLES)
def export_confirm(request: HttpRequest) -> HttpResponse:
    permissions.require(request.user, exports.EXPORT_PERM)
    params = _export_params(request)
    if params is None:
        return search.redirect_without_pii(request, request.path, request.GET)
    filters = selectors.export_filters(user=request.user, params=params)
    querystring = _address_params(request)
    if filters is None:
        context = {"is_invalid": True, "row_count": 0, "querystring": querystring}
        return render(request, "customers/export_confirm.html", context, status=400)
    row_count, is_capped = exports.count_bounded(filters.customers)
    context = {
        "row_count": row_count,
        "is_capped": is_capped,
        "max_rows": exports.max_rows(),
        "approval_rows": exports.approval_rows(),
        "daily_limit": exports.daily_limit(),
        "needs_approval": row_count > exports.approval_rows(),
        "request_form": ExportRequestForm(),
        "can_see_pii": masking.can_see_pii(request.user),
        "summary": filters.summary,
        "querystring": querystring,
    }
    return render(request, "customers/export_confirm.html", context)


@require_http_methods(["GET"])
@access.role_required(*ALL_ROLES)
def export_download(request: HttpRequest) -> HttpResponse:
    """Up to approval_rows rows at once; more go back to the page to ask for approval."""
    permissions.require(request.user, exports.EXPORT_PERM)
    file_format = bounds.params(request).choice(
        "format", ("csv", "xlsx"), default="csv"
    )
    params = _export_params(request)
    if params is None:
        return search.redirect_without_pii(request, request.path, request.GET)
    filters = selectors.export_filters(user=request.user, params=params)
    if filters is None:
        return HttpResponseBadRequest(_("筛选条件无效，没有导出任何数据。"))
    try:
        built = exports.export_now(
            request,
            by=request.user,
            customers=filters.customers,
            file_format=file_format,
            description=filters.audit,
        )
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return _back_to_confirm(request)
    stem = _("客户导出-%(when)s") % {
        "when": timezone.localtime().strftime("%Y%m%d-%H%M")
    }
    return FileResponse(
        io.BytesIO(built.content),
        as_attachment=True,
        filename=f"{stem}.{file_format}",
        content_type=exports.CONTENT_TYPES[file_format],
    )


@require_http_methods(["POST"])
@access.role_required(*ALL_ROLES)
@submit_once
def export_request_create(request: HttpRequest) -> HttpResponse:
    """Ask for an export over approval_rows; its filters are the page's parameters."""
    permissions.require(request.user, exports.EXPORT_PERM)
    params = _export_params(request)
    filters = (
        selectors.export_filters(user=request.user, params=params)
        if params is not None
        else None
    )
    if filters is None:
        return HttpResponseBadRequest(_("筛选条件无效，没有提交导出申请。"))
    form = ExportRequestForm(request.POST)
    row_count, is_capped = exports.count_bounded(filters.customers)
    if form.is_valid():
        try:
            export_request = exports.export_request_create(
                request,
                by=request.user,
                filters=filters.stored,
                summary=filters.summary,
                row_count=row_count,
                file_format=form.cleaned_data["file_format"],
                reason=form.cleaned_data["reason"],
            )
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
            return _back_to_confirm(request)
        messages.success(request, _("导出申请已提交，等待另一位经理或管理员审批。"))
        return redirect(export_request)
    context = {
        "row_count": row_count,
        "is_capped": is_capped,
        "max_rows": exports.max_rows(),
        "approval_rows": exports.approval_rows(),
        "daily_limit": exports.daily_limit(),
        "needs_approval": row_count > exports.approval_rows(),
        "request_form": form,
        "can_see_pii": masking.can_see_pii(request.user),
        "summary": filters.summary,
        "querystring": _address_params(request),
    }
    return render(request, "customers/export_confirm.html", context, status=400)


# --- export approval (导出审批) ------------------------------------------------------------


def _export_request(request: HttpRequest, pk: int) -> ExportRequest:
    """Requests of people in the user's scope; 404 for everyone else's."""
    permissions.require(request.user, exports.EXPORT_PERM)
    return access.get_object_for(
        _visible_requests(request).select_related("requested_by", "decided_by"), pk
    )


def _visible_requests(request: HttpRequest) -> Any:
    """A salesperson exporting under KEHU_SALES_IMPORT_EXPORT sees only their own
    requests; deciding stays with managers and admins."""
    visible = ExportRequest.objects.visible_to(request.user)
    if not request.user.has_perm(exports.EXPORT_PERM):
        visible = visible.filter(requested_by=request.user)
    return visible


@require_http_methods(["GET"])
@access.role_required(*ALL_ROLES)
def export_requests(request: HttpRequest) -> HttpResponse:
    """Pending requests this user may decide, and the user's own recent requests."""
    permissions.require(request.user, exports.EXPORT_PERM)
    exports.export_requests_expire()
    visible = _visible_requests(request).select_related("requested_by", "decided_by")
    context = {
        "pending": list(
            visible.filter(status=ExportRequest.Status.PENDING)
            .exclude(requested_by=request.user)
            .order_by("created_at")[:RECENT_REQUESTS]
        ),
        "mine": list(
            visible.filter(requested_by=request.user).order_by("-created_at")[
                :RECENT_REQUESTS
            ]
        ),
    }
    return render(request, "customers/export_requests.html", context)


@require_http_methods(["GET"])
@access.role_required(*ALL_ROLES)
def export_request_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The request, its decision and, for its requester, progress and the download.
    The status part is polled (htmx) while the file is being built."""
    export_request = _export_request(request, pk)
    exports.export_request_kick(export_request=export_request)
    context = {
        "export_request": export_request,
        "is_requester": export_request.requested_by_id == request.user.pk,
        "can_decide": export_request.status == ExportRequest.Status.PENDING
        and export_request.requested_by_id != request.user.pk
        and request.user.has_perm(exports.EXPORT_PERM),
        "decision_form": ExportDecisionForm(),
    }
    template = (
        "customers/_export_request_status.html"
        if request.htmx
        else "customers/export_request_detail.html"
    )
    return render(request, template, context)


@require_http_methods(["POST"])
@access.role_required(*ALL_ROLES)
def export_request_decide(request: HttpRequest, pk: int) -> HttpResponse:
    export_request = _export_request(request, pk)
    form = ExportDecisionForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("请选择批准或拒绝。"))
        return redirect(export_request)
    approve = form.cleaned_data["decision"] == "approve"
    try:
        exports.export_request_decide(
            request,
            by=request.user,
            export_request=export_request,
            approve=approve,
            note=form.cleaned_data["note"],
        )
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect(export_request)
    if approve:
        messages.success(
            request, _("已批准，系统正在生成导出文件，申请人可在完成后下载。")
        )
    else:
        messages.info(request, _("已拒绝该导出申请。"))
    return redirect("customers:export_requests")


@require_http_methods(["GET"])
@access.role_required(*ALL_ROLES)
def export_request_download(request: HttpRequest, pk: int) -> HttpResponse:
    export_request = _export_request(request, pk)
    try:
        handout = exports.export_request_download(
            request, by=request.user, export_request=export_request
        )
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect(export_request)
    stem = _("客户导出-申请%(id)s") % {"id": export_request.pk}
    return FileResponse(
        handout.handle,
        as_attachment=True,
        filename=f"{stem}.{handout.file_format}",
        content_type=exports.CONTENT_TYPES[handout.file_format],
    )
