"""crm/core/choices.py: get_FOO_display() keeps Django's answers (label in the active
language, the raw value when it is not a choice) while translating each field's labels
once per language."""

from __future__ import annotations

from functools import partialmethod

import pytest
from django.apps import apps
from django.utils import translation

from crm.core import choices
from customers.models import Customer
from service.models import Ticket


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_every_label_in_the_active_language(language):
    with translation.override(language):
        for kind in Customer.Kind:
            assert Customer(kind=kind.value).get_kind_display() == str(kind.label)
        for status in Ticket.Status:
            assert Ticket(status=status.value).get_status_display() == str(status.label)


def test_switching_language_switches_the_label():
    customer = Customer(kind=Customer.Kind.OWNER, stage=Customer.Stage.LEAD)
    with translation.override("zh-hans"):
        chinese = customer.get_kind_display(), customer.get_stage_display()
    with translation.override("en"):
        english = customer.get_kind_display(), customer.get_stage_display()
        expected = str(Customer.Kind.OWNER.label), str(Customer.Stage.LEAD.label)
    assert chinese == ("业主", "潜在")
    assert english == expected
    assert english[0] != chinese[0] and english[1] != chinese[1]


def test_a_value_that_is_not_a_choice_is_shown_as_stored():
    assert Customer(kind="不存在").get_kind_display() == "不存在"
    assert Customer(kind=None).get_kind_display() is None


def test_every_models_display_methods_are_the_cached_ones():
    replaced = [
        model.__dict__[f"get_{field.name}_display"]
        for model in apps.get_models()
        for field in model._meta.fields
        if isinstance(field.choices, list)
        and isinstance(model.__dict__.get(f"get_{field.name}_display"), partialmethod)
    ]
    assert replaced, "no model has a field with choices?"
    assert all(method.func is choices._get_field_display for method in replaced)
