from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

import django_otp
from django.conf import settings
from django.contrib.auth.models import Group, Permission
from django.contrib.sessions.models import Session
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils.translation import gettext as _
from django_otp.models import Device
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from crm.accounts import two_step
from crm.accounts.models import User, UserSession
from crm.accounts.roles import Role, permissions_of
from crm.core import audit, limits


@transaction.atomic
def roles_sync() -> None:
    """Create the four role groups and give each exactly its permissions (idempotent).

    Runs after every app's migrations; permissions of apps not yet migrated are simply
    not there yet and are added by the next call.
    """
    for role in Role:
        group, _ = Group.objects.get_or_create(name=role.value)
        wanted = Q(pk__in=[])
        for name in permissions_of(role):
            label, codename = name.split(".", 1)
            wanted |= Q(content_type__app_label=label, codename=codename)
        group.permissions.set(Permission.objects.filter(wanted))


# --- two-step verification (django-otp) -------------------------------------------


class TwoStepThrottled(Exception):  # noqa: N818 - reads as the condition it is
    """Too many wrong codes: no code is checked until `locked_until`."""

    def __init__(self, locked_until: datetime.datetime | None) -> None:
        super().__init__(locked_until)
        self.locked_until = locked_until


def _devices(user: Any) -> list[Device]:
    return list(django_otp.devices_for_user(user, confirmed=True))


def two_step_verify(*, user: Any, code: str) -> Device | None:
    """The device that accepts `code` (6 digits: the app; otherwise a backup code), or None.

    Throttling is per user: while any of the user's devices is throttled after wrong
    codes (django-otp's exponential delay, `OTP_TOTP_THROTTLE_FACTOR`), nothing is
    checked, so guesses cannot be spread over the app and the backup codes.
    """
    code = two_step.normalise_code(code)
    devices = _devices(user)
    for device in devices:
        allowed, info = device.verify_is_allowed()
        if not allowed:
            audit.record(
                None,
                audit.OTP_FAILED,
                user=user,
                outcome=audit.DENIED,
                detail="throttled",
            )
            raise TwoStepThrottled((info or {}).get("locked_until"))
    is_app_code = len(code) == 6 and code.isdigit()
    for device in devices:
        if isinstance(device, TOTPDevice) != is_app_code:
            continue
        # verify_token locks the device row, so one code cannot be used twice at once.
        verified = django_otp.verify_token(user, device.persistent_id, code)
        if verified is not None:
            audit.record(
                None,
                audit.OTP_OK,
                user=user,
                obj=verified,
                detail="app" if is_app_code else "backup code",
            )
            return verified
    audit.record(None, audit.OTP_FAILED, user=user, outcome=audit.FAILED)
    return None


@transaction.atomic
def totp_device_add(*, by: Any, key: str, code: str) -> tuple[TOTPDevice, list[str]]:
    """Confirm the app that shows codes for `key`, and issue fresh backup codes.

    The confirming code counts as used (the device's last_t), so it cannot sign in.
    """
    if TOTPDevice.objects.filter(user=by, confirmed=True).exists():
        raise ValidationError({"code": _("已经设置过验证器应用，请先移除再重新设置。")})
    device = TOTPDevice.objects.create(user=by, name="totp", key=key, confirmed=True)
    if not device.verify_token(two_step.normalise_code(code)):
        # Raising rolls the device back with the rest of the transaction.
        raise ValidationError(
            {"code": _("验证码不正确，请核对手机时间后输入应用里当前的 6 位数字。")}
        )
    codes = _backup_codes_replace(by)
    audit.record(None, audit.OTP_DEVICE_ADDED, user=by, obj=device, detail="totp")
    return device, codes


def _backup_codes_replace(user: Any) -> list[str]:
    device, _created = StaticDevice.objects.get_or_create(
        user=user, name="backup", defaults={"confirmed": True}
    )
    device.token_set.all().delete()
    codes = [StaticToken.random_token() for _ in range(two_step.BACKUP_CODE_COUNT)]
    StaticToken.objects.bulk_create(StaticToken(device=device, token=c) for c in codes)
    return codes


@transaction.atomic
def backup_codes_regenerate(*, by: Any) -> list[str]:
    """Ten new single-use backup codes; the old ones stop working."""
    if not TOTPDevice.objects.filter(user=by, confirmed=True).exists():
        raise ValidationError(_("请先设置验证器应用。"))
    codes = _backup_codes_replace(by)
    audit.record(None, audit.OTP_DEVICE_ADDED, user=by, detail="backup codes renewed")
    return codes


@transaction.atomic
def two_step_remove(*, by: Any) -> int:
    """Remove the user's app and backup codes; returns how many devices went."""
    removed = 0
    for model in (TOTPDevice, StaticDevice):
        count, _deleted = model.objects.filter(user=by).delete()
        removed += count
    if removed:
        audit.record(
            None, audit.OTP_DEVICE_REMOVED, user=by, detail="totp and backup codes"
        )
    return removed


