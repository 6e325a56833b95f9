from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class NotificationQuerySet(models.QuerySet):
    def unread(self) -> NotificationQuerySet:
        return self.filter(read_at__isnull=True)

    def lines(self) -> NotificationQuerySet:
        """What the bell and the list show: one line per group (its first row)."""
        return self.filter(grouped_into__isnull=True)


class Notification(models.Model):
    """An in-app message to one staff member (the bell). One per idempotency key.

    Similar notifications group: a row whose `group_key` matches an unread line of the
    same recipient from the last `services.GROUP_WINDOW` points at that line
    (`grouped_into`) instead of making a line of its own, so the bell counts it once and
    the list shows it once with a count. Every row keeps its own key (redeliveries and
    e-mails stay once per key).
    """

    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    title = models.CharField(_("标题"), max_length=200)
    body = models.TextField(_("内容"), blank=True)
    url = models.CharField(max_length=300, blank=True)
    # Why this person got it, in their words ("你是该工单的处理人").
    reason = models.CharField(_("通知原因"), max_length=100, blank=True)
    # Same kind and same target ("ticket:12:sla"); empty: never grouped.
    group_key = models.CharField(max_length=120, blank=True)
    grouped_into = models.ForeignKey(
        "self",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="grouped",
    )
    # The delivering action's key: a redelivery finds the row and sends nothing twice.
    idempotency_key = models.CharField(max_length=120, unique=True)
    emailed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)

    objects = NotificationQuerySet.as_manager()

    class Meta:
        verbose_name = _("通知")
        verbose_name_plural = _("通知")
        indexes = [
            # The bell: unread lines of one recipient.
            models.Index(
                fields=["recipient", "-created_at"],
                name="notification_unread_line",
                condition=models.Q(read_at__isnull=True, grouped_into__isnull=True),
            ),
            # The list: lines of one recipient, newest first.
            models.Index(
                fields=["recipient", "-created_at", "-id"],
                name="notification_line_recent",
                condition=models.Q(grouped_into__isnull=True),
            ),
            # A new notification finds the open line of its group.
            models.Index(
                fields=["recipient", "group_key", "-created_at"],
                name="notification_open_group",
                condition=models.Q(read_at__isnull=True, grouped_into__isnull=True)
                & ~models.Q(group_key=""),
            ),
        ]

    def __str__(self) -> str:
        return self.title
