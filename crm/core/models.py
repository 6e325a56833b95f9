from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class AccessLog(models.Model):
    """The security audit log: sign-ins, refused access, reads of personal data (reveals,
    exports, customer pages) and changes to users' rights. Written only through
    `crm.core.audit.record`; the database refuses UPDATE and DELETE on it."""

    # Null for a failed sign-in of an unknown user; `username` keeps what was typed.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        blank=True,
    )
    username = models.CharField(_("用户名"), max_length=150, blank=True)
    roles = models.CharField(_("角色"), max_length=100, blank=True)
    action = models.CharField(_("操作"), max_length=40)
    object_type = models.CharField(max_length=40, blank=True)
    object_id = models.BigIntegerField(null=True, blank=True)
    outcome = models.CharField(_("结果"), max_length=10, default="ok")
    detail = models.CharField(_("说明"), max_length=300, blank=True)
    row_count = models.PositiveIntegerField(null=True, blank=True)
    ip_address = models.GenericIPAddressField(_("IP 地址"), null=True, blank=True)
    request_id = models.CharField(_("请求编号"), max_length=32, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("安全审计记录")
        verbose_name_plural = _("安全审计记录")
        # The audit page lists newest first, keyset on (created_at, id), under each of
        # its filters; each filter has its own index in that order.
        indexes = [
            models.Index(fields=["user", "-created_at"], name="accesslog_user"),
            models.Index(fields=["-created_at", "-id"], name="accesslog_recent"),
            models.Index(
                fields=["username", "-created_at", "-id"], name="accesslog_username"
            ),
            models.Index(
                fields=["action", "-created_at", "-id"], name="accesslog_action"
            ),
            models.Index(
                fields=["outcome", "-created_at", "-id"], name="accesslog_outcome"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.username} {self.action} {self.created_at:%Y-%m-%d %H:%M}"

    @property
    def action_label(self) -> str:
        from crm.core.audit import ACTION_LABELS

        return ACTION_LABELS.get(self.action, self.action)

    @property
    def outcome_label(self) -> str:
        from crm.core.audit import OUTCOME_LABELS

        return OUTCOME_LABELS.get(self.outcome, self.outcome)


class FormSubmission(models.Model):
    """One accepted form post, keyed by the one-time token its page carried
    (`crm.core.once`). The unique token makes a double click save one record: the
    second post waits on the index until the first commits, then finds the token taken."""

    token = models.CharField(max_length=64, unique=True)
    # Null for the public intake form.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="+",
        null=True,
        blank=True,
    )
    # Where the first post sent the user; the second is sent there too.
    result_url = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        # The daily purge deletes by age.
        indexes = [models.Index(fields=["created_at"], name="formsubmission_created")]

    def __str__(self) -> str:
        return f"{self.token} {self.created_at:%Y-%m-%d %H:%M}"


class LimitCounter(models.Model):
    """How many times one rate or quota limit's key was used in its current window
    (`crm.core.limits`). One row per key: a new window resets the row in the same
    statement that counts, so the count and the check are one atomic operation."""

    # "<limit name>:<digest of its parts>", so no address or username is stored in clear.
    key = models.CharField(max_length=100, primary_key=True)
    # Uses in the window, those still in progress included.
    count = models.PositiveIntegerField()
    # Of those, the ones that counted for good (`limits.keep`), which `limits.forgive`
    # takes off again: a right password forgives the wrong ones before it.
    kept = models.PositiveIntegerField(default=0)
    window_ends_at = models.DateTimeField()

    class Meta:
        # The hourly purge deletes rows whose window ended.
        indexes = [models.Index(fields=["window_ends_at"], name="limitcounter_window")]

    def __str__(self) -> str:
        return f"{self.key} {self.count} until {self.window_ends_at:%Y-%m-%d %H:%M:%S}"
