from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from crm.core import bounds

# The range a due time may have: that of the business datetimes whose actions these
# are (a follow-up's due time is its reminder's). Anything outside is a typo or an
# attack: a follow-up due in year 0001 BC was stored by PostgreSQL, could not be read
# back by psycopg, and stopped every action delivered in its chunk (issue 11, 1).
DUE_AT_MIN = bounds.DB_DATETIME_MIN
DUE_AT_MAX = bounds.DB_DATETIME_MAX


class ScheduledAction(models.Model):
    """One timed thing Kehu promised to do (a reminder, an escalation, a survey).

    The row is written in the same transaction as the business change, so it exists
    exactly when the change does. It is the schedule itself: a beat-driven sweeper claims
    due rows and Celery only carries them out (docs/reliability.md, D1-D3).
    """

    class State(models.TextChoices):
        PENDING = "pending", _("等待")
        DISPATCHED = "dispatched", _("已派发")
        SENDING = "sending", _("执行中")
        DONE = "done", _("完成")
        NEEDS_REVIEW = "needs_review", _("待人工核查")
        CANCELLED = "cancelled", _("已取消")

    kind = models.CharField(_("类型"), max_length=50)
    target_id = models.BigIntegerField(_("对象"))
    due_at = models.DateTimeField(_("到期时间"))
    state = models.CharField(
        _("状态"), max_length=20, choices=State, default=State.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    lease_until = models.DateTimeField(null=True, blank=True)
    idempotency_key = models.CharField(max_length=120, unique=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("定时动作")
        verbose_name_plural = _("定时动作")
        indexes = [
            models.Index(
                fields=["due_at"],
                name="action_pending_due",
                condition=models.Q(state="pending"),
            ),
            models.Index(
                fields=["lease_until"],
                name="action_leased",
                condition=models.Q(state__in=["dispatched", "sending"]),
            ),
            models.Index(fields=["kind", "target_id"], name="action_target"),
            # The admins' review list and /healthz count these: few rows, many others.
            models.Index(
                fields=["id"],
                name="action_needs_review",
                condition=models.Q(state="needs_review"),
            ),
        ]
        constraints = [
            bounds.datetime_in_range("due_at", name="action_due_at_in_range"),
        ]

    def __str__(self) -> str:
        return f"{self.kind}#{self.target_id} @ {self.due_at:%Y-%m-%d %H:%M} ({self.state})"
