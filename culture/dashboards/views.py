"""The managers' dashboard: the page, the customers behind a figure, the XLSX export."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from crm.accounts import access
from crm.accounts.roles import Role
from crm.core import bounds
from culture.dashboards import exports, selectors

DASHBOARD_ROLES = (Role.MANAGER, Role.ADMIN, Role.SALES)


def _filters(request: HttpRequest) -> tuple[selectors.Filters, list]:
    teams = selectors.teams_for(request.user)
    return selectors.filters_from(request.GET, user=request.user, teams=teams), teams


@require_http_methods(["GET"])
@access.role_required(*DASHBOARD_ROLES)
def dashboard(request: HttpRequest) -> HttpResponse:
    filters, teams = _filters(request)
    data = selectors.dashboard(user=request.user, filters=filters, teams=teams)
    return render(request, "dashboards/dashboard.html", data)


@require_http_methods(["GET"])
@access.role_required(*DASHBOARD_ROLES)
def drill(request: HttpRequest) -> HttpResponse:
    filters, _teams = _filters(request)
    params = bounds.Params(request.GET)
    figure = params.choice("figure", selectors.FIGURES, default="new")
    data = selectors.drill_customers(
        user=request.user,
        figure=figure,
        filters=filters,
        stage_id=params.integer("stage", min_value=1, max_value=bounds.INT_MAX),
        before=params.integer("before", min_value=1, max_value=bounds.ID_MAX),
    )
    return render(request, "dashboards/drill.html", data)


@require_http_methods(["GET"])
@access.role_required(*DASHBOARD_ROLES)
def dashboard_export(request: HttpRequest) -> HttpResponse:
    filters, teams = _filters(request)
    data = selectors.dashboard(user=request.user, filters=filters, teams=teams)
    response = HttpResponse(
        exports.workbook(data),
        content_type=(
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        ),
    )
    name = f"dashboard-{filters.start.isoformat()}-{filters.end.isoformat()}.xlsx"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
