"""Customer value (关注大客户): the monthly revenue rollup the Pareto analysis reads,
each customer's RFM scores, the tier rules and the history of tier changes.

Definitions of every figure: docs/value.md.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class CustomerRevenue(models.Model):
    """Revenue of one customer in one calendar month, in both views: as the end
    customer (Payment.customer) and as the dealer/distributor/agent the payment flowed
    through (Payment.channel). Kept by services.revenue_refresh (incremental) and
    rollups.revenue_rebuild (full); both give the same rows."""

    month = models.DateField(_("月份"))  # first day of the month
    customer = models.ForeignKey(
        "customers.Customer",
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("客户"),
    )
    amount = models.DecimalField(
        _("回款（客户视角）"), max_digits=16, decimal_places=2, default=0
    )
    payments = models.PositiveIntegerField(_("回款笔数"), default=0)
    channel_amount = models.DecimalField(
        _("回款（渠道视角）"), max_digits=16, decimal_places=2, default=0
    )
    channel_payments = models.PositiveIntegerField(_("渠道回款笔数"), default=0)

    class Meta:
        verbose_name = _("月度客户回款")
        verbose_name_plural = _("月度客户回款")
        constraints = [
            models.UniqueConstraint(
                fields=["month", "customer"], name="customerrevenue_month_customer"
            ),
        ]
        indexes = [
            models.Index(fields=["customer", "month"], name="customerrevenue_customer"),
            # The Pareto query of each view reads a period's non-zero rows only.
            models.Index(
                fields=["month", "customer"],
                name="customerrevenue_month_amount",
                condition=Q(amount__gt=0),
                include=["amount"],
            ),
            models.Index(
                fields=["month", "customer"],
                name="customerrevenue_month_channel",
                condition=Q(channel_amount__gt=0),
                include=["channel_amount"],
            ),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id} {self.month:%Y-%m}"


class RollupState(models.Model):
    """How far a rollup is: the last payment history event it has read (the
    incremental refresh's watermark) and when it was last brought up to date (the
    freshness shown beside every figure)."""

    name = models.CharField(max_length=40, primary_key=True)
    watermark = models.BigIntegerField(default=0)
    refreshed_at = models.DateTimeField(null=True, blank=True)
    rebuilt_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.name


class ParetoRank(models.Model):
    """One customer's place in a period's Pareto ranking for one view and scope: its
    rank (revenue descending, ties by customer id) and the cumulative revenue down to
    it. Kept by culture/value/pareto_ranks.py from the monthly rollup (rebuilt with it,
    recomputed per touched period and scope by its refresh), so that a value page reads
    the figures by rank instead of sorting the period's customers (docs/value.md)."""

    kind = models.CharField(max_length=7)  # month, quarter, year
    start = models.DateField()  # the period's first day
    view = models.CharField(max_length=8)  # customer, channel
    scope = models.CharField(max_length=24)  # all, dept:<id>, owner:<id>
    rank = models.PositiveIntegerField()
    # A plain reference, as in the dashboards' rollups: millions of rows written per
    # rebuild would each queue a deferred foreign-key check (and forbid TRUNCATE); a
    # deleted customer's rows go at the next rebuild, and the pages skip them.
    customer = models.ForeignKey(
        "customers.Customer",
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    revenue = models.DecimalField(max_digits=16, decimal_places=2)
    cum = models.DecimalField(max_digits=18, decimal_places=2)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "start", "view", "scope", "rank"],
                name="paretorank_key_rank",
            ),
        ]
        indexes = [
            # Set changes: is this customer in the other period's 80 % set?
            models.Index(
                fields=["kind", "start", "view", "scope", "customer"],
                name="paretorank_key_customer",
                include=["rank", "revenue"],
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.start} {self.view} {self.scope} #{self.rank}"


class ParetoSummary(models.Model):
    """The figures of one period's ranking (view, scope) that do not depend on how
    many customers are in scope: payers, total, the size of the 80 % set and how that
    set changed since the previous period. Kept with ParetoRank."""

    kind = models.CharField(max_length=7)
    start = models.DateField()
    view = models.CharField(max_length=8)
    scope = models.CharField(max_length=24)
    payers = models.PositiveIntegerField(default=0)
    total = models.DecimalField(max_digits=18, decimal_places=2, default=0)
    core_count = models.PositiveIntegerField(default=0)
    # Channel view: ranked customers whose kind is not a channel kind (they count in
    # the denominator beside the channel-kind customers in scope).
    other_payers = models.PositiveIntegerField(default=0)
    entered = models.PositiveIntegerField(default=0)
    left = models.PositiveIntegerField(default=0)
    stayed = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "start", "view", "scope"], name="paretosummary_key"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.start} {self.view} {self.scope}"


