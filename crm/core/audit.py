"""The security audit log (ASVS V16, PIPL Art. 55): one append-only row per event.

`record()` is the one way to write a row. Who acted, from which IP and in which request
come from the request being served, so services and the access layer, which have no
request in hand, can pass `request=None`: `RequestIdMiddleware` keeps the current
request for them. Celery tasks have none, and their rows carry no IP and no request id.

Text that an attacker chooses (a username typed at the login page, a reason, a path) is
stored encoded by `encode()`: control characters, CR and LF become visible escapes, so a
row can never pose as two rows or hide part of itself in a terminal, a CSV or a log file.

The table refuses UPDATE and DELETE (a trigger, see migration 0002 and
`append_only.py`); retention is documented in docs/security.md.
"""

from __future__ import annotations

import contextvars
import logging
import unicodedata
import uuid
from typing import Any

from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

logger = logging.getLogger("kehu.audit")

# Authentication (V16.3.1).
LOGIN_OK = "login_ok"
LOGIN_FAILED = "login_failed"
LOGOUT = "logout"
OTP_OK = "otp_ok"
OTP_FAILED = "otp_failed"
OTP_DEVICE_ADDED = "otp_device_added"
OTP_DEVICE_REMOVED = "otp_device_removed"
SESSIONS_ENDED = "sessions_ended"
PASSWORD_CHANGED = "password_changed"  # noqa: S105 - an action name
# Reads of personal data (PIPL; V16.3.2 raised to L2). The two older names are kept:
# rows written before this module existed use them.
CUSTOMER_VIEWED = "customer_viewed"
ID_REVEALED = "reveal_id_number"
EXPORTED = "export"
EXPORT_REQUESTED = "export_requested"
EXPORT_APPROVED = "export_approved"
EXPORT_REJECTED = "export_rejected"
# Refused access (V16.3.2, V16.3.3).
DENIED_ROLE = "denied_role"  # 403: the role may not use the page or action
DENIED_SCOPE = "denied_scope"  # 404: the record exists but is outside the user's scope
# A duplicate check hit a customer outside the user's scope: refused without its name,
# and counted with ID reveals toward KEHU_REVEAL_HOURLY_LIMIT.
DUPLICATE_HIDDEN = "duplicate_hidden"
# Administration of users (V16.3.3).
ROLE_CHANGED = "role_changed"
USER_DEACTIVATED = "user_deactivated"
USER_REACTIVATED = "user_reactivated"
# Scheduled actions an admin took out of needs_review (crm/scheduler).
ACTION_RETRIED = "action_retried"
ACTION_CANCELLED = "action_cancelled"
# The settings area (crm/core/crud.py): reference data and users' away status.
SETTINGS_CHANGED = "settings_changed"
AWAY_CHANGED = "away_changed"

ACTIONS = (
    LOGIN_OK,
    LOGIN_FAILED,
    LOGOUT,
    OTP_OK,
    OTP_FAILED,
    OTP_DEVICE_ADDED,
    OTP_DEVICE_REMOVED,
    SESSIONS_ENDED,
    PASSWORD_CHANGED,
    CUSTOMER_VIEWED,
    ID_REVEALED,
    EXPORTED,
    EXPORT_REQUESTED,
    EXPORT_APPROVED,
    EXPORT_REJECTED,
    DENIED_ROLE,
    DENIED_SCOPE,
    DUPLICATE_HIDDEN,
    ROLE_CHANGED,
    USER_DEACTIVATED,
    USER_REACTIVATED,
    ACTION_RETRIED,
    ACTION_CANCELLED,
    SETTINGS_CHANGED,
    AWAY_CHANGED,
)

OK = "ok"
FAILED = "failed"
DENIED = "denied"
OUTCOMES = (OK, FAILED, DENIED)

ACTION_LABELS = {
    LOGIN_OK: _("登录成功"),
    LOGIN_FAILED: _("登录失败"),
    LOGOUT: _("退出登录"),
    OTP_OK: _("动态口令验证成功"),
    OTP_FAILED: _("动态口令验证失败"),
    OTP_DEVICE_ADDED: _("绑定动态口令设备"),
    OTP_DEVICE_REMOVED: _("解绑动态口令设备"),
    SESSIONS_ENDED: _("结束会话"),
    PASSWORD_CHANGED: _("修改密码"),
    CUSTOMER_VIEWED: _("查看客户"),
    ID_REVEALED: _("查看身份证号"),
    EXPORTED: _("导出客户"),
    EXPORT_REQUESTED: _("申请导出"),
    EXPORT_APPROVED: _("批准导出"),
    EXPORT_REJECTED: _("驳回导出"),
    DENIED_ROLE: _("越权访问（角色）"),
    DENIED_SCOPE: _("越权访问（范围）"),
    DUPLICATE_HIDDEN: _("查重命中范围外客户"),
    ROLE_CHANGED: _("角色变更"),
    USER_DEACTIVATED: _("停用账号"),
    USER_REACTIVATED: _("启用账号"),
    ACTION_RETRIED: _("重试定时动作"),
    ACTION_CANCELLED: _("取消定时动作"),
    SETTINGS_CHANGED: _("修改设置"),
    AWAY_CHANGED: _("修改暂离状态"),
}
# "拒绝" is also the export decision button ("Reject"); here it is an outcome.
OUTCOME_LABELS = {
    OK: _("成功"),
    FAILED: _("失败"),
    DENIED: pgettext_lazy("audit outcome", "拒绝"),
}

