"""The value pages (/value/): Pareto, the 80 % set and its changes, the RFM grid and
its cells, tier changes, and their XLSX export. Managers see their department, admins
everyone, sales the customers they own (their share); other roles 403."""

from __future__ import annotations

from typing import Any

from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from crm.accounts import access
from crm.accounts.roles import Role
from crm.core import bounds
from culture.value import charts, exports, periods, selectors

VALUE_ROLES = (Role.MANAGER, Role.ADMIN, Role.SALES)
RANK_MAX = 10_000_000


def _common(request: HttpRequest) -> dict[str, Any]:
    """The period, view and scope every value page reads from ?kind=&p=&view=."""
    params = bounds.Params(request.GET)
    kind = params.choice("kind", periods.KINDS, default="month")
    period = periods.parse(kind, params.text("p", max_length=10))
    view = params.choice("view", selectors.VIEWS, default="customer")
    query = f"kind={period.kind}&p={period.key}&view={view}"
    return {
        "params": params,
        "period": period,
        "view": view,
        "scope": selectors.scope_for(request.user),
        "query": query,
        "is_sales": request.user.role == Role.SALES,
    }


def _period_choices(period: periods.Period) -> list[periods.Period]:
    choices = periods.recent(period.kind, count=24)
    if period not in choices:
        choices.append(period)
    return choices


@require_http_methods(["GET"])
@access.role_required(*VALUE_ROLES)
def overview(request: HttpRequest) -> HttpResponse:
    c = _common(request)
    pareto = selectors.pareto(period=c["period"], view=c["view"], scope=c["scope"])
    core, core_next = selectors.core_customers(
        period=c["period"], view=c["view"], scope=c["scope"], limit=10
    )
    grid = selectors.rfm_grid(scope=c["scope"])
    changes, _next = selectors.tier_changes(scope=c["scope"], limit=10)
    context = {
        **c,
        "pareto": pareto,
        "core": core,
        "core_more": core_next is not None,
        "grid": grid,
        "segments": selectors.rfm_segments(scope=c["scope"], grid=grid),
        "changes": changes,
        "fresh": selectors.freshness(),
        "pareto_chart": charts.pareto_chart(pareto),
        "rfm_chart": charts.rfm_chart(grid, c["query"]),
        "period_choices": _period_choices(c["period"]),
        "view_choices": [("customer", _("客户视角")), ("channel", _("渠道视角"))],
        "kind_choices": [("month", _("月")), ("quarter", _("季度")), ("year", _("年"))],
    }
    return render(request, "value/value_overview.html", context)


@require_http_methods(["GET"])
@access.role_required(*VALUE_ROLES)
def core_list(request: HttpRequest) -> HttpResponse:
    c = _common(request)
    after = c["params"].integer("after", min_value=0, max_value=RANK_MAX, default=0)
    rows, next_after = selectors.core_customers(
        period=c["period"], view=c["view"], scope=c["scope"], after=after
    )
    return render(
        request,
        "value/value_core_list.html",
        {**c, "rows": rows, "next_after": next_after, "after": after},
    )


@require_http_methods(["GET"])
@access.role_required(*VALUE_ROLES)
def changes_list(request: HttpRequest, which: str) -> HttpResponse:
    c = _common(request)
    after = c["params"].integer("after", min_value=0, max_value=RANK_MAX, default=0)
    rows, next_after = selectors.set_changes(
        period=c["period"], view=c["view"], scope=c["scope"], which=which, after=after
    )
    titles = {
        "entered": _("新进入 80% 集合的客户"),
        "left": _("退出 80% 集合的客户"),
        "stayed": _("保持在 80% 集合的客户"),
    }
    return render(
        request,
        "value/value_changes_list.html",
        {
            **c,
            "which": which,
            "title": titles[which],
            "rows": rows,
            "next_after": next_after,
            "after": after,
            "previous": c["period"].previous(),
        },
    )


@require_http_methods(["GET"])
@access.role_required(*VALUE_ROLES)
def rfm_cell(request: HttpRequest, r: int, f: int) -> HttpResponse:
    c = _common(request)
    if not (1 <= r <= 5 and 1 <= f <= 5):
        raise bounds.BadParameter("rf", _("R 与 F 得分须在 1 至 5 之间。"))
    after = c["params"].integer(
        "after", min_value=0, max_value=bounds.ID_MAX, default=0
    )
    values, next_after = selectors.rfm_cell(scope=c["scope"], r=r, f=f, after=after)
    return render(
        request,
        "value/value_rfm_cell.html",
        {
            **c,
            "r": r,
            "f": f,
            "values": values,
            "next_after": next_after,
            "after": after,
            "fresh": selectors.freshness(),
        },
    )


@require_http_methods(["GET"])
@access.role_required(*VALUE_ROLES)
def tier_change_list(request: HttpRequest) -> HttpResponse:
    c = _common(request)
    before = c["params"].integer(
        "before", min_value=1, max_value=bounds.ID_MAX, default=None
    )
    changes, next_before = selectors.tier_changes(scope=c["scope"], before=before)
    return render(
        request,
        "value/value_tier_changes.html",
        {
            **c,
            "changes": changes,
            "next_before": next_before,
            "fresh": selectors.freshness(),
        },
    )


@require_http_methods(["GET"])
@access.role_required(*VALUE_ROLES)
def export(request: HttpRequest, table: str) -> HttpResponse:
    c = _common(request)
    rows, title = exports.rows_for(
        user=request.user,
        table=table,
        period=c["period"],
        view=c["view"],
        scope=c["scope"],
    )
    exports.record(request, table, len(rows) - 1)
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    return FileResponse(
        exports.xlsx(rows, title=title),
        as_attachment=True,
        filename=f"value-{table}-{c['period'].key}-{stamp}.xlsx",
        content_type=exports.XLSX,
    )
