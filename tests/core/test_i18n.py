"""English is complete: every msgid of the catalogue is translated and compiled, and the
main pages in English show no Chinese character that is not user data.

The test data is all ASCII (customer "Acme Ltd", users "Alice Sales" ...), so any CJK
character on an English page is a string that was not translated or not marked."""

from __future__ import annotations

import ast
import datetime as dt
import gettext
import re
from pathlib import Path

import pytest
import time_machine
from django.conf import settings
from django.urls import reverse
from django.utils import translation

from crm.accounts.models import Department, Team, User
from crm.notifications import services as notifications
from customers import imports
from customers import services as customer_services
from customers.models import ContactLog, Customer, CustomerProfile
from service import calendar_data
from service import services as service_services
from service.models import (
    Asset,
    CannedReply,
    Category,
    Priority,
    SLAPolicy,
    Ticket,
    TicketMessage,
    TicketType,
)
from tests.factories import CustomerFactory, DepartmentFactory, FollowUpFactory

LOCALE = Path(settings.BASE_DIR) / "locale" / "en" / "LC_MESSAGES"
CJK = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]+")
# A Wednesday morning in Beijing, inside business hours: the SLA clocks are running.
WEDNESDAY_10AM = dt.datetime(
    2026, 3, 4, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=8))
)


# --- (a) the catalogue -------------------------------------------------------------------


def _po_string(lines: list[str]) -> str:
    return "".join(ast.literal_eval(line) for line in lines)


def parse_po(path: Path) -> list[dict]:
    """The entries of a .po file: msgctxt, msgid, msgid_plural, msgstr[n] and flags."""
    entries: list[dict] = []
    entry: dict = {"flags": set()}
    field = None
    for raw in [*path.read_text(encoding="utf-8").splitlines(), ""]:
        line = raw.strip()
        if not line:
            if "msgid" in entry:
                entries.append(entry)
            entry, field = {"flags": set()}, None
            continue
        if line.startswith("#,"):
            entry["flags"].update(flag.strip() for flag in line[2:].split(","))
        elif line.startswith("#"):
            continue
        elif line.startswith('"'):
            entry[field].append(line)
        else:
            field, _, value = line.partition(" ")
            entry[field] = [value]
    return [
        {
            key: value if key == "flags" else _po_string(value)
            for key, value in entry.items()
        }
        for entry in entries
    ]


def test_every_msgid_is_translated_and_none_is_fuzzy():
    entries = [entry for entry in parse_po(LOCALE / "django.po") if entry["msgid"]]
    assert len(entries) > 500
    fuzzy = [entry["msgid"] for entry in entries if "fuzzy" in entry["flags"]]
    untranslated = [
        entry["msgid"]
        for entry in entries
        if not all(
            value
            for key, value in entry.items()
            if key == "msgstr" or key.startswith("msgstr[")
        )
    ]
    plural_incomplete = [
        entry["msgid"]
        for entry in entries
        if "msgid_plural" in entry
        and not (entry.get("msgstr[0]") and entry.get("msgstr[1]"))
    ]
    assert fuzzy == []
    assert untranslated == []
    assert plural_incomplete == []


def test_the_compiled_catalogue_matches_the_po_file():
    """The committed .mo has every entry of the .po: a fresh machine needs no gettext."""
    with (LOCALE / "django.mo").open("rb") as mo:
        catalogue = gettext.GNUTranslations(mo)
    missing = []
    for entry in parse_po(LOCALE / "django.po"):
        if not entry["msgid"]:
            continue
        context = entry.get("msgctxt")
        if "msgid_plural" in entry:
            got = [
                catalogue.npgettext(context, entry["msgid"], entry["msgid_plural"], n)
                if context
                else catalogue.ngettext(entry["msgid"], entry["msgid_plural"], n)
                for n in (1, 2)
            ]
            expected = [entry["msgstr[0]"], entry["msgstr[1]"]]
        else:
            got = [
                catalogue.pgettext(context, entry["msgid"])
                if context
                else catalogue.gettext(entry["msgid"])
            ]
            expected = [entry["msgstr"]]
        if got != expected:
            missing.append(entry["msgid"])
    assert missing == [], "run compilemessages: the .mo is older than the .po"


def test_placeholders_survive_translation():
    placeholder = re.compile(r"%\(\w+\)[sd]|%[sd]")
    wrong = []
    for entry in parse_po(LOCALE / "django.po"):
        wanted = sorted(set(placeholder.findall(entry["msgid"])))
        for key, value in entry.items():
            if key.startswith("msgstr") and value:
                if sorted(set(placeholder.findall(value))) != wanted:
                    wrong.append((entry["msgid"], value))
    assert wrong == []


# --- (b) and (c) the pages ---------------------------------------------------------------


