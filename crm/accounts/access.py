"""The one access layer: which role may use a page, and which records a user may see.

Function level: `role_required` answers 403 to a role that may not use a page.
Object level: each model's `visible_to(user)` QuerySet method applies `visibility_scope`,
and `get_object_for` answers 404 for a record outside it, so its existence is not revealed.
The scope of each role is the `KEHU_VISIBILITY` setting (per organisation).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Model, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse

SCOPES = ("own", "team", "department", "all")


def visibility_scope(user: Any) -> str | None:
    """The scope the user's role sees; None for users with no role (they see nothing)."""
    if not user.is_authenticated or not user.is_active:
        return None
    role = user.role
    if role is None:
        return None
    scope = settings.KEHU_VISIBILITY.get(role, "own")
    return scope if scope in SCOPES else "own"


def owner_filter(user: Any, *, owner: str = "owner", team: str = "team") -> Q | None:
    """A Q for rows of `user`'s scope, or None meaning "everything".

    `owner` and `team` name the row's owner and owning-team fields.
    """
    scope = visibility_scope(user)
    if scope == "all":
        return None
    if scope is None:
        return Q(pk__in=[])
    mine = Q(**{owner: user})
    if scope == "own" or not user.team_id:
        return mine
    if scope == "team":
        return mine | Q(**{team: user.team_id})
    return (
        mine
        | Q(**{f"{team}__department": user.team.department_id})
        | Q(**{f"{owner}__team__department": user.team.department_id})
    )


def filter_visible(queryset: QuerySet, user: Any, **fields: str) -> QuerySet:
    condition = owner_filter(user, **fields)
    return queryset if condition is None else queryset.filter(condition)


def get_object_for(queryset: QuerySet, pk: Any) -> Model:
    """Fetch from an already-scoped queryset, answering 404 when outside the scope.

    A 404 for a record that exists (outside the scope, or filtered out) is audited as
    a refusal; one for an id that does not exist is not (a typo is no attempt).
    """
    try:
        return queryset.get(pk=pk)
    except (queryset.model.DoesNotExist, ValueError, TypeError) as exc:
        _audit_scope_denial(queryset.model, pk)
        raise Http404 from exc


def _audit_scope_denial(model: type[Model], pk: Any) -> None:
    from crm.core import audit

    try:
        exists = model._base_manager.filter(pk=pk).exists()
    except (ValueError, TypeError):
        return
    if exists:
        audit.record_denial(
            None, audit.DENIED_SCOPE, obj_type=model._meta.model_name, obj_id=pk
        )


def public(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Marks a page anyone may open without signing in: the public report form, and
    later the owners' booking and survey pages. A signed-in session that still owes
    its second step may open it too (crm/accounts/middleware.py), so an app adds a
    public page without the platform knowing its name. Put it above the other
    decorators: the middleware reads it from the function the URL resolves to."""
    view.kehu_public = True  # type: ignore[attr-defined]
    return view


def role_required(*roles: str) -> Callable:
    """Login required, then 403 unless the user holds one of `roles`."""

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @login_required
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.user.role not in roles:
                from crm.core import audit

                audit.record_denial(request, audit.DENIED_ROLE)
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


def require_perm(user: Any, perm: str) -> None:
    if not user.has_perm(perm):
        raise PermissionDenied
