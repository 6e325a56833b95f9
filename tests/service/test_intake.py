"""The public intake form's service (no login): find or create the customer by phone,
throttle per IP and per phone, open a web ticket with a reference number."""

from __future__ import annotations

import re
import threading
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.db import connection

from customers.models import Customer, CustomerPhone, CustomerProfile
from service import calendar_data, services
from service.models import Ticket
from tests.factories import CategoryFactory, CustomerFactory, SLAPolicyFactory

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 3, 2, 10, 0, tzinfo=SH)
TOO_OFTEN_IP = "提交太频繁，请稍后再试或拨打客服热线。"
TOO_OFTEN_PHONE = "该号码提交太频繁，请稍后再试或拨打客服热线。"


@pytest.fixture
def desk(service_agent: Any) -> Any:
    calendar_data.calendar_seed(years=[2026])
    SLAPolicyFactory(ticket_type="repair", priority="normal")
    CategoryFactory(name="报修", team=service_agent.team)
    CategoryFactory(name="投诉", team=service_agent.team)
    return service_agent


def submit(
    *,
    phone: str = "13912345678",
    ip: str = "203.0.113.7",
    name: str = "赵先生",
    ticket_type: str = "repair",
    when: datetime = NOW,
) -> Ticket:
    with time_machine.travel(when, tick=False):
        return services.intake_submit(
            ip=ip,
            phone=phone,
            name=name,
            ticket_type=ticket_type,
            description="  厨房水龙头一直滴水，请尽快派人维修。  ",
            now=when,
        )


@pytest.mark.parametrize(
    "typed",
    ["13800138000", "138 0013 8000", "+86 138-0013-8000", "１３８００１３８０００"],
)
def test_a_known_phone_finds_the_customer(
    desk: Any, sales_rep: Any, typed: str
) -> None:
    known = CustomerFactory(name="王建国", phone="13800138000", owner=sales_rep)
    CustomerPhone.objects.create(customer=known, number="13800138000", is_primary=True)

    ticket = submit(phone=typed, name="老王")

    assert ticket.customer == known
    assert Customer.objects.count() == 1
    assert (ticket.contact_name, ticket.contact_phone) == ("老王", "13800138000")


def test_an_unknown_phone_creates_an_unverified_contact_and_a_web_ticket(
    desk: Any,
) -> None:
    ticket = submit(phone="１３９ １２３４ ５６７８")

    ticket.refresh_from_db()
    customer = ticket.customer
    assert (customer.name, customer.phone, customer.owner) == (
        "赵先生",
        "13912345678",
        None,
    )
    # The desk's unverified contact, not a sales lead in the pool (公海).
    assert (customer.is_verified, customer.pool_entered_at) == (False, None)
    assert not Customer.objects.in_pool().filter(pk=customer.pk).exists()
    assert customer.source == Customer.Source.ONLINE
    assert list(customer.phones.values_list("number", "is_primary")) == [
        ("13912345678", True)
    ]
    assert CustomerProfile.objects.filter(customer=customer).exists()

    assert re.fullmatch(r"2026\d{6}", ticket.reference)
    assert (ticket.channel, ticket.ticket_type) == ("web", "repair")
    assert ticket.description == "厨房水龙头一直滴水，请尽快派人维修。"
    assert ticket.subject == "厨房水龙头一直滴水，请尽快派人维修。"
    assert (ticket.category.name, ticket.team) == ("报修", desk.team)
    assert (ticket.assignee, ticket.status, ticket.created_by) == (
        desk,
        "assigned",
        None,
    )
    assert ticket.first_response_due_at == datetime(2026, 3, 2, 11, 0, tzinfo=SH)


def test_a_customer_without_a_name_is_named_by_the_phone(desk: Any) -> None:
    ticket = submit(name="   ")

    assert ticket.customer.name == "13912345678"


def test_a_complaint_goes_to_the_complaint_category(desk: Any) -> None:
    ticket = submit(ticket_type="complaint")

    assert (ticket.ticket_type, ticket.category.name) == ("complaint", "投诉")


@pytest.mark.parametrize("phone", ["12345", "1391234567", "abc", "", "139123456789"])
def test_a_bad_phone_is_refused_and_nothing_is_saved(desk: Any, phone: str) -> None:
    with pytest.raises(ValidationError) as refused:
        submit(phone=phone)

    assert refused.value.messages == [f"“{phone}”不是有效的电话号码。"]
    assert not Customer.objects.exists()
    assert not Ticket.objects.exists()


