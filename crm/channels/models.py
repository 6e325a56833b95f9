from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class OutboundMessage(models.Model):
    """One e-mail or SMS to a customer or owner, and what became of it.

    queued → sent, or queued → failed (with the error and the attempts). A message
    whose delivery was cut off mid-send stays queued; its scheduled action is then
    parked as needs_review (docs/channels.md).
    """

    class Channel(models.TextChoices):
        EMAIL = "email", _("邮件")
        SMS = "sms", _("短信")

    class State(models.TextChoices):
        QUEUED = "queued", _("待发送")
        SENT = "sent", _("已发送")
        FAILED = "failed", _("发送失败")

    channel = models.CharField(_("渠道"), max_length=10, choices=Channel)
    to = models.CharField(_("收件人"), max_length=254)
    subject = models.CharField(_("主题"), max_length=200, blank=True)
    body = models.TextField(_("内容"))
    purpose = models.CharField(_("用途"), max_length=60, blank=True)
    state = models.CharField(
        _("状态"), max_length=10, choices=State, default=State.QUEUED
    )
    attempts = models.PositiveSmallIntegerField(_("尝试次数"), default=0)
    error = models.TextField(_("错误"), blank=True)
    provider_id = models.CharField(max_length=100, blank=True)
    idempotency_key = models.CharField(max_length=150, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("外发消息")
        verbose_name_plural = _("外发消息")
        indexes = [
            models.Index(fields=["state", "created_at"], name="outbound_state"),
        ]

    def __str__(self) -> str:
        return f"{self.channel} {self.to} {self.state}"
