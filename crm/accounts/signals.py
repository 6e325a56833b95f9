from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_in
from django.db.models.signals import post_save
from django.dispatch import receiver
from django_otp import DEVICE_ID_SESSION_KEY

from crm.accounts.models import User


def sync_roles_after_migrate(**kwargs: Any) -> None:
    # Permissions exist only after every app has migrated, so roles are synced here
    # rather than in a data migration.
    from crm.accounts import services

    services.roles_sync()


@receiver(user_logged_in, dispatch_uid="kehu_session_started")
def session_started(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    """A password login starts a session that still owes its second step; the session
    is mapped to the user so that it can be ended from elsewhere."""
    from crm.accounts import services, two_step
    from crm.accounts.middleware import RECORDED_SESSION_KEY

    session = getattr(request, "session", None)
    if session is None:
        return
    # Login keeps the session's data for the same user: a code given before the
    # password was typed again must not carry over. (An OTP-aware login form sets
    # user.otp_device, and django-otp then keeps it.)
    if getattr(user, "otp_device", None) is None:
        session.pop(DEVICE_ID_SESSION_KEY, None)
    two_step.session_enrolled_reset(request, enrolled=two_step.is_enrolled(user))
    if session.session_key:
        services.session_record(user=user, session_key=session.session_key)
        session[RECORDED_SESSION_KEY] = session.session_key


@receiver(post_save, sender=User, dispatch_uid="kehu_end_sessions_of_inactive_user")
def end_sessions_of_inactive_user(
    sender: Any,
    instance: User,
    raw: bool = False,
    update_fields: Any = None,
    **kwargs: Any,
) -> None:
    # Here rather than in one service because accounts are deactivated from the admin
    # (change form, list, bulk actions) and the shell: an inactive user keeps no session,
    # whichever way the flag was cleared.
    if raw or instance.is_active:
        return
    if update_fields is not None and "is_active" not in update_fields:
        return
    from crm.accounts import services

    services.user_sessions_end(user=instance)
