"""Deals (商机) and the payments received on them (回款), which are what Kehu counts as
revenue. A deal belongs to its end customer and, when it flows through a dealer,
distributor or agent, also names that channel customer: revenue counts for both views,
which are never added together (../shared/domain/culture.md, "Dealer revenue")."""

from __future__ import annotations

import pghistory
from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from crm.accounts import access
from crm.core import bounds
from customers.models import NameGrams


def scope_branches(user: settings.AUTH_USER_MODEL) -> list[Q] | None:
    """`user`'s deal scope as the conditions it is the OR of (owner = me, team = my
    team, …), each served by an index on its own column; None means every deal, an
    empty list none (a role without deal pages)."""
    if not user.is_authenticated or not user.has_perm("deals.view_deal"):
        return []
    if access.visibility_scope(user) == "department" and user.team_id:
        # owner_filter's department rule, as id subqueries instead of joins
        # through team and owner: PostgreSQL then combines the owner and team
        # indexes (a bitmap OR) rather than joining every deal to its team.
        from crm.accounts.models import Team, User

        department = user.team.department_id
        return [
            Q(owner=user),
            Q(team__in=Team.objects.filter(department_id=department).values("pk")),
            Q(
                owner__in=User.objects.filter(team__department_id=department).values(
                    "pk"
                )
            ),
        ]
    condition = access.owner_filter(user)
    if condition is None:
        return None
    if condition.connector == Q.OR and not condition.negated:
        return [
            Q(child) if isinstance(child, tuple) else child
            for child in condition.children
        ]
    return [condition]


def scoped_to(
    queryset: models.QuerySet, user: settings.AUTH_USER_MODEL
) -> models.QuerySet:
    """Rows with owner and team fields (deals, their open totals) in `user`'s scope
    (owner/team, KEHU_VISIBILITY); nothing for a role without deal pages (the
    service desk, no role)."""
    branches = scope_branches(user)
    if branches is None:
        return queryset
    if not branches:
        return queryset.none()
    condition = branches[0]
    for branch in branches[1:]:
        condition |= branch
    return queryset.filter(condition)


class DealQuerySet(models.QuerySet):
    def visible_to(self, user: settings.AUTH_USER_MODEL) -> DealQuerySet:
        """The deals of `user`'s scope (see scoped_to)."""
        return scoped_to(self, user)

    def open(self) -> DealQuerySet:
        return self.filter(status="open")


class PaymentQuerySet(models.QuerySet):
    def visible_to(self, user: settings.AUTH_USER_MODEL) -> PaymentQuerySet:
        if not user.is_authenticated or not user.has_perm("deals.view_deal"):
            return self.none()
        return access.filter_visible(self, user, owner="deal__owner", team="deal__team")


class DealStage(models.Model):
    """A configurable step of the pipeline (来访 → 认筹 → 认购 → 签约 → 回款 by default)."""

    name = models.CharField(_("阶段名称"), max_length=30)
    code = models.SlugField(_("代码"), max_length=30, unique=True)
    position = models.PositiveSmallIntegerField(_("顺序"))
    # Weighted forecast: open pipeline value × probability / 100.
    probability = models.PositiveSmallIntegerField(_("赢单概率（%）"), default=0)
    # Reaching a won stage marks the deal won (签约); later stages (回款) stay won.
    is_won = models.BooleanField(_("视为成交"), default=False)
    is_active = models.BooleanField(_("启用"), default=True)

    class Meta:
        verbose_name = _("商机阶段")
        verbose_name_plural = _("商机阶段")
        ordering = ["position", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(probability__lte=100), name="dealstage_probability_range"
            ),
        ]

    def __str__(self) -> str:
        return self.name


