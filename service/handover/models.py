"""入伙 (collective handover): events, their time slots, and customers' appointments.

The capacity rule lives in two places on purpose: services take a seat with a
conditional UPDATE (`booked_count < capacity`), and the CheckConstraint below refuses
any write that would overbook, whatever code path it comes from.
"""

from __future__ import annotations

import datetime as dt

import pghistory
from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crm.accounts import access
from crm.core import bounds


@pghistory.track(
    pghistory.InsertEvent(),
    pghistory.UpdateEvent(),
    pghistory.DeleteEvent(),
    exclude=["updated_at"],
)
class HandoverEvent(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", _("草稿")
        PUBLISHED = "published", _("已发布")
        CLOSED = "closed", _("已关闭")

    class Kind(models.TextChoices):
        CONCENTRATED = "concentrated", _("集中交付")
        SCATTERED = "scattered", _("零星交付")
        OPEN_DAY = "open_day", _("工地开放日")
        PRE_INSPECTION = "pre_inspection", _("内部预验")

    name = models.CharField(_("名称"), max_length=100)
    kind = models.CharField(
        _("类型"), max_length=16, choices=Kind, default=Kind.CONCENTRATED
    )
    # The property register's project whose units are in scope; events made before
    # the register existed name their project in text only.
    project = models.ForeignKey(
        "property.Project",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="handover_events",
        verbose_name=_("楼盘"),
    )
    project_name = models.CharField(_("项目"), max_length=100)
    venue = models.CharField(_("交付地点"), max_length=200)
    start_date = models.DateField(_("开始日期"))
    end_date = models.DateField(_("结束日期"))
    status = models.CharField(
        _("状态"), max_length=10, choices=Status, default=Status.DRAFT
    )
    # Owners change or cancel their own booking up to this many hours before the slot.
    owner_cutoff_hours = models.PositiveSmallIntegerField(
        _("业主自助改约截止（小时）"), default=24
    )
    # Seats held back for walk-ins are released to everyone at this hour of the
    # slot's day (an empty hold helps nobody once the morning rush is over).
    walk_in_release_time = models.TimeField(
        _("预留名额释放时间"), default=dt.time(12, 0)
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("入伙活动")
        verbose_name_plural = _("入伙活动")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(end_date__gte=models.F("start_date")),
                name="handover_event_dates_in_order",
                violation_error_message=_("结束日期不能早于开始日期。"),
            ),
            bounds.date_in_range(
                "start_date", "end_date", name="handover_event_dates_in_range"
            ),
            models.CheckConstraint(
                condition=models.Q(owner_cutoff_hours__lte=720),
                name="handover_event_cutoff_range",
            ),
        ]
        indexes = [
            models.Index(fields=["-start_date", "-id"], name="handover_event_recent"),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("handover:event_detail", args=[self.pk])

    @property
    def is_bookable(self) -> bool:
        return self.status == self.Status.PUBLISHED


@pghistory.track(
    pghistory.InsertEvent(),
    pghistory.UpdateEvent(),
    pghistory.DeleteEvent(),
)
class Batch(models.Model):
    """批次: units of an event (by building or floor) with their own booking window
    and slots. An owner books only into their batch's slots; staff may override."""

    event = models.ForeignKey(
        HandoverEvent,
        on_delete=models.CASCADE,
        related_name="batches",
        verbose_name=_("入伙活动"),
    )
    name = models.CharField(_("批次名称"), max_length=60)
    booking_opens_at = models.DateTimeField(_("开放预约"))
    booking_closes_at = models.DateTimeField(_("截止预约"))
    description = models.CharField(_("说明"), max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("批次")
        verbose_name_plural = _("批次")
        ordering = ["event", "booking_opens_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["event", "name"],
                name="handover_batch_unique_name",
                violation_error_message=_("该活动已有同名批次。"),
            ),
            models.CheckConstraint(
                condition=models.Q(booking_closes_at__gt=models.F("booking_opens_at")),
                name="handover_batch_window_in_order",
                violation_error_message=_("截止预约时间必须晚于开放预约时间。"),
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def is_open(self, now: dt.datetime | None = None) -> bool:
        now = now or timezone.now()
        return self.booking_opens_at <= now < self.booking_closes_at


@pghistory.track(
    pghistory.InsertEvent(),
    pghistory.UpdateEvent(),
    pghistory.DeleteEvent(),
    # The seat counter changes with every booking; the appointments' own history
    # already says who took and released each seat.
    exclude=["booked_count"],
)
class TimeSlot(models.Model):
    event = models.ForeignKey(
        HandoverEvent,
        on_delete=models.CASCADE,
        related_name="slots",
        verbose_name=_("入伙活动"),
    )
    date = models.DateField(_("日期"))
    start_time = models.TimeField(_("开始时间"))
    end_time = models.TimeField(_("结束时间"))
    capacity = models.PositiveIntegerField(_("容量（户）"))
    booked_count = models.PositiveIntegerField(_("已约"), default=0)
    # Seats only walk-ins may take until the event's release hour on the slot's day.
    walk_in_hold = models.PositiveIntegerField(_("现场预留（户）"), default=0)
    # Null: open to every unit of the event (events without batches).
    batch = models.ForeignKey(
        Batch,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="slots",
        verbose_name=_("批次"),
    )

    class Meta:
        verbose_name = _("时段")
        verbose_name_plural = _("时段")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(capacity__gt=0),
                name="handover_slot_capacity_positive",
            ),
            models.CheckConstraint(
                condition=models.Q(booked_count__gte=0),
                name="handover_slot_booked_not_negative",
            ),
            models.CheckConstraint(
                condition=models.Q(booked_count__lte=models.F("capacity")),
                name="handover_slot_not_overbooked",
            ),
            models.CheckConstraint(
                condition=models.Q(walk_in_hold__lte=models.F("capacity")),
                name="handover_slot_hold_within_capacity",
                violation_error_message=_("现场预留不能超过容量。"),
            ),
            models.CheckConstraint(
                condition=models.Q(end_time__gt=models.F("start_time")),
                name="handover_slot_times_in_order",
                violation_error_message=_("结束时间必须晚于开始时间。"),
            ),
            bounds.date_in_range("date", name="handover_slot_date_in_range"),
            # Per batch: two batches (buildings 1–5 and 6–10, at their own desks) may
            # both start at 09:00. A null batch counts as one batch (NULLS NOT DISTINCT).
            models.UniqueConstraint(
                fields=["event", "batch", "date", "start_time"],
                name="handover_slot_unique_start",
                nulls_distinct=False,
            ),
        ]
        indexes = [
            # The event page lists its slots by day and time, every batch together.
            models.Index(
                fields=["event", "date", "start_time"], name="handover_slot_event_day"
            ),
            models.Index(
                fields=["batch", "date", "start_time"], name="handover_slot_batch"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.date:%m-%d} {self.start_time:%H:%M}–{self.end_time:%H:%M}"

    def get_absolute_url(self) -> str:
        return reverse("handover:slot_detail", args=[self.pk])

    @property
    def starts_at(self) -> dt.datetime:
        return dt.datetime.combine(
            self.date, self.start_time, tzinfo=timezone.get_current_timezone()
        )

    @property
    def is_full(self) -> bool:
        return self.booked_count >= self.capacity

    @property
    def seats_left(self) -> int:
        return max(self.capacity - self.booked_count, 0)

    @property
    def is_past(self) -> bool:
        return self.starts_at <= timezone.now()

    @property
    def is_today(self) -> bool:
        """The slot's day in the project's time zone: the only day to check in on."""
        return self.date == timezone.localdate()


@pghistory.track(
    pghistory.InsertEvent(),
    pghistory.UpdateEvent(),
    pghistory.DeleteEvent(),
)
class EventUnit(models.Model):
    """A unit in an event's scope: its batch and whether it may be handed over."""

    class Eligibility(models.TextChoices):
        ELIGIBLE = "eligible", _("可交付")
        NOT_READY = "not_ready", _("房屋未具备交付条件")
        ARREARS = "arrears", _("业主欠款")
        LEGAL_HOLD = "legal_hold", _("司法查封/法律限制")

    event = models.ForeignKey(
        HandoverEvent,
        on_delete=models.CASCADE,
        related_name="event_units",
        verbose_name=_("入伙活动"),
    )
    unit = models.ForeignKey(
        "property.Unit",
        on_delete=models.PROTECT,
        related_name="event_units",
        verbose_name=_("房间"),
    )
    batch = models.ForeignKey(
        Batch,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="event_units",
        verbose_name=_("批次"),
    )
    eligibility = models.CharField(
        _("交付资格"), max_length=12, choices=Eligibility, default=Eligibility.ELIGIBLE
    )
    eligibility_note = models.CharField(_("说明"), max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("活动房间")
        verbose_name_plural = _("活动房间")
        constraints = [
            models.UniqueConstraint(
                fields=["event", "unit"], name="handover_event_unit_unique"
            ),
        ]
        indexes = [
            models.Index(fields=["event", "batch", "unit"], name="handover_eu_batch"),
            # The scope page's keyset pages walk an event's units in id order.
            models.Index(fields=["event", "id"], name="handover_eu_event_id"),
            models.Index(
                fields=["event", "eligibility"], name="handover_eu_eligibility"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event} · {self.unit}"

    @property
    def is_eligible(self) -> bool:
        return self.eligibility == self.Eligibility.ELIGIBLE


class AppointmentQuerySet(models.QuerySet):
    def visible_to(self, user: settings.AUTH_USER_MODEL) -> AppointmentQuerySet:
        """Appointments of the customers the user may see (same scope as customers)."""
        return access.filter_visible(
            self, user, owner="customer__owner", team="customer__team"
        )

    def active(self) -> AppointmentQuerySet:
        """Booked or checked in: the appointments that hold a seat of their slot
        (`booked_count`), finished visits included."""
        return self.filter(state__in=Appointment.ACTIVE_STATES)

    def current(self) -> AppointmentQuerySet:
        """Active and not finished: the one booking a unit (or, without a unit, a
        customer) may hold in an event (the partial unique indexes)."""
        return self.active().filter(finished_at__isnull=True)

    def current_first(self) -> AppointmentQuerySet:
        """The unfinished booking before a finished visit, then the latest."""
        return self.order_by(models.F("finished_at").asc(nulls_first=True), "-pk")


@pghistory.track(
    pghistory.InsertEvent(),
    pghistory.UpdateEvent(),
    pghistory.DeleteEvent(),
    exclude=["version", "updated_at"],
)
class Appointment(models.Model):
    class State(models.TextChoices):
        BOOKED = "booked", _("已预约")
        CHECKED_IN = "checked_in", _("已签到")
        CANCELLED = "cancelled", _("已取消")

    class Channel(models.TextChoices):
        PHONE = "phone", _("电话")
        STAFF = "staff", _("现场/工作人员")
        APP = "app", _("App")
        OWNER_LINK = "owner_link", _("业主自助（短信链接）")
        WALK_IN = "walk_in", _("现场无预约")

    ACTIVE_STATES = (State.BOOKED, State.CHECKED_IN)

    # Copied from the slot so that the database itself can hold "one active
    # appointment per customer per event" (a partial unique index needs the column).
    event = models.ForeignKey(
        HandoverEvent,
        on_delete=models.CASCADE,
        related_name="appointments",
        verbose_name=_("入伙活动"),
    )
    slot = models.ForeignKey(
        TimeSlot,
        on_delete=models.PROTECT,
        related_name="appointments",
        verbose_name=_("时段"),
    )
    customer = models.ForeignKey(
        "customers.Customer",
        on_delete=models.PROTECT,
        related_name="handover_appointments",
        verbose_name=_("客户"),
    )
    unit = models.CharField(_("房号"), max_length=50, blank=True)
    # Set when the event has a scope: one active booking per unit (any owner or
    # proxy of it may make it); null for bookings by customer only.
    event_unit = models.ForeignKey(
        EventUnit,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="appointments",
        verbose_name=_("活动房间"),
    )
    # Staff booking outside the unit's batch or eligibility must say why.
    override_reason = models.CharField(_("例外原因"), max_length=200, blank=True)
    party_size = models.PositiveSmallIntegerField(_("到场人数"), default=1)
    channel = models.CharField(
        _("预约渠道"), max_length=10, choices=Channel, default=Channel.STAFF
    )
    state = models.CharField(
        _("状态"), max_length=12, choices=State, default=State.BOOKED
    )
    # Every change goes through filter(version=v).update(version=v+1): a stale page loses.
    version = models.PositiveIntegerField(default=1)
    reminded_at = models.DateTimeField(_("已提醒"), null=True, blank=True)
    checked_in_at = models.DateTimeField(_("签到时间"), null=True, blank=True)
    cancelled_at = models.DateTimeField(_("取消时间"), null=True, blank=True)
    # 办结: set with the case's outcome (outcomes.py). The appointment stays checked
    # in and keeps its seat (the capacity rule counts it), but no longer holds the
    # unit or the customer: a re-inspection can be booked in the same event.
    finished_at = models.DateTimeField(_("办结时间"), null=True, blank=True)
    # Null when the owner booked through their own link (channel owner_link).
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    # The owner or proxy holding the link that made or last changed the booking.
    booked_via = models.ForeignKey(
        "OwnerLink",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("业主链接"),
    )
    created_at = models.DateTimeField(_("预约时间"), auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = AppointmentQuerySet.as_manager()

    class Meta:
        verbose_name = _("入伙预约")
        verbose_name_plural = _("入伙预约")
        constraints = [
            # An investor who bought two units books twice; without a unit, once.
            models.UniqueConstraint(
                fields=["event", "customer"],
                condition=models.Q(
                    state__in=["booked", "checked_in"],
                    event_unit__isnull=True,
                    finished_at__isnull=True,
                ),
                name="handover_one_active_appointment_per_customer",
            ),
            models.UniqueConstraint(
                fields=["event_unit"],
                condition=models.Q(
                    state__in=["booked", "checked_in"], finished_at__isnull=True
                ),
                name="handover_one_active_appointment_per_unit",
            ),
            models.CheckConstraint(
                condition=models.Q(party_size__gte=1, party_size__lte=20),
                name="handover_party_size_range",
            ),
        ]
        indexes = [
            models.Index(fields=["slot", "state"], name="handover_appt_slot_state"),
            models.Index(fields=["customer", "-id"], name="handover_appt_customer"),
        ]

    def __str__(self) -> str:
        return f"{self.customer} · {self.slot}"

    def get_absolute_url(self) -> str:
        return reverse("handover:slot_detail", args=[self.slot_id])

    @property
    def is_active(self) -> bool:
        return self.state in self.ACTIVE_STATES

    @property
    def is_finished(self) -> bool:
        return self.finished_at is not None


class OwnerLink(models.Model):
    """A personal booking link: one holder (an owner or proxy of the unit), signed,
    expiring and revocable. The token in the URL signs (id, nonce); the row says
    whether it still works, so revoking needs no key change."""

    event_unit = models.ForeignKey(
        EventUnit,
        on_delete=models.CASCADE,
        related_name="owner_links",
        verbose_name=_("活动房间"),
    )
    holder = models.ForeignKey(
        "customers.Customer",
        on_delete=models.PROTECT,
        related_name="handover_links",
        verbose_name=_("持有人"),
    )
    nonce = models.CharField(max_length=32)
    expires_at = models.DateTimeField(_("失效时间"))
    revoked_at = models.DateTimeField(_("撤销时间"), null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    last_used_at = models.DateTimeField(_("最近使用"), null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("业主预约链接")
        verbose_name_plural = _("业主预约链接")
        constraints = [
            # One live link per holder and unit: a new notice round reuses it.
            models.UniqueConstraint(
                fields=["event_unit", "holder"],
                condition=models.Q(revoked_at__isnull=True),
                name="handover_one_live_link_per_holder",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.holder} · {self.event_unit.unit}"

    @property
    def is_live(self) -> bool:
        return self.revoked_at is None and self.expires_at > timezone.now()


class NoticeRun(models.Model):
    """One sending of the 入伙通知书 to a batch's owners: a Celery job with progress."""

    class State(models.TextChoices):
        PENDING = "pending", _("排队中")
        RUNNING = "running", _("发送中")
        DONE = "done", _("已完成")
        FAILED = "failed", _("失败")

    class Channel(models.TextChoices):
        SMS = "sms", _("短信")
        EMAIL = "email", _("邮件")
        LETTER = "letter", _("纸质信函（登记已寄出）")

    event = models.ForeignKey(
        HandoverEvent,
        on_delete=models.CASCADE,
        related_name="notice_runs",
        verbose_name=_("入伙活动"),
    )
    batch = models.ForeignKey(
        Batch,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="notice_runs",
        verbose_name=_("批次"),
    )
    channel = models.CharField(_("方式"), max_length=10, choices=Channel)
    round = models.PositiveSmallIntegerField(_("轮次"), default=1)
    state = models.CharField(
        _("状态"), max_length=10, choices=State, default=State.PENDING
    )
    # total and done count event units; skipped counts units and owners left out,
    # by reason in skip_reasons ({"not_ready": 3, "no_mobile": 2, ...}).
    total = models.PositiveIntegerField(_("总数"), default=0)
    done = models.PositiveIntegerField(_("已处理"), default=0)
    skipped = models.PositiveIntegerField(_("跳过"), default=0)
    skip_reasons = models.JSONField(_("跳过原因"), default=dict, blank=True)
    # The job's place (the last event unit id handled), committed with each chunk:
    # a restarted job continues after it (service/handover/notices.py).
    cursor = models.PositiveBigIntegerField(default=0)
    # A worker holds the run until lease_until; queued_at is when it was last queued.
    lease_until = models.DateTimeField(null=True, blank=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(_("错误"), blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("通知发送任务")
        verbose_name_plural = _("通知发送任务")
        indexes = [
            models.Index(fields=["event", "-id"], name="handover_run_event"),
            # The watchdog's look-up of unfinished runs.
            models.Index(
                fields=["state"],
                condition=models.Q(state__in=["pending", "running"]),
                name="handover_run_unfinished",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event} · {self.get_channel_display()} · {self.done}/{self.total}"

    @property
    def percent(self) -> int:
        return 100 if not self.total else min(100, self.done * 100 // self.total)

    @property
    def is_running(self) -> bool:
        return self.state in (self.State.PENDING, self.State.RUNNING)


@pghistory.track(
    pghistory.InsertEvent(),
    pghistory.UpdateEvent(),
    pghistory.DeleteEvent(),
)
class Notice(models.Model):
    """交房通知书 to one owner of one unit, by one channel, in one round."""

    class State(models.TextChoices):
        QUEUED = "queued", _("待发送")
        SENT = "sent", _("已发送")
        DELIVERED = "delivered", _("已送达")
        FAILED = "failed", _("发送失败")

    event_unit = models.ForeignKey(
        EventUnit,
        on_delete=models.CASCADE,
        related_name="notices",
        verbose_name=_("活动房间"),
    )
    recipient = models.ForeignKey(
        "customers.Customer",
        on_delete=models.PROTECT,
        related_name="handover_notices",
        verbose_name=_("收件业主"),
    )
    channel = models.CharField(_("方式"), max_length=10, choices=NoticeRun.Channel)
    round = models.PositiveSmallIntegerField(_("轮次"), default=1)
    state = models.CharField(
        _("状态"), max_length=10, choices=State, default=State.QUEUED
    )
    run = models.ForeignKey(
        NoticeRun,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="notices",
    )
    link = models.ForeignKey(
        OwnerLink,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="notices",
    )
    message = models.OneToOneField(
        "channels.OutboundMessage",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="handover_notice",
    )
    sent_at = models.DateTimeField(_("发送时间"), null=True, blank=True)
    delivered_at = models.DateTimeField(_("送达时间"), null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("入伙通知")
        verbose_name_plural = _("入伙通知")
        constraints = [
            # A job retried after a crash sends nobody the same round twice.
            models.UniqueConstraint(
                fields=["event_unit", "recipient", "channel", "round"],
                name="handover_notice_once_per_round",
            ),
        ]
        indexes = [
            models.Index(fields=["event_unit", "state"], name="handover_notice_eu"),
        ]

    def __str__(self) -> str:
        return (
            f"{self.event_unit.unit} · {self.recipient} · {self.get_channel_display()}"
        )


# 入伙 on the day (issue 17): cases, stations, outcomes, the live board counters.
from service.handover.onsite_models import *  # noqa: E402, F403
