"""Admins manage Kehu in Kehu: the settings area's building blocks.

A `Resource` describes one kind of reference data an admin keeps (categories, SLA
policies, teams ...): its model, its form, the columns and search of its list. The
generic pages in `crm/core/crud_views.py` list it (searched, filtered, paginated with
a fixed number of queries), create and edit it through a form, and delete it after a
confirmation page. Every write goes through `resource_save` / `resource_delete`: one
transaction, `full_clean()`, the pghistory context of the acting user, and one row in
the security audit log (`audit.SETTINGS_CHANGED`).

Apps register their sections on the settings index (`/settings/`) with `register()` in
`AppConfig.ready()`; the platform names no domain app.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from crispy_forms.helper import FormHelper
from django import forms
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Model, Q, QuerySet
from django.utils.functional import Promise

from crm.accounts.roles import Role
from crm.core import audit
from crm.core.db import audited

# --- the settings index -------------------------------------------------------------------


@dataclass(frozen=True)
class Section:
    label: Promise | str
    url_name: str
    description: Promise | str = ""
    icon: str = "gear"
    order: int = 100


_sections: dict[str, Section] = {}


def register(section: Section) -> None:
    """Add a section to the settings index (once: a second call replaces it)."""
    _sections[section.url_name] = section


def sections() -> list[Section]:
    return sorted(_sections.values(), key=lambda s: (s.order, s.url_name))


# --- resources ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Filter:
    """A list filter: `?name=value`, one of `choices()`, applied by `lookup(value)`."""

    name: str
    label: Promise | str
    choices: Callable[[], list[tuple[str, Any]]]
    lookup: Callable[[str], Q]


@dataclass(frozen=True)
class Column:
    label: Promise | str
    value: Callable[[Any], Any]


@dataclass(frozen=True)
class Resource:
    key: str  # URL segment and URL-name prefix: "sla" -> sla_list, sla_edit ...
    model: type[Model]
    form: type[forms.ModelForm]
    label: Promise | str  # the list's title
    item_label: Promise | str  # one of them: "SLA 策略"
    columns: tuple[Column, ...]
    queryset: Callable[[], QuerySet] | None = None
    search: tuple[str, ...] = ()  # fields searched with icontains
    search_hint: Promise | str = ""
    filters: tuple[Filter, ...] = ()
    description: Promise | str = ""
    delete_note: Promise | str = ""  # what deleting means, on the confirmation page
    can_create: bool = True
    can_delete: bool = True
    per_page: int = 25
    list_template: str = "core/settings/list.html"
    roles: tuple[str, ...] = (Role.ADMIN,)
    # Extra keyword arguments for the form (querysets of its choices).
    form_kwargs: Callable[[], dict[str, Any]] = field(default=lambda: {})
    # Runs after the row is saved, in the same transaction: (by, instance, data).
    after_save: Callable[[Any, Any, dict[str, Any]], None] | None = None
    # Returns a reason (str) when this row may not be deleted, else None.
    delete_blocker: Callable[[Any], Any] | None = None

    def rows(self) -> QuerySet:
        return self.queryset() if self.queryset else self.model.objects.all()

    def search_condition(self, query: str) -> Q | None:
        if not query or not self.search:
            return None
        condition = Q()
        for name in self.search:
            condition |= Q(**{f"{name}__icontains": query})
        return condition


class ResourceForm(forms.ModelForm):
    """A ModelForm rendered by crispy inside the page's own <form>."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.form_tag = False
        self.helper.disable_csrf = True  # the page's <form> carries the token


# --- writes -------------------------------------------------------------------------------


def _require(by: Any, resource: Resource) -> None:
    if by is None or by.role not in resource.roles:
        raise PermissionDenied


def resource_save(
    *, by: Any, resource: Resource, instance: Model, data: dict[str, Any]
) -> Model:
    """Create or change one row of `resource` from a form's cleaned data."""
    _require(by, resource)
    is_new = instance._state.adding
    concrete = {f.name for f in instance._meta.concrete_fields}
    changed = []
    with transaction.atomic(), audited(by):
        for name, value in data.items():
            if name not in concrete:
                continue  # form-only fields (team members) are for after_save
            if is_new or getattr(instance, name) != value:
                changed.append(name)
            setattr(instance, name, value)
        instance.full_clean()
        instance.save()
        if resource.after_save is not None:
            resource.after_save(by, instance, data)
        audit.record(
            None,
            audit.SETTINGS_CHANGED,
            user=by,
            obj=instance,
            detail=f"{'created' if is_new else 'changed'} {instance}: "
            + ",".join(changed),
        )
    return instance


def resource_delete(*, by: Any, resource: Resource, instance: Model) -> None:
    """Delete one row; a row still in use (PROTECT) raises ProtectedError."""
    _require(by, resource)
    if not resource.can_delete:
        raise PermissionDenied
    pk, text = instance.pk, str(instance)
    with transaction.atomic(), audited(by):
        instance.delete()
        audit.record(
            None,
            audit.SETTINGS_CHANGED,
            user=by,
            object_type=instance._meta.model_name,
            object_id=pk,
            detail=f"deleted {text}",
        )
