"""Writes of the value app: the scheduled jobs that keep the revenue rollup, score
RFM and assign tiers by the rules (notifying each changed customer's owner).

Definitions of every figure: docs/value.md.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from crm.accounts.models import Team, User
from crm.notifications import services as notifications
from crm.scheduler import services as scheduler
from culture.value import rollups, selectors
from culture.value.models import (
    CustomerValue,
    RfmCell,
    RollupState,
    TierChange,
    TierRule,
    rfm_segment_of,
)
from culture.value.periods import add_months
from customers import services as customer_services
from customers.models import Customer

REVENUE_REFRESH = "value.revenue_refresh"
VALUE_DAILY = "value.daily"
# RFM looks at the last 12 calendar months (the current one included).
RFM_MONTHS = 12
TIER_CHUNK = 1_000

# Defaults for property sales: a flat and a parking space in two years is B, two
# flats (or one large one) A. Admins change them under /settings/value/.
DEFAULT_RULES = [
    {"tier": "A", "months": 24, "min_revenue": Decimal("3000000"), "min_rfm_total": 0},
    {"tier": "B", "months": 24, "min_revenue": Decimal("1000000"), "min_rfm_total": 0},
]


def _mark(name: str, now: datetime) -> None:
    RollupState.objects.update_or_create(name=name, defaults={"refreshed_at": now})


def window_start(today: date, months: int) -> date:
    """First day of the month `months - 1` months before today's month."""
    return add_months(date(today.year, today.month, 1), -(months - 1))


# --- RFM --------------------------------------------------------------------------------

_SEGMENT_SQL = """CASE
    WHEN r >= 4 AND fs >= 4 THEN 'champions'
    WHEN r = 3 AND fs >= 4 THEN 'loyal'
    WHEN r <= 2 AND fs >= 4 THEN 'at_risk'
    WHEN r >= 4 AND fs <= 2 THEN 'promising'
    WHEN r <= 2 AND fs <= 2 THEN 'hibernating'
    WHEN r <= 2 AND fs = 3 THEN 'about_to_sleep'
    ELSE 'needs_attention' END"""


def segment_of(r: int, f: int) -> str:
    """The RFM segment of a grid cell (the same rule as _SEGMENT_SQL)."""
    return rfm_segment_of(r, f)


# The grid's cells per precomputed scope (value_rfmcell): every scored customer counts
# in `all` (the admins' grid reads every score, as before); verified customers not
# merged into another also in their owner's and their department(s)' scopes, the
# rule of pareto_ranks (and selectors.scope_for).
_RFM_CELLS = """
INSERT INTO {cell} (scope, r_score, f_score, customers, monetary)
SELECT k.scope, v.r_score, v.f_score, COUNT(*), SUM(v.monetary)
FROM {value} v
JOIN {customer} c ON c.id = v.customer_id
LEFT JOIN {team} t ON t.id = c.team_id
LEFT JOIN {user} u ON u.id = c.owner_id
LEFT JOIN {team} ut ON ut.id = u.team_id
CROSS JOIN LATERAL (VALUES
    ('all', true),
    ('owner:' || c.owner_id, false),
    ('dept:' || t.department_id, false),
    ('dept:' || NULLIF(ut.department_id, t.department_id), false)
) k(scope, everyone)
WHERE k.scope IS NOT NULL
  AND (k.everyone OR (c.is_verified AND c.merged_into_id IS NULL))
GROUP BY k.scope, v.r_score, v.f_score
"""


def rfm_cells_rebuild() -> int:
    """Replace the grid's cells of every scope from value_customervalue (inside
    rfm_compute's transaction); returns the cells written."""
    tables = {
        "cell": RfmCell._meta.db_table,
        "value": CustomerValue._meta.db_table,
        "customer": Customer._meta.db_table,
        "team": Team._meta.db_table,
        "user": User._meta.db_table,
    }
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {tables['cell']}")  # noqa: S608  # nosec B608 # table name from the model's _meta
        cursor.execute(_RFM_CELLS.format(**tables))
        return cursor.rowcount


