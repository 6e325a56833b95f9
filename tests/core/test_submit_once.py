"""S7 double submission: a form posted twice with the token its page carried saves one
record (crm/core/once.py), even when both posts arrive at the same moment; a post that
came back with errors keeps its token for the corrected post."""

from __future__ import annotations

import datetime as dt
import re
import threading

import pytest
from django.db import connections
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from pytest_django.asserts import assertContains

from crm.core import once
from crm.core.models import FormSubmission
from customers import services as customer_services
from customers.models import ContactLog, FollowUp
from service import services as service_services
from service.models import Asset, Ticket, TicketMessage, WorkOrder

TOKEN = re.compile(r'name="once_token"\s+value="([A-Za-z0-9_-]+)"')
ALREADY = "已提交过，未重复保存"


def token_in(response) -> str:
    found = TOKEN.findall(response.content.decode())
    assert len(found) == 1, found
    return found[0]


@pytest.fixture
def customer(sales_rep):
    return customer_services.customer_create(
        by=sales_rep, data={"name": "防重客户"}, phone_numbers=["13922223333"]
    )


@pytest.fixture
def ticket(customer, admin_user):
    return service_services.ticket_create(
        by=admin_user,
        customer=customer,
        ticket_type="repair",
        channel="hotline",
        subject="门锁坏了",
        description="三号楼门锁坏了",
    )


def ticket_data(customer, token: str, subject: str = "漏水") -> dict[str, object]:
    return {
        "customer": customer.pk,
        "ticket_type": "repair",
        "channel": "hotline",
        "priority": "normal",
        "subject": subject,
        "description": "厨房漏水",
        once.FIELD: token,
    }


def test_every_guarded_form_carries_a_fresh_token(
    client, sales_rep, service_agent, customer, ticket
):
    client.force_login(service_agent)
    new_ticket = reverse("service:ticket_create") + f"?customer={customer.pk}"
    tokens = [token_in(client.get(new_ticket)) for _ in range(2)]
    detail = client.get(ticket.get_absolute_url()).content.decode()
    # The reply box, the work order form and the attachment upload.
    tokens += TOKEN.findall(detail)
    client.force_login(sales_rep)
    tokens.append(
        token_in(client.get(reverse("customers:contact_create", args=[customer.pk])))
    )
    tokens.append(
        token_in(client.get(reverse("customers:followup_create", args=[customer.pk])))
    )
    client.logout()
    tokens.append(token_in(client.get(reverse("intake"))))
    assert len(tokens) == 8
    assert len(set(tokens)) == 8


def test_the_second_post_of_a_rendered_form_goes_where_the_first_went(
    client, service_agent, customer
):
    client.force_login(service_agent)
    page = client.get(reverse("service:ticket_create") + f"?customer={customer.pk}")
    data = ticket_data(customer, token_in(page))
    first = client.post(reverse("service:ticket_create"), data)
    second = client.post(reverse("service:ticket_create"), data, follow=True)
    created = Ticket.objects.get()
    assert first.status_code == 302
    assert first["Location"] == created.get_absolute_url()
    assert second.redirect_chain == [(created.get_absolute_url(), 302)]
    assertContains(second, ALREADY)


def test_an_invalid_first_post_keeps_its_token_for_the_corrected_one(
    client, service_agent, customer
):
    client.force_login(service_agent)
    page = client.get(reverse("service:ticket_create") + f"?customer={customer.pk}")
    token = token_in(page)
    invalid = client.post(
        reverse("service:ticket_create"), ticket_data(customer, token, subject="")
    )
    assert invalid.status_code == 400
    assert invalid.context["form"].errors["subject"]
    assert token_in(invalid) == token
    assert not Ticket.objects.exists()
    assert not FormSubmission.objects.exists()

    fixed = client.post(reverse("service:ticket_create"), ticket_data(customer, token))
    assert fixed.status_code == 302
    assert Ticket.objects.get().subject == "漏水"


def test_a_rejected_reply_keeps_its_token_and_the_next_reply_is_saved_once(
    client, service_agent, ticket
):
    client.force_login(service_agent)
    token = TOKEN.findall(client.get(ticket.get_absolute_url()).content.decode())[0]
    url = reverse("service:ticket_reply", args=[ticket.reference])
    data = {"kind": "note", "body": "", "version": ticket.version, once.FIELD: token}
    empty = client.post(url, data)
    assert empty.status_code == 400
    assert token in TOKEN.findall(empty.content.decode())
    data["body"] = "已联系"
    assert client.post(url, data).status_code == 302
    assert client.post(url, data).status_code == 302
    assert list(TicketMessage.objects.values_list("body", flat=True)) == ["已联系"]


