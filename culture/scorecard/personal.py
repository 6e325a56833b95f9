"""Personal figures (个人指标, docs/scorecard.md): a salesperson's or a service agent's own
figures on their home page, beside their team's, over the last 7, 30 or 90 days.

Every figure is counted from the source records (not the rollups: a person's figures
must move the moment they complete a follow-up), in one SQL statement of single-row
parts, each read through an index that starts with the person (assignee, author, staff
or owner) and the period:

- 跟进按时率 (follow-ups on time): follow-ups assigned to the person whose due time fell in
  the period (not cancelled); on time = done no later than the due time. One still open
  after its due time counts as late.
- 联系客户数 (customers contacted): distinct customers with a contact record written by the
  person in the period; beside it, how many of the customers they own were contacted (by
  anyone) in the period (`last_contacted_at`).
- 满意率 CSAT: the person's CSAT answers (Survey.staff) answered in the period; satisfied =
  4 or 5. The response rate beside it: of the surveys sent for their cases created in
  the period, the share answered.
- SLA 达成率: tickets assigned to the person whose resolution was due in the period
  (merged tickets left out); met = resolved or closed with neither the first response
  nor the resolution breached. A ticket still open and not yet marked breached is left
  out (as in the dashboards' rollup); a paused clock has no due time, so it does not
  count against anybody.
- 24小时补救率 (recoveries within 24 h): recovery tasks assigned to the person whose due
  time (24 h after the unhappy answer) fell in the period; on time = closed no later
  than the due time. Beside it, the tasks open now and how many of those are overdue.

The team's column is the same figure over every member of the person's team (their
current team; the records of a member who left stay in the figures of the period), and
for recoveries the tasks of the team (RecoveryTask.team).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import connection
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from crm.core import bounds

PERIODS = (7, 30, 90)
DEFAULT_DAYS = 30
FIGURES = ("followups", "contacts", "csat", "sla", "recoveries")
# The records behind a figure: at most this many, newest first.
DETAIL_LIMIT = 100

LABELS: dict[str, Promise] = {
    "followups": _("跟进按时率"),
    "contacts": _("联系客户数"),
    "csat": _("满意率（CSAT）"),
    "sla": _("SLA 达成率"),
    "recoveries": _("24小时补救率"),
}
DEFINITIONS: dict[str, Promise] = {
    "followups": _(
        "到期时间在期间内的跟进（已取消的除外）中，在到期前完成的比例；到期后仍未完成的算作逾期。"
    ),
    "contacts": _(
        "期间内本人写过联系记录的不同客户数；下面是本人名下客户中期间内有联系（任何人）的客户数。"
    ),
    "csat": _(
        "期间内回答的、本人负责案例的满意度（1–5分）答卷中，4分或5分的比例；回复率 = 期间内发出的调查中已回答的比例。"
    ),
    "sla": _(
        "分派给本人、解决时限在期间内的工单中，首次响应和解决都未超时且已解决的比例；仍在处理且未超时的工单不计，暂停计时不计入。"
    ),
    "recoveries": _(
        "分派给本人、补救时限（不满意回答后24小时）在期间内的服务补救中，在时限前完成的比例；下面是当前未完成的补救数。"
    ),
}


def period_days(params: Any) -> int:
    """The period the page asks for (?days=7|30|90), 30 when absent or not one of them."""
    raw = bounds.Params(params or {}).choice(
        "days", [str(d) for d in PERIODS], default=str(DEFAULT_DAYS)
    )
    return int(raw)


@dataclass(frozen=True)
class Share:
    """`hits` of `total`, as a whole percentage (None when there is nothing to count)."""

    hits: int
    total: int

    @property
    def percent(self) -> int | None:
        if not self.total:
            return None
        return round(100 * self.hits / self.total)


# One statement, one row: each part is a single-row aggregate over the person's (and
# their team's) records of the period, read through an index that starts with the
# person. The table names are the models' (checked by tests/scorecard/test_personal.py).
_SQL = """
WITH members AS (
    SELECT %(me)s AS id
    UNION
    SELECT id FROM accounts_user WHERE team_id = %(team)s
),
f AS (
    SELECT
        count(*) FILTER (WHERE assignee_id = %(me)s) AS due_me,
        count(*) FILTER (WHERE assignee_id = %(me)s AND status = 'done'
                         AND done_at <= due_at) AS ok_me,
        count(*) AS due_team,
        count(*) FILTER (WHERE status = 'done' AND done_at <= due_at) AS ok_team
    FROM customers_followup
    WHERE assignee_id IN (SELECT id FROM members)
      AND due_at >= %(start)s AND due_at < %(now)s AND status <> 'cancelled'
),
k AS (
    SELECT
        count(DISTINCT customer_id) FILTER (WHERE author_id = %(me)s) AS me,
        count(DISTINCT customer_id) AS team
    FROM customers_contactlog
    WHERE author_id IN (SELECT id FROM members)
      AND occurred_at >= %(start)s AND occurred_at < %(now)s
),
o AS (
    SELECT
        count(*) FILTER (WHERE owner_id = %(me)s) AS owned_me,
        count(*) FILTER (WHERE owner_id = %(me)s
                         AND last_contacted_at >= %(start)s) AS reached_me,
        count(*) AS owned_team,
        count(*) FILTER (WHERE last_contacted_at >= %(start)s) AS reached_team
    FROM customers_customer
    WHERE owner_id IN (SELECT id FROM members) AND merged_into_id IS NULL
),
s AS (
    SELECT
        count(*) FILTER (WHERE staff_id = %(me)s) AS answered_me,
        count(*) FILTER (WHERE staff_id = %(me)s AND score >= 4) AS satisfied_me,
        count(*) AS answered_team,
        count(*) FILTER (WHERE score >= 4) AS satisfied_team
    FROM satisfaction_survey
    WHERE staff_id IN (SELECT id FROM members) AND kind = 'csat'
      AND answered_at >= %(start)s AND answered_at < %(now)s
),
r AS (
    SELECT
        count(*) FILTER (WHERE staff_id = %(me)s) AS sent_me,
        count(*) FILTER (WHERE staff_id = %(me)s AND answered_at IS NOT NULL)
            AS back_me,
        count(*) AS sent_team,
        count(*) FILTER (WHERE answered_at IS NOT NULL) AS back_team
    FROM satisfaction_survey
    WHERE staff_id IN (SELECT id FROM members) AND kind = 'csat'
      AND created_at >= %(start)s AND created_at < %(now)s
      AND sent_at IS NOT NULL
),
t AS (
    SELECT
        count(*) FILTER (WHERE assignee_id = %(me)s AND NOT breached AND resolved)
            AS met_me,
        count(*) FILTER (WHERE assignee_id = %(me)s AND breached) AS breached_me,
        count(*) FILTER (WHERE NOT breached AND resolved) AS met_team,
        count(*) FILTER (WHERE breached) AS breached_team
    FROM (
        SELECT assignee_id,
               first_response_breached OR resolution_breached AS breached,
               status IN ('resolved', 'closed') AS resolved
        FROM service_ticket
        WHERE assignee_id IN (SELECT id FROM members) AND merged_into_id IS NULL
          AND resolution_due_at >= %(start)s AND resolution_due_at < %(now)s
    ) AS due
),
v AS (
    SELECT
        count(*) FILTER (WHERE assignee_id = %(me)s AND in_period) AS due_me,
        count(*) FILTER (WHERE assignee_id = %(me)s AND in_period
                         AND closed_at <= due_at) AS ok_me,
        count(*) FILTER (WHERE assignee_id = %(me)s AND status = 'open') AS open_me,
        count(*) FILTER (WHERE assignee_id = %(me)s AND status = 'open'
                         AND due_at < %(now)s) AS overdue_me,
        count(*) FILTER (WHERE team_id = %(team)s AND in_period) AS due_team,
        count(*) FILTER (WHERE team_id = %(team)s AND in_period
                         AND closed_at <= due_at) AS ok_team,
        count(*) FILTER (WHERE team_id = %(team)s AND status = 'open') AS open_team,
        count(*) FILTER (WHERE team_id = %(team)s AND status = 'open'
                         AND due_at < %(now)s) AS overdue_team
    FROM (
        SELECT assignee_id, team_id, status, closed_at, due_at,
               (due_at >= %(start)s AND due_at < %(now)s) AS in_period
        FROM satisfaction_recoverytask
        WHERE (assignee_id = %(me)s OR team_id = %(team)s)
          AND ((due_at >= %(start)s AND due_at < %(now)s) OR status = 'open')
    ) AS task
)
SELECT f.*, k.*, o.*, s.*, r.*, t.*, v.*,
       (SELECT name FROM accounts_team WHERE id = %(team)s) AS team_name
