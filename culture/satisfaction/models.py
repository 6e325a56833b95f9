"""Satisfaction surveys (CSAT 1–5, NPS 0–10) and the service recovery that follows an
unhappy answer (让客户100%满意, docs/satisfaction.md).

A survey is asked at most once per case: one per ticket, one per handover appointment,
one per customer in a segment campaign (partial unique constraints below). The customer
answers through a signed, expiring, single-use link (`nonce` is cleared when used). A
CSAT of 3 or less, or an NPS of 6 or less, opens one RecoveryTask for the team lead; the
case counts as not satisfied until the recovery is recorded."""

from __future__ import annotations

import pghistory
from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from crm.core import bounds

CSAT_MAX = 5
NPS_MAX = 10
# The closed loop's thresholds (docs/culture: rating ≤ 3, NPS ≤ 6 → recovery).
CSAT_UNHAPPY_AT_OR_BELOW = 3
NPS_UNHAPPY_AT_OR_BELOW = 6


class SurveyKind(models.TextChoices):
    CSAT = "csat", _("满意度（1–5分）")
    NPS = "nps", _("推荐意愿（0–10分）")


class Campaign(models.Model):
    """An on-demand survey of a segment's members (定向调查)."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("排队中")
        RUNNING = "running", _("发送中")
        DONE = "done", _("已完成")
        FAILED = "failed", _("失败")

    name = models.CharField(_("名称"), max_length=100)
    segment = models.ForeignKey(
        "segments.Segment",
        on_delete=models.PROTECT,
        related_name="survey_campaigns",
        verbose_name=_("客户分群"),
    )
    kind = models.CharField(_("题型"), max_length=10, choices=SurveyKind)
    channel = models.CharField(_("渠道"), max_length=10)
    status = models.CharField(
        _("状态"), max_length=10, choices=Status, default=Status.QUEUED
    )
    total = models.PositiveIntegerField(_("目标人数"), default=0)
    sent = models.PositiveIntegerField(_("已发送"), default=0)
    skipped = models.PositiveIntegerField(_("无联系方式"), default=0)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)
    finished_at = models.DateTimeField(_("完成时间"), null=True, blank=True)

    class Meta:
        verbose_name = _("定向调查")
        verbose_name_plural = _("定向调查")

    def __str__(self) -> str:
        return self.name


class Survey(models.Model):
    class Source(models.TextChoices):
        TICKET = "ticket", _("工单")
        HANDOVER = "handover", _("入伙交付")
        CAMPAIGN = "campaign", _("定向调查")

    class Status(models.TextChoices):
        PENDING = "pending", _("待发送")
        SENT = "sent", _("已发送")
        ANSWERED = "answered", _("已回答")
        EXPIRED = "expired", _("已过期")
        UNREACHABLE = "unreachable", _("无法送达")

    source = models.CharField(_("来源"), max_length=10, choices=Source)
    kind = models.CharField(_("题型"), max_length=10, choices=SurveyKind)
    customer = models.ForeignKey(
        "customers.Customer",
        on_delete=models.PROTECT,
        related_name="surveys",
        verbose_name=_("客户"),
    )
    ticket = models.ForeignKey(
        "service.Ticket",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="surveys",
        verbose_name=_("工单"),
    )
    # The back-office department whose completed work order the ticket waited on
    # (后台围绕前台转: the customer's rating then also rates that department).
    department = models.ForeignKey(
        "accounts.Department",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("后台部门"),
    )
    appointment = models.ForeignKey(
        "handover.Appointment",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="surveys",
        verbose_name=_("入伙预约"),
    )
    campaign = models.ForeignKey(
        Campaign,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="surveys",
        verbose_name=_("定向调查"),
    )
    # Whose case it was: the team gets the recovery task, the staff member the figure.
    team = models.ForeignKey(
        "accounts.Team",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("团队"),
    )
    staff = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("负责人"),
    )
    channel = models.CharField(_("渠道"), max_length=10, blank=True)
    status = models.CharField(
        _("状态"), max_length=12, choices=Status, default=Status.PENDING
    )
    # Random part of the signed link; cleared when the answer is recorded, so the link
    # works once.
    nonce = models.CharField(max_length=32, blank=True)
    expires_at = models.DateTimeField(_("链接有效期至"))
    sent_at = models.DateTimeField(_("发送时间"), null=True, blank=True)
    reminded_at = models.DateTimeField(_("提醒时间"), null=True, blank=True)
    answered_at = models.DateTimeField(_("回答时间"), null=True, blank=True)
    score = models.PositiveSmallIntegerField(_("评分"), null=True, blank=True)
    comment = models.TextField(_("意见"), blank=True)
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)

    class Meta:
        verbose_name = _("满意度调查")
        verbose_name_plural = _("满意度调查")
        indexes = [
            models.Index(fields=["customer", "-created_at"], name="survey_customer"),
            models.Index(
                fields=["answered_at"],
                name="survey_answered",
                condition=Q(answered_at__isnull=False),
            ),
            models.Index(fields=["staff", "-created_at"], name="survey_staff"),
            # A person's CSAT over a period (个人指标).
            models.Index(
                fields=["staff", "answered_at"],
                name="survey_staff_answered",
                condition=Q(answered_at__isnull=False),
            ),
            models.Index(fields=["team", "-created_at"], name="survey_team"),
        ]
        constraints = [
            # At most once per case.
            models.UniqueConstraint(
                fields=["ticket"],
                condition=Q(source="ticket"),
                name="survey_once_per_ticket",
            ),
            models.UniqueConstraint(
                fields=["appointment"],
                condition=Q(source="handover"),
                name="survey_once_per_handover",
            ),
            models.UniqueConstraint(
                fields=["campaign", "customer"],
                condition=Q(source="campaign"),
                name="survey_once_per_campaign_customer",
            ),
            models.CheckConstraint(
                condition=(
                    Q(source="ticket", ticket__isnull=False)
                    | Q(source="handover", appointment__isnull=False)
                    | Q(source="campaign", campaign__isnull=False)
                ),
                name="survey_source_has_case",
            ),
            models.CheckConstraint(
                condition=Q(score__isnull=True)
                | Q(kind="csat", score__gte=1, score__lte=CSAT_MAX)
                | Q(kind="nps", score__gte=0, score__lte=NPS_MAX),
                name="survey_score_in_scale",
            ),
            models.CheckConstraint(
                condition=Q(answered_at__isnull=True) | Q(score__isnull=False),
                name="survey_answer_has_score",
            ),
            bounds.datetime_in_range(
                "expires_at", "answered_at", name="survey_dates_in_range"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_source_display()} #{self.pk}"

    @property
    def is_unhappy(self) -> bool:
        if self.score is None:
            return False
        if self.kind == SurveyKind.NPS:
            return self.score <= NPS_UNHAPPY_AT_OR_BELOW
        return self.score <= CSAT_UNHAPPY_AT_OR_BELOW


@pghistory.track(
    pghistory.InsertEvent(),
    pghistory.UpdateEvent(),
    exclude=["version", "updated_at"],
)
class RecoveryTask(models.Model):
    """服务补救: the team lead calls the unhappy customer back within 24 hours."""

    class Status(models.TextChoices):
        OPEN = "open", _("待补救")
        DONE = "done", _("已补救")

    class Outcome(models.TextChoices):
        RESOLVED = "resolved", _("问题已解决，客户认可")
        PARTLY = "partly", _("部分解决")
        UNRESOLVED = "unresolved", _("未能解决")
        UNREACHABLE = "unreachable", _("联系不上客户")

    survey = models.OneToOneField(
        Survey, on_delete=models.CASCADE, related_name="recovery"
    )
    customer = models.ForeignKey(
        "customers.Customer",
        on_delete=models.PROTECT,
        related_name="recovery_tasks",
        verbose_name=_("客户"),
    )
    team = models.ForeignKey(
        "accounts.Team",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("团队"),
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="recovery_tasks",
        verbose_name=_("补救负责人"),
    )
    status = models.CharField(
        _("状态"), max_length=10, choices=Status, default=Status.OPEN
    )
    due_at = models.DateTimeField(_("补救时限"))
    escalation_level = models.PositiveSmallIntegerField(_("升级级别"), default=0)
    called_back_at = models.DateTimeField(_("回访时间"), null=True, blank=True)
    outcome = models.CharField(
        _("补救结果"), max_length=12, choices=Outcome, blank=True
    )
    note = models.TextField(_("回访记录"), blank=True)
    # The customer's second answer, when they were asked again on the call.
    second_score = models.PositiveSmallIntegerField(
        _("再次评分"), null=True, blank=True
    )
    closed_at = models.DateTimeField(_("完成时间"), null=True, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("记录人"),
    )
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("服务补救")
        verbose_name_plural = _("服务补救")
        indexes = [
            models.Index(
                fields=["assignee", "due_at"],
                name="recovery_open_assignee",
                condition=Q(status="open"),
            ),
            models.Index(
                fields=["team", "due_at"],
                name="recovery_open_team",
                condition=Q(status="open"),
            ),
            models.Index(fields=["customer", "-created_at"], name="recovery_customer"),
            # Recoveries within 24 h per person and team over a period, closed ones
            # included (个人指标).
            models.Index(fields=["assignee", "due_at"], name="recovery_assignee_due"),
            models.Index(fields=["team", "due_at"], name="recovery_team_due"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status="open")
                | Q(closed_at__isnull=False, called_back_at__isnull=False)
                & ~Q(outcome=""),
                name="recovery_done_is_recorded",
            ),
            models.CheckConstraint(
                condition=Q(second_score__isnull=True)
                | Q(second_score__gte=0, second_score__lte=NPS_MAX),
                name="recovery_second_score_range",
            ),
            bounds.datetime_in_range(
                "due_at", "called_back_at", "closed_at", name="recovery_dates_in_range"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.customer} #{self.pk}"
