"""Defects (问题/整改单), one model for every phase (issue 17, handover.md §2.6).

A defect is recorded once, against a unit; the handover case, the inspection round
and the service-desk repair ticket point at it or it at them, never a copy. States:

    open ─assign─▶ assigned ─start─▶ in_progress ─ready─▶ ready_for_review
    ready_for_review ─verify─▶ closed            (pass round recorded)
    ready_for_review ─reject─▶ in_progress       (rework: rounds + 1)
    assigned ─dispute─▶ in_dispute ─decide─▶ assigned | void
    any open state ─▶ void (reason) | force_closed (reason + approver)

Every transition is one DefectEvent row (append-only). Severity sets the due time
(P0 hours, P1 a day, P2 days); overdue items escalate through the scheduled-action
pipeline.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class Contractor(models.Model):
    """责任单位: the contractor or supplier who rectifies defects."""

    name = models.CharField(_("单位名称"), max_length=100, unique=True)
    contact_name = models.CharField(_("联系人"), max_length=40, blank=True)
    phone = models.CharField(_("联系电话"), max_length=20, blank=True)
    active = models.BooleanField(_("启用"), default=True)
    # The company's staff member who follows this contractor's work: told when one of
    # its items is overdue.
    staff = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("对接人"),
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("责任单位")
        verbose_name_plural = _("责任单位")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Severity(models.TextChoices):
    P0 = "P0", _("P0 紧急")
    P1 = "P1", _("P1 严重")
    P2 = "P2", _("P2 一般")


class DefectCategory(models.Model):
    """Three levels: trade (土建、门窗、水电…) → part → symptom. Defects use a leaf."""

    parent = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="children",
        verbose_name=_("上级"),
    )
    level = models.PositiveSmallIntegerField(_("层级"))
    name = models.CharField(_("名称"), max_length=40)
    default_severity = models.CharField(
        _("默认严重程度"), max_length=2, choices=Severity, default=Severity.P2
    )
    position = models.PositiveSmallIntegerField(_("顺序"), default=0)

    class Meta:
        verbose_name = _("问题分类")
        verbose_name_plural = _("问题分类")
        ordering = ["level", "position", "name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(level__gte=1, level__lte=3), name="defects_category_level"
            ),
            models.CheckConstraint(
                condition=Q(level=1, parent__isnull=True)
                | Q(level__gt=1, parent__isnull=False),
                name="defects_category_parent_by_level",
            ),
            models.UniqueConstraint(
                fields=["parent", "name"],
                nulls_distinct=False,
                name="defects_category_unique_name",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Defect(models.Model):
    class Source(models.TextChoices):
        PRE_INSPECTION = "pre_inspection", _("内部预验")
        OPEN_DAY = "open_day", _("工地开放日")
        HANDOVER = "handover", _("交付验房")
        REINSPECTION = "reinspection", _("复验")
        WARRANTY = "warranty", _("保修期报修")

    class State(models.TextChoices):
        OPEN = "open", _("待派单")
        ASSIGNED = "assigned", _("待接单")
        IN_PROGRESS = "in_progress", _("整改中")
        READY_FOR_REVIEW = "ready", _("待复验")
        CLOSED = "closed", _("已销项")
        IN_DISPUTE = "in_dispute", _("有异议")
        VOID = "void", _("已作废")
        FORCE_CLOSED = "force_closed", _("强制关闭")

    class Room(models.TextChoices):
        LIVING = "living", _("客厅")
        DINING = "dining", _("餐厅")
        MASTER = "master", _("主卧")
        BEDROOM = "bedroom", _("次卧")
        KITCHEN = "kitchen", _("厨房")
        BATHROOM = "bathroom", _("卫生间")
        BALCONY = "balcony", _("阳台")
        HALL = "hall", _("玄关/过道")
        OTHER = "other", _("其他")

    OPEN_STATES = (
        State.OPEN,
        State.ASSIGNED,
        State.IN_PROGRESS,
        State.READY_FOR_REVIEW,
        State.IN_DISPUTE,
    )

    unit = models.ForeignKey(
        "property.Unit",
        on_delete=models.PROTECT,
        related_name="defects",
        verbose_name=_("房间"),
    )
    # Where it was found: the handover case (on the day) and its event, when any.
    case = models.ForeignKey(
        "handover.UnitHandover",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="defects",
        verbose_name=_("交房单"),
    )
    event = models.ForeignKey(
        "handover.HandoverEvent",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="defects",
        verbose_name=_("入伙活动"),
    )
    # The service-desk repair ticket that handles it (warranty), linked not copied.
    ticket = models.ForeignKey(
        "service.Ticket",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="defects",
        verbose_name=_("报修工单"),
    )
    source = models.CharField(
        _("来源"), max_length=16, choices=Source, default=Source.HANDOVER
    )
    room = models.CharField(_("位置"), max_length=10, choices=Room)
    category = models.ForeignKey(
        DefectCategory,
        on_delete=models.PROTECT,
        related_name="defects",
        verbose_name=_("问题分类"),
    )
    description = models.CharField(_("问题描述"), max_length=300)
    severity = models.CharField(_("严重程度"), max_length=2, choices=Severity)
    state = models.CharField(
        _("状态"), max_length=12, choices=State, default=State.OPEN
    )
    contractor = models.ForeignKey(
        Contractor,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="defects",
        verbose_name=_("责任单位"),
    )
    due_at = models.DateTimeField(_("整改时限"))
    rework_rounds = models.PositiveSmallIntegerField(_("返工次数"), default=0)
    reported_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("记录人"),
    )
    created_at = models.DateTimeField(_("记录时间"), auto_now_add=True)
    assigned_at = models.DateTimeField(_("派单时间"), null=True, blank=True)
    ready_at = models.DateTimeField(_("完成整改"), null=True, blank=True)
    closed_at = models.DateTimeField(_("销项时间"), null=True, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("销项人"),
    )
    # Void and force-close need a reason; force-close also its approver.
    close_reason = models.CharField(_("关闭原因"), max_length=300, blank=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("批准人"),
    )
    escalated_at = models.DateTimeField(_("已升级"), null=True, blank=True)
    version = models.PositiveIntegerField(default=1)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("问题")
        verbose_name_plural = _("问题")
        constraints = [
            models.CheckConstraint(
                condition=Q(rework_rounds__lte=50), name="defects_rework_rounds_range"
            ),
            models.CheckConstraint(
                condition=~Q(state="force_closed")
                | (Q(approved_by__isnull=False) & ~Q(close_reason="")),
                name="defects_force_close_needs_approver",
            ),
        ]
        indexes = [
            models.Index(fields=["unit", "created_at"], name="defects_unit"),
            # The defects list: newest first, filtered by state or severity.
            models.Index(fields=["created_at", "id"], name="defects_recent"),
            models.Index(fields=["state", "created_at"], name="defects_state_recent"),
            models.Index(fields=["event", "state"], name="defects_event_state"),
            # The contractor's list and the rectification board: open items by due.
            models.Index(
                fields=["contractor", "due_at"],
                condition=Q(
                    state__in=["open", "assigned", "in_progress", "ready", "in_dispute"]
                ),
                name="defects_contractor_open",
            ),
            models.Index(
                fields=["due_at"],
                condition=Q(
                    state__in=["open", "assigned", "in_progress", "ready", "in_dispute"]
                ),
                name="defects_open_due",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.description}"

    @property
    def is_open(self) -> bool:
        return self.state in self.OPEN_STATES


class DefectPhoto(models.Model):
    class Kind(models.TextChoices):
        FOUND = "found", _("问题照片")
        FIXED = "fixed", _("整改后照片")

    defect = models.ForeignKey(Defect, on_delete=models.CASCADE, related_name="photos")
    kind = models.CharField(max_length=6, choices=Kind, default=Kind.FOUND)
    file = models.FileField(upload_to="defects/%Y/%m/")
    # A contractor marking an item ready through its link has no user.
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    uploaded_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.file.name


class DefectEvent(models.Model):
    """Append-only history of a defect's states."""

    defect = models.ForeignKey(Defect, on_delete=models.CASCADE, related_name="events")
    from_state = models.CharField(max_length=12, blank=True)
    to_state = models.CharField(max_length=12)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    # Set when the contractor acted through their link (no user account).
    contractor = models.ForeignKey(
        Contractor, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    comment = models.CharField(max_length=300, blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["defect", "at"], name="defects_event_defect")]

    def __str__(self) -> str:
        return f"{self.from_state} → {self.to_state}"
