"""ECharts options (data only) of the 交付准备 page."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _


def days_chart(days: list[dict[str, Any]]) -> dict[str, Any]:
    """Per day: notices sent and bookings made (bars), active bookings by slot day."""
    x = [row["day"].strftime("%m-%d") for row in days]
    options = {
        "grid": {"left": 48, "right": 16, "top": 36, "bottom": 32},
        "tooltip": {"trigger": "axis"},
        "legend": {"top": 0},
        "xAxis": {"type": "category", "data": x},
        "yAxis": {"type": "value", "name": _("户"), "minInterval": 1},
        "series": [
            {
                "name": _("发出通知"),
                "type": "bar",
                "data": [row["sent"] for row in days],
            },
            {
                "name": _("新增预约"),
                "type": "bar",
                "data": [row["made"] for row in days],
            },
            {
                "name": _("按到场日的有效预约"),
                "type": "line",
                "data": [row["on_day"] for row in days],
            },
        ],
    }
    return {
        "id": "readiness-days",
        "height": 280,
        "label": _("每天发出的通知数、新增的预约数，以及按时段日期统计的有效预约数"),
        "options": options,
    }
