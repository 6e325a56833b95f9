"""The property register: project 楼盘 → phase 分期 → building 楼栋 → unit 房间.

The entrance (单元) is a field of the unit, not a table: nothing hangs off an
entrance but its units, and a room code already names it. A unit's owners are
customers (UnitOwnership); a proxy (委托人) acts for an owner with an authorisation
document (ProxyAuthorisation). docs/property.md; research note handover.md §2.1–2.2.
"""

from __future__ import annotations

import pghistory
from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models.functions import Upper
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from crm.core import bounds

AREA = {"max_digits": 9, "decimal_places": 2, "null": True, "blank": True}


@pghistory.track(
    pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent()
)
class Project(models.Model):
    code = models.CharField(_("项目编码"), max_length=30, unique=True)
    name = models.CharField(_("项目名称"), max_length=100)
    city = models.CharField(_("城市"), max_length=40, blank=True)
    developer = models.CharField(_("开发商"), max_length=100, blank=True)
    property_company = models.CharField(_("物业公司"), max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("楼盘")
        verbose_name_plural = _("楼盘")
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("property:project_detail", args=[self.pk])


@pghistory.track(
    pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent()
)
class Phase(models.Model):
    project = models.ForeignKey(
        Project, on_delete=models.CASCADE, related_name="phases", verbose_name=_("楼盘")
    )
    code = models.CharField(_("分期编码"), max_length=20)
    name = models.CharField(_("分期名称"), max_length=60)

    class Meta:
        verbose_name = _("分期")
        verbose_name_plural = _("分期")
        ordering = ["project", "code"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "code"], name="property_phase_unique_code"
            )
        ]

    def __str__(self) -> str:
        return self.name