ASCII_NAMES = {
    Department: {
        "销售部": "Sales Department",
        "华南销售部": "South Sales Department",
        "客户服务部": "Customer Service Department",
    },
    Team: {
        "销售一组": "Sales Team A",
        "销售二组": "Sales Team B",
        "华南组": "South Team",
        "客服组": "Service Team",
    },
}


@pytest.fixture(autouse=True)
def clock():
    with time_machine.travel(WEDNESDAY_10AM, tick=False) as traveller:
        yield traveller


@pytest.fixture
def world(settings, tmp_path, sales_rep, teammate, manager, service_agent, admin_user):
    """Customers, follow-ups, tickets, work orders and notifications, all named in ASCII.

    Built with English active, as if the events had happened for an English user: the
    stored texts services write (notifications) are in the language active at the time.
    """
    settings.MEDIA_ROOT = tmp_path / "media"
    for model, names in ASCII_NAMES.items():
        for chinese, english in names.items():
            model.objects.filter(name=chinese).update(name=english)
    for user, name in [
        (sales_rep, "Alice Sales"),
        (teammate, "Bob Sales"),
        (manager, "Mary Manager"),
        (service_agent, "Sam Service"),
        (admin_user, "Ada Admin"),
    ]:
        user.display_name = name
        user.save(update_fields=["display_name"])
    Team.objects.filter(pk=sales_rep.team_id).update(lead=manager)

    now = WEDNESDAY_10AM
    with translation.override("en"):
        calendar_data.calendar_seed(years=[])  # business hours, no (Chinese) holidays
        SLAPolicy.objects.bulk_create(
            SLAPolicy(
                name=f"SLA {ticket_type} {priority}",
                ticket_type=ticket_type,
                priority=priority,
                first_response_minutes=60,
                resolution_minutes=480,
            )
            for ticket_type in TicketType.values
            for priority in Priority.values
        )
        category = Category.objects.create(name="Plumbing", team=service_agent.team)
        CannedReply.objects.create(title="Received", body="Hello, we are on it.")
        dealer = CustomerFactory(
            owner=sales_rep, name="Best Dealer Co", kind=Customer.Kind.DEALER
        )
        customer = CustomerFactory(
            owner=sales_rep,
            name="Acme Ltd",
            is_key_account=True,
            tier="A",
            province="Guangdong",
            city="Shenzhen",
            address="1 Science Park Road",
            tags=["vip", "school district"],
            notes="Prefers mornings",
        )
        CustomerFactory(owner=teammate, name="Beta Trading")
        CustomerFactory(owner=None, team=None, name="Gamma Homes", pool_entered_at=now)
        customer_services.profile_update(
            by=sales_rep,
            customer=customer,
            data={
                "preferred_channel": CustomerProfile.Channel.WECHAT,
                "preferred_time": CustomerProfile.TimeOfDay.EVENING,
                "language": "Cantonese",
                "do_not_call": True,
                "do_not_sms": True,
                "special_needs": "Step-free access",
                "interests": "Golf",
                "family_notes": "Two children",
                "notes": "Call the assistant first",
            },
        )
        customer_services.contact_log_create(
            by=sales_rep,
            customer=customer,
            channel=ContactLog.Channel.PHONE,
            summary="Talked about the new flat",
            occurred_at=now - dt.timedelta(days=2),
            outcome="Interested",
            sentiment=ContactLog.Sentiment.POSITIVE,
            next_step="Send the floor plans",
            next_step_at=now + dt.timedelta(hours=3),
        )
        FollowUpFactory(
            customer=customer,
            note="Confirm the handover date",
            due_at=now - dt.timedelta(days=1),
        )
        customer_services.followup_create(
            by=sales_rep,
            customer=customer,
            assignee=sales_rep,
            due_at=now + dt.timedelta(days=3),
            note="Invite to the owners' event",
        )
        asset = service_services.asset_create(
            by=service_agent,
            customer=customer,
            data={
                "kind": Asset.Kind.APPLIANCE,
                "name": "Air conditioner X1",
                "serial": "SN-001",
                "delivered_on": dt.date(2025, 6, 1),
                "warranty_until": dt.date(2027, 6, 1),
                "dealer": dealer,
            },
        )
        ticket = service_services.ticket_create(
            by=service_agent,
            customer=customer,
            ticket_type=TicketType.REPAIR,
            channel=Ticket.Channel.HOTLINE,
            subject="Leaking pipe",
            description="Water under the kitchen sink",
            category=category,
            asset=asset,
            contact_name="John Doe",
            contact_phone="13800000001",
        )
        service_services.ticket_message_add(
            by=service_agent, ticket=ticket, body="We will send a plumber tomorrow."
        )
        service_services.ticket_message_add(
            by=service_agent,
            ticket=ticket,
            body="Check the warranty first",
            kind=TicketMessage.Kind.NOTE,
        )
        service_services.workorder_create(
            by=service_agent,
            ticket=ticket,
            department=DepartmentFactory(name="Engineering"),
            title="Replace the pipe",
            due_at=now + dt.timedelta(days=1),
            description="Kitchen, second floor",
        )
        waiting = service_services.ticket_create(
            by=service_agent,
            customer=customer,
            ticket_type=TicketType.COMPLAINT,
            channel=Ticket.Channel.WECHAT,
            subject="Noisy neighbours",
            description="Every night after 11 pm",
            category=category,
            priority=Priority.URGENT,
        )
        service_services.ticket_transition(
            by=service_agent, ticket=waiting, to_status=Ticket.Status.WAITING
        )
        notifications.notification_send(
            recipient=sales_rep,
            key="i18n-test",
            title="Follow-up due: Acme Ltd",
            body="Call back about the floor plans",
            url=customer.get_absolute_url(),
            email=False,
        )
    for model in (Department, Team, User, Customer, Category, SLAPolicy):
        leftover = [str(row) for row in model.objects.all() if CJK.search(str(row))]
        assert leftover == [], f"test data must be ASCII: {leftover}"
    return {"customer": customer, "ticket": ticket, "asset": asset}


