"""The per-segment dashboard (/segments/<id>/dashboard/): size over time, revenue,
contact frequency, complaints and churn from the daily rollup (value_segmentday), with
drill-down to the members the viewer may see. Access is the segment's own: whoever may
open the segment (culture/segments/access.py) may open its dashboard."""

from __future__ import annotations

from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from crm.accounts import access
from crm.core import bounds
from culture.segments import access as segment_access
from culture.segments import services as segment_services
from culture.value import exports, segment_charts, segment_selectors

DAYS = ("30", "90", "180")
SHOW = ("members", "entered", "left", "churned")


def _days(params: bounds.Params) -> int:
    return int(params.choice("days", DAYS, default="90"))


@require_http_methods(["GET"])
@access.role_required(*segment_services.USER_ROLES)
def segment_dashboard(request: HttpRequest, pk: int) -> HttpResponse:
    segment = segment_access.get_segment_for(request.user, pk)
    days = _days(bounds.Params(request.GET))
    board = segment_selectors.dashboard(segment=segment, days=days)
    context = {
        "segment": segment,
        "days": days,
        "day_choices": DAYS,
        "board": board,
        "charts": segment_charts.charts(segment, board),
    }
    return render(request, "value/segment_dashboard.html", context)


@require_http_methods(["GET"])
@access.role_required(*segment_services.USER_ROLES)
def segment_dashboard_members(request: HttpRequest, pk: int) -> HttpResponse:
    segment = segment_access.get_segment_for(request.user, pk)
    params = bounds.Params(request.GET)
    show = params.choice("show", SHOW, default="members")
    days = _days(params)
    day = params.date("day")
    after = params.integer("after", min_value=0, max_value=bounds.ID_MAX, default=0)
    rows, next_after = segment_selectors.members(
        user=request.user, segment=segment, show=show, days=days, day=day, after=after
    )
    context = {
        "segment": segment,
        "show": show,
        "days": days,
        "day": day,
        "rows": rows,
        "next_after": next_after,
        "query": f"show={show}&days={days}"
        + (f"&day={day.isoformat()}" if day else ""),
    }
    return render(request, "value/segment_dashboard_members.html", context)


@require_http_methods(["GET"])
@access.role_required(*segment_services.USER_ROLES)
def segment_dashboard_export(request: HttpRequest, pk: int) -> HttpResponse:
    segment = segment_access.get_segment_for(request.user, pk)
    days = _days(bounds.Params(request.GET))
    board = segment_selectors.dashboard(segment=segment, days=days)
    rows = segment_selectors.export_rows(board)
    exports.record(request, f"segment {segment.pk}", len(rows) - 1)
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    return FileResponse(
        exports.xlsx(iter(rows), title=segment.name),
        as_attachment=True,
        filename=f"segment-{segment.pk}-{days}d-{stamp}.xlsx",
        content_type=exports.XLSX,
    )