@pytest.mark.parametrize("ticket_type", ["inquiry", "praise", "bogus"])
def test_only_complaints_and_repairs_are_accepted(desk: Any, ticket_type: str) -> None:
    with pytest.raises(ValidationError) as refused:
        submit(ticket_type=ticket_type)

    assert refused.value.message_dict == {"ticket_type": ["请选择投诉或报修。"]}
    assert not Ticket.objects.exists()
    assert not Customer.objects.exists()


def test_one_ip_is_throttled_per_hour(desk: Any, settings: Any) -> None:
    settings.KEHU_INTAKE_PER_IP_HOUR = 2
    submit(phone="13912345671")
    submit(phone="13912345672", when=NOW + timedelta(minutes=10))

    with pytest.raises(ValidationError) as refused:
        submit(phone="13912345673", when=NOW + timedelta(minutes=59))

    assert refused.value.messages == [TOO_OFTEN_IP]
    assert Ticket.objects.count() == 2
    assert not CustomerPhone.objects.filter(number="13912345673").exists()
    # Another address is not affected, and an hour after the first the IP may again.
    submit(phone="13912345674", ip="198.51.100.1", when=NOW + timedelta(minutes=59))
    submit(phone="13912345675", when=NOW + timedelta(minutes=60, seconds=1))
    assert Ticket.objects.count() == 4


def test_one_phone_is_throttled_per_hour_however_it_is_typed(
    desk: Any, settings: Any
) -> None:
    settings.KEHU_INTAKE_PER_PHONE_HOUR = 1
    first = submit(phone="13912345678", ip="203.0.113.1")

    for typed, ip in (
        ("１３９１２３４５６７８", "203.0.113.2"),
        ("+8613912345678", "::1"),
    ):
        with pytest.raises(ValidationError) as refused:
            submit(phone=typed, ip=ip, when=NOW + timedelta(minutes=30))
        assert refused.value.messages == [TOO_OFTEN_PHONE]

    assert list(Ticket.objects.all()) == [first]
    later = submit(phone="13912345678", when=NOW + timedelta(hours=1, seconds=1))
    assert later.customer == first.customer


def file_twice_at_once(phone: str) -> list[Any]:
    """Two first-time submissions of one phone from two addresses, released together,
    each in its own thread and database connection; returns their outcomes."""
    barrier = threading.Barrier(2)
    outcomes: list[Any] = []

    def file_one(ip: str) -> None:
        try:
            barrier.wait(timeout=10)
            outcomes.append(
                services.intake_submit(
                    ip=ip,
                    phone=phone,
                    name="赵先生",
                    ticket_type="repair",
                    description="同时提交两次。",
                )
            )
        except Exception as exc:  # noqa: BLE001 - the outcome is what is checked
            outcomes.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=file_one, args=(ip,)) for ip in ("::1", "::2")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


@pytest.mark.django_db(transaction=True)
def test_two_first_submissions_from_one_new_phone_at_once_share_one_customer(
    desk: Any, settings: Any
) -> None:
    settings.KEHU_INTAKE_PER_PHONE_HOUR = 100
    outcomes = []
    # A few rounds: the race is lost almost every time, but one round could be lucky.
    for round_ in range(4):
        outcomes += file_twice_at_once(f"1391234560{round_}")

    unexpected = [
        f"{type(o).__name__}: {o}"
        for o in outcomes
        if not isinstance(o, Ticket | ValidationError)
    ]
    assert unexpected == []
    assert Ticket.objects.count() == 8
    assert Customer.objects.count() == 4


def test_a_submission_refused_for_its_phone_leaves_the_address_its_quota(
    desk: Any, settings: Any
) -> None:
    """The address's slot is taken in the ticket's transaction: refused for the phone
    afterwards, the submission rolls it back (crm.core.limits)."""
    settings.KEHU_INTAKE_PER_IP_HOUR = 1
    settings.KEHU_INTAKE_PER_PHONE_HOUR = 1
    submit(phone="13912345671", ip="203.0.113.1")
    with pytest.raises(ValidationError) as refused:
        submit(phone="13912345671", ip="203.0.113.2")
    assert refused.value.messages == [TOO_OFTEN_PHONE]

    assert submit(phone="13912345672", ip="203.0.113.2").contact_phone == "13912345672"
    assert Ticket.objects.count() == 2