def pages(world) -> list[tuple[str, str]]:
    customer, ticket = world["customer"], world["ticket"]
    order = ticket.work_orders.get()
    return [
        ("sales_rep", reverse("home")),
        ("service_agent", reverse("home")),
        ("manager", reverse("home")),
        ("admin_user", reverse("home")),
        ("sales_rep", reverse("customers:customer_list")),
        ("manager", reverse("customers:customer_list") + "?more=1"),
        ("sales_rep", reverse("customers:customer_detail", args=[customer.pk])),
        ("service_agent", reverse("customers:customer_detail", args=[customer.pk])),
        ("sales_rep", reverse("customers:pool_list")),
        ("sales_rep", reverse("customers:customer_edit", args=[customer.pk])),
        ("sales_rep", reverse("customers:followup_create", args=[customer.pk])),
        ("service_agent", reverse("service:ticket_queue")),
        ("service_agent", reverse("service:ticket_queue") + "?queue=all"),
        ("service_agent", reverse("service:ticket_detail", args=[ticket.reference])),
        (
            "service_agent",
            reverse("service:ticket_create") + f"?customer={customer.pk}",
        ),
        ("service_agent", reverse("service:workorder_list")),
        ("service_agent", reverse("service:workorder_detail", args=[order.pk])),
        ("service_agent", reverse("service:asset_detail", args=[world["asset"].pk])),
        ("manager", reverse("customers:export_confirm")),
        ("manager", reverse("customers:import_upload")),
        ("manager", reverse("service:dealer_report")),
        ("service_agent", reverse("notifications:notification_list")),
        ("sales_rep", reverse("notifications:notification_list")),
        (None, reverse("intake")),
        (None, reverse("login")),
    ]


def leaks(html: str) -> list[str]:
    """Each CJK run with some context; the language switch names Chinese in Chinese."""
    html = html.replace(">中文</button>", "></button>")
    # The import page lists the spreadsheet headers the file may use: a file format.
    for header, _hint in imports.TEMPLATE_HEADERS:
        html = html.replace(f'<td class="text-nowrap">{header}</td>', "<td></td>")
    return [
        html[max(match.start() - 60, 0) : match.end() + 20].replace("\n", " ")
        for match in CJK.finditer(html)
    ]


def test_main_pages_in_english_have_no_chinese(request, client, world):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    found = {}
    for persona, url in pages(world):
        if persona:
            client.force_login(request.getfixturevalue(persona))
        else:
            client.logout()
            client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
        response = client.get(url)
        assert response.status_code == 200, (persona, url)
        html = response.content.decode()
        assert '<html lang="en">' in html, url
        if leaked := leaks(html):
            found[f"{persona} {url}"] = leaked
    assert found == {}, "untranslated strings:\n" + "\n".join(
        f"{page}: {snippet}" for page, snippets in found.items() for snippet in snippets
    )


def test_main_pages_without_the_cookie_are_chinese(request, client, world):
    for persona, url in pages(world):
        if persona:
            client.force_login(request.getfixturevalue(persona))
        else:
            client.logout()
        response = client.get(url)
        assert response.status_code == 200, (persona, url)
        html = response.content.decode()
        assert '<html lang="zh-hans">' in html, url
        assert CJK.search(html.replace(">中文</button>", "")), url


def test_english_is_kept_by_the_switch(client, world, sales_rep):
    client.force_login(sales_rep)
    response = client.post(
        reverse("set_language"), {"language": "en", "next": reverse("home")}
    )
    assert response.status_code == 302
    home = client.get(reverse("home")).content.decode()
    assert '<html lang="en">' in home
    assert "My day" in home
