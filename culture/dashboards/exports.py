"""The dashboard's tables as an XLSX workbook (figures only, no customer's details:
the customers behind a figure are exported through the customers' export approval)."""

from __future__ import annotations

import io
from typing import Any

from django.utils.translation import gettext as _
from openpyxl import Workbook


def workbook(data: dict[str, Any]) -> bytes:
    """One sheet per table; bounded by the dashboard (≤ 1,100 days, one row per
    salesperson, one per stage)."""
    filters = data["filters"]
    book = Workbook(write_only=True)
    summary = book.create_sheet(_("概览"))
    totals, kpis = data["totals"], data["kpis"]
    summary.append([_("时间段"), f"{filters.start} ~ {filters.end}"])
    for label, value in (
        (_("新客户"), totals["new_customers"]),
        (_("联系次数"), totals["contacts"]),
        (_("回款金额（元）"), float(totals["revenue"])),
        (_("成交金额（元）"), float(totals["deals_won_amount"])),
        (_("跟进按时率（%）"), kpis["on_time_share"]),
        (_("投诉"), totals["complaints_opened"]),
        (_("SLA 达成率（%）"), kpis["sla_share"]),
        (
            _("大客户覆盖率（%%，近 %(days)s 天）") % {"days": filters.days},
            kpis["coverage_share"],
        ),
    ):
        summary.append([label, value])
    people = book.create_sheet(_("销售人员"))
    people.append(
        [
            _("负责人"),
            _("新客户"),
            _("联系次数"),
            _("到期跟进"),
            _("按时完成"),
            _("逾期完成"),
            _("逾期未完成"),
            _("成交单数"),
            _("成交金额（元）"),
            _("回款金额（元）"),
            _("投诉"),
            _("SLA 达成"),
            _("SLA 超时"),
        ]
    )
    for row in data["people"]:
        people.append(
            [
                row["name"],
                row["new_customers"],
                row["contacts"],
                row["followups_due"],
                row["followups_on_time"],
                row["followups_late"],
                row["followups_overdue"],
                row["deals_won"],
                float(row["deals_won_amount"]),
                float(row["revenue"]),
                row["complaints_opened"],
                row["sla_met"],
                row["sla_breached"],
            ]
        )
    stages = book.create_sheet(_("商机阶段"))
    stages.append([_("阶段"), _("商机数"), _("未成交金额（元）"), _("加权预测（元）")])
    for row in data["pipeline"]["stages"]:
        stages.append(
            [
                row["stage__name"],
                row["count"],
                float(row["amount"]),
                float(row["weighted"]),
            ]
        )
    coverage = book.create_sheet(_("大客户覆盖"))
    coverage.append([_("负责人"), _("A 类客户"), _("已联系"), _("覆盖率（%）")])
    for row in data["coverage"]["people"]:
        coverage.append([row["name"], row["total"], row["contacted"], row["share"]])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
