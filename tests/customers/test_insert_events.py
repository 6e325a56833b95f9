"""The insert events of customers, phones and profiles come from statement-level
triggers (one INSERT … SELECT over the statement's new rows): one event per row, in the
rows' order, under the statement's context, and nothing for a statement of no rows.
That they equal a single create's events is checked in test_import_bulk.py."""

from __future__ import annotations

import pghistory
import pghistory.models
import pytest
from django.apps import apps
from django.db import connection

from customers.models import Customer, CustomerPhone

pytestmark = pytest.mark.django_db

PhoneEvent = apps.get_model("customers.CustomerPhoneEvent")
CustomerEvent = apps.get_model("customers.CustomerEvent")


def test_a_statement_of_many_rows_writes_one_event_per_row_in_their_order(manager):
    customer = Customer.objects.create(name="多号码客户")
    with pghistory.context(user=manager.pk, import_job=7):
        phones = CustomerPhone.objects.bulk_create(
            [
                CustomerPhone(customer=customer, number=f"1390000990{n}", kind="mobile")
                for n in range(3)
            ]
        )
    events = list(PhoneEvent.objects.filter(customer_id=customer.pk).order_by("pgh_id"))
    assert [(e.pgh_label, e.pgh_obj_id, e.number) for e in events] == [
        ("insert", phone.pk, phone.number) for phone in phones
    ]
    assert len({e.pgh_context_id for e in events}) == 1
    context = pghistory.models.Context.objects.get(pk=events[0].pgh_context_id)
    assert context.metadata == {"user": manager.pk, "import_job": 7}


def test_an_insert_of_no_rows_writes_no_event_and_no_context():
    customer = Customer.objects.create(name="无号码客户")
    contexts = pghistory.models.Context.objects.count()
    with pghistory.context(user=None), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO customers_customerphone (customer_id, number, kind, is_primary)"
            " SELECT %s, '13900009999', 'mobile', true WHERE false",
            [customer.pk],
        )
    assert not PhoneEvent.objects.filter(customer_id=customer.pk).exists()
    assert pghistory.models.Context.objects.count() == contexts


def test_an_insert_outside_a_context_has_an_event_without_one():
    customer = Customer.objects.create(name="无上下文客户")
    event = CustomerEvent.objects.get(pgh_obj_id=customer.pk)
    assert (event.pgh_label, event.name, event.pgh_context_id) == (
        "insert",
        "无上下文客户",
        None,
    )
