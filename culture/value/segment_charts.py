"""ECharts options (data only) of the segment dashboard."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from django.utils.translation import gettext as _

from culture.segments.models import Segment
from culture.value.segment_selectors import Board


def _base(x: list[str], y_name: str) -> dict[str, Any]:
    return {
        "grid": {"left": 56, "right": 20, "top": 36, "bottom": 40},
        "tooltip": {"trigger": "axis"},
        "legend": {"top": 0},
        "xAxis": {"type": "category", "data": x},
        "yAxis": {"type": "value", "name": y_name, "minInterval": 1},
    }


def charts(segment: Segment, board: Board) -> dict[str, dict[str, Any]]:
    x = [d.day.strftime("%m-%d") for d in board.days]
    members = reverse("segment_dashboard:members", args=[segment.pk])

    def link(show: str, day: Any) -> str:
        return f"{members}?show={show}&day={day.isoformat()}"

    size = _base(x, _("人"))
    size["series"] = [
        {
            "name": _("成员数"),
            "type": "line",
            "showSymbol": False,
            "areaStyle": {"opacity": 0.12},
            "data": [d.size for d in board.days],
        },
        {
            "name": _("进入"),
            "type": "bar",
            "data": [
                {"value": d.entered, "url": link("entered", d.day)} for d in board.days
            ],
        },
        {
            "name": _("离开"),
            "type": "bar",
            "data": [
                {"value": -d.left, "url": link("left", d.day)} for d in board.days
            ],
        },
    ]
    size["yAxis"]["minInterval"] = 1
    revenue = _base(x, _("元"))
    revenue["legend"] = {"show": False}
    revenue["series"] = [
        {
            "name": _("回款（元）"),
            "type": "bar",
            "data": [float(d.revenue) for d in board.days],
        }
    ]
    service = _base(x, _("次"))
    service["series"] = [
        {
            "name": _("联系次数"),
            "type": "line",
            "showSymbol": False,
            "data": [d.contacts for d in board.days],
        },
        {"name": _("投诉"), "type": "bar", "data": [d.complaints for d in board.days]},
        {
            "name": _("流失/沉睡"),
            "type": "bar",
            "data": [
                {"value": d.churned, "url": f"{members}?show=churned"}
                for d in board.days
            ],
        },
    ]
    return {
        "size": {
            "id": "segment-size",
            "height": 300,
            "label": _("成员数随时间变化，以及每天进入和离开的人数"),
            "options": size,
        },
        "revenue": {
            "id": "segment-revenue",
            "height": 260,
            "label": _("成员每天的回款"),
            "options": revenue,
        },
        "service": {
            "id": "segment-service",
            "height": 260,
            "label": _("成员每天被联系的次数、投诉数和转为沉睡或流失的人数"),
            "options": service,
        },
    }