@pghistory.track(
    pghistory.InsertEvent(),
    pghistory.UpdateEvent(),
    pghistory.DeleteEvent(),
    exclude=["version", "updated_at", "received_total", "title_grams"],
)
class Deal(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", _("进行中")
        WON = "won", _("已成交")
        LOST = "lost", _("已输单")

    customer = models.ForeignKey(
        "customers.Customer",
        on_delete=models.PROTECT,
        related_name="deals",
        verbose_name=_("客户"),
    )
    # The dealer, distributor or agent the deal flows through, if any.
    channel = models.ForeignKey(
        "customers.Customer",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="channel_deals",
        verbose_name=_("渠道（经销/分销/代理）"),
    )
    title = models.CharField(_("商机名称"), max_length=100)
    # Every 1- and 2-character piece of the title, as customers' names have: the
    # list's search finds the two-character terms Chinese titles are searched by
    # ("别墅", "车位"), which a trigram index cannot (three characters at least).
    title_grams = models.GeneratedField(
        expression=NameGrams("title"),
        output_field=ArrayField(models.TextField()),
        db_persist=True,
    )
    product = models.CharField(_("产品/房号"), max_length=100, blank=True)
    amount = models.DecimalField(_("金额（元）"), max_digits=14, decimal_places=2)
    stage = models.ForeignKey(
        DealStage,
        on_delete=models.PROTECT,
        related_name="deals",
        verbose_name=_("阶段"),
    )
    status = models.CharField(
        _("状态"), max_length=10, choices=Status, default=Status.OPEN
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="deals",
        verbose_name=_("负责人"),
    )
    team = models.ForeignKey(
        "accounts.Team",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="deals",
        verbose_name=_("团队"),
    )
    expected_close_on = models.DateField(_("预计成交日期"), null=True, blank=True)
    closed_on = models.DateField(_("实际成交日期"), null=True, blank=True)
    lost_reason = models.CharField(_("输单原因"), max_length=200, blank=True)
    # Sum of this deal's payments, kept by the payment services in the same transaction.
    received_total = models.DecimalField(
        _("已回款（元）"), max_digits=14, decimal_places=2, default=0
    )
    stage_changed_at = models.DateTimeField(_("阶段变更时间"), auto_now_add=True)
    # Optimistic concurrency: an edit or a move carries the version it was read at.
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)

    objects = DealQuerySet.as_manager()

    class Meta:
        verbose_name = _("商机")
        verbose_name_plural = _("商机")
        permissions = [("import_deal", _("可导入商机"))]
        indexes = [
            models.Index(fields=["customer", "-created_at"], name="deal_customer"),
            models.Index(
                fields=["channel", "-created_at"],
                name="deal_channel",
                condition=Q(channel__isnull=False),
            ),
            models.Index(fields=["owner", "status", "stage"], name="deal_owner_stage"),
            models.Index(fields=["team", "status", "stage"], name="deal_team_stage"),
            models.Index(
                fields=["stage", "-updated_at", "-id"],
                name="deal_open_stage",
                condition=Q(status="open"),
            ),
            # Covering the scope and the title: a dense search's page and bounded
            # count walk it testing both in the index, no row fetched (the count of
            # 翠湖湾's first 1,001 in a team's scope: 70 ms with fetches, 28 without).
            models.Index(
                fields=["-updated_at", "-id"],
                include=["owner", "team", "title"],
                name="deal_recent",
            ),
            models.Index(fields=["closed_on"], name="deal_closed_on"),
            # The board's won columns: the deals of one won stage closed lately,
            # newest first; a stage holding only old wins answers at once.
            models.Index(
                fields=["stage", "-closed_on", "-id"],
                name="deal_won_stage_closed",
                condition=Q(status="won"),
            ),
            # The board filtered to one owner: each column's newest cards by index
            # (through the stage-wide indexes above, an owner's 20 cards were picked
            # out of thousands of the stage's rows).
            models.Index(
                fields=["owner", "stage", "-updated_at", "-id"],
                name="deal_open_owner_stage",
                condition=Q(status="open"),
            ),
            models.Index(
                fields=["owner", "stage", "-closed_on", "-id"],
                name="deal_won_owner_stage",
                condition=Q(status="won"),
            ),
            # The list's filters (docs/deals.md, "Indexes").
            models.Index(fields=["expected_close_on", "id"], name="deal_expected"),
            models.Index(fields=["amount", "id"], name="deal_amount"),
            models.Index(fields=["status", "-updated_at", "-id"], name="deal_status"),
            models.Index(
                fields=["stage", "status", "-updated_at", "-id"], name="deal_stage"
            ),
            # Walked newest first per scope branch (selectors._ranged_ids), covering
            # the range and status/stage filters: the walk tests them in the index.
            *(
                models.Index(
                    fields=[scope, "-updated_at", "-id"],
                    include=["expected_close_on", "amount", "status", "stage"],
                    name=f"deal_{scope}_recent",
                )
                for scope in ("owner", "team")
            ),
            # Per scope column, the range's column, covering the other sort keys and
            # the status and stage filters: a branch sorted by amount or expected
            # date walks these (selectors._ranged_ids), testing filters in the index.
            *(
                models.Index(
                    fields=[scope, column],
                    include=["id", *covered, "status", "stage"],
                    name=f"deal_{scope}_{short}",
                )
                for scope in ("owner", "team")
                for column, short, covered in (
                    (
                        "expected_close_on",
                        "expected",
                        ["updated_at", "created_at", "amount"],
                    ),
                    (
                        "amount",
                        "amount",
                        ["updated_at", "created_at", "expected_close_on"],
                    ),
                )
            ),
            # The title search (selectors._search). Stored pieces, not an expression
            # index on kehu_name_grams(title): a candidate's recheck would call the
            # SQL function again, 44 µs a row, over 30 s for a project name matching
            # a tenth of 3,000,000 deals.
            GinIndex(fields=["title_grams"], name="deal_title_grams"),
        ]
        # Also statistics object deal_title_upper, on UPPER(title) (migration 0012):
        # the dense search's estimate (selectors._search).
        constraints = [
            models.CheckConstraint(
                condition=Q(amount__gte=0), name="deal_amount_gte_0"
            ),
            models.CheckConstraint(
                condition=~Q(status="lost") | ~Q(lost_reason=""),
                name="deal_lost_has_reason",
            ),
            models.CheckConstraint(
                condition=Q(channel__isnull=True) | ~Q(channel=models.F("customer")),
                name="deal_channel_not_customer",
            ),
            bounds.date_in_range(
                "expected_close_on", "closed_on", name="deal_dates_in_range"
            ),
        ]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("deals:deal_detail", args=[self.pk])


