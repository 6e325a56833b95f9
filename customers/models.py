from __future__ import annotations

import pghistory
from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from crm.accounts import access


class CustomerQuerySet(models.QuerySet):
    def visible_to(self, user: settings.AUTH_USER_MODEL) -> CustomerQuerySet:
        return access.filter_visible(self, user)


# Every create, update and delete of a customer is recorded with who and what changed.
@pghistory.track(
    pghistory.InsertEvent(),
    pghistory.UpdateEvent(),
    pghistory.DeleteEvent(),
    exclude=["version", "updated_at"],
)
class Customer(models.Model):
    class Kind(models.TextChoices):
        OWNER = "owner", _("业主")
        ENTERPRISE = "enterprise", _("企业")
        DISTRIBUTOR = "distributor", _("分销商")
        DEALER = "dealer", _("经销商")
        WHOLESALER = "wholesaler", _("批发商")
        AGENT = "agent", _("代理商")
        PARTNER = "partner", _("合作伙伴")

    class Stage(models.TextChoices):
        LEAD = "lead", _("潜在")
        PROSPECT = "prospect", _("意向")
        CUSTOMER = "customer", _("成交")
        DORMANT = "dormant", _("沉睡")
        LOST = "lost", _("流失")

    class Tier(models.TextChoices):
        A = "A", "A"
        B = "B", "B"
        C = "C", "C"
        D = "D", "D"

    name = models.CharField(_("名称"), max_length=100)
    kind = models.CharField(_("类型"), max_length=20, choices=Kind, default=Kind.OWNER)
    stage = models.CharField(
        _("阶段"), max_length=20, choices=Stage, default=Stage.LEAD
    )
    tier = models.CharField(_("价值等级"), max_length=1, choices=Tier, default=Tier.C)
    is_key_account = models.BooleanField(_("重点客户"), default=False)
    phone = models.CharField(_("电话"), max_length=20, blank=True)
    email = models.EmailField(_("邮箱"), blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="owned_customers",
        verbose_name=_("负责人"),
    )
    team = models.ForeignKey(
        "accounts.Team",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="customers",
        verbose_name=_("团队"),
    )
    notes = models.TextField(_("备注"), blank=True)
    # Incremented on every save through services; a stale form is refused (no lost edits).
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)

    objects = CustomerQuerySet.as_manager()

    class Meta:
        verbose_name = _("客户")
        verbose_name_plural = _("客户")
        permissions = [("reassign_customer", _("可转移客户"))]
        indexes = [
            models.Index(fields=["owner", "-updated_at"], name="customer_owner_recent"),
            models.Index(fields=["team", "-updated_at"], name="customer_team_recent"),
            models.Index(fields=["-updated_at", "-id"], name="customer_recent"),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("customers:customer_detail", args=[self.pk])
