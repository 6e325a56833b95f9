"""crm.core.db.copy_create: one COPY stores what bulk_create stores (every column, the
ids in list order, the pghistory events and their context), and a constraint
violation is Django's IntegrityError (the import's row-by-row fallback catches it)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pghistory
import pghistory.models
import pytest
from django.db import IntegrityError, transaction

from crm.core.db import copy_create
from customers.models import Customer, CustomerPhone, CustomerProfile

VOLATILE = {"id", "customer_id", "created_at", "updated_at"}


def customers(owner: Any, tag: str) -> list[Customer]:
    """Customers that use every kind of column: JSON, array, decimal, dates, NULLs,
    foreign keys, a bool given as an int, a field left at its default."""
    return [
        Customer(
            name=f"{tag}客户甲",
            owner=owner,
            team=owner.team,
            tags=["甲", "乙,丙"],
            review_flags={"phone": "0123-4567890", "id_number": ""},
            lifetime_value=Decimal("12.50"),
            last_contacted_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
            external_source="旧系统",
            external_id=f"{tag}-1",
            name_pinyin="kehujia",
            name_initials="khj",
            notes="第一行\n第二行\t制表符 \\ 反斜杠",
        ),
        Customer(
            name=f"{tag}客户乙",
            is_organization=1,  # converted as bulk_create converts it
            kind=Customer.Kind.ENTERPRISE,
            pool_entered_at=datetime(2026, 2, 3, tzinfo=UTC),
            email="b@example.com",
        ),
    ]


def stored(pks: list[int]) -> list[dict]:
    rows = []
    for customer in Customer.objects.filter(pk__in=pks).order_by("pk"):
        rows.append(
            {
                f.attname: getattr(customer, f.attname)
                for f in Customer._meta.concrete_fields
                if f.attname not in VOLATILE
            }
        )
    return rows


def events(pks: list[int]) -> list[tuple]:
    found = pghistory.models.Events.objects.filter(
        pgh_model="customers.CustomerEvent", pgh_obj_id__in=[str(pk) for pk in pks]
    ).order_by("pgh_obj_id")
    return [
        (
            e.pgh_label,
            {k: v for k, v in e.pgh_data.items() if k not in VOLATILE},
            e.pgh_context and e.pgh_context["import_job"],
        )
        for e in found
    ]


def names_free(rows: list[dict], tag: str) -> list[dict]:
    return [
        {
            **row,
            "name": row["name"].removeprefix(tag),
            "external_id": row["external_id"] and row["external_id"].removeprefix(tag),
            "name_grams": None,
        }
        for row in rows
    ]


@pytest.mark.django_db
def test_copy_create_stores_what_bulk_create_stores(manager):
    # Each in its own transaction: the COPY must set the audit context itself.
    with transaction.atomic(), pghistory.context(user=manager.pk, import_job=7):
        copied = customers(manager, "C")
        copy_create(copied)
    with transaction.atomic(), pghistory.context(user=manager.pk, import_job=7):
        made = Customer.objects.bulk_create(customers(manager, "B"))
    assert [c.pk for c in copied] == sorted(c.pk for c in copied)
    assert all(not c._state.adding for c in copied)
    by_bulk, by_copy = (
        stored([c.pk for c in made]),
        stored([c.pk for c in copied]),
    )
    assert names_free(by_copy, "C") == names_free(by_bulk, "B")
    assert by_copy[0]["name_grams"]  # the generated column, computed by PostgreSQL
    bulk_events, copy_events = (
        events([c.pk for c in made]),
        events([c.pk for c in copied]),
    )
    assert len(copy_events) == 2
    assert (
        [(label, job) for label, _d, job in copy_events]
        == [(label, job) for label, _d, job in bulk_events]
        == [("insert", 7), ("insert", 7)]
    )


@pytest.mark.django_db
def test_related_rows_take_the_ids_just_given(manager):
    with transaction.atomic():
        customer = customers(manager, "R")[0]
        phones = [
            CustomerPhone(customer=customer, number="13800000001", is_primary=True),
            CustomerPhone(customer=customer, number="13800000002", kind="landline"),
        ]
        # One call: the phones and the profile take the id the customer was just given.
        copy_create(
            [customer], phones, [CustomerProfile(customer=customer, language="粤语")]
        )
    assert [p.pk for p in phones] == sorted(p.pk for p in phones)
    assert list(
        CustomerPhone.objects.filter(customer=customer)
        .order_by("pk")
        .values_list("number", "kind", "is_primary")
    ) == [("13800000001", "mobile", True), ("13800000002", "landline", False)]
    assert CustomerProfile.objects.get(customer=customer).language == "粤语"


@pytest.mark.django_db
def test_a_taken_phone_is_django_integrity_error(manager):
    customer = customers(manager, "T")[0]
    copy_create([customer])
    CustomerPhone.objects.create(customer=customer, number="13800000009")
    with pytest.raises(IntegrityError), transaction.atomic():
        copy_create([CustomerPhone(customer=customer, number="13800000009")])
    assert CustomerPhone.objects.filter(number="13800000009").count() == 1
