"""`get_FOO_display()` without translating every label of the field on each call.

Django's `Model._get_FIELD_display` builds `dict(make_hashable(field.flatchoices))` on
every call; with translated labels, hashing each lazy label translates it, so a list
of 25 customers showing kind and stage ran about 500 gettext lookups per page (the
largest single cost after template rendering in the profile of `customers.list`).
Here each field's labels are translated once per language and kept: the labels of
static choices (TextChoices, lists) never change while the process runs. Fields whose
choices are a callable (not a list after Django normalises them) keep Django's.
"""

from __future__ import annotations

from functools import partialmethod
from typing import Any

from django.apps import apps
from django.db import models
from django.utils.encoding import force_str
from django.utils.hashable import make_hashable
from django.utils.translation import get_language

_labels: dict[tuple[models.Field, str | None], dict[Any, Any]] = {}


def _get_field_display(self: models.Model, field: models.Field) -> Any:
    key = (field, get_language())
    labels = _labels.get(key)
    if labels is None:
        labels = _labels[key] = {
            make_hashable(value): force_str(label, strings_only=True)
            for value, label in field.flatchoices
        }
    value = getattr(self, field.attname)
    return labels.get(make_hashable(value), force_str(value, strings_only=True))


def install() -> None:
    """Called once from CoreConfig.ready(). Django made each model's
    `get_FOO_display` when the class was created (a partialmethod of
    `_get_FIELD_display`), so those are replaced; one a model defines itself is kept."""
    for model in apps.get_models():
        for field in model._meta.fields:
            name = f"get_{field.name}_display"
            if isinstance(field.choices, list) and isinstance(
                model.__dict__.get(name), partialmethod
            ):
                setattr(model, name, partialmethod(_get_field_display, field=field))