FROM f, k, o, s, r, t, v
"""


def _counts(*, user: Any, start: datetime, now: datetime) -> dict[str, Any]:
    params = {"me": user.pk, "team": user.team_id, "start": start, "now": now}
    with connection.cursor() as cursor:
        cursor.execute(_SQL, params)
        names = [c.name for c in cursor.description]
        row = cursor.fetchone()
    # The parts repeat column names (due_me in f and v ...): keep them apart by part.
    parts = ("f", "k", "o", "s", "r", "t", "v")
    widths = (4, 2, 4, 4, 4, 4, 8)
    out: dict[str, Any] = {}
    i = 0
    for part, width in zip(parts, widths, strict=True):
        out[part] = dict(zip(names[i : i + width], row[i : i + width], strict=True))
        i += width
    out["team_name"] = row[i]
    return out


def personal_figures(
    *, user: Any, days: int = DEFAULT_DAYS, now: datetime | None = None
) -> dict[str, Any]:
    """The person's figures and their team's over the last `days` days; one query."""
    now = now or timezone.now()
    start = now - timedelta(days=days)
    c = _counts(user=user, start=start, now=now)
    has_team = user.team_id is not None
    f, k, o, s, r, t, v = (c[p] for p in ("f", "k", "o", "s", "r", "t", "v"))

    def team(value: Any) -> Any:
        return value if has_team else None

    figures = [
        {
            "key": "followups",
            "mine": Share(f["ok_me"], f["due_me"]),
            "team": team(Share(f["ok_team"], f["due_team"])),
        },
        {
            "key": "contacts",
            "mine": k["me"],
            "team": team(k["team"]),
            "owned_mine": Share(o["reached_me"], o["owned_me"]),
            "owned_team": team(Share(o["reached_team"], o["owned_team"])),
        },
        {
            "key": "csat",
            "mine": Share(s["satisfied_me"], s["answered_me"]),
            "team": team(Share(s["satisfied_team"], s["answered_team"])),
            "response_mine": Share(r["back_me"], r["sent_me"]),
            "response_team": team(Share(r["back_team"], r["sent_team"])),
        },
        {
            "key": "sla",
            "mine": Share(t["met_me"], t["met_me"] + t["breached_me"]),
            "team": team(Share(t["met_team"], t["met_team"] + t["breached_team"])),
        },
        {
            "key": "recoveries",
            "mine": Share(v["ok_me"], v["due_me"]),
            "team": team(Share(v["ok_team"], v["due_team"])),
            "open_mine": v["open_me"],
            "overdue_mine": v["overdue_me"],
            "open_team": team(v["open_team"]),
            "overdue_team": team(v["overdue_team"]),
        },
    ]
    for figure in figures:
        figure["label"] = LABELS[figure["key"]]
        figure["definition"] = DEFINITIONS[figure["key"]]
        figure["url"] = (
            reverse("scorecard_personal:detail", args=[figure["key"]]) + f"?days={days}"
        )
    return {
        "days": days,
        "periods": PERIODS,
        "start": start,
        "now": now,
        "team_name": c["team_name"] if has_team else None,
        "figures": figures,
    }


def home_panel(*, user: Any, params: Any) -> dict[str, Any]:
    """The home page's 个人指标 panel (crm/core/home.py): one query."""
    return {"personal": personal_figures(user=user, days=period_days(params))}