def test_quick_contact_entry_by_htmx_saves_once_and_then_offers_a_new_token(
    client, sales_rep, customer
):
    client.force_login(sales_rep)
    url = reverse("customers:contact_create", args=[customer.pk])
    htmx = {"HTTP_HX_REQUEST": "true"}
    token = token_in(client.get(url, **htmx))
    data = {"channel": "phone", "summary": "", once.FIELD: token}
    invalid = client.post(url, data, **htmx)
    assert token_in(invalid) == token

    data["summary"] = "电话沟通"
    saved = client.post(url, data, **htmx)
    assert saved["HX-Trigger"] == "contact-logged"
    again = client.post(url, data, **htmx)
    # The first answer replaced the form; the second leaves the page alone.
    assert again.status_code == 200
    assert again["HX-Reswap"] == "none"
    assert ContactLog.objects.count() == 1

    # The refreshed form is a new entry: the same words logged again are a second call.
    data[once.FIELD] = token_in(saved)
    assert data[once.FIELD] != token
    assert client.post(url, data, **htmx)["HX-Trigger"] == "contact-logged"
    assert ContactLog.objects.count() == 2


def test_follow_up_work_order_and_asset_forms_save_once(
    client, sales_rep, service_agent, customer, ticket
):
    client.force_login(sales_rep)
    url = reverse("customers:followup_create", args=[customer.pk])
    due = (timezone.localtime() + dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    data = {"note": "回访", "due_at": due, once.FIELD: token_in(client.get(url))}
    assert [client.post(url, data).status_code for _ in range(2)] == [302, 302]
    assert FollowUp.objects.filter(customer=customer, note="回访").count() == 1

    client.force_login(service_agent)
    tokens = TOKEN.findall(client.get(ticket.get_absolute_url()).content.decode())
    url = reverse("service:workorder_create", args=[ticket.reference])
    data = {
        "department": service_agent.team.department.pk,
        "title": "修门",
        "due_at": due,
        "description": "",
        "version": ticket.version,
        once.FIELD: tokens[1],
    }
    assert [client.post(url, data).status_code for _ in range(2)] == [302, 302]
    assert WorkOrder.objects.count() == 1

    url = reverse("service:asset_create")
    page = client.get(url + f"?customer={customer.pk}")
    data = {
        "customer": customer.pk,
        "kind": "unit",
        "name": "空调",
        once.FIELD: token_in(page),
    }
    assert [client.post(url, data).status_code for _ in range(2)] == [302, 302]
    assert Asset.objects.filter(customer=customer).count() == 1


def test_the_public_form_sent_twice_files_one_ticket(client, db):
    token = token_in(client.get(reverse("intake")))
    data = {
        "name": "张三",
        "phone": "13700001111",
        "ticket_type": "repair",
        "description": "门锁坏了",
        once.FIELD: token,
    }
    first = client.post(reverse("intake"), data)
    second = client.post(reverse("intake"), data, follow=True)
    assert first.status_code == 302
    assertContains(second, ALREADY)
    shown = re.search(
        r'data-testid="intake-reference">([^<]+)<', second.content.decode()
    )
    assert shown[1].replace(" ", "") == Ticket.objects.get().reference
    assert FormSubmission.objects.get().user is None


def test_tokens_older_than_a_week_are_purged(service_agent):
    now = timezone.now()
    for token, age in (("a" * 32, 8), ("b" * 32, 6)):
        FormSubmission.objects.create(token=token, user=service_agent)
        FormSubmission.objects.filter(token=token).update(
            created_at=now - dt.timedelta(days=age)
        )
    assert once.form_submissions_purge(now=now) == 1
    assert list(FormSubmission.objects.values_list("token", flat=True)) == ["b" * 32]


# --- two posts at the same moment --------------------------------------------------------


def post_at_once(clients: list[Client], url: str, data: dict) -> list[object]:
    """Each client posts `data` from its own thread and database connection, released
    together; returns each answer (or the exception it raised)."""
    barrier = threading.Barrier(len(clients))
    answers: list[object] = [None] * len(clients)

    def post(index: int) -> None:
        try:
            barrier.wait(timeout=10)
            answers[index] = clients[index].post(url, data)
        except Exception as error:  # noqa: BLE001  # reported by the assertion
            answers[index] = error
        finally:
            connections.close_all()

    threads = [threading.Thread(target=post, args=(i,)) for i in range(len(clients))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return answers


@pytest.mark.django_db(transaction=True)
def test_two_simultaneous_posts_of_one_ticket_form_create_one_ticket(
    service_agent, customer
):
    clients = [Client(), Client()]
    for client in clients:
        client.force_login(service_agent)
    # A few rounds: the race is lost almost every time, but one round could be lucky.
    for round_ in range(3):
        data = ticket_data(customer, once.new_token(), subject=f"同时提交{round_}")
        answers = post_at_once(clients, reverse("service:ticket_create"), data)
        statuses = [getattr(answer, "status_code", answer) for answer in answers]
        created = Ticket.objects.get(subject=f"同时提交{round_}")
        assert statuses == [302, 302], statuses
        assert {answer["Location"] for answer in answers} == {
            created.get_absolute_url()
        }
    assert Ticket.objects.count() == 3
