from __future__ import annotations

import pghistory
from django.conf import settings
from django.contrib.postgres.indexes import GinIndex, OpClass
from django.db import models
from django.db.models.functions import Upper
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crm.accounts import access
from crm.core import bounds


class Category(models.Model):
    """The complaint/repair category tree (e.g. 维修 > 水电 > 漏水)."""

    name = models.CharField(_("名称"), max_length=50)
    parent = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="children",
        verbose_name=_("上级分类"),
    )
    team = models.ForeignKey(
        "accounts.Team",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("负责团队"),
        help_text=_("新工单按此团队轮流分派。"),
    )

    class Meta:
        verbose_name = _("工单分类")
        verbose_name_plural = _("工单分类")
        ordering = ["parent_id", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["parent", "name"], name="category_unique_name"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.parent} > {self.name}" if self.parent_id else self.name


class TicketType(models.TextChoices):
    COMPLAINT = "complaint", _("投诉")
    REPAIR = "repair", _("报修")
    INQUIRY = "inquiry", _("咨询")
    SUGGESTION = "suggestion", _("建议")
    PRAISE = "praise", _("表扬")


class Priority(models.TextChoices):
    URGENT = "urgent", _("紧急")
    HIGH = "high", _("高")
    NORMAL = "normal", _("中")
    LOW = "low", _("低")


