"""Rollup tables behind the managers' dashboard (docs/dashboards.md).

The dashboard never reads customers, deals or tickets: it reads these small tables,
which `rollups.py` keeps current (a scheduled action recomputes the days touched since
its last run) and rebuilds in full (`manage.py rollups_rebuild`). Owner and team are
plain references without a database constraint: a rollup row outlives nothing and
blocks nothing (deleting a team must not wait for its history).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


def _person(related: str) -> models.ForeignKey:
    return models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        null=True,
        related_name="+",
        verbose_name=_("负责人"),
    )


def _team() -> models.ForeignKey:
    return models.ForeignKey(
        "accounts.Team",
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        null=True,
        related_name="+",
        verbose_name=_("团队"),
    )


class RollupState(models.Model):
    """One row per rollup table: how fresh it is and how far the sources were read."""

    name = models.CharField(max_length=40, unique=True)
    # When the table was last brought up to date ("数据更新于 …" on every figure).
    last_updated_at = models.DateTimeField(_("数据更新于"), null=True)
    last_rebuilt_at = models.DateTimeField(null=True)
    # Per source: the last pghistory event id read (the watermark).
    marks = models.JSONField(default=dict)
    days_refreshed = models.PositiveIntegerField(default=0)
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = _("汇总表状态")
        verbose_name_plural = _("汇总表状态")

    def __str__(self) -> str:
        return self.name


class ActivityFigures(models.Model):
    """The counts and sums the daily and monthly tables both keep."""

    owner = _person("+")
    team = _team()
    new_customers = models.IntegerField(default=0)
    contacts = models.IntegerField(default=0)
    followups_due = models.IntegerField(default=0)
    followups_on_time = models.IntegerField(default=0)
    followups_late = models.IntegerField(default=0)
    followups_overdue = models.IntegerField(default=0)
    deals_created = models.IntegerField(default=0)
    deals_created_amount = models.DecimalField(
        max_digits=16, decimal_places=2, default=0
    )
    deals_won = models.IntegerField(default=0)
    deals_won_amount = models.DecimalField(max_digits=16, decimal_places=2, default=0)
    payments = models.IntegerField(default=0)
    revenue = models.DecimalField(max_digits=16, decimal_places=2, default=0)
    tickets_opened = models.IntegerField(default=0)
    complaints_opened = models.IntegerField(default=0)
    sla_met = models.IntegerField(default=0)
    sla_breached = models.IntegerField(default=0)

    class Meta:
        abstract = True


class DailyActivity(ActivityFigures):
    """What happened on one (local) day, per owner and team."""

    day = models.DateField()
    refreshed_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["day", "owner", "team"],
                name="dailyactivity_key",
                nulls_distinct=False,
            ),
        ]
        indexes = [
            models.Index(fields=["team", "day"], name="dailyactivity_team"),
            models.Index(fields=["owner", "day"], name="dailyactivity_owner"),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.owner_id}/{self.team_id}"


class MonthlyActivity(ActivityFigures):
    """The daily rows of one calendar month summed, per owner and team: kept from
    the daily table by every refresh (the touched days' months) and rebuild, so a
    period of whole months reads one row per month and person (a three-year range
    of a department: ~900 rows instead of ~50,000 daily ones)."""

    month = models.DateField()  # the first day of the month

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["month", "owner", "team"],
                name="monthlyactivity_key",
                nulls_distinct=False,
            ),
        ]
        indexes = [
            models.Index(fields=["team", "month"], name="monthlyactivity_team"),
            models.Index(fields=["owner", "month"], name="monthlyactivity_owner"),
        ]

    def __str__(self) -> str:
        return f"{self.month:%Y-%m} {self.owner_id}/{self.team_id}"


class PipelineSnapshot(models.Model):
    """The open pipeline at the end of a day, per stage, owner and team."""

    day = models.DateField()
    stage = models.ForeignKey(
        "deals.DealStage",
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    owner = _person("+")
    team = _team()
    open_count = models.IntegerField(default=0)
    open_amount = models.DecimalField(max_digits=16, decimal_places=2, default=0)
    # Σ amount × the stage's probability / 100.
    weighted_amount = models.DecimalField(max_digits=16, decimal_places=2, default=0)
    refreshed_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["day", "stage", "owner", "team"],
                name="pipelinesnapshot_key",
                nulls_distinct=False,
            ),
        ]
        indexes = [models.Index(fields=["team", "day"], name="pipelinesnapshot_team")]

    def __str__(self) -> str:
        return f"{self.day} {self.stage_id}"


class CoverageSnapshot(models.Model):
    """Key-account coverage at the end of a day: A-tier customers per owner and team,
    and how many of them were contacted in the 7, 30 and 90 days before."""

    day = models.DateField()
    owner = _person("+")
    team = _team()
    a_customers = models.IntegerField(default=0)
    contacted_7 = models.IntegerField(default=0)
    contacted_30 = models.IntegerField(default=0)
    contacted_90 = models.IntegerField(default=0)
    refreshed_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["day", "owner", "team"],
                name="coveragesnapshot_key",
                nulls_distinct=False,
            ),
        ]
        indexes = [models.Index(fields=["team", "day"], name="coveragesnapshot_team")]

    def __str__(self) -> str:
        return f"{self.day} {self.owner_id}/{self.team_id}"
