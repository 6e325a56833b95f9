"""Customer segments (客户分群): dynamic ones defined by rules over customer fields and
behaviour (culture/segments/rules.py compiles them to SQL), static lists kept by hand.

Membership is materialised in SegmentMember by services.segment_refresh (one SQL
statement pair per segment) and every change is appended to SegmentMembershipEvent, so
"who entered or left, when" can be shown and size over time recomputed."""

from __future__ import annotations

import pghistory
from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from crm.core import bounds


class SegmentQuerySet(models.QuerySet):
    def visible_to(self, user: settings.AUTH_USER_MODEL) -> SegmentQuerySet:
        """Own segments, the team's and department's shared ones; all for admins."""
        from crm.accounts.roles import Role

        role = getattr(user, "role", None)
        if role is None or not user.is_active:
            return self.none()
        if role == Role.ADMIN:
            return self
        condition = Q(owner=user)
        if user.team_id:
            condition |= Q(visibility=Segment.Visibility.TEAM, team_id=user.team_id)
            condition |= Q(
                visibility=Segment.Visibility.DEPARTMENT,
                department_id=user.team.department_id,
            )
        return self.filter(condition)

    def dynamic(self) -> SegmentQuerySet:
        return self.filter(kind=Segment.Kind.DYNAMIC)


# Who defined or changed a segment, and how (the rules before and after).
@pghistory.track(
    pghistory.InsertEvent(),
    pghistory.UpdateEvent(),
    pghistory.DeleteEvent(),
    exclude=["member_count", "refreshed_at", "version", "updated_at"],
)
class Segment(models.Model):
    class Kind(models.TextChoices):
        DYNAMIC = "dynamic", _("动态分群")
        STATIC = "static", _("静态名单")

    class Visibility(models.TextChoices):
        PRIVATE = "private", _("仅自己")
        TEAM = "team", _("本团队")
        DEPARTMENT = "department", _("本部门")

    name = models.CharField(_("名称"), max_length=60)
    description = models.CharField(_("说明"), max_length=300, blank=True)
    kind = models.CharField(
        _("类型"), max_length=10, choices=Kind, default=Kind.DYNAMIC
    )
    # A dynamic segment's definition: {"op": "and"|"or", "rules": [rule | group]},
    # rule = {"field", "operator", "value"}; validated by rules.validate().
    rules = models.JSONField(_("规则"), default=dict, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="segments",
        verbose_name=_("创建人"),
    )
    visibility = models.CharField(
        _("共享范围"), max_length=12, choices=Visibility, default=Visibility.PRIVATE
    )
    # Copied from the owner when saved, so sharing follows the segment, not later moves.
    team = models.ForeignKey(
        "accounts.Team",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("团队"),
    )
    department = models.ForeignKey(
        "accounts.Department",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("部门"),
    )
    member_count = models.PositiveIntegerField(_("成员数"), default=0)
    refreshed_at = models.DateTimeField(_("刷新时间"), null=True, blank=True)
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)

    objects = SegmentQuerySet.as_manager()

    class Meta:
        verbose_name = _("客户分群")
        verbose_name_plural = _("客户分群")
        ordering = ["name", "id"]
        indexes = [
            models.Index(fields=["owner", "name"], name="segment_owner"),
            models.Index(
                fields=["team", "name"],
                name="segment_team_shared",
                condition=Q(visibility="team"),
            ),
            models.Index(
                fields=["department", "name"],
                name="segment_department_shared",
                condition=Q(visibility="department"),
            ),
            models.Index(
                fields=["refreshed_at"],
                name="segment_dynamic_refresh",
                condition=Q(kind="dynamic"),
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("segments:segment_detail", args=[self.pk])

    @property
    def is_dynamic(self) -> bool:
        return self.kind == self.Kind.DYNAMIC


class SegmentMember(models.Model):
    segment = models.ForeignKey(
        Segment, on_delete=models.CASCADE, related_name="members"
    )
    customer = models.ForeignKey(
        "customers.Customer",
        on_delete=models.CASCADE,
        related_name="segment_memberships",
    )
    since = models.DateTimeField(_("加入时间"))

    class Meta:
        verbose_name = _("分群成员")
        verbose_name_plural = _("分群成员")
        constraints = [
            models.UniqueConstraint(
                fields=["segment", "customer"], name="segmentmember_unique"
            ),
        ]
        indexes = [
            # The customer's segments (list filter joins, merge, detail page).
            models.Index(fields=["customer", "segment"], name="segmentmember_customer"),
            models.Index(fields=["segment", "-since"], name="segmentmember_since"),
        ]

    def __str__(self) -> str:
        return f"{self.segment_id}:{self.customer_id}"


class SegmentMembershipEvent(models.Model):
    """Append-only: a customer entered or left a segment."""

    class Action(models.TextChoices):
        ENTERED = "entered", _("进入")
        LEFT = "left", _("离开")

    segment = models.ForeignKey(
        Segment, on_delete=models.CASCADE, related_name="membership_events"
    )
    customer = models.ForeignKey(
        "customers.Customer",
        on_delete=models.CASCADE,
        related_name="segment_events",
    )
    action = models.CharField(_("变化"), max_length=10, choices=Action)
    at = models.DateTimeField(_("时间"))
    # "refresh" (rules re-evaluated), "manual" (static list edit), "rules_changed".
    reason = models.CharField(_("原因"), max_length=100, blank=True)

    class Meta:
        verbose_name = _("分群成员变化")
        verbose_name_plural = _("分群成员变化")
        indexes = [
            models.Index(fields=["segment", "-at", "-id"], name="segmentevent_segment"),
            models.Index(fields=["customer", "-at"], name="segmentevent_customer"),
        ]

    def __str__(self) -> str:
        return f"{self.segment_id}:{self.customer_id} {self.action}"


class SegmentFollowUpJob(models.Model):
    """A bulk follow-up too large for one request: carried out by a scheduled action
    (kind segments.followups), all or nothing, once."""

    class Status(models.TextChoices):
        PENDING = "pending", _("等待执行")
        DONE = "done", _("已完成")

    segment = models.ForeignKey(
        Segment, on_delete=models.CASCADE, related_name="followup_jobs"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    note = models.CharField(_("跟进事项"), max_length=200)
    due_at = models.DateTimeField(_("到期时间"))
    # None: each customer's owner (the person acting for pool customers).
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
    )
    status = models.CharField(max_length=10, choices=Status, default=Status.PENDING)
    created_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["segment", "-created_at"], name="segmentjob_segment")
        ]
        constraints = [
            bounds.datetime_in_range("due_at", name="segmentjob_due_in_range"),
        ]

    def __str__(self) -> str:
        return f"{self.segment_id}: {self.note}"