@pghistory.track(
    pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent()
)
class Building(models.Model):
    class ProductType(models.TextChoices):
        HIGH_RISE = "high_rise", _("高层住宅")
        VILLA = "villa", _("别墅")
        SHOP = "shop", _("商铺")
        PARKING = "parking", _("车位")

    phase = models.ForeignKey(
        Phase,
        on_delete=models.CASCADE,
        related_name="buildings",
        verbose_name=_("分期"),
    )
    code = models.CharField(_("楼栋编码"), max_length=20)
    name = models.CharField(_("楼栋名称"), max_length=60)
    product_type = models.CharField(
        _("业态"), max_length=12, choices=ProductType, default=ProductType.HIGH_RISE
    )
    contract_delivery_date = models.DateField(
        _("合同约定交付日期"), null=True, blank=True
    )

    class Meta:
        verbose_name = _("楼栋")
        verbose_name_plural = _("楼栋")
        ordering = ["phase", "code"]
        constraints = [
            models.UniqueConstraint(
                fields=["phase", "code"], name="property_building_unique_code"
            ),
            bounds.date_in_range(
                "contract_delivery_date", name="property_building_date_in_range"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("property:building_detail", args=[self.pk])


class UnitQuerySet(models.QuerySet):
    def with_place(self) -> UnitQuerySet:
        return self.select_related("building__phase__project")


@pghistory.track(
    pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent()
)
class Unit(models.Model):
    class FitOut(models.TextChoices):
        SHELL = "shell", _("毛坯")
        FINISHED = "finished", _("精装")

    building = models.ForeignKey(
        Building, on_delete=models.CASCADE, related_name="units", verbose_name=_("楼栋")
    )
    entrance = models.CharField(_("单元"), max_length=10, blank=True)
    floor = models.SmallIntegerField(_("楼层"))
    room = models.CharField(_("房号"), max_length=20)
    # PRJ-PH-BLD-ENT-RM: unique across the company, the key an import matches on.
    code = models.CharField(_("房间编码"), max_length=80, unique=True)
    layout = models.CharField(_("户型"), max_length=40, blank=True)
    fit_out = models.CharField(
        _("装修"), max_length=10, choices=FitOut, default=FitOut.SHELL
    )
    contract_area = models.DecimalField(
        _("合同面积（㎡）"), validators=[MinValueValidator(0)], **AREA
    )
    measured_area = models.DecimalField(
        _("实测面积（㎡）"), validators=[MinValueValidator(0)], **AREA
    )
    # The unit's own date wins over its building's (a late building may hand over
    # some units on another contract).
    contract_delivery_date = models.DateField(
        _("合同约定交付日期"), null=True, blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = UnitQuerySet.as_manager()

    class Meta:
        verbose_name = _("房间")
        verbose_name_plural = _("房间")
        constraints = [
            models.UniqueConstraint(
                "building",
                Upper("entrance"),
                Upper("room"),
                name="property_unit_unique_room",
                violation_error_message=_("该楼栋的同一单元已有此房号。"),
            ),
            models.CheckConstraint(
                condition=models.Q(floor__gte=-10, floor__lte=200),
                name="property_unit_floor_range",
            ),
            models.CheckConstraint(
                condition=models.Q(contract_area__gte=0, contract_area__lte=100000)
                | models.Q(contract_area__isnull=True),
                name="property_unit_contract_area_range",
            ),
            models.CheckConstraint(
                condition=models.Q(measured_area__gte=0, measured_area__lte=100000)
                | models.Q(measured_area__isnull=True),
                name="property_unit_measured_area_range",
            ),
            bounds.date_in_range(
                "contract_delivery_date", name="property_unit_date_in_range"
            ),
        ]
        indexes = [
            models.Index(
                fields=["building", "entrance", "floor", "room"],
                name="property_unit_place",
            ),
        ]

    def __str__(self) -> str:
        return self.label

    def get_absolute_url(self) -> str:
        return reverse("property:unit_detail", args=[self.pk])

    @property
    def label(self) -> str:
        """3栋2单元1502, as owners and staff say it."""
        entrance = (
            _("%(entrance)s单元") % {"entrance": self.entrance} if self.entrance else ""
        )
        return f"{self.building.name}{entrance}{self.room}"

    @property
    def area_difference_percent(self):
        """(measured − contract) / contract in %; beyond ±3 % the buyer may withdraw."""
        if not self.contract_area or self.measured_area is None:
            return None
        return round(
            (self.measured_area - self.contract_area) * 100 / self.contract_area, 2
        )


@pghistory.track(
    pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent()
)
class UnitOwnership(models.Model):
    class Role(models.TextChoices):
        PRIMARY = "primary", _("主业主")
        CO_OWNER = "co_owner", _("共有人")

    unit = models.ForeignKey(
        Unit,
        on_delete=models.CASCADE,
        related_name="ownerships",
        verbose_name=_("房间"),
    )
    customer = models.ForeignKey(
        "customers.Customer",
        on_delete=models.PROTECT,
        related_name="unit_ownerships",
        verbose_name=_("业主"),
    )
    role = models.CharField(
        _("身份"), max_length=10, choices=Role, default=Role.PRIMARY
    )
    contract_no = models.CharField(_("购房合同号"), max_length=60, blank=True)
    is_active = models.BooleanField(_("有效"), default=True)
    # The unit as the owner's asset: service tickets and warranty already know assets.
    asset = models.OneToOneField(
        "service.Asset",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="unit_ownership",
        verbose_name=_("客户资产"),
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("业主")
        verbose_name_plural = _("业主")
        constraints = [
            models.UniqueConstraint(
                fields=["unit", "customer"],
                condition=models.Q(is_active=True),
                name="property_one_active_ownership",
            ),
            models.UniqueConstraint(
                fields=["unit"],
                condition=models.Q(is_active=True, role="primary"),
                name="property_one_primary_owner",
                violation_error_message=_("每个房间只能有一位主业主。"),
            ),
        ]
        # The customer's units: the foreign key's own index (a second one on the same
        # column only cost every write).

    def __str__(self) -> str:
        return f"{self.unit} · {self.customer}"


def _authorisation_path(instance: ProxyAuthorisation, filename: str) -> str:
    return f"property/authorisations/{instance.unit_id}/{filename}"


@pghistory.track(
    pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent()
)
class ProxyAuthorisation(models.Model):
    """委托: a proxy acts for an owner of the unit, within a scope, until a date."""

    class Scope(models.TextChoices):
        HANDOVER = "handover", _("办理入伙")
        TITLE = "title", _("产权登记")
        KEYS = "keys", _("领取钥匙")

    unit = models.ForeignKey(
        Unit, on_delete=models.CASCADE, related_name="proxies", verbose_name=_("房间")
    )
    owner = models.ForeignKey(
        "customers.Customer",
        on_delete=models.PROTECT,
        related_name="proxies_granted",
        verbose_name=_("委托业主"),
    )
    proxy = models.ForeignKey(
        "customers.Customer",
        on_delete=models.PROTECT,
        related_name="proxies_held",
        verbose_name=_("受托人"),
    )
    scope = models.CharField(
        _("委托事项"), max_length=10, choices=Scope, default=Scope.HANDOVER
    )
    document = models.FileField(
        _("授权委托书"), upload_to=_authorisation_path, blank=True
    )
    valid_until = models.DateField(_("有效期至"), null=True, blank=True)
    verified_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("核验人"),
    )
    revoked_at = models.DateTimeField(_("撤销时间"), null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("委托")
        verbose_name_plural = _("委托")
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(owner=models.F("proxy")),
                name="property_proxy_not_owner",
                violation_error_message=_("受托人不能是委托业主本人。"),
            ),
            bounds.date_in_range("valid_until", name="property_proxy_date_in_range"),
        ]
        # unit and proxy are looked up by their foreign keys' own indexes.

    def __str__(self) -> str:
        return f"{self.proxy} ← {self.owner} · {self.unit}"
