"""入伙 on the day (issue 17): each unit's handover case (交房单), the event's stations
and each case's visit to each station, what the stations record (meter readings, fee
payments, the refusal record), the case's append-only log, and the live board's
counters.

Imported by models.py, so Django sees these models in the `handover` app.

- A case is made at check-in, one per event unit and round (a re-inspection is round
  2). Its state is the outcome the handover reached; every change is one CaseLog row.
- Stations are per event, ordered; a station with prerequisites (keys after
  inspection, fees and signing) is gated; the others may be visited in any order.
- StationVisit timestamps (queued, called, started, finished) give waits and service
  times; its state drives each station's queue.
- BoardCounter rows are bumped by the services in the same transaction that changes a
  case, a visit or a defect, so the live board reads a few rows, never the event.
"""

from __future__ import annotations

import pghistory
from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from crm.core import bounds

__all__ = [
    "BoardCounter",
    "CaseLog",
    "FeePayment",
    "MeterReading",
    "RefusalEvidence",
    "RefusalRecord",
    "StationDefinition",
    "StationVisit",
    "UnitHandover",
]

MONEY = {"max_digits": 12, "decimal_places": 2}


# Audited (pghistory): managers add, edit and delete stations (onsite.station_add …).
@pghistory.track(
    pghistory.InsertEvent(),
    pghistory.UpdateEvent(),
    pghistory.DeleteEvent(),
)
class StationDefinition(models.Model):
    """One station (窗口/组) of an event's sequence."""

    class Code(models.TextChoices):
        IDENTITY = "identity", _("身份核验")
        DOCUMENTS = "documents", _("资料审核")
        SETTLEMENT = "settlement", _("房款结算/面积补差")
        FEES = "fees", _("缴费")
        SIGNING = "signing", _("签约")
        INSPECTION = "inspection", _("联合验房")
        METERS = "meters", _("水电气抄表")
        KEYS = "keys", _("钥匙交接")
        ACCEPTANCE = "acceptance", _("签收确认")
        SURVEY = "survey", _("满意度评价")
        TITLE = "title", _("交房即办证")

    event = models.ForeignKey(
        "handover.HandoverEvent",
        on_delete=models.CASCADE,
        related_name="stations",
        verbose_name=_("入伙活动"),
    )
    code = models.CharField(_("站点"), max_length=16, choices=Code)
    name = models.CharField(_("名称"), max_length=40)
    position = models.PositiveSmallIntegerField(_("顺序"))
    required = models.BooleanField(_("必经"), default=True)
    # Gating: this station is called only once these are done (or skipped).
    prerequisites = models.ManyToManyField(
        "self",
        symmetrical=False,
        blank=True,
        related_name="unlocks",
        verbose_name=_("前置站点"),
    )
    counters = models.PositiveSmallIntegerField(
        _("窗口数"), default=1, validators=[MinValueValidator(1), MaxValueValidator(50)]
    )
    target_minutes = models.PositiveSmallIntegerField(
        _("目标办理时长（分钟）"),
        default=10,
        validators=[MinValueValidator(1), MaxValueValidator(240)],
    )

    class Meta:
        verbose_name = _("交付站点")
        verbose_name_plural = _("交付站点")
        ordering = ["event", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["event", "code"], name="handover_station_unique_code"
            ),
            models.UniqueConstraint(
                fields=["event", "position"], name="handover_station_unique_position"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class UnitHandover(models.Model):
    """交房单: one event unit's handover, from check-in to its outcome."""

    class State(models.TextChoices):
        CHECKED_IN = "checked_in", _("已签到")
        IN_PROGRESS = "in_progress", _("办理中")
        ACCEPTED = "accepted", _("已收楼")
        ACCEPTED_WITH_DEFECTS = "accepted_defects", _("带问题收楼")
        NOT_ACCEPTED = "not_accepted", _("验收未通过")
        REFUSED = "refused", _("拒收")
        ABSENT = "absent", _("未到访")

    class Attendee(models.TextChoices):
        OWNER = "owner", _("业主本人")
        CO_OWNER = "co_owner", _("共有人")
        PROXY = "proxy", _("受托人")

    class KeyAction(models.TextChoices):
        TO_OWNER = "owner", _("交业主")
        TO_PROXY = "proxy", _("交受托人")
        CUSTODY = "custody", _("物业托管")

    class NoShowNext(models.TextChoices):
        SECOND_NOTICE = "second_notice", _("再次通知")
        SCATTERED = "scattered", _("转零星交付")

    OPEN_STATES = (State.CHECKED_IN, State.IN_PROGRESS)

    event = models.ForeignKey(
        "handover.HandoverEvent",
        on_delete=models.PROTECT,
        related_name="cases",
        verbose_name=_("入伙活动"),
    )
    event_unit = models.ForeignKey(
        "handover.EventUnit",
        on_delete=models.PROTECT,
        related_name="cases",
        verbose_name=_("房间"),
    )
    appointment = models.OneToOneField(
        "handover.Appointment",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="case",
        verbose_name=_("预约"),
    )
    customer = models.ForeignKey(
        "customers.Customer",
        on_delete=models.PROTECT,
        related_name="handover_cases",
        verbose_name=_("业主"),
    )
    round = models.PositiveSmallIntegerField(_("轮次"), default=1)
    state = models.CharField(
        _("状态"), max_length=16, choices=State, default=State.CHECKED_IN
    )
    # 取号: per event and day, from 1.
    queue_date = models.DateField(_("取号日期"), null=True, blank=True)
    queue_number = models.PositiveIntegerField(_("排队号"), null=True, blank=True)
    walk_in = models.BooleanField(_("现场无预约"), default=False)
    attendee = models.CharField(
        _("到场人"), max_length=10, choices=Attendee, default=Attendee.OWNER
    )
    proxy_authorisation = models.ForeignKey(
        "property.ProxyAuthorisation",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="handover_cases",
        verbose_name=_("委托书"),
    )
    identity_checked_at = models.DateTimeField(_("身份核验时间"), null=True, blank=True)
    identity_checked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("核验人"),
    )
    proxy_verified_by_phone = models.BooleanField(_("已电话核实委托"), default=False)
    # Empty only on a no-show's case (未到访), made by the daily sweep.
    checked_in_at = models.DateTimeField(_("签到时间"), null=True, blank=True)
    checked_in_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("签到人"),
    )
    started_at = models.DateTimeField(_("开始办理"), null=True, blank=True)
    finished_at = models.DateTimeField(_("办结时间"), null=True, blank=True)
    # Price settlement (面积补差): positive = the owner pays, negative = refund.
    area_difference_amount = models.DecimalField(
        _("面积补差金额（元）"), null=True, blank=True, **MONEY
    )
    key_action = models.CharField(
        _("钥匙去向"), max_length=10, choices=KeyAction, blank=True
    )
    key_items = models.JSONField(_("钥匙清单"), default=dict, blank=True)
    keys_handed_at = models.DateTimeField(_("钥匙交接时间"), null=True, blank=True)
    # The acceptance signature drawn on screen (PNG), stored with the case.
    signature = models.FileField(
        _("签收签名"), upload_to="handover/signatures/%Y/%m/", blank=True
    )
    signed_at = models.DateTimeField(_("签收时间"), null=True, blank=True)
    rating = models.PositiveSmallIntegerField(
        _("现场满意度（1-5）"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(5)],
    )
    rating_comment = models.CharField(_("评价"), max_length=200, blank=True)
    no_show_next = models.CharField(
        _("未到访后续"), max_length=16, choices=NoShowNext, blank=True
    )
    reinspection_appointment = models.ForeignKey(
        "handover.Appointment",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="reinspection_of",
        verbose_name=_("复验预约"),
    )
    # 验收未通过: the day the owner asked to come back; the re-inspection booking
    # (reinspection_appointment) is on or after it.
    reinspection_on = models.DateField(_("复验日期"), null=True, blank=True)
    outcome_at = models.DateTimeField(_("结果时间"), null=True, blank=True)
    outcome_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("结果登记人"),
    )
    outcome_note = models.CharField(_("结果说明"), max_length=300, blank=True)
    # Concurrent edits at two counters are detected, not lost.
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("交房单")
        verbose_name_plural = _("交房单")
        constraints = [
            models.UniqueConstraint(
                fields=["event_unit", "round"], name="handover_case_unique_round"
            ),
            models.UniqueConstraint(
                fields=["event", "queue_date", "queue_number"],
                condition=Q(queue_number__isnull=False),
                name="handover_case_unique_queue_number",
            ),
            models.CheckConstraint(
                condition=Q(round__gte=1, round__lte=20),
                name="handover_case_round_range",
            ),
            models.CheckConstraint(
                condition=Q(rating__isnull=True) | Q(rating__gte=1, rating__lte=5),
                name="handover_case_rating_range",
            ),
            models.CheckConstraint(
                condition=Q(
                    area_difference_amount__isnull=True,
                )
                | Q(
                    area_difference_amount__gte=-10_000_000,
                    area_difference_amount__lte=10_000_000,
                ),
                name="handover_case_area_difference_range",
            ),
            bounds.date_in_range(
                "reinspection_on", name="handover_case_reinspection_in_range"
            ),
        ]
        indexes = [
            models.Index(fields=["event", "state"], name="handover_case_event_state"),
        ]

    def __str__(self) -> str:
        return f"{self.event_unit_id} #{self.round}"

    @property
    def is_open(self) -> bool:
        return self.state in self.OPEN_STATES