# --- the records behind a figure (the person's own) --------------------------------------


@dataclass(frozen=True)
class Row:
    when: datetime | None
    customer: Any
    title: str
    url: str
    verdict: Promise | str
    ok: bool | None  # True: counted as met; False: counted as missed; None: not counted


def detail_rows(
    *, user: Any, figure: str, days: int, now: datetime | None = None
) -> list[Row]:
    """The person's records behind `figure` in the period, newest first, at most
    DETAIL_LIMIT; one query."""
    now = now or timezone.now()
    start = now - timedelta(days=days)
    builder = _DETAIL[figure]
    return builder(user, start, now)


def _followup_rows(user: Any, start: datetime, now: datetime) -> list[Row]:
    from customers.models import FollowUp

    followups = (
        FollowUp.objects.filter(assignee=user, due_at__gte=start, due_at__lt=now)
        .exclude(status=FollowUp.Status.CANCELLED)
        .select_related("customer")
        .order_by("-due_at", "-id")[:DETAIL_LIMIT]
    )
    rows = []
    for f in followups:
        on_time = f.status == FollowUp.Status.DONE and f.done_at <= f.due_at
        if on_time:
            verdict = _("按时完成")
        elif f.status == FollowUp.Status.DONE:
            verdict = _("逾期完成")
        else:
            verdict = _("逾期未完成")
        rows.append(
            Row(
                f.due_at,
                f.customer,
                f.note,
                f.customer.get_absolute_url(),
                verdict,
                on_time,
            )
        )
    return rows


