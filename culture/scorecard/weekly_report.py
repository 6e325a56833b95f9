"""The weekly culture report (每周文化报告, docs/scorecard.md): every Monday at 08:00
(local time, TIME_ZONE: Asia/Shanghai) each manager gets an e-mail with last week's
culture scorecard as a PDF (WeasyPrint with Noto Sans CJK SC, as the 入伙通知书) and the
week's five worst cases.

The five worst cases: the unhappy answers (CSAT ≤ 3, NPS ≤ 6) given in the week whose
service recovery is not done when the report is made (no task, or a task still open),
worst first: the lowest score on its scale (CSAT 1 and NPS 0 are the bottom), then the
one that has waited longest. Read through the answered-at index, at most five rows.

It is a scheduled action (crm/scheduler) under the key `scorecard:weekly_report:<week>`
(an ISO week, e.g. 2026-W49, the week reported), due the Monday after that week; each
run arms the next week's, and a daily beat task arms it again if the chain stopped. Each
manager's copy is an in-app notification with the key `…:<week>:<user id>` and an e-mail
with the PDF attached, whose sending is recorded on that notification (emailed_at) as
soon as it leaves: a redelivered or restarted run finds it and sends nothing again (at
most the one e-mail in flight when a worker died goes twice, the staff channel's
at-least-once). Managers only: the report is the department heads' (admins use the
page). `manage.py culture_report --week 2026-W49 [--to addr]` renders or sends one by
hand; the scorecard page offers the current week's PDF to download.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage
from django.db.models import Case, F, FloatField, Q, When
from django.db.models.functions import Cast
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from crm.accounts.roles import Role
from crm.notifications import services as notifications
from crm.notifications.models import Notification
from crm.scheduler import services as scheduler

KIND = "scorecard.weekly_report"
SEND_WEEKDAY = 0  # Monday
SEND_TIME = dt.time(8, 0)
WORST_COUNT = 5
WEEK_RE = re.compile(r"^(\d{4})-W(\d{2})$")


# --- weeks ------------------------------------------------------------------------------


def week_key(day: dt.date) -> str:
    year, week, _weekday = day.isocalendar()
    return f"{year}-W{week:02d}"


def week_days(key: str) -> tuple[dt.date, dt.date]:
    """Monday and Sunday of the ISO week `key` (YYYY-Www); ValueError when it is none."""
    match = WEEK_RE.match(key or "")
    if not match:
        raise ValueError(key)
    monday = dt.date.fromisocalendar(int(match[1]), int(match[2]), 1)
    if not (1990 <= monday.year <= 2100):
        raise ValueError(key)
    return monday, monday + dt.timedelta(days=6)


def send_at(key: str) -> dt.datetime:
    """When the report of week `key` goes: the next Monday, 08:00 local time."""
    _monday, sunday = week_days(key)
    day = sunday + dt.timedelta(days=1)
    return timezone.make_aware(
        dt.datetime.combine(day, SEND_TIME), timezone.get_current_timezone()
    )


def last_week_key(now: dt.datetime | None = None) -> str:
    """The week whose report is the latest one due at `now`."""
    now = timezone.localtime(now or timezone.now())
    key = week_key(now.date() - dt.timedelta(days=7))
    if now < send_at(key):  # Monday before 08:00: that report is not due yet
        key = week_key(now.date() - dt.timedelta(days=14))
    return key


def action_key(key: str) -> str:
    return f"scorecard:weekly_report:{key}"


def schedule_next(*, now: dt.datetime | None = None) -> Any:
    """Arm the report of the week now under way (idempotent per week)."""
    now = timezone.localtime(now or timezone.now())
    key = week_key(now.date())
    return scheduler.action_schedule(
        kind=KIND, target_id=0, due_at=send_at(key), key=action_key(key)
    )


# --- the content ------------------------------------------------------------------------


def _bounds(key: str) -> tuple[dt.datetime, dt.datetime]:
    monday, sunday = week_days(key)
    tz = timezone.get_current_timezone()
    lo = timezone.make_aware(dt.datetime.combine(monday, dt.time.min), tz)
    hi = timezone.make_aware(
        dt.datetime.combine(sunday + dt.timedelta(days=1), dt.time.min), tz
    )
    return lo, hi


def worst_cases(key: str, *, limit: int = WORST_COUNT) -> list[Any]:
    """The week's unhappy answers not yet recovered, worst first (module docstring);
    one query."""
    from culture.satisfaction.models import (
        CSAT_MAX,
        CSAT_UNHAPPY_AT_OR_BELOW,
        NPS_MAX,
        NPS_UNHAPPY_AT_OR_BELOW,
        RecoveryTask,
        Survey,
        SurveyKind,
    )

    lo, hi = _bounds(key)
    # The score's place on its own scale, 0 (the bottom) to 1.
    scaled = Case(
        When(
            kind=SurveyKind.CSAT,
            then=(Cast(F("score"), FloatField()) - 1) / (CSAT_MAX - 1),
        ),
        default=Cast(F("score"), FloatField()) / NPS_MAX,
        output_field=FloatField(),
    )
    return list(
        Survey.objects.filter(
            Q(kind=SurveyKind.CSAT, score__lte=CSAT_UNHAPPY_AT_OR_BELOW)
            | Q(kind=SurveyKind.NPS, score__lte=NPS_UNHAPPY_AT_OR_BELOW),
            answered_at__gte=lo,
            answered_at__lt=hi,
        )
        .exclude(recovery__status=RecoveryTask.Status.DONE)
        .annotate(scaled=scaled, recovery_status=F("recovery__status"))
        .select_related("customer", "ticket", "staff", "team", "recovery")
        .order_by("scaled", "answered_at", "pk")[:limit]
    )


@dataclass(frozen=True)
class Report:
    key: str
    monday: dt.date
    sunday: dt.date
    data: dict[str, Any]
    worst: list[Any]


def report_data(*, user: Any, key: str) -> Report:
    """The scorecard of week `key` as `user` may see it, and the five worst cases."""
    from culture.scorecard import selectors

    monday, sunday = week_days(key)
    filters = selectors.Filters("custom", monday, sunday)
    data = selectors.scorecard(user=user, filters=filters)
    return Report(key, monday, sunday, data, worst_cases(key))


def _trend_points(
    trend: list[dict[str, Any]], width: int = 90, height: int = 18
) -> str:
    """The 12-week trend as SVG polyline points (the PDF has no JavaScript charts)."""
    values = [(i, t["value"]) for i, t in enumerate(trend) if t["value"] is not None]
    if len(values) < 2:
        return ""
    lo = min(v for _i, v in values)
    hi = max(v for _i, v in values)
    span = (hi - lo) or 1
    step = width / max(len(trend) - 1, 1)
    return " ".join(
        f"{i * step:.1f},{height - 1 - (v - lo) / span * (height - 2):.1f}"
        for i, v in values
    )


def render_pdf(report: Report) -> bytes:
    from weasyprint import HTML  # heavy: loaded by the job or view that prints

    for section in report.data["sections"]:
        for figure in section["figures"]:
            figure.trend_points = _trend_points(figure.trend)
    html = render_to_string(
        "scorecard/report_pdf.html",
        {
            "report": report,
            "sections": report.data["sections"],
            "made_at": timezone.localtime(),
        },
    )
    return HTML(string=html, base_url=str(settings.BASE_DIR)).write_pdf()


def filename(key: str) -> str:
    return f"culture-report-{key}.pdf"


# --- sending ----------------------------------------------------------------------------


def recipients() -> list[Any]:
    """Every active manager (the role's group), admins and superusers left out."""
    from django.contrib.auth import get_user_model

    return list(
        get_user_model()
        .objects.filter(groups__name=Role.MANAGER, is_active=True, is_superuser=False)
        .exclude(groups__name=Role.ADMIN)
        .select_related("team")
        .order_by("pk")
        .distinct()
    )


def _subject(key: str) -> str:
    monday, sunday = week_days(key)
    return _("每周文化报告 %(week)s（%(start)s–%(end)s）") % {
        "week": key,
        "start": f"{monday:%m-%d}",
        "end": f"{sunday:%m-%d}",
    }


def _body(report: Report) -> str:
    lines = [
        _("本周文化记分卡见附件 PDF。"),
        "",
        _("最差的五个案例（不满意且尚未补救）："),
    ]
    if not report.worst:
        lines.append(_("（无）"))
    for n, case in enumerate(report.worst, 1):
        lines.append(
            _("%(n)s. %(customer)s · %(kind)s %(score)s 分 · %(at)s · %(state)s")
            % {
                "n": n,
                "customer": case.customer.name,
                "kind": case.get_kind_display(),
                "score": case.score,
                "at": f"{timezone.localtime(case.answered_at):%m-%d %H:%M}",
                "state": _("补救中") if case.recovery_status else _("未开补救"),
            }
        )
    return "\n".join(lines)


def send_to(user: Any, key: str) -> bool:
    """`user`'s copy of week `key`'s report, once: True when an e-mail left now."""
    note_key = f"{action_key(key)}:{user.pk}"
    url = f"{reverse('scorecard_report:pdf')}?week={key}"
    report: Report | None = None
    notification = notifications.notification_send(
        recipient=user,
        key=note_key,
        title=_subject(key),
        body=_("本周文化记分卡和最差的五个案例。"),
        url=url,
        email=False,
        reason=gettext_noop("你是经理：每周一收到上周的文化报告"),
    )
    if notification is None:
        notification = Notification.objects.get(idempotency_key=note_key)
    if notification.emailed_at is not None or not user.email:
        return False
    report = report_data(user=user, key=key)
    message = EmailMessage(
        subject=_subject(key),
        body=f"{_body(report)}\n\n{url}",
        to=[user.email],
        headers={"X-Kehu-Idempotency-Key": note_key},
    )
    message.attach(filename(key), render_pdf(report), "application/pdf")
    message.send()
    Notification.objects.filter(pk=notification.pk).update(emailed_at=timezone.now())
    return True


def send(key: str, *, to: list[Any] | None = None) -> int:
    """Week `key`'s report to every manager (or `to`); returns how many e-mails left."""
    return sum(send_to(user, key) for user in (to or recipients()))


def send_address(key: str, address: str, *, as_user: Any) -> None:
    """A copy to any address, by hand (manage.py culture_report --to): not recorded."""
    report = report_data(user=as_user, key=key)
    message = EmailMessage(subject=_subject(key), body=_body(report), to=[address])
    message.attach(filename(key), render_pdf(report), "application/pdf")
    message.send()


def handler(action: Any) -> None:
    """Scheduled action: the report of the week before the action's due day, then the
    next week's is armed."""
    due = timezone.localtime(action.due_at).date()
    send(week_key(due - dt.timedelta(days=7)))
    schedule_next()