# --- sessions ----------------------------------------------------------------------


def session_record(*, user: Any, session_key: str) -> None:
    """Map a signed-in session to its user (idempotent).

    A session deleted meanwhile (ended by an administrator during this very request)
    leaves nothing to map: the foreign key refuses the row, and that is fine.
    """
    try:
        with transaction.atomic():
            UserSession.objects.bulk_create(
                [UserSession(session_id=session_key, user=user)],
                ignore_conflicts=True,
            )
    except IntegrityError:
        pass


@transaction.atomic
def user_sessions_end(
    *, by: Any = None, user: Any, keep_session_key: str | None = None
) -> int:
    """End every signed-in session of `user` (but `keep_session_key`); returns how many.

    Their next request is anonymous: the session rows are gone from the database.
    """
    keys = UserSession.objects.filter(user=user).values_list("session_id", flat=True)
    if keep_session_key:
        keys = keys.exclude(session_id=keep_session_key)
    _total, per_model = Session.objects.filter(session_key__in=list(keys)).delete()
    ended = per_model.get(Session._meta.label, 0)
    if ended:
        audit.record(
            None,
            audit.SESSIONS_ENDED,
            user=by,
            obj=user,
            object_type="user",
            row_count=ended,
            detail=user.get_username(),
        )
    return ended


# --- sign-in limits --------------------------------------------------------------------


class LoginThrottled(Exception):  # noqa: N818 - reads as the condition it is
    """No slot for this sign-in: too many wrong passwords for the username on this
    address (`per_address` False) or from the address across usernames (True)."""

    def __init__(self, *, per_address: bool) -> None:
        super().__init__(per_address)
        self.per_address = per_address


@dataclass(frozen=True)
class LoginSlots:
    per_username: limits.Slot
    per_address: limits.Slot


def login_slots_take(*, username: str, address: str) -> LoginSlots:
    """Reserve a sign-in's place in both limits before its password is checked.

    A slot taken is committed at once and counts as a failure until `login_slots_settle`
    says otherwise, so of any number of parallel attempts at most the limit have their
    password checked (counting failures afterwards let 9 of 40 through, issue 11):
    * per username on this address, AXES_FAILURE_LIMIT in AXES_COOLOFF_TIME, the key
      django-axes locks (AXES_LOCKOUT_PARAMETERS), so colleagues on the same PC and the
      same username elsewhere are unaffected; django-axes still keeps the lock;
    * per address across usernames, KEHU_LOGIN_FAILURES_PER_IP a minute (credential
      stuffing), high enough for an office whose staff share one NAT address.
    """
    per_username = limits.take(
        "login-user",
        username,
        address,
        limit=settings.AXES_FAILURE_LIMIT,
        window=settings.AXES_COOLOFF_TIME,
    )
    if per_username is None:
        raise LoginThrottled(per_address=False)
    per_address = limits.take(
        "login-ip",
        address,
        limit=settings.KEHU_LOGIN_FAILURES_PER_IP,
        window=datetime.timedelta(minutes=1),
    )
    if per_address is None:
        limits.give_back(per_username)
        raise LoginThrottled(per_address=True)
    return LoginSlots(per_username, per_address)


def login_slots_settle(slots: LoginSlots, *, outcome: str) -> None:
    """`failed`: a wrong password keeps both slots. `signed_in`: the right password gives
    its slots back and forgives the username's failures before it (as django-axes'
    AXES_RESET_ON_SUCCESS). `right` (a right password that signs nobody in) and
    `unchecked` (no password was checked: a field missing, the account locked by
    django-axes) give the slots back."""
    if outcome == "failed":
        limits.keep(slots.per_username)
        return
    if outcome == "signed_in":
        limits.forgive(slots.per_username)
    else:
        limits.give_back(slots.per_username)
    limits.give_back(slots.per_address)


def user_away_set(*, by: Any, user: Any, is_away: bool) -> Any:
    """Mark a user away (round-robin assignment skips them) or back. An admin may set
    anyone's; everyone may set their own."""
    from django.core.exceptions import PermissionDenied

    from crm.core.db import audited

    if by.pk != user.pk and by.role != Role.ADMIN:
        raise PermissionDenied
    with transaction.atomic(), audited(by):
        changed = User.objects.filter(pk=user.pk).exclude(is_away=is_away)
        if changed.update(is_away=is_away):
            audit.record(
                None,
                audit.AWAY_CHANGED,
                user=by,
                obj=user,
                detail=f"{user.username} {'away' if is_away else 'back'}",
            )
    user.is_away = is_away
    return user