class StationVisit(models.Model):
    """A case at one station: waiting in its queue, called, in service, done."""

    class State(models.TextChoices):
        PENDING = "pending", _("未到此站")  # gated: prerequisites not done yet
        WAITING = "waiting", _("排队中")
        CALLED = "called", _("已叫号")
        IN_SERVICE = "in_service", _("办理中")
        DONE = "done", _("已完成")
        SKIPPED = "skipped", _("已跳过")

    case = models.ForeignKey(
        UnitHandover,
        on_delete=models.CASCADE,
        related_name="visits",
        verbose_name=_("交房单"),
    )
    station = models.ForeignKey(
        StationDefinition,
        on_delete=models.PROTECT,
        related_name="visits",
        verbose_name=_("站点"),
    )
    state = models.CharField(
        _("状态"), max_length=12, choices=State, default=State.PENDING
    )
    queued_at = models.DateTimeField(_("进入排队"), null=True, blank=True)
    called_at = models.DateTimeField(_("叫号时间"), null=True, blank=True)
    started_at = models.DateTimeField(_("开始办理"), null=True, blank=True)
    finished_at = models.DateTimeField(_("完成时间"), null=True, blank=True)
    counter = models.PositiveSmallIntegerField(_("窗口"), null=True, blank=True)
    operator = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("办理人"),
    )
    note = models.CharField(_("备注"), max_length=300, blank=True)
    skip_reason = models.CharField(_("跳过原因"), max_length=200, blank=True)
    version = models.PositiveIntegerField(default=1)

    class Meta:
        verbose_name = _("站点办理")
        verbose_name_plural = _("站点办理")
        constraints = [
            models.UniqueConstraint(
                fields=["case", "station"], name="handover_visit_unique_station"
            ),
        ]
        indexes = [
            # A station's queue: who waits, oldest first.
            models.Index(
                fields=["station", "queued_at"],
                condition=Q(state__in=["waiting", "called", "in_service"]),
                name="handover_visit_queue",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.case_id} @ {self.station_id}"


class MeterReading(models.Model):
    """水电气表底数, read with the owner at the meters station."""

    class Kind(models.TextChoices):
        WATER = "water", _("水表")
        ELECTRICITY = "electricity", _("电表")
        GAS = "gas", _("燃气表")
        RECLAIMED = "reclaimed", _("中水表")

    case = models.ForeignKey(
        UnitHandover,
        on_delete=models.CASCADE,
        related_name="meter_readings",
        verbose_name=_("交房单"),
    )
    kind = models.CharField(_("表类"), max_length=12, choices=Kind)
    meter_number = models.CharField(_("表号"), max_length=40, blank=True)
    reading = models.DecimalField(
        _("读数"),
        max_digits=12,
        decimal_places=2,
        validators=[MinValueValidator(0), MaxValueValidator(9_999_999)],
    )
    read_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("抄表人"),
    )
    read_at = models.DateTimeField(_("抄表时间"), auto_now_add=True)

    class Meta:
        verbose_name = _("表底数")
        verbose_name_plural = _("表底数")
        constraints = [
            models.UniqueConstraint(
                fields=["case", "kind"], name="handover_meter_unique_kind"
            ),
            models.CheckConstraint(
                condition=Q(reading__gte=0, reading__lte=9_999_999),
                name="handover_meter_reading_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.reading}"


class FeePaymentQuerySet(models.QuerySet):
    def valid(self) -> FeePaymentQuerySet:
        """The lines that count: not voided (作废)."""
        return self.filter(voided_at__isnull=True)


# Money: a wrong line is voided with a reason (captures.fee_void), never deleted, and
# every change is kept (pghistory).
@pghistory.track(
    pghistory.InsertEvent(),
    pghistory.UpdateEvent(),
    pghistory.DeleteEvent(),
)
class FeePayment(models.Model):
    """One fee collected at the fees station (物业费、维修基金…)."""

    class Item(models.TextChoices):
        PROPERTY_FEE = "property_fee", _("物业费")
        MAINTENANCE_FUND = "maintenance_fund", _("专项维修资金")
        AREA_DIFFERENCE = "area_difference", _("面积补差")
        DEED_TAX = "deed_tax", _("契税")
        REGISTRATION = "registration", _("产权登记费")
        RENOVATION_DEPOSIT = "renovation_deposit", _("装修押金")
        OTHER = "other", _("其他")

    class Method(models.TextChoices):
        WECHAT = "wechat", _("微信")
        ALIPAY = "alipay", _("支付宝")
        POS = "pos", _("刷卡")
        CASH = "cash", _("现金")
        TRANSFER = "transfer", _("转账")

    case = models.ForeignKey(
        UnitHandover,
        on_delete=models.CASCADE,
        related_name="fee_payments",
        verbose_name=_("交房单"),
    )
    item = models.CharField(_("费用项"), max_length=20, choices=Item)
    amount = models.DecimalField(
        _("金额（元）"),
        validators=[MinValueValidator(0), MaxValueValidator(10_000_000)],
        **MONEY,
    )
    method = models.CharField(_("支付方式"), max_length=10, choices=Method)
    receipt_number = models.CharField(_("收据号"), max_length=40, blank=True)
    cashier = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("收款人"),
    )
    paid_at = models.DateTimeField(_("收款时间"), auto_now_add=True)
    # 作废: a line entered wrong stays on record, out of every total.
    voided_at = models.DateTimeField(_("作废时间"), null=True, blank=True)
    voided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("作废人"),
    )
    void_reason = models.CharField(_("作废原因"), max_length=200, blank=True)

    objects = FeePaymentQuerySet.as_manager()

    class Meta:
        verbose_name = _("收费记录")
        verbose_name_plural = _("收费记录")
        constraints = [
            models.CheckConstraint(
                condition=Q(amount__gte=0, amount__lte=10_000_000),
                name="handover_fee_amount_range",
            ),
            # Voided: when, by whom and why, all three; not voided: none of them.
            models.CheckConstraint(
                condition=Q(
                    voided_at__isnull=True, voided_by__isnull=True, void_reason=""
                )
                | (
                    Q(voided_at__isnull=False, voided_by__isnull=False)
                    & ~Q(void_reason="")
                ),
                name="handover_fee_void_complete",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_item_display()} {self.amount}"

    @property
    def is_voided(self) -> bool:
        return self.voided_at is not None


class RefusalRecord(models.Model):
    """拒收: why the owner formally refused the unit, and the deemed-delivery date."""

    class Reason(models.TextChoices):
        QUALITY = "quality", _("质量问题")
        AREA = "area", _("面积差异超约定")
        UTILITIES = "utilities", _("水电气或道路未通")
        DOCUMENTS = "documents", _("法定文件不全")
        PRICE = "price", _("价款或补偿争议")
        DELAY = "delay", _("延期交付赔偿")
        GROUP = "group", _("群体维权")
        OTHER = "other", _("其他")

    case = models.OneToOneField(
        UnitHandover,
        on_delete=models.CASCADE,
        related_name="refusal",
        verbose_name=_("交房单"),
    )
    reason = models.CharField(_("拒收原因"), max_length=12, choices=Reason)
    details = models.TextField(_("详细说明"), max_length=2000)
    owner_statement = models.TextField(_("业主陈述"), max_length=2000, blank=True)
    # From the 交房通知书: fees and risk run from this date if the refusal is not
    # upheld (the contract's deemed delivery).
    notice_deadline = models.DateField(_("通知书交付期限（视为交付日）"))
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("登记人"),
    )
    recorded_at = models.DateTimeField(_("登记时间"), auto_now_add=True)

    class Meta:
        verbose_name = _("拒收记录")
        verbose_name_plural = _("拒收记录")
        constraints = [
            bounds.date_in_range(
                "notice_deadline", name="handover_refusal_deadline_in_range"
            ),
        ]

    def __str__(self) -> str:
        return self.get_reason_display()


