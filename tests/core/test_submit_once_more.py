"""The other create forms carry the one-time token too (crm/core/once.py): a new
customer, a handover event, a booking, a ticket's attachments, a customer import and an
export request. Each, posted twice with the token its page carried (a double click, a
resent page), saves one row; the second post is sent to the first one's page with
"已提交过，未重复保存"."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from pytest_django.asserts import assertContains

from crm.core import once
from customers import services as customer_services
from customers.models import Customer, ExportRequest, ImportJob
from service import services as service_services
from service.handover.models import Appointment, HandoverEvent
from tests.core.test_submit_once import ALREADY, TOKEN, post_at_once
from tests.factories import CustomerFactory
from tests.handover.builders import make_event, slots_of

EXPORT_LIMIT = 2


@pytest.fixture(autouse=True)
def _files_and_limits(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.EXPORT_ROOT = tmp_path / "exports"
    settings.KEHU_EXPORT_APPROVAL_ROWS = EXPORT_LIMIT


@dataclass
class World:
    people: dict[str, Any]
    customer: Customer
    ticket: Any
    event: HandoverEvent


@pytest.fixture
def world(sales_rep, manager, service_agent, admin_user) -> World:
    customer = customer_services.customer_create(
        by=sales_rep, data={"name": "防重客户"}, phone_numbers=["13922223333"]
    )
    for n in range(EXPORT_LIMIT + 1):  # enough for an export that needs approval
        CustomerFactory(owner=sales_rep, name=f"导出客户{n}")
    ticket = service_services.ticket_create(
        by=admin_user,
        customer=customer,
        ticket_type="repair",
        channel="hotline",
        subject="门锁坏了",
        description="三号楼门锁坏了",
    )
    return World(
        people={
            "sales_rep": sales_rep,
            "manager": manager,
            "service_agent": service_agent,
        },
        customer=customer,
        ticket=ticket,
        event=make_event(admin_user, slots_per_day=2, capacity=5),
    )


def token_of(response, form_testid: str | None = None) -> str:
    """The token of the page's only guarded form, or of the form `form_testid`."""
    html = response.content.decode()
    if form_testid:
        html = html.split(f'data-testid="{form_testid}"', 1)[1].split("</form>", 1)[0]
    found = TOKEN.findall(html)
    assert len(found) == 1, found
    return found[0]


def pdf() -> SimpleUploadedFile:
    return SimpleUploadedFile("发票.pdf", b"%PDF-1.4 test", "application/pdf")


def customers_csv() -> SimpleUploadedFile:
    content = "姓名,手机\n导入客户甲,13700002222\n导入客户乙,13700003333\n"
    return SimpleUploadedFile("客户.csv", content.encode("utf-8-sig"), "text/csv")


@dataclass
class Case:
    actor: str
    page: Callable[[World], str]
    form_testid: str | None
    url: Callable[[World], str]
    # Called once per post: an uploaded file is read up by the post that sends it.
    data: Callable[[World], dict[str, Any]]
    rows: Callable[[World], Any]


def _day(w: World) -> str:
    return w.event.start_date.isoformat()


