from __future__ import annotations

import pghistory
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils.functional import cached_property
from django.utils.translation import gettext_lazy as _

from crm.accounts.roles import Role


@pghistory.track(
    pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent()
)
class Department(models.Model):
    name = models.CharField(_("名称"), max_length=100, unique=True)

    class Meta:
        verbose_name = _("部门")
        verbose_name_plural = _("部门")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


@pghistory.track(
    pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent()
)
class Team(models.Model):
    name = models.CharField(_("名称"), max_length=100, unique=True)
    department = models.ForeignKey(
        Department,
        on_delete=models.PROTECT,
        related_name="teams",
        verbose_name=_("部门"),
    )
    lead = models.ForeignKey(
        "accounts.User",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("组长"),
    )

    class Meta:
        verbose_name = _("团队")
        verbose_name_plural = _("团队")
        ordering = ["name"]
        permissions = [("view_team_report", _("可查看团队报表"))]

    def __str__(self) -> str:
        return self.name


@pghistory.track(
    pghistory.InsertEvent(),
    pghistory.UpdateEvent(),
    pghistory.DeleteEvent(),
    # Login times and password hashes are not business history.
    exclude=["password", "last_login"],
)
class User(AbstractUser):
    team = models.ForeignKey(
        Team,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="members",
        verbose_name=_("团队"),
    )
    display_name = models.CharField(_("姓名"), max_length=50, blank=True)
    phone = models.CharField(_("手机"), max_length=20, blank=True)
    # Away staff are skipped by automatic ticket assignment.
    is_away = models.BooleanField(_("暂离"), default=False)

    class Meta:
        verbose_name = _("用户")
        verbose_name_plural = _("用户")

    def __str__(self) -> str:
        return self.display_name or self.get_full_name() or self.username

    @cached_property
    def role(self) -> str | None:
        """The user's most powerful role, read from group membership (one query)."""
        if self.is_superuser:
            return Role.ADMIN
        names = set(self.groups.values_list("name", flat=True))
        for role in (Role.ADMIN, Role.MANAGER, Role.SERVICE, Role.SALES):
            if role.value in names:
                return role.value
        return None

    @property
    def role_label(self) -> str:
        return Role(self.role).label if self.role else _("无角色")

    @cached_property
    def department_id(self) -> int | None:
        return self.team.department_id if self.team_id else None


class UserSession(models.Model):
    """Which signed-in sessions belong to which user, so that all of one user's sessions
    can be ended at once (deactivation, an administrator's order, a new second factor)
    without decoding every row of the session table.

    The row goes with its session: logout, expiry (`clearsessions`) and a new session
    key at login or password change delete the session row and, by cascade, this one.
    """

    session = models.OneToOneField(
        "sessions.Session",
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="+",
        verbose_name=_("会话"),
    )
    user = models.ForeignKey(
        User,
        on_delete=models.CASCADE,
        related_name="signed_in_sessions",
        verbose_name=_("用户"),
    )
    created_at = models.DateTimeField(_("登录时间"), auto_now_add=True)

    class Meta:
        verbose_name = _("登录会话")
        verbose_name_plural = _("登录会话")

    def __str__(self) -> str:
        return f"{self.user_id}:{self.session_id[:8]}…"
