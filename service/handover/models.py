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

    name = models.CharField(_("名称"), max_length=100)
    project_name = models.CharField(_("项目"), max_length=100)
    venue = models.CharField(_("交付地点"), max_length=200)
    start_date = models.DateField(_("开始日期"))
    end_date = models.DateField(_("结束日期"))
    status = models.CharField(
        _("状态"), max_length=10, choices=Status, default=Status.DRAFT
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
                condition=models.Q(end_time__gt=models.F("start_time")),
                name="handover_slot_times_in_order",
                violation_error_message=_("结束时间必须晚于开始时间。"),
            ),
            bounds.date_in_range("date", name="handover_slot_date_in_range"),
            models.UniqueConstraint(
                fields=["event", "date", "start_time"],
                name="handover_slot_unique_start",
            ),
        ]
        # The unique constraint's index (event, date, start_time) serves the event page.

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


class AppointmentQuerySet(models.QuerySet):
    def visible_to(self, user: settings.AUTH_USER_MODEL) -> AppointmentQuerySet:
        """Appointments of the customers the user may see (same scope as customers)."""
        return access.filter_visible(
            self, user, owner="customer__owner", team="customer__team"
        )

    def active(self) -> AppointmentQuerySet:
        return self.filter(state__in=Appointment.ACTIVE_STATES)


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
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(_("预约时间"), auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = AppointmentQuerySet.as_manager()

    class Meta:
        verbose_name = _("入伙预约")
        verbose_name_plural = _("入伙预约")
        constraints = [
            models.UniqueConstraint(
                fields=["event", "customer"],
                condition=models.Q(state__in=["booked", "checked_in"]),
                name="handover_one_active_appointment_per_customer",
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
