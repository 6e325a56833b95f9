"""crm/core/templatetags/pk_url.py: {% pk_url %} gives what {% url %} gives."""

from __future__ import annotations

from django.template import Context, Template
from django.urls import reverse, set_script_prefix

from crm.core.templatetags.pk_url import pk_url_of

NAMES = [
    "customers:customer_detail",
    "customers:contact_create",
    "service:workorder_detail",
    "service:attachment_download",
]


def test_every_id_gives_the_reversed_url():
    for name in NAMES:
        for pk in (1, 7, 42, 10**12):
            assert pk_url_of(name, pk) == reverse(name, args=[pk])


def test_a_script_prefix_is_kept():
    try:
        set_script_prefix("/crm/")
        assert pk_url_of("customers:customer_detail", 5) == "/crm/customers/5/"
    finally:
        set_script_prefix("/")
    assert pk_url_of("customers:customer_detail", 5) == "/customers/5/"


def test_an_argument_that_is_not_an_int_is_reversed_as_given():
    assert pk_url_of("customers:customer_detail", "12") == "/customers/12/"


def test_the_tag_renders_like_url():
    template = Template(
        '{% load pk_url %}{% pk_url "customers:customer_detail" c %}|'
        '{% url "customers:customer_detail" c %}'
    )
    ours, django_s = template.render(Context({"c": 99})).split("|")
    assert ours == django_s == "/customers/99/"
