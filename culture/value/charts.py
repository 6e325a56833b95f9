"""ECharts options (data only: static/js/charts.js draws them, CSP allows no inline
script) for the value page's Pareto curve and RFM grid."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.urls import reverse
from django.utils.translation import gettext as _

from culture.value.selectors import Pareto


def pareto_chart(pareto: Pareto) -> dict[str, Any]:
    x_label, y_label = _("客户占比（%）"), _("回款占比（%）")
    return {
        "id": "pareto-chart",
        "height": 340,
        "label": _("帕累托曲线：按回款从高到低排序后，累计客户占比对应的累计回款占比"),
        "options": {
            "grid": {"left": 56, "right": 56, "top": 30, "bottom": 50},
            "tooltip": {"trigger": "axis"},
            "xAxis": {
                "type": "value",
                "min": 0,
                "max": 100,
                "name": x_label,
                "nameLocation": "middle",
                "nameGap": 28,
                "axisLabel": {"formatter": "{value}%"},
            },
            "yAxis": {
                "type": "value",
                "min": 0,
                "max": 100,
                "name": y_label,
                "axisLabel": {"formatter": "{value}%"},
            },
            "series": [
                {
                    "name": y_label,
                    "type": "line",
                    "showSymbol": False,
                    "areaStyle": {"opacity": 0.15},
                    "data": pareto.curve,
                    "markLine": {
                        "symbol": "none",
                        "lineStyle": {"type": "dashed"},
                        "label": {"formatter": "{b}"},
                        "data": [
                            {"name": _("前 20% 客户"), "xAxis": 20},
                            {"name": _("80% 回款"), "yAxis": 80},
                        ],
                    },
                },
                {
                    "name": _("完全平均"),
                    "type": "line",
                    "showSymbol": False,
                    "lineStyle": {"type": "dotted", "color": "#adb5bd"},
                    "data": [[0, 0], [100, 100]],
                },
            ],
        },
    }


def rfm_chart(grid: dict[str, Any], query: str = "") -> dict[str, Any]:
    """R (rows, 5 at the top) × F (columns); colour = mean monetary, label = count.
    Each cell opens its customers."""
    data, means = [], []
    for r in range(1, 6):
        for f in range(1, 6):
            cell = grid["cells"].get((r, f))
            count = cell["n"] if cell else 0
            mean = round(float(cell["m"] or 0), 2) if cell else 0
            means.append(mean)
            url = reverse("value:rfm_cell", args=[r, f])
            data.append(
                {
                    "value": [f - 1, r - 1, mean, count],
                    "url": f"{url}?{query}" if query else url,
                }
            )
    return {
        "id": "rfm-chart",
        "height": 360,
        "label": _(
            "RFM 网格：纵轴 R（最近一次）得分，横轴 F（频次）得分，颜色为平均金额"
        ),
        "options": {
            "grid": {"left": 56, "right": 24, "top": 20, "bottom": 96},
            "tooltip": {
                "formatter": _("R{@[1]} F{@[0]}：{@[3]} 位客户，平均金额 ¥{@[2]}")
            },
            "xAxis": {
                "type": "category",
                "data": ["F1", "F2", "F3", "F4", "F5"],
                "name": _("频次 F"),
                "nameLocation": "middle",
                "nameGap": 26,
            },
            "yAxis": {
                "type": "category",
                "data": ["R1", "R2", "R3", "R4", "R5"],
                "name": _("最近 R"),
            },
            "visualMap": {
                "min": 0,
                "max": max(means) if any(means) else 1,
                "dimension": 2,
                "calculable": False,
                "precision": 0,
                "itemHeight": 160,
                "orient": "horizontal",
                "left": "center",
                "bottom": 0,
                "text": [_("平均金额高"), _("低")],
                "inRange": {"color": ["#e7f1ff", "#0d6efd", "#052c65"]},
            },
            "series": [
                {
                    "name": _("RFM"),
                    "type": "heatmap",
                    "data": data,
                    "label": {"show": True, "formatter": "{@[3]}"},
                    "emphasis": {
                        "itemStyle": {"borderColor": "#212529", "borderWidth": 1}
                    },
                }
            ],
        },
    }


def query_string(**params: Any) -> str:
    return urlencode(params)