class ParetoScopeSize(models.Model):
    """Customers in each precomputed scope (the Pareto denominator N) and, of them,
    those of a channel kind (the channel view's). Counted by every revenue refresh
    and rebuild: counting a department's ~500,000 customers per page view took
    ~0.5 s at full size."""

    scope = models.CharField(max_length=24, unique=True)
    customers = models.PositiveIntegerField(default=0)
    channel_customers = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.scope}: {self.customers}"


class CustomerValue(models.Model):
    """A customer's RFM figures over the scoring window, from the last daily run."""

    class Segment(models.TextChoices):
        CHAMPIONS = "champions", _("冠军客户")
        LOYAL = "loyal", _("忠诚客户")
        PROMISING = "promising", _("潜力客户")
        NEEDS_ATTENTION = "needs_attention", _("需要关注")
        ABOUT_TO_SLEEP = "about_to_sleep", _("即将沉睡")
        AT_RISK = "at_risk", _("流失风险")
        HIBERNATING = "hibernating", _("沉睡客户")

    customer = models.OneToOneField(
        "customers.Customer",
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="value",
        verbose_name=_("客户"),
    )
    recency_days = models.PositiveIntegerField(_("最近一次距今（天）"))
    frequency = models.PositiveIntegerField(_("频次"))
    monetary = models.DecimalField(_("金额（元）"), max_digits=16, decimal_places=2)
    r_score = models.PositiveSmallIntegerField(_("R 得分"))
    f_score = models.PositiveSmallIntegerField(_("F 得分"))
    m_score = models.PositiveSmallIntegerField(_("M 得分"))
    segment = models.CharField(_("RFM 分群"), max_length=20, choices=Segment)
    window_start = models.DateField(_("统计起始"))
    window_end = models.DateField(_("统计截止"))
    computed_at = models.DateTimeField(_("计算时间"))

    class Meta:
        verbose_name = _("客户 RFM")
        verbose_name_plural = _("客户 RFM")
        indexes = [
            models.Index(fields=["r_score", "f_score", "customer"], name="value_rf"),
            models.Index(fields=["segment", "customer"], name="value_segment"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(r_score__range=(1, 5))
                & Q(f_score__range=(1, 5))
                & Q(m_score__range=(1, 5)),
                name="customervalue_scores_1_5",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id} R{self.r_score}F{self.f_score}M{self.m_score}"


class RfmCell(models.Model):
    """One cell of the R × F grid per precomputed scope (the same keys as the Pareto
    rankings: `all`, `dept:<id>`, `owner:<id>`): its scored customers and the sum of
    their monetary. Written by `services.rfm_compute` in the transaction that replaces
    value_customervalue, so the grid and the segment totals read at most 25 rows per
    page instead of aggregating a department's ~150,000 scores (1.5–1.9 s at full
    size). Segments are unions of grid cells, so their totals come from here too."""

    scope = models.CharField(max_length=24)
    r_score = models.PositiveSmallIntegerField()
    f_score = models.PositiveSmallIntegerField()
    customers = models.PositiveIntegerField(default=0)
    monetary = models.DecimalField(max_digits=20, decimal_places=2, default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["scope", "r_score", "f_score"], name="rfmcell_scope_cell"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.scope} R{self.r_score}F{self.f_score}: {self.customers}"


def rfm_segment_of(r: int, f: int) -> str:
    """The RFM segment of a grid cell (the same rule as services._SEGMENT_SQL)."""
    if r >= 4 and f >= 4:
        return "champions"
    if r == 3 and f >= 4:
        return "loyal"
    if r <= 2 and f >= 4:
        return "at_risk"
    if r >= 4 and f <= 2:
        return "promising"
    if r <= 2 and f <= 2:
        return "hibernating"
    if r <= 2 and f == 3:
        return "about_to_sleep"
    return "needs_attention"


class TierRule(models.Model):
    """A customer reaches `tier` when, over the last `months` months, its revenue is
    at least `min_revenue` and its RFM total (R+F+M) at least `min_rfm_total` (0: no
    RFM condition). Rules are tried from A to D; the first one met wins, and a
    customer who meets none gets C (the tier of a new customer)."""

    class Tier(models.TextChoices):
        A = "A", "A"
        B = "B", "B"
        C = "C", "C"
        D = "D", "D"

    tier = models.CharField(_("等级"), max_length=1, choices=Tier, unique=True)
    months = models.PositiveSmallIntegerField(_("统计月数"), default=24)
    min_revenue = models.DecimalField(
        _("最低回款（元）"), max_digits=16, decimal_places=2, default=0
    )
    min_rfm_total = models.PositiveSmallIntegerField(
        _("最低 RFM 总分"), default=0, help_text=_("R+F+M，3–15；0 表示不看 RFM。")
    )
    is_active = models.BooleanField(_("启用"), default=True)
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)

    class Meta:
        verbose_name = _("价值等级规则")
        verbose_name_plural = _("价值等级规则")
        ordering = ["tier"]
        constraints = [
            models.CheckConstraint(
                condition=Q(months__range=(1, 60)), name="tierrule_months_1_60"
            ),
            models.CheckConstraint(
                condition=Q(min_rfm_total__lte=15), name="tierrule_rfm_lte_15"
            ),
            models.CheckConstraint(
                condition=Q(min_revenue__gte=0), name="tierrule_revenue_gte_0"
            ),
        ]

    def __str__(self) -> str:
        return str(self.tier)