class DealStageChange(models.Model):
    """Each move of a deal between stages: the pipeline's history and timeline source."""

    deal = models.ForeignKey(
        Deal, on_delete=models.CASCADE, related_name="stage_changes"
    )
    from_stage = models.ForeignKey(
        DealStage, on_delete=models.PROTECT, null=True, related_name="+"
    )
    to_stage = models.ForeignKey(DealStage, on_delete=models.PROTECT, related_name="+")
    from_status = models.CharField(max_length=10, blank=True)
    to_status = models.CharField(max_length=10)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["deal", "-at"], name="dealstagechange_deal")]

    def __str__(self) -> str:
        return f"{self.deal_id}: {self.from_stage_id} → {self.to_stage_id}"


@pghistory.track(
    pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent()
)
class Payment(models.Model):
    """Money received (回款): Kehu's revenue. Customer and channel are copied from the
    deal so that revenue per customer, per channel and per period reads one table."""

    deal = models.ForeignKey(
        Deal, on_delete=models.PROTECT, related_name="payments", verbose_name=_("商机")
    )
    customer = models.ForeignKey(
        "customers.Customer",
        on_delete=models.PROTECT,
        related_name="payments",
        verbose_name=_("客户"),
    )
    channel = models.ForeignKey(
        "customers.Customer",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="channel_payments",
        verbose_name=_("渠道"),
    )
    amount = models.DecimalField(_("回款金额（元）"), max_digits=14, decimal_places=2)
    received_on = models.DateField(_("回款日期"))
    note = models.CharField(_("备注"), max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        related_name="+",
        verbose_name=_("登记人"),
    )
    created_at = models.DateTimeField(_("登记时间"), auto_now_add=True)

    objects = PaymentQuerySet.as_manager()

    class Meta:
        verbose_name = _("回款")
        verbose_name_plural = _("回款")
        indexes = [
            models.Index(fields=["customer", "received_on"], name="payment_customer"),
            models.Index(
                fields=["channel", "received_on"],
                name="payment_channel",
                condition=Q(channel__isnull=False),
            ),
            models.Index(fields=["received_on"], name="payment_received_on"),
            models.Index(fields=["deal", "received_on"], name="payment_deal"),
            # The customer timeline's payments, newest first.
            models.Index(
                fields=["customer", "-created_at", "-id"],
                name="payment_customer_recent",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(amount__gt=0), name="payment_amount_gt_0"
            ),
            bounds.date_in_range("received_on", name="payment_received_on_range"),
        ]

    def __str__(self) -> str:
        return f"{self.deal} ¥{self.amount}"


class OpenDealTotal(models.Model):
    """Count and ¥ total of the open deals per (stage, owner, team): the pipeline
    board's column headers. With 1,000,000 open deals, summing them per page view took
    ~600 ms; these rows are kept by a PostgreSQL trigger on deals_deal (migration
    0005), so every write path (services, import, demo, bench SQL, merges) keeps them
    right in the same transaction and a column total sums a few dozen rows."""

    stage = models.ForeignKey(DealStage, on_delete=models.CASCADE, related_name="+")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    team = models.ForeignKey(
        "accounts.Team", on_delete=models.CASCADE, null=True, related_name="+"
    )
    deals = models.IntegerField(default=0)
    amount = models.DecimalField(max_digits=18, decimal_places=2, default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["stage", "owner", "team"],
                name="opendealtotal_key",
                nulls_distinct=False,
            ),
        ]

    def __str__(self) -> str:
        return f"{self.stage_id}/{self.owner_id}/{self.team_id}: {self.deals}"


class WonDealDay(models.Model):
    """Count and ¥ total of the deals won per (stage, owner, team, closing day): the
    board's won columns count the last BOARD_WON_DAYS days from a few thousand of
    these rows instead of reading every recent win (334 ms at 3,000,000 deals).
    Kept by a PostgreSQL trigger on deals_deal (migration 0007), like OpenDealTotal."""

    stage = models.ForeignKey(DealStage, on_delete=models.CASCADE, related_name="+")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    team = models.ForeignKey(
        "accounts.Team", on_delete=models.CASCADE, null=True, related_name="+"
    )
    closed_on = models.DateField()
    deals = models.IntegerField(default=0)
    amount = models.DecimalField(max_digits=18, decimal_places=2, default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["stage", "owner", "team", "closed_on"],
                name="wondealday_key",
                nulls_distinct=False,
            ),
        ]
        indexes = [
            models.Index(fields=["closed_on", "stage"], name="wondealday_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.stage_id}/{self.owner_id}/{self.team_id} {self.closed_on}"