_current_request: contextvars.ContextVar[Any] = contextvars.ContextVar(
    "kehu_current_request", default=None
)


def current_request() -> Any:
    """The request this thread is serving, or None (tasks, shell, migrations)."""
    return _current_request.get()


def current_request_id() -> str:
    request = current_request()
    return getattr(request, "request_id", "") if request is not None else ""


class RequestIdLogFilter(logging.Filter):
    """Adds `request_id` (empty outside a request) to every log record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_request_id()
        return True


def new_request_id() -> str:
    return uuid.uuid4().hex


def encode(text: Any, max_length: int | None = None) -> str:
    """`text` with backslashes and control characters escaped, so it stays one line.

    CR, LF and TAB become \\r, \\n, \\t; other control, format and separator characters
    (including U+2028, bidi overrides) become \\xNN or \\uNNNN; a backslash is doubled so
    an escape cannot be faked. Chinese and other printable text is kept as it is.
    """
    if text is None:
        return ""
    out = []
    for char in str(text):
        if char == "\\":
            out.append("\\\\")
        elif char in _NAMED_ESCAPES:
            out.append(_NAMED_ESCAPES[char])
        elif unicodedata.category(char) in ("Cc", "Cf", "Cs", "Zl", "Zp"):
            code = ord(char)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(char)
    encoded = "".join(out)
    if max_length is not None and len(encoded) > max_length:
        encoded = encoded[: max_length - 1] + "…"
    return encoded


_NAMED_ESCAPES = {"\r": "\\r", "\n": "\\n", "\t": "\\t"}


def client_ip(request: Any) -> str | None:
    """The client's IP exactly as django-axes sees it (crm/core/network.py), so the
    audit log and the lockout agree on who is behind a proxy."""
    if request is None:
        return None
    address = getattr(request, "axes_ip_address", None)
    if not address:
        try:
            from axes.helpers import get_client_ip_address

            address = get_client_ip_address(request)
        except Exception:  # noqa: BLE001 - an odd header must not lose the audit row
            address = None
        address = address or request.META.get("REMOTE_ADDR")
    return _valid_ip(address)


def _valid_ip(address: Any) -> str | None:
    import ipaddress

    try:
        return str(ipaddress.ip_address(str(address).strip()))
    except ValueError:
        return None


def roles_of(user: Any) -> str:
    """The user's roles now (group names, comma-separated), kept as they were then."""
    if user is None or not getattr(user, "pk", None):
        return ""
    names = sorted(user.groups.values_list("name", flat=True))
    if user.is_superuser:
        names.insert(0, "superuser")
    return ",".join(names)


def record(
    request: Any,
    action: str,
    *,
    user: Any = None,
    obj: models.Model | None = None,
    object_type: str = "",
    object_id: int | None = None,
    outcome: str = OK,
    detail: str = "",
    row_count: int | None = None,
    username: str | None = None,
) -> Any:
    """Write one audit row and return it.

    `request` may be None: the request being served (if any) is used. `user` defaults to
    the request's authenticated user; pass `username` for a login attempt by a user that
    may not exist. `obj` gives the object type (its model name) and id.
    """
    from crm.core.models import AccessLog

    request = request if request is not None else current_request()
    if user is None and request is not None:
        request_user = getattr(request, "user", None)
        if request_user is not None and request_user.is_authenticated:
            user = request_user
    if user is not None and not getattr(user, "pk", None):
        user = None
    if username is None:
        username = user.get_username() if user is not None else ""
    if obj is not None:
        object_type = object_type or obj._meta.model_name
        object_id = obj.pk if object_id is None else object_id
    row = AccessLog.objects.create(
        user=user,
        username=encode(username, 150),
        roles=roles_of(user),
        action=action,
        object_type=object_type,
        object_id=object_id,
        outcome=outcome,
        detail=encode(detail, 300),
        row_count=row_count,
        ip_address=client_ip(request),
        request_id=getattr(request, "request_id", "") if request is not None else "",
    )
    logger.info(
        "audit %s %s user=%s object=%s:%s",
        action,
        outcome,
        row.username,
        object_type,
        object_id if object_id is not None else "",
    )
    return row


def record_denial(
    request: Any, action: str, *, obj_type: str = "", obj_id: Any = None
) -> None:
    """Record a refusal (403 by role, 404 by scope), once per request.

    Inside a request the row is written by RequestIdMiddleware once the response is
    made: a refusal raised inside a view's transaction would otherwise be rolled back
    with it.
    """
    request = request if request is not None else current_request()
    if request is not None:
        if getattr(request, "audit_denial_recorded", False):
            return
        request.audit_denial_recorded = True
    try:
        object_id = int(obj_id) if obj_id is not None else None
    except (TypeError, ValueError):
        object_id = None
    if object_id is not None and not -(2**63) <= object_id < 2**63:
        object_id = None  # a typed-in id too large for the column
    denial = {"action": action, "object_type": obj_type, "object_id": object_id}
    if getattr(request, "request_id", ""):
        request.audit_pending_denial = denial
    else:
        write_denial(request, denial)


def write_denial(request: Any, denial: dict) -> None:
    path = getattr(request, "path", "") if request is not None else ""
    method = getattr(request, "method", "") if request is not None else ""
    record(request, outcome=DENIED, detail=f"{method} {path}".strip(), **denial)