class TierChange(models.Model):
    """One change of a customer's tier made by the tier rules (or by hand)."""

    customer = models.ForeignKey(
        "customers.Customer",
        on_delete=models.CASCADE,
        related_name="tier_changes",
        verbose_name=_("客户"),
    )
    from_tier = models.CharField(_("原等级"), max_length=1)
    to_tier = models.CharField(_("新等级"), max_length=1)
    reason = models.CharField(_("原因"), max_length=200)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("操作人"),
    )
    at = models.DateTimeField(_("时间"))

    class Meta:
        verbose_name = _("等级变更")
        verbose_name_plural = _("等级变更")
        indexes = [
            models.Index(fields=["customer", "-at"], name="tierchange_customer"),
            models.Index(fields=["-at", "-id"], name="tierchange_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id}: {self.from_tier} → {self.to_tier}"


class SegmentDay(models.Model):
    """One day of a segment's dashboard (culture/value/segment_dashboard.py): its
    size at the end of the day, who entered and left, and what its members (those
    who were members that day) paid, how often they were contacted, how many
    complaints they made and how many became dormant or lost."""

    segment = models.ForeignKey(
        "segments.Segment", on_delete=models.CASCADE, related_name="+"
    )
    day = models.DateField(_("日期"))
    size = models.PositiveIntegerField(_("成员数"), default=0)
    entered = models.PositiveIntegerField(_("进入"), default=0)
    left = models.PositiveIntegerField(_("离开"), default=0)
    revenue = models.DecimalField(
        _("回款（元）"), max_digits=16, decimal_places=2, default=0
    )
    contacts = models.PositiveIntegerField(_("联系次数"), default=0)
    complaints = models.PositiveIntegerField(_("投诉"), default=0)
    churned = models.PositiveIntegerField(_("流失/沉睡"), default=0)

    class Meta:
        verbose_name = _("分群日快照")
        verbose_name_plural = _("分群日快照")
        constraints = [
            models.UniqueConstraint(
                fields=["segment", "day"], name="segmentday_segment_day"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.segment_id} {self.day}"


class SegmentSnapshotState(models.Model):
    """When a segment's daily snapshot was last computed (freshness, and which
    segments were refreshed since)."""

    segment = models.OneToOneField(
        "segments.Segment",
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="snapshot_state",
    )
    computed_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.segment_id} @ {self.computed_at}"