def rfm_compute(*, today: date | None = None, now: datetime | None = None) -> int:
    """Score every customer with a payment or a won deal in the window; returns how
    many were scored. Replaces the table in one transaction."""
    now = now or timezone.now()
    today = today or timezone.localdate(now)
    start = window_start(today, RFM_MONTHS)
    sql = f"""
        WITH pay AS (
            SELECT customer_id AS cid, MAX(received_on) AS last_on, COUNT(*) AS f,
                   SUM(amount) AS m
            FROM deals_payment
            WHERE received_on >= %(start)s AND received_on <= %(end)s
            GROUP BY customer_id
        ),
        won AS (
            SELECT customer_id AS cid, MAX(closed_on) AS last_on FROM deals_deal
            WHERE status = 'won' AND closed_on >= %(start)s AND closed_on <= %(end)s
            GROUP BY customer_id
        ),
        pop AS (
            SELECT COALESCE(p.cid, w.cid) AS cid,
                   GREATEST(p.last_on, w.last_on) AS last_on,
                   COALESCE(p.f, 0) AS f, COALESCE(p.m, 0) AS m
            FROM pay p FULL OUTER JOIN won w ON w.cid = p.cid
        ),
        scored AS (
            SELECT cid, (%(end)s::date - last_on) AS rd, f, m,
                   NTILE(5) OVER (ORDER BY last_on ASC, cid) AS r,
                   NTILE(5) OVER (ORDER BY f ASC, cid) AS fs,
                   NTILE(5) OVER (ORDER BY m ASC, cid) AS ms
            FROM pop
        )
        INSERT INTO value_customervalue (customer_id, recency_days, frequency,
            monetary, r_score, f_score, m_score, segment, window_start, window_end,
            computed_at)
        SELECT cid, rd, f, m, r, fs, ms, {_SEGMENT_SQL}, %(start)s, %(end)s, %(now)s
        FROM scored
    """  # noqa: S608
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM value_customervalue")
        cursor.execute(sql, {"start": start, "end": today, "now": now})
        scored = cursor.rowcount
        cursor.execute("ANALYZE value_customervalue")
        rfm_cells_rebuild()
        _mark(selectors.RFM_STATE, now)
    return scored


# --- tiers ------------------------------------------------------------------------------


def tier_rules_ensure() -> None:
    """The default rules, when an admin has not written any (idempotent)."""
    if not TierRule.objects.exists():
        TierRule.objects.bulk_create(
            [TierRule(**rule) for rule in DEFAULT_RULES], ignore_conflicts=True
        )


def _targets(rules: list[TierRule], today: date) -> list[tuple]:
    """(customer id, owner id, old tier, new tier, revenue of the deciding window)
    of every customer whose tier the rules change: customers with revenue in the
    longest window and every A or B customer (who may fall back to C)."""
    longest = max(rule.months for rule in rules)
    first = window_start(today, longest)
    sums, params = [], {"first": first}
    for i, rule in enumerate(rules):
        params[f"s{i}"] = window_start(today, rule.months)
        sums.append(
            f"COALESCE(SUM(r.amount) FILTER (WHERE r.month >= %(s{i})s), 0) AS rev{i}"
        )
    cases = []
    for i, rule in enumerate(rules):
        params[f"min{i}"], params[f"rfm{i}"] = rule.min_revenue, rule.min_rfm_total
        params[f"t{i}"] = rule.tier
        cases.append(
            f"WHEN rev{i} >= %(min{i})s AND COALESCE(v.r_score + v.f_score"
            f" + v.m_score, 0) >= %(rfm{i})s THEN %(t{i})s"
        )
    reason = (
        "CASE "
        + " ".join(
            f"WHEN rev{i} >= %(min{i})s AND COALESCE(v.r_score + v.f_score + v.m_score, 0)"
            f" >= %(rfm{i})s THEN rev{i}"
            for i in range(len(rules))
        )
        + (f" ELSE rev{len(rules) - 1} END" if rules else " ELSE 0 END")
    )
    sql = f"""
        WITH cand AS (
            SELECT customer_id AS cid FROM value_customerrevenue
            WHERE month >= %(first)s AND amount > 0
            UNION SELECT id FROM customers_customer WHERE tier IN ('A', 'B')
        ),
        rev AS (
            SELECT c.cid, {", ".join(sums)}
            FROM cand c LEFT JOIN value_customerrevenue r
              ON r.customer_id = c.cid AND r.month >= %(first)s
            GROUP BY c.cid
        ),
        target AS (
            SELECT rev.cid, CASE {" ".join(cases)} ELSE 'C' END AS tier,
                   {reason} AS revenue,
                   COALESCE(v.r_score + v.f_score + v.m_score, 0) AS rfm
            FROM rev LEFT JOIN value_customervalue v ON v.customer_id = rev.cid
        )
        SELECT t.cid, c.owner_id, c.tier, t.tier, t.revenue, t.rfm
        FROM target t JOIN customers_customer c ON c.id = t.cid
        WHERE c.tier <> t.tier AND c.merged_into_id IS NULL AND c.is_verified
        ORDER BY t.cid
    """  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _reason(new: str, rules: dict[str, TierRule], revenue: Any, rfm: int) -> str:
    rule = rules.get(new)
    if rule is None:
        return _("不再满足 A/B 等级规则，回到 C（近期回款 ¥%(revenue)s）") % {
            "revenue": f"{Decimal(revenue or 0):,.0f}"
        }
    text = _("近 %(months)s 个月回款 ¥%(revenue)s ≥ ¥%(min)s") % {
        "months": rule.months,
        "revenue": f"{Decimal(revenue or 0):,.0f}",
        "min": f"{rule.min_revenue:,.0f}",
    }
    if rule.min_rfm_total:
        text += _("，RFM 总分 %(rfm)s ≥ %(min)s") % {
            "rfm": rfm,
            "min": rule.min_rfm_total,
        }
    return text