class SLAPolicy(models.Model):
    """Targets in minutes of its calendar (business hours or 24×7) for a ticket type and
    priority (key accounts may differ)."""

    class Calendar(models.TextChoices):
        BUSINESS = "business", _("工作时间（工作时段与节假日）")
        ROUND_THE_CLOCK = "24x7", _("全天候 24×7")

    name = models.CharField(_("名称"), max_length=100)
    calendar = models.CharField(
        _("计时日历"),
        max_length=10,
        choices=Calendar,
        default=Calendar.BUSINESS,
        help_text=_("工作时间只计工作时段；全天候连夜间、周末和节假日也计时。"),
    )
    ticket_type = models.CharField(_("工单类型"), max_length=20, choices=TicketType)
    priority = models.CharField(_("优先级"), max_length=10, choices=Priority)
    for_key_accounts = models.BooleanField(_("仅重点客户"), default=False)
    first_response_minutes = models.PositiveIntegerField(_("首次响应时限（分钟）"))
    resolution_minutes = models.PositiveIntegerField(_("解决时限（分钟）"))
    warn_before_minutes = models.PositiveIntegerField(_("提前预警（分钟）"), default=30)

    class Meta:
        verbose_name = _("SLA 策略")
        verbose_name_plural = _("SLA 策略")
        constraints = [
            models.UniqueConstraint(
                fields=["ticket_type", "priority", "for_key_accounts"],
                name="sla_policy_unique",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_round_the_clock(self) -> bool:
        return self.calendar == self.Calendar.ROUND_THE_CLOCK


class WorkingPeriod(models.Model):
    """Business hours of an ordinary working day, by weekday (0 = Monday)."""

    weekday = models.PositiveSmallIntegerField(_("星期"))
    start = models.TimeField(_("开始"))
    end = models.TimeField(_("结束"))

    class Meta:
        verbose_name = _("工作时段")
        verbose_name_plural = _("工作时段")
        ordering = ["weekday", "start"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(end__gt=models.F("start")),
                name="working_period_order",
            ),
            models.CheckConstraint(
                condition=models.Q(weekday__lte=6), name="working_period_weekday"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.weekday}: {self.start:%H:%M}-{self.end:%H:%M}"


class CalendarDay(models.Model):
    """A date that differs from its weekday: a public holiday, or a 调休 working weekend."""

    date = models.DateField(_("日期"), unique=True)
    is_working = models.BooleanField(_("上班"))
    note = models.CharField(_("说明"), max_length=50, blank=True)

    class Meta:
        verbose_name = _("节假日与调休")
        verbose_name_plural = _("节假日与调休")
        ordering = ["date"]
        constraints = [bounds.date_in_range("date", name="calendar_day_in_range")]

    def __str__(self) -> str:
        state = _("上班") if self.is_working else _("休息")
        return f"{self.date} {state}"


@pghistory.track(
    pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent()
)
class Asset(models.Model):
    """What a customer owns from us, over its whole life: a unit, an appliance, a contract."""

    class Kind(models.TextChoices):
        UNIT = "unit", _("房屋单元")
        APPLIANCE = "appliance", _("设备电器")
        EQUIPMENT = "equipment", _("设施设备")
        CONTRACT = "contract", _("合同")

    customer = models.ForeignKey(
        "customers.Customer",
        on_delete=models.CASCADE,
        related_name="assets",
        verbose_name=_("客户"),
    )
    kind = models.CharField(_("类型"), max_length=20, choices=Kind, default=Kind.UNIT)
    name = models.CharField(_("名称"), max_length=100)
    serial = models.CharField(_("编号"), max_length=60, blank=True)
    delivered_on = models.DateField(_("交付日期"), null=True, blank=True)
    warranty_until = models.DateField(_("保修截止"), null=True, blank=True)
    dealer = models.ForeignKey(
        "customers.Customer",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="sold_assets",
        verbose_name=_("经销商/分销商"),
        limit_choices_to={"kind__in": ["dealer", "distributor", "agent", "wholesaler"]},
    )
    notes = models.TextField(_("备注"), blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("客户资产")
        verbose_name_plural = _("客户资产")
        constraints = [
            bounds.date_in_range(
                "delivered_on", "warranty_until", name="asset_dates_in_range"
            ),
        ]
        indexes = [
            # The settings area's asset list: filter by kind and warranty, search by
            # name or serial (trigram, as the customers' phone search).
            models.Index(fields=["kind", "-id"], name="asset_kind"),
            models.Index(fields=["warranty_until"], name="asset_warranty"),
            GinIndex(
                OpClass(Upper("name"), name="gin_trgm_ops"), name="asset_name_trgm"
            ),
            GinIndex(
                OpClass(Upper("serial"), name="gin_trgm_ops"), name="asset_serial_trgm"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def in_warranty(self) -> bool | None:
        if self.warranty_until is None:
            return None
        return timezone.localdate() <= self.warranty_until


class TicketQuerySet(models.QuerySet):
    def visible_to(self, user: settings.AUTH_USER_MODEL) -> TicketQuerySet:
        """Service desk and admins see every ticket; others see their customers' tickets."""
        if access.visibility_scope(user) == "all":
            return self
        if user.role is None:
            return self.none()
        from customers.models import Customer

        return self.filter(
            models.Q(customer__in=Customer.objects.visible_to(user))
            | models.Q(assignee=user)
        )

    def open(self) -> TicketQuerySet:
        return self.exclude(status__in=[Ticket.Status.RESOLVED, Ticket.Status.CLOSED])


@pghistory.track(
    pghistory.InsertEvent(),
    pghistory.UpdateEvent(),
    pghistory.DeleteEvent(),
    exclude=["version", "updated_at"],
)
class Ticket(models.Model):
    class Status(models.TextChoices):
        NEW = "new", _("新建")
        ASSIGNED = "assigned", _("已分派")
        IN_PROGRESS = "in_progress", _("处理中")
        WAITING = "waiting", _("等待客户")
        RESOLVED = "resolved", _("已解决")
        CLOSED = "closed", _("已关闭")

    class Channel(models.TextChoices):
        HOTLINE = "hotline", _("热线电话")
        WECHAT = "wechat", _("微信")
        WALK_IN = "walk_in", _("来访")
        WEB = "web", _("网页表单")
        EMAIL = "email", _("邮件")
        ON_SITE = "on_site", _("现场")

    # Read aloud on the phone: year plus a six-digit number, e.g. 2026000042.
    reference = models.CharField(_("工单号"), max_length=12, unique=True)
    customer = models.ForeignKey(
        "customers.Customer",
        on_delete=models.PROTECT,
        related_name="tickets",
        verbose_name=_("客户"),
    )
    contact_name = models.CharField(_("联系人"), max_length=50, blank=True)
    contact_phone = models.CharField(_("联系电话"), max_length=20, blank=True)
    ticket_type = models.CharField(_("类型"), max_length=20, choices=TicketType)
    channel = models.CharField(_("渠道"), max_length=20, choices=Channel)
    category = models.ForeignKey(
        Category,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="tickets",
        verbose_name=_("分类"),
    )
    priority = models.CharField(
        _("优先级"), max_length=10, choices=Priority, default=Priority.NORMAL
    )
    subject = models.CharField(_("主题"), max_length=200)
    description = models.TextField(_("描述"))
    asset = models.ForeignKey(
        Asset,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="tickets",
        verbose_name=_("相关资产"),
    )
    dealer = models.ForeignKey(
        "customers.Customer",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="dealer_tickets",
        verbose_name=_("经销商"),
    )
    team = models.ForeignKey(
        "accounts.Team",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="tickets",
        verbose_name=_("处理团队"),
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="assigned_tickets",
        verbose_name=_("处理人"),
    )
    status = models.CharField(
        _("状态"), max_length=20, choices=Status, default=Status.NEW
    )
    sla_policy = models.ForeignKey(
        SLAPolicy, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    first_response_due_at = models.DateTimeField(
        _("首次响应截止"), null=True, blank=True
    )
    resolution_due_at = models.DateTimeField(_("解决截止"), null=True, blank=True)
    # While waiting on the customer the clocks stop; the business minutes that were
    # left are kept here and become new due times on resume.
    paused_at = models.DateTimeField(null=True, blank=True)
    first_response_left = models.IntegerField(null=True, blank=True)
    resolution_left = models.IntegerField(null=True, blank=True)
    first_responded_at = models.DateTimeField(_("首次响应时间"), null=True, blank=True)
    resolved_at = models.DateTimeField(_("解决时间"), null=True, blank=True)
    closed_at = models.DateTimeField(_("关闭时间"), null=True, blank=True)
    first_response_breached = models.BooleanField(_("首次响应超时"), default=False)
    resolution_breached = models.BooleanField(_("解决超时"), default=False)
    escalation_level = models.PositiveSmallIntegerField(_("升级级别"), default=0)
    resolution_summary = models.TextField(_("解决说明"), blank=True)
    satisfaction = models.PositiveSmallIntegerField(_("满意度"), null=True, blank=True)
    merged_into = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("已合并到"),
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)

    objects = TicketQuerySet.as_manager()

    class Meta:
        verbose_name = _("工单")
        verbose_name_plural = _("工单")
        indexes = [
            # Queues sort open tickets by whichever deadline comes first.
            models.Index(
                fields=["team", "resolution_due_at"],
                name="ticket_team_due",
                condition=~models.Q(status__in=["resolved", "closed"]),
            ),
            models.Index(
                fields=["assignee", "resolution_due_at"],
                name="ticket_assignee_due",
                condition=~models.Q(status__in=["resolved", "closed"]),
            ),
            models.Index(
                fields=["first_response_due_at"],
                name="ticket_unanswered_due",
                condition=models.Q(first_responded_at__isnull=True)
                & ~models.Q(status__in=["resolved", "closed"]),
            ),
            models.Index(
                fields=["resolution_due_at"],
                name="ticket_open_due",
                condition=~models.Q(status__in=["resolved", "closed"]),
            ),
            # SLA compliance per agent over a period, resolved tickets included (个人指标).
            models.Index(
                fields=["assignee", "resolution_due_at"], name="ticket_assignee_all_due"
            ),
            models.Index(fields=["customer", "-created_at"], name="ticket_customer"),
            # "Complaints in the last N days" (segments, dashboards) per customer,
            # answered from the index alone.
            models.Index(
                fields=["customer", "-created_at"],
                name="ticket_customer_complaints",
                condition=models.Q(ticket_type="complaint"),
            ),
            models.Index(fields=["dealer", "-created_at"], name="ticket_dealer"),
            models.Index(fields=["status", "-created_at"], name="ticket_status"),
        ]
        constraints = [
            bounds.datetime_in_range(
                "first_response_due_at",
                "resolution_due_at",
                name="ticket_due_dates_in_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.reference} {self.subject}"

    def get_absolute_url(self) -> str:
        return reverse("service:ticket_detail", args=[self.reference])

    @property
    def is_open(self) -> bool:
        return self.status not in (self.Status.RESOLVED, self.Status.CLOSED)

    @property
    def next_due_at(self):  # noqa: ANN201 - datetime or None
        if not self.is_open or self.paused_at:
            return None
        if self.first_responded_at is None and self.first_response_due_at:
            return self.first_response_due_at
        return self.resolution_due_at


class TicketMessage(models.Model):
    class Kind(models.TextChoices):
        CUSTOMER = "customer", _("客户来信")
        REPLY = "reply", _("回复客户")
        NOTE = "note", _("内部备注")
        CALL = "call", _("电话记录")

    ticket = models.ForeignKey(
        Ticket, on_delete=models.CASCADE, related_name="messages"
    )
    kind = models.CharField(_("类型"), max_length=10, choices=Kind)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    body = models.TextField(_("内容"))
    # A reply to the customer: the e-mail or SMS that carries it (crm/channels).
    delivery = models.OneToOneField(
        "channels.OutboundMessage",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("工单消息")
        verbose_name_plural = _("工单消息")
        indexes = [
            models.Index(fields=["ticket", "created_at", "id"], name="message_ticket")
        ]

    def __str__(self) -> str:
        return f"{self.ticket_id} {self.kind}"


class TicketAttachment(models.Model):
    ticket = models.ForeignKey(
        Ticket, on_delete=models.CASCADE, related_name="attachments"
    )
    file = models.FileField(upload_to="tickets/%Y/%m/")
    original_name = models.CharField(_("文件名"), max_length=200)
    content_type = models.CharField(max_length=100)
    size = models.PositiveIntegerField()
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("附件")
        verbose_name_plural = _("附件")

    def __str__(self) -> str:
        return self.original_name


class TicketTransition(models.Model):
    """Every status change, with who made it: the ticket's own audit of its workflow."""

    ticket = models.ForeignKey(
        Ticket, on_delete=models.CASCADE, related_name="transitions"
    )
    from_status = models.CharField(max_length=20, choices=Ticket.Status, blank=True)
    to_status = models.CharField(max_length=20, choices=Ticket.Status)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    note = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("状态变更")
        verbose_name_plural = _("状态变更")
        indexes = [
            models.Index(fields=["ticket", "created_at"], name="transition_ticket")
        ]

    def __str__(self) -> str:
        return f"{self.from_status} → {self.to_status}"


class TicketLink(models.Model):
    """Two related tickets (always stored with the smaller id first)."""

    a = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="+")
    b = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["a", "b"], name="ticket_link_unique"),
            models.CheckConstraint(
                condition=models.Q(a__lt=models.F("b")), name="ticket_link_order"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.a_id}-{self.b_id}"


class CannedReply(models.Model):
    """A reply template; {客户} {工单号} {处理人} are filled in when used."""

    title = models.CharField(_("标题"), max_length=100)
    body = models.TextField(_("内容"))

    class Meta:
        verbose_name = _("常用回复")
        verbose_name_plural = _("常用回复")
        ordering = ["title"]

    def __str__(self) -> str:
        return self.title


class AssignmentCursor(models.Model):
    """Whose turn it is in a team's round-robin; locked while assigning."""

    team = models.OneToOneField(
        "accounts.Team", on_delete=models.CASCADE, primary_key=True
    )
    last_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )

    def __str__(self) -> str:
        return f"{self.team_id}:{self.last_user_id}"


@pghistory.track(
    pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent()
)
class WorkOrder(models.Model):
    """A request from the desk to a back-office department (后台围绕前台转)."""

    class Status(models.TextChoices):
        OPEN = "open", _("待处理")
        IN_PROGRESS = "in_progress", _("处理中")
        DONE = "done", _("已完成")
        REJECTED = "rejected", _("已退回")

    ticket = models.ForeignKey(
        Ticket, on_delete=models.CASCADE, related_name="work_orders"
    )
    department = models.ForeignKey(
        "accounts.Department",
        on_delete=models.PROTECT,
        related_name="work_orders",
        verbose_name=_("后台部门"),
    )
    title = models.CharField(_("事项"), max_length=200)
    description = models.TextField(_("说明"), blank=True)
    due_at = models.DateTimeField(_("完成时限"))
    status = models.CharField(
        _("状态"), max_length=20, choices=Status, default=Status.OPEN
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="work_orders",
        verbose_name=_("处理人"),
    )
    result = models.TextField(_("处理结果"), blank=True)
    rating = models.PositiveSmallIntegerField(_("前台评分"), null=True, blank=True)
    is_overdue = models.BooleanField(_("已超时"), default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("后台工单")
        verbose_name_plural = _("后台工单")
        indexes = [
            models.Index(
                fields=["department", "due_at"],
                name="workorder_queue",
                condition=models.Q(status__in=["open", "in_progress"]),
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(rating__isnull=True)
                | models.Q(rating__gte=1, rating__lte=5),
                name="workorder_rating_range",
            ),
            bounds.datetime_in_range("due_at", name="workorder_due_in_range"),
        ]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("service:workorder_detail", args=[self.pk])
