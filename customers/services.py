"""Every write to a customer. Audit rows are written by pghistory triggers in the same
transaction, tagged with the acting user by `pghistory.context`."""

from __future__ import annotations

from typing import Any

import pghistory
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import F
from django.utils.translation import gettext as _

from customers.models import Customer

EDITABLE_FIELDS = (
    "name",
    "kind",
    "stage",
    "tier",
    "is_key_account",
    "phone",
    "email",
    "notes",
)


class EditConflict(Exception):
    """Someone else saved the customer since the form was loaded."""

    def __init__(self, current: Customer) -> None:
        super().__init__("stale customer version")
        self.current = current


def customer_create(*, by: Any, **data: Any) -> Customer:
    if not by.has_perm("customers.add_customer"):
        raise PermissionDenied
    customer = Customer(
        owner=data.pop("owner", by),
        team=data.pop("team", by.team),
        **{k: v for k, v in data.items() if k in EDITABLE_FIELDS},
    )
    customer.full_clean()
    with transaction.atomic(), pghistory.context(user=by.pk):
        customer.save()
    return customer


def customer_update(
    *, by: Any, customer: Customer, version: int, **data: Any
) -> Customer:
    """Save `data` only if nobody saved since `version` was read; else EditConflict."""
    if not by.has_perm("customers.change_customer"):
        raise PermissionDenied
    for field, value in data.items():
        if field not in EDITABLE_FIELDS:
            raise ValidationError({field: _("该字段不可修改。")})
        setattr(customer, field, value)
    customer.full_clean()
    with transaction.atomic(), pghistory.context(user=by.pk):
        changed = Customer.objects.filter(pk=customer.pk, version=version).update(
            **{field: getattr(customer, field) for field in data},
            version=F("version") + 1,
        )
        if not changed:
            raise EditConflict(Customer.objects.get(pk=customer.pk))
    customer.refresh_from_db()
    return customer
