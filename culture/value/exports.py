"""XLSX exports of the value pages' tables. The RFM grid is figures only; the lists
name customers, so they need the export permission and stop at the number of rows an
export may have without a second person's approval (KEHU_EXPORT_APPROVAL_ROWS)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.utils.translation import gettext as _

from crm.core import audit
from culture.value import selectors
from customers import exports as customer_exports
from customers import permissions as customer_permissions

XLSX = customer_exports.CONTENT_TYPES["xlsx"]
LISTS = ("core", "entered", "left", "stayed", "tiers")


def limit() -> int:
    return settings.KEHU_EXPORT_APPROVAL_ROWS


def xlsx(rows: Iterator[list[str]], *, title: str) -> IO[bytes]:
    return customer_exports.xlsx_file(rows, title=title)


def rows_for(
    *, user: Any, table: str, period: Any, view: str, scope: Any
) -> tuple[list[list[str]], str]:
    """The header and rows of one table, bounded; audited by the caller."""
    if table in LISTS and not customer_permissions.may(
        user, "customers.export_customer"
    ):
        raise PermissionDenied
    if table == "rfm":
        grid = selectors.rfm_grid(scope=scope)
        rows = [[_("R 得分"), _("F 得分"), _("客户数"), _("平均金额（元）")]]
        for r in range(5, 0, -1):
            for f in range(1, 6):
                cell = grid["cells"].get((r, f), {})
                rows.append(
                    [str(r), str(f), str(cell.get("n", 0)), f"{cell.get('m') or 0:.2f}"]
                )
        return rows, _("RFM 网格")
    if table == "tiers":
        changes, _next = selectors.tier_changes(scope=scope, limit=limit())
        rows = [[_("时间"), _("客户"), _("原等级"), _("新等级"), _("原因")]]
        rows += [
            [
                ch.at.strftime("%Y-%m-%d %H:%M"),
                ch.customer.name,
                ch.from_tier,
                ch.to_tier,
                ch.reason,
            ]
            for ch in changes
        ]
        return rows, _("等级变更")
    if table == "core":
        found, _next = selectors.core_customers(
            period=period, view=view, scope=scope, limit=limit()
        )
        title = _("80% 客户")
    else:
        found, _next = selectors.set_changes(
            period=period, view=view, scope=scope, which=table, limit=limit()
        )
        title = {"entered": _("新进入"), "left": _("退出"), "stayed": _("保持")}[table]
    rows = [
        [_("排名"), _("客户"), _("类型"), _("负责人"), _("本期回款"), _("上期回款")]
    ]
    rows += [
        [
            str(row.rank),
            row.customer.name,
            row.customer.get_kind_display(),
            str(row.customer.owner or ""),
            f"{row.revenue:.2f}",
            "" if row.previous is None else f"{row.previous:.2f}",
        ]
        for row in found
    ]
    return rows, title


def record(request: Any, table: str, count: int) -> None:
    audit.record(
        request,
        audit.EXPORTED,
        object_type="value",
        detail=f"value {table}",
        row_count=count,
    )
