"""One builder of a new customer's rows (customers/builder.py): the customer form's
service, an import row and the public intake store the same person identically, down
to the search columns, the phone's kind, the profile row and the history events."""

from __future__ import annotations

from typing import Any

import pghistory.models
import pytest

from customers import identity, imports, services
from customers.models import Customer, CustomerProfile, ImportRow
from service import calendar_data
from service import services as service_services
from tests.customers.test_import_bulk import confirmed_job
from tests.factories import CategoryFactory, SLAPolicyFactory

NAME = "曾小明"  # 曾 read as a surname: zeng, not ceng
LANDLINE = "010-8888 6666"
ID_NUMBER = "11010519491231002x"  # lower-case check character, as someone types it

# What differs between two creates of the same input: keys, clocks, the cipher's nonce.
VOLATILE = {
    "id",
    "customer",
    "customer_id",
    "created_at",
    "updated_at",
    "pool_entered_at",
    "id_number_cipher",
}
EVENT_MODELS = [
    "customers.CustomerEvent",
    "customers.CustomerPhoneEvent",
    "customers.CustomerProfileEvent",
]


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def desk(service_agent: Any) -> Any:
    calendar_data.calendar_seed(years=[2026])
    SLAPolicyFactory(ticket_type="repair", priority="normal")
    CategoryFactory(name="报修", team=service_agent.team)
    return service_agent


def stored(customer: Customer) -> tuple[dict, list]:
    """(every stored value of the customer, its phones and profile, and their history
    events, bar what VOLATILE names; the events' contexts)."""
    customer = Customer.objects.get(pk=customer.pk)
    fields = {
        f.attname: getattr(customer, f.attname)
        for f in Customer._meta.concrete_fields
        if f.attname not in VOLATILE
    }
    fields["id_number"] = (
        identity.decrypt(customer.id_number_cipher) if customer.id_number_cipher else ""
    )
    fields["in_pool_since_set"] = customer.pool_entered_at is not None
    fields["phones"] = list(
        customer.phones.order_by("-is_primary", "number").values(
            "number", "kind", "is_primary"
        )
    )
    profile = CustomerProfile.objects.get(customer=customer)
    fields["profile"] = {
        f.attname: getattr(profile, f.attname)
        for f in CustomerProfile._meta.concrete_fields
        if f.attname not in VOLATILE
    }
    events = (
        pghistory.models.Events.objects.references(customer)
        .filter(pgh_model__in=EVENT_MODELS)
        .order_by("pgh_model", "pgh_label")
    )
    fields["events"] = [
        (
            e.pgh_model,
            e.pgh_label,
            {k: v for k, v in e.pgh_data.items() if k not in VOLATILE},
        )
        for e in events
    ]
    return fields, [e.pgh_context for e in events]


def without_verification(fields: dict) -> tuple[dict, tuple[bool, bool]]:
    """`fields` without the verification state, and that state (verified, in pool)."""
    rest = dict(fields)
    state = (rest.pop("is_verified"), rest.pop("in_pool_since_set"))
    rest["events"] = [
        (model, label, {k: v for k, v in data.items() if k != "is_verified"})
        for model, label, data in rest["events"]
    ]
    return rest, state


def through_the_form(by: Any, **extra: Any) -> Customer:
    return services.customer_create(
        by=by,
        data={"name": NAME, "source": Customer.Source.ONLINE},
        phone_numbers=[LANDLINE, *extra.pop("more_phones", [])],
        owner=None,
        **extra,
    )


def through_an_import(by: Any, capture: Any, **extra: Any) -> tuple[Customer, int]:
    header = ["名称", "电话", "来源", "负责人", "身份证号"]
    phones = ", ".join([LANDLINE, *extra.get("more_phones", [])])
    row = [NAME, phones, "线上", "公海", extra.get("id_number", "")]
    job = confirmed_job(by, [header, row], capture)
    with capture():
        job = imports.import_job_execute(job_id=job.pk)
    assert (job.imported_rows, job.skipped_rows) == (1, 0)
    return ImportRow.objects.get(job=job).customer, job.pk


def test_form_import_and_public_intake_store_one_person_identically(
    manager, desk, django_capture_on_commit_callbacks
):
    by_form, form_context = stored(through_the_form(manager))
    Customer.objects.filter(name=NAME).delete()  # the phone is unique
    imported, job_id = through_an_import(manager, django_capture_on_commit_callbacks)
    by_import, import_context = stored(imported)
    Customer.objects.filter(name=NAME).delete()
    ticket = service_services.intake_submit(
        ip="203.0.113.7",
        phone=LANDLINE,
        name=f"  {NAME} ",
        ticket_type="repair",
        description="厨房水龙头一直滴水。",
    )
    by_intake, intake_context = stored(ticket.customer)

    assert by_import == by_form
    # The intake's customer is the desk's unverified contact, outside the pool until
    # an agent verifies it: that, and nothing else, differs.
    intake_rest, intake_state = without_verification(by_intake)
    form_rest, form_state = without_verification(by_form)
    assert intake_rest == form_rest
    assert (intake_state, form_state) == ((False, False), (True, True))
    # The sample covers what the comparison is about.
    assert (by_form["name_pinyin"], by_form["name_initials"]) == ("zengxiaoming", "zxm")
    assert {"曾", "曾小", "小明"} <= set(by_form["name_grams"])
    assert by_form["phone"] == "01088886666"
    assert by_form["phones"] == [
        {"number": "01088886666", "kind": "landline", "is_primary": True}
    ]
    assert (by_form["owner_id"], by_form["team_id"]) == (None, None)
    assert by_form["in_pool_since_set"]
    assert [(model, label) for model, label, _data in by_form["events"]] == [
        ("customers.CustomerEvent", "insert"),
        ("customers.CustomerPhoneEvent", "insert"),
        ("customers.CustomerProfileEvent", "insert"),
    ]
    # Who wrote the rows: the importer with the job, the public (no user).
    assert form_context == [{"user": manager.pk}] * 3
    assert import_context == [{"user": manager.pk, "import_job": job_id}] * 3
    assert intake_context == [{"user": None}] * 3


def test_form_and_import_store_an_id_number_and_second_phone_identically(
    manager, django_capture_on_commit_callbacks
):
    """The public intake takes neither an ID number nor a second phone."""
    extra = {"id_number": ID_NUMBER, "more_phones": ["＋86 139 1234 5678"]}
    by_form, _context = stored(through_the_form(manager, **extra))
    Customer.objects.filter(name=NAME).delete()
    imported, _job = through_an_import(
        manager, django_capture_on_commit_callbacks, **extra
    )
    by_import, _context = stored(imported)

    assert by_import == by_form
    normalised = ID_NUMBER.upper()
    assert by_form["id_number"] == normalised
    assert by_form["id_number_index"] == identity.blind_index(normalised)
    assert by_form["id_number_masked"] == "1101**********002X"
    assert by_form["phones"] == [
        {"number": "01088886666", "kind": "landline", "is_primary": True},
        {"number": "13912345678", "kind": "mobile", "is_primary": False},
    ]
    assert [(model, label) for model, label, _data in by_form["events"]] == [
        ("customers.CustomerEvent", "insert"),
        ("customers.CustomerPhoneEvent", "insert"),
        ("customers.CustomerPhoneEvent", "insert"),
        ("customers.CustomerProfileEvent", "insert"),
    ]
