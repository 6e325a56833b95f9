"""The scorecard's catalogue: every figure of the six cultures, its definition, its
default target and how it is computed from the rollups' sums (docs/scorecard.md,
../shared/domain/culture.md).

`compute(key, sums, days=...)` is a pure function of the period's sums (the daily
table's counts summed over the period, the snapshot's counts of the period's last
snapshot day): the page, the weekly report and the tests all use it.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from decimal import Decimal
from statistics import NormalDist
from typing import Any

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

CULTURES = OrderedDict(
    [
        ("satisfaction", _("让客户100%满意")),
        ("resource", _("客户是企业的第一资源")),
        ("one_to_one", _("一对一定制")),
        ("back_office", _("后台围绕前台转")),
        ("key_accounts", _("关注大客户")),
        ("big_service", _("大服务")),
    ]
)

PERCENT, POINTS, COUNT, RATING, PER_100, SIGMA, PER_30_DAYS = (
    "percent",
    "points",
    "count",
    "rating",
    "per_100",
    "sigma",
    "per_30_days",
)
HIGHER, LOWER, NONE = "higher", "lower", "none"

# Six Sigma's conventional long-term shift.
SIGMA_SHIFT = 1.5
# Opportunities for a defect per ticket due: the two SLA clocks.
SLA_OPPORTUNITIES = 2
# "Contacted": a contact in the last N days, for the snapshot figures.
CONTACT_DAYS = 30


@dataclass(frozen=True)
class Figure:
    key: str
    culture: str
    label: Promise
    definition: Promise
    unit: str
    direction: str  # HIGHER / LOWER is better; NONE: shown without a judgement
    target: Decimal | None  # default target (an admin's CultureTarget overrides it)
    source: str  # "daily", "snapshot", "pareto" (culture/value), "department"
    drill: str = ""  # the drill-down's key (selectors.DRILLS), "" when none


FIGURES: tuple[Figure, ...] = (
    # 让客户100%满意
    Figure(
        "csat_rate",
        "satisfaction",
        _("满意率（CSAT）"),
        _(
            "期间内回答的满意度（1–5 分）中 4 分和 5 分所占比例；目标是 100%。"
            "旁边是回复率：回答数 ÷ 发出的调查数（满意度与推荐意愿两种）。"
        ),
        PERCENT,
        HIGHER,
        Decimal("100"),
        "daily",
        "unsatisfied",
    ),
    Figure(
        "response_rate",
        "satisfaction",
        _("调查回复率"),
        _("期间内回答的调查数 ÷ 期间内发出的调查数（按发出和回答的日期分别计入）。"),
        PERCENT,
        HIGHER,
        Decimal("30"),
        "daily",
    ),
    Figure(
        "nps",
        "satisfaction",
        _("净推荐值（NPS）"),
        _(
            "0–10 分：9–10 分为推荐者，7–8 分为被动者，0–6 分为贬损者；"
            "NPS = 推荐者% − 贬损者%，范围 −100 到 +100。"
        ),
        POINTS,
        HIGHER,
        Decimal("50"),
        "daily",
        "detractors",
    ),
    Figure(
        "recovery_open",
        "satisfaction",
        _("待补救的不满意案例"),
        _(
            "当前未完成的服务补救任务数（满意度 ≤ 3 分或推荐意愿 ≤ 6 分时开启），"
            "括号内为已超过 24 小时时限的。"
        ),
        COUNT,
        LOWER,
        Decimal("0"),
        "snapshot",
        "open_recoveries",
    ),
    Figure(
        "recovery_24h",
        "satisfaction",
        _("24 小时内补救率"),
        _(
            "期间内开启的补救任务中，已有结果的（已完成，或已过 24 小时时限）里在开启后"
            " 24 小时内记录完成的比例（与服务补救页面的口径相同）。"
        ),
        PERCENT,
        HIGHER,
        Decimal("100"),
        "daily",
        "late_recoveries",
    ),
    # 客户是企业的第一资源
    Figure(
        "owned",
        "resource",
        _("有负责人的客户"),
        _("已核实、未合并的客户中有负责人（销售）的比例，取期末的快照。"),
        PERCENT,
        HIGHER,
        Decimal("100"),
        "snapshot",
        "unowned",
    ),
    Figure(
        "contacted_ab",
        "resource",
        _("A/B 级客户 30 天内联系率"),
        _("A、B 级客户中最近一次联系在快照日前 30 天内的比例，取期末的快照。"),
        PERCENT,
        HIGHER,
        Decimal("90"),
        "snapshot",
        "silent_ab",
    ),
    Figure(
        "dormant",
        "resource",
        _("沉睡流失的客户"),
        _("客户阶段为“沉睡”的客户所占比例（长期无联系、无成交而沉睡），取期末的快照。"),
        PERCENT,
        LOWER,
        Decimal("5"),
        "snapshot",
        "dormant",
    ),
    # 一对一定制
    Figure(
        "profile_filled",
        "one_to_one",
        _("大客户一对一档案填写率"),
        _(
            "A 级客户中一对一档案“已填写”的比例：已选偏好渠道，并且兴趣爱好、"
            "家庭情况、特殊需求、其他说明至少填了一项。取期末的快照。"
        ),
        PERCENT,
        HIGHER,
        Decimal("100"),
        "snapshot",
        "unprofiled",
    ),
    Figure(
        "profile_viewed",
        "one_to_one",
        _("联系前查看档案"),
        _(
            "期间内与 A 级客户的联系记录中，记录人在联系前 24 小时内打开过该客户页面"
            "（安全审计日志的“查看客户”记录）的比例。"
        ),
        PERCENT,
        HIGHER,
        Decimal("80"),
        "daily",
    ),
    # 后台围绕前台转
    Figure(
        "wo_on_time",
        "back_office",
        _("后台工单按时完成率"),
        _(
            "完成时限在期间内的后台工单（已退回的除外）：按时 = 已完成且完成时间不晚于"
            "时限；比例 = 按时 ÷（按时 + 逾期完成 + 逾期未完成）。"
        ),
        PERCENT,
        HIGHER,
        Decimal("95"),
        "daily",
        "late_work_orders",
    ),
    Figure(
        "wo_rating",
        "back_office",
        _("前台对后台的评分"),
        _("期间内完成并由服务台评分（1–5 分）的后台工单的平均分，下表按部门列出。"),
        RATING,
        HIGHER,
        Decimal("4.5"),
        "daily",
    ),
    # 关注大客户
    Figure(
        "ka_coverage",
        "key_accounts",
        _("大客户覆盖率"),
        _("A 级客户中 30 天内联系过的比例，取期末的快照。"),
        PERCENT,
        HIGHER,
        Decimal("100"),
        "snapshot",
        "silent_a",
    ),
    Figure(
        "ka_frequency",
        "key_accounts",
        _("大客户联系频次"),
        _("期间内与 A 级客户的联系次数 ÷ 期末 A 级客户数，折算为每 30 天的次数。"),
        PER_30_DAYS,
        HIGHER,
        Decimal("2"),
        "daily",
    ),
    Figure(
        "pareto_top20",
        "key_accounts",
        _("帕累托：前 20% 客户的回款占比"),
        _(
            "按期间内回款从高到低排列客户，前 20% 客户的回款占全部回款的比例（无回款的"
            "客户计入分母）；取自客户价值的预计算排名，所在期间为包含本期结束日的自然"
            "月、季或年，不受团队、大区和分群筛选影响。"
        ),
        PERCENT,
        NONE,
        None,
        "pareto",
    ),
    Figure(
        "dealer_sla",
        "key_accounts",
        _("经销商 SLA 达成率"),
        _(
            "客户类型为经销商、分销商、批发商或代理商的工单的 SLA 达成率（定义同“大服务”）。"
        ),
        PERCENT,
        HIGHER,
        Decimal("98"),
        "daily",
        "dealer_breaches",
    ),
    Figure(
        "dealer_csat",
        "key_accounts",
        _("经销商满意率"),
        _("经销商、分销商、批发商和代理商回答的满意度中 4–5 分的比例。"),
        PERCENT,
        HIGHER,
        Decimal("100"),
        "daily",
    ),
    # 大服务
    Figure(
        "sla",
        "big_service",
        _("SLA 达成率"),
        _(
            "解决时限在期间内的工单：达成 = 已解决/关闭且首次响应和解决都未超时；"
            "超时 = 任一时限超时；比例 = 达成 ÷（达成 + 超时）。暂停计时（等待客户）"
            "的时间不计入；仍在处理且未超时的工单暂不计入。"
        ),
        PERCENT,
        HIGHER,
        Decimal("98"),
        "daily",
        "breached",
    ),
    Figure(
        "fcr",
        "big_service",
        _("首次解决率"),
        _("期间内解决的工单中，没有重开过、且坐席回复客户或电话记录不超过一次的比例。"),
        PERCENT,
        HIGHER,
        Decimal("80"),
        "daily",
    ),
    Figure(
        "reopen",
        "big_service",
        _("重开率"),
        _("期间内解决的工单中，曾在解决后 7 天内被重新打开的比例。"),
        PERCENT,
        LOWER,
        Decimal("5"),
        "daily",
        "reopened",
    ),
    Figure(
        "warranty_repairs",
        "big_service",
        _("保修期内报修（每百件）"),
        _(
            "期间内新建的报修工单中，所关联资产在报修当天仍在保修期内的件数 ÷ 期末"
            "在保修期内的资产数 × 100。"
        ),
        PER_100,
        LOWER,
        Decimal("5"),
        "daily",
    ),
    Figure(
        "sigma",
        "big_service",
        _("西格玛水平"),
        _(
            "DPMO = 缺陷数 ÷（单位数 × 每单位机会数）× 1,000,000：单位 = 解决时限在"
            "期间内且已有结果的工单，机会 = 2（首次响应和解决两个 SLA 时限），缺陷 = "
            "超时的时限数。西格玛水平 = Φ⁻¹(1 − DPMO/10⁶) + 1.5（惯例的 1.5 偏移）："
            "66,807 DPMO ≈ 3σ，6,210 ≈ 4σ，233 ≈ 5σ，3.4 ≈ 6σ。"
        ),
        SIGMA,
        HIGHER,
        Decimal("4"),
        "daily",
        "breached",
    ),
)

BY_KEY: dict[str, Figure] = {f.key: f for f in FIGURES}
KEYS = tuple(BY_KEY)


def by_culture() -> OrderedDict[str, list[Figure]]:
    grouped: OrderedDict[str, list[Figure]] = OrderedDict((c, []) for c in CULTURES)
    for figure in FIGURES:
        grouped[figure.culture].append(figure)
    return grouped


# --- the arithmetic -----------------------------------------------------------------------


def share(part: int | float, whole: int | float) -> float | None:
    """part ÷ whole in percent, None when there is nothing to divide by."""
    return 100.0 * part / whole if whole else None


def sigma_level(dpmo: float) -> float | None:
    """Φ⁻¹(1 − DPMO/10⁶) + 1.5; None outside (0, 10⁶) exclusive of a perfect zero,
    which has no finite level (shown as "无缺陷")."""
    if dpmo <= 0 or dpmo >= 1_000_000:
        return None
    return NormalDist().inv_cdf(1 - dpmo / 1_000_000) + SIGMA_SHIFT


def dpmo(
    defects: int, units: int, opportunities: int = SLA_OPPORTUNITIES
) -> float | None:
    if not units or not opportunities:
        return None
    return defects / (units * opportunities) * 1_000_000


def compute(key: str, s: dict[str, Any], *, days: int = 30) -> dict[str, Any]:
    """The figure's value (None when undefined) and its detail (the parts it is made
    of), from the period's sums `s` and its length in days."""

    def g(name: str) -> int:
        return int(s.get(name) or 0)

    detail: dict[str, Any] = {}
    value: float | None
    if key == "csat_rate":
        value = share(g("csat_satisfied"), g("csat_answers"))
        detail = {
            "answers": g("csat_answers"),
            "satisfied": g("csat_satisfied"),
            "response_rate": share(g("surveys_answered"), g("surveys_sent")),
        }
    elif key == "response_rate":
        value = share(g("surveys_answered"), g("surveys_sent"))
        detail = {"answered": g("surveys_answered"), "sent": g("surveys_sent")}
    elif key == "nps":
        n = g("nps_answers")
        promoters, detractors = g("nps_promoters"), g("nps_detractors")
        value = share(promoters - detractors, n)
        detail = {
            "answers": n,
            "promoters": share(promoters, n),
            "passives": share(n - promoters - detractors, n),
            "detractors": share(detractors, n),
        }
    elif key == "recovery_open":
        value = float(g("recoveries_open"))
        detail = {"overdue": g("recoveries_overdue")}
    elif key == "recovery_24h":
        value = share(g("recoveries_24h"), g("recoveries_settled"))
        detail = {"settled": g("recoveries_settled"), "within": g("recoveries_24h")}
    elif key == "owned":
        value = share(g("owned"), g("customers"))
        detail = {"customers": g("customers"), "owned": g("owned")}
    elif key == "contacted_ab":
        value = share(g("ab_contacted"), g("ab_customers"))
        detail = {"customers": g("ab_customers"), "contacted": g("ab_contacted")}
    elif key == "dormant":
        value = share(g("dormant"), g("customers"))
        detail = {"customers": g("customers"), "dormant": g("dormant")}
    elif key == "profile_filled":
        value = share(g("a_profiled"), g("a_customers"))
        detail = {"customers": g("a_customers"), "profiled": g("a_profiled")}
    elif key == "profile_viewed":
        value = share(g("ka_contacts_viewed"), g("ka_contacts"))
        detail = {"contacts": g("ka_contacts"), "viewed": g("ka_contacts_viewed")}
    elif key == "wo_on_time":
        due = g("wo_on_time") + g("wo_late") + g("wo_overdue")
        value = share(g("wo_on_time"), due)
        detail = {
            "due": due,
            "on_time": g("wo_on_time"),
            "late": g("wo_late"),
            "overdue": g("wo_overdue"),
        }
    elif key == "wo_rating":
        rated = g("wo_rated")
        value = g("wo_rating_sum") / rated if rated else None
        detail = {"rated": rated}
    elif key == "ka_coverage":
        value = share(g("a_contacted"), g("a_customers"))
        detail = {"customers": g("a_customers"), "contacted": g("a_contacted")}
    elif key == "ka_frequency":
        a = g("a_customers")
        value = g("ka_contacts") / a * 30 / max(days, 1) if a else None
        detail = {"contacts": g("ka_contacts"), "customers": a}
    elif key == "pareto_top20":
        top = s.get("pareto_top_share")
        value = None if top is None else 100.0 * float(top)
        detail = {"core_count": s.get("pareto_core_count")}
    elif key == "dealer_sla":
        met, breached = g("dealer_sla_met"), g("dealer_sla_breached")
        value = share(met, met + breached)
        detail = {"due": met + breached, "breached": breached}
    elif key == "dealer_csat":
        value = share(g("dealer_csat_satisfied"), g("dealer_csat_answers"))
        detail = {"answers": g("dealer_csat_answers")}
    elif key == "sla":
        met, breached = g("sla_met"), g("sla_breached")
        value = share(met, met + breached)
        detail = {"due": met + breached, "breached": breached}
    elif key == "fcr":
        value = share(g("first_contact"), g("resolved"))
        detail = {"resolved": g("resolved"), "first_contact": g("first_contact")}
    elif key == "reopen":
        value = share(g("reopened"), g("resolved"))
        detail = {"resolved": g("resolved"), "reopened": g("reopened")}
    elif key == "warranty_repairs":
        units = g("units_in_warranty")
        value = 100.0 * g("warranty_repairs") / units if units else None
        detail = {"repairs": g("warranty_repairs"), "units": units}
    elif key == "sigma":
        units = g("sla_met") + g("sla_breached")
        rate = dpmo(g("sla_defects"), units)
        value = sigma_level(rate) if rate is not None else None
        detail = {
            "units": units,
            "defects": g("sla_defects"),
            "dpmo": rate,
            "perfect": rate == 0,
        }
    else:  # pragma: no cover - the catalogue names every key
        raise KeyError(key)
    return {"value": value, "detail": detail}


def met(figure: Figure, value: float | None, target: Decimal | None) -> bool | None:
    """Whether the value meets its target (None: no value, no target or no judgement)."""
    if value is None or target is None or figure.direction == NONE:
        return None
    if figure.direction == HIGHER:
        return value >= float(target) - 1e-9
    return value <= float(target) + 1e-9