class RefusalEvidence(models.Model):
    refusal = models.ForeignKey(
        RefusalRecord,
        on_delete=models.CASCADE,
        related_name="evidence",
        verbose_name=_("拒收记录"),
    )
    file = models.FileField(_("证据照片"), upload_to="handover/refusals/%Y/%m/")
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    uploaded_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.file.name


class CaseLog(models.Model):
    """Append-only: every check-in, station step and outcome of a case, with who."""

    case = models.ForeignKey(
        UnitHandover,
        on_delete=models.CASCADE,
        related_name="log",
        verbose_name=_("交房单"),
    )
    # What happened, as a short code ("checked_in", "station_done", "outcome", …).
    action = models.CharField(_("动作"), max_length=24)
    station = models.ForeignKey(
        StationDefinition,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    from_state = models.CharField(max_length=16, blank=True)
    to_state = models.CharField(max_length=16, blank=True)
    note = models.CharField(_("说明"), max_length=300, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("交房单记录")
        verbose_name_plural = _("交房单记录")
        indexes = [models.Index(fields=["case", "at"], name="handover_caselog_case")]

    def __str__(self) -> str:
        return self.action


class BoardCounter(models.Model):
    """One figure of an event's live board, kept current by the services that change
    cases, visits and defects (in their transaction), e.g. "case:accepted",
    "station:12:waiting", "station:12:wait_seconds", "hour:09:done",
    "defect:severity:P0", "fees:cents", "rating:sum". Rebuildable from the event's
    rows (counters.rebuild), so a recount can check it."""

    event = models.ForeignKey(
        "handover.HandoverEvent",
        on_delete=models.CASCADE,
        related_name="board_counters",
    )
    key = models.CharField(max_length=60)
    value = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["event", "key"], name="handover_counter_unique_key"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.key}={self.value}"