def tiers_assign(*, by: Any = None, now: datetime | None = None) -> int:
    """Apply the tier rules: change each customer's tier through the customers
    service, record a TierChange and notify the owner. Returns the changes made."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    tier_rules_ensure()
    rules = list(TierRule.objects.filter(is_active=True).order_by("tier"))
    if not rules:
        _mark(selectors.TIERS_STATE, now)
        return 0
    by_tier = {rule.tier: rule for rule in rules}
    targets = _targets(rules, today)
    made = 0
    for i in range(0, len(targets), TIER_CHUNK):
        chunk = targets[i : i + TIER_CHUNK]
        made += _apply(by, chunk, by_tier, now)
    _mark(selectors.TIERS_STATE, now)
    return made


def _apply(
    by: Any, chunk: list[tuple], rules: dict[str, TierRule], now: datetime
) -> int:
    facts = {cid: (revenue, rfm) for cid, _o, _old, _new, revenue, rfm in chunk}
    with transaction.atomic():
        changed = customer_services.customers_tier_set(
            by=by, tiers={cid: new for cid, _o, _old, new, _r, _f in chunk}
        )
        changes = TierChange.objects.bulk_create(
            [
                TierChange(
                    customer_id=cid,
                    from_tier=old,
                    to_tier=new,
                    reason=_reason(new, rules, *facts[cid])[:200],
                    by=by,
                    at=now,
                )
                for cid, old, new, _owner in changed
            ]
        )
        owners = {cid: owner for cid, _old, _new, owner in changed}
        drafts = [
            notifications.Draft(
                recipient_id=owners[change.customer_id],
                key=f"value:tierchange:{change.pk}",
                title=_("客户价值等级变更：%(from)s → %(to)s")
                % {
                    "from": change.from_tier,
                    "to": change.to_tier,
                },
                body=change.reason,
                url=reverse("customers:customer_detail", args=[change.customer_id]),
                reason=gettext_noop("你是该客户的负责人"),
                group="value:tiers",
            )
            for change in changes
            if owners.get(change.customer_id)
        ]
        notifications.notify_many(drafts, actor_id=getattr(by, "pk", None))
    notifications.notifications_email_pending(keys=[d.key for d in drafts])
    return len(changes)


def tier_change_entries(customer: Any, before: datetime | None, limit: int) -> list:
    """The customer timeline's source: tier changes, newest first (one query)."""
    from customers.timeline import Entry

    changes = TierChange.objects.filter(customer=customer)
    if before:
        changes = changes.filter(at__lte=before)
    return [
        Entry(
            at=change.at,
            kind="tier",
            icon="award",
            title=_("价值等级 %(from)s → %(to)s")
            % {
                "from": change.from_tier,
                "to": change.to_tier,
            },
            body=change.reason,
            badge=change.to_tier,
            id=change.pk,
        )
        for change in changes.order_by("-at", "-id")[:limit]
    ]


# --- scheduled actions ------------------------------------------------------------------


def revenue_refresh_action(action: Any) -> None:
    rollups.revenue_refresh()


def value_daily(*, now: datetime | None = None) -> dict[str, int]:
    """The daily job: rebuild the revenue rollup (the incremental refresh's
    backstop), score RFM, apply the tier rules, then the registered daily hooks
    (the segment dashboards' snapshot)."""
    now = now or timezone.now()
    result = {"revenue_rows": rollups.revenue_rebuild(now=now)}
    result["rfm_scored"] = rfm_compute(now=now)
    result["tier_changes"] = tiers_assign(now=now)
    for name, hook in DAILY_HOOKS.items():
        result[name] = hook(now)
    return result


def _segments_daily(now: datetime) -> int:
    from culture.value import segment_dashboard

    return segment_dashboard.snapshots_daily(now)


DAILY_HOOKS: dict[str, Any] = {"segment_snapshots": _segments_daily}
SEGMENT_SNAPSHOTS = "value.segment_snapshots"


def segment_snapshots_action(action: Any) -> None:
    from culture.value import segment_dashboard

    segment_dashboard.snapshots_after_refresh()


def value_daily_action(action: Any) -> None:
    value_daily()


def value_tick(*, now: datetime | None = None) -> None:
    """Called by the beat every few minutes: schedule the incremental refresh (one
    action per 5-minute slot) and today's daily job (due at 05:00 local time)."""
    now = now or timezone.now()
    slot = int(now.timestamp()) // 300
    with transaction.atomic():
        scheduler.action_schedule(
            kind=REVENUE_REFRESH, target_id=0, due_at=now, key=f"value:refresh:{slot}"
        )
        scheduler.action_schedule(
            kind=SEGMENT_SNAPSHOTS,
            target_id=0,
            due_at=now,
            key=f"value:segments:{slot}",
        )
        local = timezone.localtime(now)
        due = local.replace(hour=5, minute=0, second=0, microsecond=0)
        scheduler.action_schedule(
            kind=VALUE_DAILY,
            target_id=0,
            due_at=max(due, now),
            key=f"value:daily:{local.date().isoformat()}",
        )
