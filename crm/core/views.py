from __future__ import annotations

import sys

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from crm.accounts import access
from crm.accounts.roles import Role
from crm.core import bounds, db, health, middleware, selectors
from crm.core import home as home_pages
from crm.core.forms import AuditFilterForm


@require_http_methods(["GET"])
@login_required
def home(request: HttpRequest) -> HttpResponse:
    page = home_pages.page(
        role=request.user.role, user=request.user, params=request.GET
    )
    if page is None:
        return render(request, "core/home_norole.html", status=403)
    return render(request, "core/home.html", page)


@access.public
@never_cache
@require_http_methods(["GET"])
def healthz(request: HttpRequest) -> JsonResponse:
    state = health.status()
    healthy = all(state.values())
    # Counted, not judged: the services are up even while an action waits for review.
    detail = health.details() if state["database"] else {}
    return JsonResponse(
        {"status": "ok" if healthy else "degraded", **state, **detail},
        status=200 if healthy else 503,
    )


@access.public
@require_http_methods(["GET", "HEAD"])
def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers ask for /favicon.ico whatever the page links; send them to the SVG."""
    return redirect(static("favicon.svg"), permanent=True)


def error_403(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return render(request, "403.html", status=403)


def error_404(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return render(request, "404.html", status=404)


def error_500(request: HttpRequest) -> HttpResponse:
    # Django calls this while handling the error, so sys.exc_info() is the error: a
    # database that went away after the middleware's check is a 503, not a bug.
    error = sys.exc_info()[1]
    if error is not None and db.is_unavailable(error):
        return middleware.database_unavailable_response(request, error)
    # No context processors that touch the database: the error may be the database.
    return render(request, "500.html", status=500)


@require_http_methods(["GET"])
@access.role_required(Role.ADMIN)
def audit_log(request: HttpRequest) -> HttpResponse:
    """安全审计日志: newest first, filtered, one keyset page at a time."""
    form = AuditFilterForm(request.GET or None)
    cursor = selectors.AuditCursor.parse(bounds.params(request).text("before"))
    is_invalid = form.is_bound and not form.is_valid()
    if is_invalid:
        # A filter that does not parse (a date out of range) shows its error and no
        # rows, rather than every row as if unfiltered.
        rows, next_cursor = [], None
    else:
        filters = form.cleaned_data if form.is_bound else {}
        rows, next_cursor = selectors.audit_log_page(filters=filters, cursor=cursor)
    query = request.GET.copy()
    query.pop("before", None)
    return render(
        request,
        "core/audit_log.html",
        {
            "form": form,
            "rows": rows,
            "next_cursor": next_cursor,
            "is_first_page": cursor is None,
            "filter_query": query.urlencode(),
        },
    )
