"""The culture scorecard (文化记分卡, docs/scorecard.md): each of the essay's six cultures as
figures with an editable target. Figures are read from rollups (see rollups.py)."""

from __future__ import annotations

import pghistory
from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


@pghistory.track(
    pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent()
)
class CultureTarget(models.Model):
    """An admin's target for one scorecard figure; a figure without a row uses its
    default from figures.py."""

    figure = models.CharField(_("指标"), max_length=40, unique=True)
    value = models.DecimalField(_("目标值"), max_digits=9, decimal_places=2)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("文化指标目标")
        verbose_name_plural = _("文化指标目标")

    def __str__(self) -> str:
        return f"{self.figure}={self.value}"


def _team() -> models.ForeignKey:
    return models.ForeignKey(
        "accounts.Team",
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        null=True,
        related_name="+",
        verbose_name=_("团队"),
    )


class ScorecardState(models.Model):
    """One row per scorecard rollup table: how fresh it is, how far the sources were
    read (per source, the last event or row id seen)."""

    name = models.CharField(max_length=40, unique=True)
    last_updated_at = models.DateTimeField(_("数据更新于"), null=True)
    last_rebuilt_at = models.DateTimeField(null=True)
    marks = models.JSONField(default=dict)
    days_refreshed = models.PositiveIntegerField(default=0)
    duration_ms = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return self.name


# The scorecard's dimensions: a rollup row is one (local) day of one team, one region
# (大区, from the customer's province; "" when unknown), one segment (0: every customer;
# otherwise a copy of the row's facts for the members of that segment) and one
# back-office department (0 but for work orders). The daily table also keeps, per day,
# segment and department, the total of every team and region: region "*", team NULL.
class ScorecardDaily(models.Model):
    """What happened on one day: survey answers, recoveries, tickets' SLA outcomes,
    resolutions, work orders and key-account contacts (docs/scorecard.md)."""

    day = models.DateField()
    team = _team()
    region = models.CharField(max_length=4, default="")
    segment_id = models.IntegerField(default=0)
    department_id = models.IntegerField(default=0)
    surveys_sent = models.IntegerField(default=0)
    surveys_answered = models.IntegerField(default=0)
    csat_answers = models.IntegerField(default=0)
    csat_satisfied = models.IntegerField(default=0)
    nps_answers = models.IntegerField(default=0)
    nps_promoters = models.IntegerField(default=0)
    nps_detractors = models.IntegerField(default=0)
    dealer_csat_answers = models.IntegerField(default=0)
    dealer_csat_satisfied = models.IntegerField(default=0)
    recoveries_settled = models.IntegerField(default=0)
    recoveries_24h = models.IntegerField(default=0)
    sla_met = models.IntegerField(default=0)
    sla_breached = models.IntegerField(default=0)
    sla_defects = models.IntegerField(default=0)
    dealer_sla_met = models.IntegerField(default=0)
    dealer_sla_breached = models.IntegerField(default=0)
    resolved = models.IntegerField(default=0)
    first_contact = models.IntegerField(default=0)
    reopened = models.IntegerField(default=0)
    warranty_repairs = models.IntegerField(default=0)
    wo_on_time = models.IntegerField(default=0)
    wo_late = models.IntegerField(default=0)
    wo_overdue = models.IntegerField(default=0)
    wo_rated = models.IntegerField(default=0)
    wo_rating_sum = models.IntegerField(default=0)
    ka_contacts = models.IntegerField(default=0)
    ka_contacts_viewed = models.IntegerField(default=0)
    refreshed_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["day", "team", "region", "segment_id", "department_id"],
                name="scorecarddaily_key",
                nulls_distinct=False,
            ),
        ]
        indexes = [
            # The page: one segment (0 = all), a period of days, summed: the total
            # rows (region "*") or one region's, or one team's.
            models.Index(
                fields=["segment_id", "region", "day"], name="scorecarddaily_region"
            ),
            models.Index(
                fields=["segment_id", "team", "day"], name="scorecarddaily_team"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.team_id}/{self.region}/{self.segment_id}"


class ScorecardSnapshot(models.Model):
    """The state of the customers at the end of a day (taken on that day; earlier
    days keep the picture taken then): ownership, contact, silence, key accounts'
    profiles, open recoveries and the assets under warranty."""

    day = models.DateField()
    team = _team()
    region = models.CharField(max_length=4, default="")
    segment_id = models.IntegerField(default=0)
    customers = models.IntegerField(default=0)
    owned = models.IntegerField(default=0)
    dormant = models.IntegerField(default=0)
    ab_customers = models.IntegerField(default=0)
    ab_contacted = models.IntegerField(default=0)
    a_customers = models.IntegerField(default=0)
    a_contacted = models.IntegerField(default=0)
    a_profiled = models.IntegerField(default=0)
    recoveries_open = models.IntegerField(default=0)
    recoveries_overdue = models.IntegerField(default=0)
    units_in_warranty = models.IntegerField(default=0)
    refreshed_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["day", "team", "region", "segment_id"],
                name="scorecardsnapshot_key",
                nulls_distinct=False,
            ),
        ]
        indexes = [
            models.Index(fields=["segment_id", "day"], name="scorecardsnap_segment"),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.team_id}/{self.region}/{self.segment_id}"
