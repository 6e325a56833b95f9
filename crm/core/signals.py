"""Audit rows for events that Django announces: sign-in, sign-out, failed sign-in,
changes to a user's roles, to whether the account is active and to its password."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import (
    user_logged_in,
    user_logged_out,
    user_login_failed,
)
from django.db.models.signals import m2m_changed, post_save, pre_save
from django.dispatch import receiver

from crm.core import audit

User = get_user_model()


@receiver(user_logged_in, dispatch_uid="kehu_audit_login")
def _logged_in(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    audit.record(request, audit.LOGIN_OK, user=user)


@receiver(user_login_failed, dispatch_uid="kehu_audit_login_failed")
def _login_failed(
    sender: Any, credentials: dict, request: Any = None, **kwargs: Any
) -> None:
    typed = str(credentials.get(User.USERNAME_FIELD) or credentials.get("username", ""))
    known = (
        User._default_manager.filter(**{User.USERNAME_FIELD: typed}).first()
        if typed and "\x00" not in typed  # PostgreSQL refuses NUL in a query
        else None
    )
    audit.record(
        request,
        audit.LOGIN_FAILED,
        user=known,
        username=typed,
        outcome=audit.FAILED,
    )


@receiver(user_logged_out, dispatch_uid="kehu_audit_logout")
def _logged_out(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    if user is not None and user.is_authenticated:
        audit.record(request, audit.LOGOUT, user=user)


@receiver(m2m_changed, sender=User.groups.through, dispatch_uid="kehu_audit_roles")
def _roles_changed(
    sender: Any,
    instance: Any,
    action: str,
    reverse: bool,
    model: Any,
    pk_set: set | None,
    **kwargs: Any,
) -> None:
    if action not in ("post_add", "post_remove", "post_clear"):
        return
    if action != "post_clear" and not pk_set:
        return
    if reverse:  # group.user_set.add(...): `instance` is the group
        users = list(User._default_manager.filter(pk__in=pk_set or ()))
        groups = [instance.name]
    else:
        users = [instance]
        groups = sorted(
            model._default_manager.filter(pk__in=pk_set or ()).values_list(
                "name", flat=True
            )
        )
    verb = {"post_add": "+", "post_remove": "-", "post_clear": "-*"}[action]
    for user in users:
        audit.record(
            None,
            audit.ROLE_CHANGED,
            obj=user,
            object_type="user",
            detail=f"{user.get_username()}: {verb}{','.join(groups)}; now={audit.roles_of(user)}",
        )


@receiver(pre_save, sender=User, dispatch_uid="kehu_audit_user_pre_save")
def _remember_active(
    sender: Any,
    instance: Any,
    raw: bool = False,
    update_fields: Any = None,
    **kwargs: Any,
) -> None:
    # A save that does not write is_active (last_login at every sign-in) costs nothing.
    skip = update_fields is not None and "is_active" not in update_fields
    if raw or instance.pk is None or skip:
        instance._audit_was_active = None
        return
    instance._audit_was_active = (
        User._default_manager.filter(pk=instance.pk)
        .values_list("is_active", flat=True)
        .first()
    )


@receiver(post_save, sender=User, dispatch_uid="kehu_audit_user_post_save")
def _active_changed(
    sender: Any, instance: Any, created: bool, raw: bool = False, **kwargs: Any
) -> None:
    was_active = getattr(instance, "_audit_was_active", None)
    if raw or created or was_active is None or was_active == instance.is_active:
        return
    audit.record(
        None,
        audit.USER_REACTIVATED if instance.is_active else audit.USER_DEACTIVATED,
        obj=instance,
        object_type="user",
        detail=instance.get_username(),
    )


@receiver(post_save, sender=User, dispatch_uid="kehu_audit_password_changed")
def _password_changed(
    sender: Any, instance: Any, created: bool, raw: bool = False, **kwargs: Any
) -> None:
    # set_password() keeps the raw password in `_password` until the save after it
    # (AbstractBaseUser.save clears it after post_save): the user's own change page,
    # the admin's password form and the shell all go through it. The silent re-hash at
    # sign-in clears it before saving, so a hasher upgrade is not a change.
    if raw or created or getattr(instance, "_password", None) is None:
        return
    audit.record(
        None,
        audit.PASSWORD_CHANGED,
        obj=instance,
        object_type="user",
        detail=instance.get_username(),
    )