CASES = {
    "customer create": Case(
        actor="sales_rep",
        page=lambda w: reverse("customers:customer_create"),
        form_testid=None,
        url=lambda w: reverse("customers:customer_create"),
        data=lambda w: {
            "name": "双击新客户",
            "kind": "owner",
            "stage": "lead",
            "tier": "C",
            "phone": "13955556666",
        },
        rows=lambda w: Customer.objects.filter(name="双击新客户"),
    ),
    "handover event create": Case(
        actor="manager",
        page=lambda w: reverse("handover:event_create"),
        form_testid="event-form",
        url=lambda w: reverse("handover:event_create"),
        data=lambda w: {
            "name": "双击活动",
            "project_name": "滨江一号",
            "venue": "售楼处二楼",
            "start_date": _day(w),
            "end_date": _day(w),
        },
        rows=lambda w: HandoverEvent.objects.filter(name="双击活动"),
    ),
    "handover booking": Case(
        actor="sales_rep",
        page=lambda w: (
            reverse("handover:appointment_book", args=[w.event.pk])
            + f"?customer={w.customer.pk}"
        ),
        form_testid="booking-form",
        url=lambda w: reverse("handover:appointment_book", args=[w.event.pk]),
        data=lambda w: {
            "customer": w.customer.pk,
            "slot": slots_of(w.event)[0].pk,
            "unit": "3栋2单元1502",
            "party_size": 2,
            "channel": "phone",
        },
        rows=lambda w: Appointment.objects.filter(customer=w.customer),
    ),
    "ticket attachment upload": Case(
        actor="service_agent",
        page=lambda w: w.ticket.get_absolute_url(),
        form_testid="attachment-form",
        url=lambda w: reverse("service:attachment_upload", args=[w.ticket.reference]),
        data=lambda w: {"version": w.ticket.version, "files": [pdf()]},
        rows=lambda w: w.ticket.attachments.all(),
    ),
    "customer import upload": Case(
        actor="manager",
        page=lambda w: reverse("customers:import_upload"),
        form_testid="import-upload",
        url=lambda w: reverse("customers:import_upload"),
        data=lambda w: {"file": customers_csv()},
        rows=lambda w: ImportJob.objects.all(),
    ),
    "export request": Case(
        actor="manager",
        page=lambda w: reverse("customers:export_confirm"),
        form_testid="export-request-form",
        url=lambda w: reverse("customers:export_request_create"),
        data=lambda w: {"reason": "季度回访名单", "file_format": "csv"},
        rows=lambda w: ExportRequest.objects.all(),
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_a_form_posted_twice_with_its_token_saves_one_row_and_says_so(
    name, client, world
):
    case = CASES[name]
    client.force_login(world.people[case.actor])
    page = client.get(case.page(world))
    assert page.status_code == 200
    token = token_of(page, case.form_testid)
    before = case.rows(world).count()

    first = client.post(case.url(world), case.data(world) | {once.FIELD: token})
    assert first.status_code == 302, first.content.decode()[:2000]
    assert case.rows(world).count() == before + 1

    second = client.post(
        case.url(world), case.data(world) | {once.FIELD: token}, follow=True
    )
    assert second.redirect_chain == [(first["Location"], 302)]
    assertContains(second, ALREADY)
    assert case.rows(world).count() == before + 1


@pytest.mark.parametrize("name", list(CASES))
def test_every_newly_guarded_form_gets_a_fresh_token(name, client, world):
    case = CASES[name]
    client.force_login(world.people[case.actor])
    tokens = {token_of(client.get(case.page(world)), case.form_testid) for _ in "ab"}
    assert len(tokens) == 2


def test_editing_a_customer_or_an_event_carries_no_token(client, world, manager):
    """Edits are guarded by their version column (or are idempotent), not by a token."""
    client.force_login(manager)
    customer_edit = reverse("customers:customer_edit", args=[world.customer.pk])
    event_edit = reverse("handover:event_edit", args=[world.event.pk])
    for url in (customer_edit, event_edit):
        page = client.get(url)
        assert page.status_code == 200
        assert not TOKEN.findall(page.content.decode())


def test_look_alikes_keep_the_token_for_the_explicit_second_save(client, sales_rep, db):
    """The look-alike step saves nothing, so the same token saves on the confirming
    post; a double click on that confirming post saves no second customer."""
    customer_services.customer_create(
        by=sales_rep, data={"name": "防重公司", "is_organization": True}
    )
    client.force_login(sales_rep)
    url = reverse("customers:customer_create")
    token = token_of(client.get(url))
    data = {
        "name": "防重公司",  # an organization's name: shown as a look-alike
        "kind": "owner",
        "stage": "lead",
        "tier": "C",
        once.FIELD: token,
    }
    look_alikes = client.post(url, data)
    assertContains(look_alikes, 'data-testid="duplicates"')
    assert token_of(look_alikes) == token
    assert Customer.objects.filter(name="防重公司").count() == 1

    confirm = re.search(
        r'name="confirm_duplicates" value="([^"]*)"', look_alikes.content.decode()
    )
    data["confirm_duplicates"] = confirm[1]
    saved = client.post(url, data)
    assert saved.status_code == 302
    again = client.post(url, data, follow=True)
    assert again.redirect_chain == [(saved["Location"], 302)]
    assertContains(again, ALREADY)
    assert Customer.objects.filter(name="防重公司").count() == 2


def test_a_refused_booking_keeps_its_token_for_another_slot(client, sales_rep, world):
    client.force_login(sales_rep)
    page_url = CASES["handover booking"].page(world)
    token = token_of(client.get(page_url), "booking-form")
    url = CASES["handover booking"].url(world)
    data = CASES["handover booking"].data(world) | {once.FIELD: token}
    refused = client.post(url, data | {"party_size": 0})
    assert refused.status_code == 400
    assert token_of(refused, "booking-form") == token
    assert not Appointment.objects.exists()
    assert client.post(url, data).status_code == 302
    assert Appointment.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_simultaneous_bookings_with_one_token_book_once_and_both_go_to_the_slot(
    sales_rep, admin_user
):
    """Without the token the second of two such posts was refused as a double booking
    (the form with an error); now both land on the slot page."""
    event = make_event(admin_user, name="同时预约", slots_per_day=1, capacity=5)
    slot = slots_of(event)[0]
    customer = CustomerFactory(owner=sales_rep, name="同时预约客户")
    clients = [Client(), Client()]
    for client in clients:
        client.force_login(sales_rep)
    data = {
        "customer": customer.pk,
        "slot": slot.pk,
        "unit": "1栋101",
        "party_size": 1,
        "channel": "phone",
        once.FIELD: once.new_token(),
    }
    answers = post_at_once(
        clients, reverse("handover:appointment_book", args=[event.pk]), data
    )
    statuses = [getattr(answer, "status_code", answer) for answer in answers]
    assert statuses == [302, 302], statuses
    assert {answer["Location"] for answer in answers} == {slot.get_absolute_url()}
    assert Appointment.objects.filter(customer=customer).count() == 1
    slot.refresh_from_db()
    assert slot.booked_count == 1