def _contact_rows(user: Any, start: datetime, now: datetime) -> list[Row]:
    from customers.models import ContactLog

    contacts = (
        ContactLog.objects.filter(
            author=user, occurred_at__gte=start, occurred_at__lt=now
        )
        .select_related("customer")
        .order_by("-occurred_at", "-id")[:DETAIL_LIMIT]
    )
    return [
        Row(
            c.occurred_at,
            c.customer,
            c.summary[:80],
            c.customer.get_absolute_url(),
            c.get_channel_display(),
            None,
        )
        for c in contacts
    ]


def _csat_rows(user: Any, start: datetime, now: datetime) -> list[Row]:
    from culture.satisfaction.models import Survey, SurveyKind

    surveys = (
        Survey.objects.filter(
            staff=user,
            kind=SurveyKind.CSAT,
            answered_at__gte=start,
            answered_at__lt=now,
        )
        .select_related("customer", "ticket")
        .order_by("-answered_at", "-id")[:DETAIL_LIMIT]
    )
    rows = []
    for s in surveys:
        if s.ticket_id:
            url = reverse("service:ticket_detail", args=[s.ticket.reference])
        else:
            url = s.customer.get_absolute_url()
        rows.append(
            Row(
                s.answered_at,
                s.customer,
                s.comment[:80] or str(s.get_source_display()),
                url,
                _("%(score)s 分") % {"score": s.score},
                s.score >= 4,
            )
        )
    return rows


def _sla_rows(user: Any, start: datetime, now: datetime) -> list[Row]:
    from service.models import Ticket

    tickets = (
        Ticket.objects.filter(
            assignee=user,
            merged_into__isnull=True,
            resolution_due_at__gte=start,
            resolution_due_at__lt=now,
        )
        .select_related("customer")
        .order_by("-resolution_due_at", "-id")[:DETAIL_LIMIT]
    )
    rows = []
    for t in tickets:
        breached = t.first_response_breached or t.resolution_breached
        resolved = t.status in (Ticket.Status.RESOLVED, Ticket.Status.CLOSED)
        if breached:
            verdict, ok = _("超时"), False
        elif resolved:
            verdict, ok = _("达成"), True
        else:
            verdict, ok = _("处理中（不计）"), None
        rows.append(
            Row(
                t.resolution_due_at,
                t.customer,
                f"{t.reference} {t.subject}",
                reverse("service:ticket_detail", args=[t.reference]),
                verdict,
                ok,
            )
        )
    return rows


def _recovery_rows(user: Any, start: datetime, now: datetime) -> list[Row]:
    from django.db.models import Q

    from culture.satisfaction.models import RecoveryTask

    tasks = (
        RecoveryTask.objects.filter(
            Q(due_at__gte=start, due_at__lt=now) | Q(status=RecoveryTask.Status.OPEN),
            assignee=user,
        )
        .select_related("customer")
        .order_by("-due_at", "-id")[:DETAIL_LIMIT]
    )
    rows = []
    for task in tasks:
        in_period = start <= task.due_at < now
        if task.status == RecoveryTask.Status.DONE:
            ok = task.closed_at <= task.due_at
            verdict = _("24小时内完成") if ok else _("超时完成")
        elif task.due_at < now:
            ok, verdict = False, _("已超时，未完成")
        else:
            ok, verdict = None, _("待补救")
        rows.append(
            Row(
                task.due_at,
                task.customer,
                task.note[:80] or str(task.get_status_display()),
                _recovery_url(task),
                verdict,
                ok if in_period else None,
            )
        )
    return rows


def _recovery_url(task: Any) -> str:
    return reverse("recovery:task_detail", args=[task.pk])


_DETAIL = {
    "followups": _followup_rows,
    "contacts": _contact_rows,
    "csat": _csat_rows,
    "sla": _sla_rows,
    "recoveries": _recovery_rows,
}
