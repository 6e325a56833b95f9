"""What a new customer stores, computed in one place for every way one is created.

Three paths create customers: `services.customer_create` (the form, other apps, the
demo), the bulk import (`imports._create_chunk`: one COPY per table for a chunk of
rows) and the public intake (`service.services.intake_submit`). Each one calls `build`
for the unsaved rows, `clean` for the model's checks, then `save` (one by one) or
`save_many` (one COPY per table). A new stored field or check is added here, once;
tests/customers/test_builder.py compares the rows the three paths store.

The checks run in this order on every path, so a row refused by one path is refused
with the same reason by the others:
1. the phone numbers, then the ID number, as typed (`build`);
2. an ID number another customer holds, then a phone another customer holds (the one
   registered first is named): looked up by the caller, one customer at a time by
   customer_create, a chunk at a time by the import; the intake uses the phone's
   holder instead of creating one;
3. the model's own checks (`clean`): lengths, choices, e-mail.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pghistory
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.core.db import copy_create
from customers import identity, phones, search
from customers.models import Customer, CustomerPhone, CustomerProfile

# What the customer form, an import row or another app may set on a customer.
EDITABLE_FIELDS = (
    "name",
    "is_organization",
    "kind",
    "stage",
    "tier",
    "is_key_account",
    "source",
    "tags",
    "province",
    "city",
    "district",
    "address",
    "wechat_id",
    "email",
    "notes",
    "organization",
    "parent",
)
# 累计成交额 (lifetime_value) is not here: it is derived from payments, kept by the
# deals app's payment services (culture/deals/services.py).
PROFILE_FIELDS = CustomerProfile.PREFERENCE_FIELDS


class NumberTaken(ValidationError):
    """A phone another customer registered between the check and the INSERT."""

    def __init__(self, number: str) -> None:
        super().__init__(
            {"phone": _("电话 %(number)s 刚被另一位客户登记。") % {"number": number}}
        )
        self.number = number


@dataclass
class NewCustomer:
    """The unsaved rows of one new customer: the customer, its phones (the primary
    first) and its profile."""

    customer: Customer
    phones: list[CustomerPhone]
    profile: CustomerProfile
    # The profile fields the input set (only those need checking).
    profile_fields: tuple[str, ...] = ()

    @property
    def numbers(self) -> list[str]:
        return [phone.number for phone in self.phones]


def normalise_phones(raw_numbers: Iterable[str]) -> list[tuple[str, str]]:
    """Validated, de-duplicated (number, kind) pairs; ValidationError names the bad one."""
    seen: dict[str, str] = {}
    for raw in raw_numbers:
        if raw and raw.strip():
            number, kind = phones.normalise_phone(raw)
            seen.setdefault(number, kind)
    return list(seen.items())


def id_number_columns(number: str) -> tuple[str, str, str]:
    """(cipher, blind index, mask): what a customer stores for a normalised ID number."""
    return identity.encrypt(number), identity.blind_index(number), identity.mask(number)


def store_id_number(customer: Customer, number: str) -> None:
    """Set the encrypted ID number, its blind index and mask from a normalised number."""
    (
        customer.id_number_cipher,
        customer.id_number_index,
        customer.id_number_masked,
    ) = id_number_columns(number)


def build(
    *,
    data: dict[str, Any],
    phone_numbers: Iterable[str] = (),
    id_number: str | None = None,
    profile: dict[str, Any] | None = None,
    owner: Any = None,
    now: datetime | None = None,
    verified: bool = True,
    checked_phones: list[tuple[str, str]] | None = None,
    checked_id: tuple[str, str, str] | None = None,
) -> NewCustomer:
    """The unsaved customer, phones and profile for this input.

    `owner` None puts the customer in the public pool (since `now`), unless it is
    not `verified` (a contact the service desk took): that one waits, owned by
    nobody and outside the pool, until an agent verifies it. Keys of `data`
    and `profile` other than EDITABLE_FIELDS and PROFILE_FIELDS are ignored. Raises
    ValidationError for a bad phone number, then for a bad ID number.

    The import's preview has already checked its rows' numbers with the same
    functions: it passes what they gave instead of the raw input, `checked_phones`
    (normalise_phones' pairs) and `checked_id` (id_number_columns' triple), which are
    stored as they are.
    """
    if checked_phones is not None:
        numbers = checked_phones
    else:
        numbers = normalise_phones(phone_numbers)
    customer = Customer(
        owner=owner,
        team=owner.team if owner else None,
        pool_entered_at=None if owner or not verified else (now or timezone.now()),
        is_verified=verified,
        **{k: v for k, v in data.items() if k in EDITABLE_FIELDS},
    )
    if checked_id is not None:
        (
            customer.id_number_cipher,
            customer.id_number_index,
            customer.id_number_masked,
        ) = checked_id
    elif id_number and id_number.strip():
        store_id_number(customer, identity.normalise_id_number(id_number))
    customer.phone = numbers[0][0] if numbers else ""
    # Customer.save() sets these too; bulk_create does not call it.
    customer.name_pinyin, customer.name_initials = search.pinyin_of(customer.name)
    preferences = {k: v for k, v in (profile or {}).items() if k in PROFILE_FIELDS}
    return NewCustomer(
        customer=customer,
        phones=[
            CustomerPhone(
                customer=customer, number=number, kind=kind, is_primary=position == 0
            )
            for position, (number, kind) in enumerate(numbers)
        ],
        profile=CustomerProfile(customer=customer, **preferences),
        profile_fields=tuple(preferences),
    )


def clean(new: NewCustomer, *, in_bulk: bool = False) -> None:
    """The model's checks: lengths, choices, e-mail (ValidationError keyed by field).

    `in_bulk` (the import) leaves out the checks that are queries: uniqueness, which
    the import looks up for a whole chunk, and the owner and team, users and teams its
    transaction has just read.
    """
    if in_bulk:
        new.customer.full_clean(
            exclude=["name_grams", "owner", "team"],
            validate_unique=False,
            validate_constraints=False,
        )
    else:
        new.customer.full_clean(exclude=["name_grams"])
    if new.profile_fields:
        new.profile.clean_fields(
            exclude=[
                f.name
                for f in CustomerProfile._meta.concrete_fields
                if f.name not in new.profile_fields
            ]
        )


def history(by: Any, **context: Any) -> pghistory.context:
    """The audit context of the rows written: who (None: the public or the system),
    and where from (import_job=…)."""
    return pghistory.context(user=by.pk if by else None, **context)


def save(new: NewCustomer, *, by: Any, **context: Any) -> Customer:
    """INSERT one customer's rows (call in a transaction). NumberTaken if a phone was
    registered by another customer since it was checked."""
    with history(by, **context):
        new.customer.save(force_insert=True)
        for phone in new.phones:
            try:
                # Savepoint: a concurrent insert of the same number loses here.
                with transaction.atomic():
                    phone.save(force_insert=True)
            except IntegrityError as exc:
                raise NumberTaken(phone.number) from exc
        new.profile.save(force_insert=True)
    return new.customer


def save_many(news: list[NewCustomer], *, by: Any, **context: Any) -> None:
    """INSERT the customers' rows with one COPY per table (call in a transaction).

    The same stored values as bulk_create (crm.core.db.copy_create); the pghistory
    triggers write one insert event per row, as `save` does. A phone or ID number
    taken meanwhile raises IntegrityError for the whole statement.
    """
    if not news:
        return
    with history(by, **context):
        copy_create(
            [new.customer for new in news],
            [phone for new in news for phone in new.phones],
            [new.profile for new in news],
        )
