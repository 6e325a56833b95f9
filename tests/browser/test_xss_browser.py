"""S5 in a real browser: records full of XSS payloads (tests/security/xss_payloads.py),
about twenty pages that show them opened in headless Chromium. No payload may run
(no alert/confirm/prompt dialog) and the page must cause no Content-Security-Policy
violation (an inline script or handler that CSP had to block means markup got through).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import Page

from crm.accounts.models import User
from crm.notifications import services as notification_services
from customers import services as customer_services
from service import services as service_services
from service.handover.models import HandoverEvent
from tests.security.xss_payloads import PAYLOADS

pytestmark = pytest.mark.browser

SHORT = [p for p in PAYLOADS if len(p) <= 100]
# Collects what CSP blocks; added before any page script runs (CDP is not bound by CSP).
CSP_LISTENER = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__cspViolations.push(e.violatedDirective + ' ' + e.blockedURI);
});
"""


def _stage(admin: User, manager: User) -> list[str]:
    """Records holding the payloads; the addresses of the pages that show them."""
    pages = [
        reverse("home"),
        reverse("customers:customer_list"),
        reverse("customers:customer_list") + "?q=alert",
        reverse("service:ticket_queue") + "?queue=all",
        reverse("service:workorder_list"),
        reverse("notifications:notification_list"),
        reverse("handover:event_list"),
    ]
    customers = []
    for n, payload in enumerate(SHORT[:3]):
        customer = customer_services.customer_create(
            by=admin,
            data={
                "name": payload,
                "address": "".join(SHORT[n::3])[:200],
                "wechat_id": payload[:50],
                "notes": "\n".join(PAYLOADS),
                "tags": [p[:30] for p in SHORT[n::3]],
            },
            phone_numbers=[f"1390000{n:04d}"],
            profile={"special_needs": payload, "notes": "\n".join(SHORT)},
        )
        customer_services.contact_log_create(
            by=admin, customer=customer, channel="phone", summary="\n".join(SHORT)
        )
        customers.append(customer)
        pages += [
            customer.get_absolute_url(),
            reverse("customers:customer_edit", args=[customer.pk]),
        ]
    for n, customer in enumerate(customers[:2]):
        ticket = service_services.ticket_create(
            by=admin,
            customer=customer,
            ticket_type="repair",
            channel="hotline",
            subject="".join(SHORT[n::4])[:200],
            description="\n".join(PAYLOADS),
            contact_name=SHORT[n][:50],
        )
        service_services.ticket_message_add(
            by=admin, ticket=ticket, body="\n".join(SHORT), kind="note"
        )
        order = service_services.workorder_create(
            by=admin,
            ticket=ticket,
            department=manager.team.department,
            title="".join(SHORT[n::5])[:200],
            due_at=timezone.now() + dt.timedelta(days=1),
            description="\n".join(SHORT),
        )
        asset = service_services.asset_create(
            by=admin,
            customer=customer,
            data={"name": SHORT[n + 3], "notes": "\n".join(SHORT)},
        )
        pages += [
            ticket.get_absolute_url(),
            reverse("service:workorder_detail", args=[order.pk]),
            reverse("service:asset_detail", args=[asset.pk]),
        ]
    notification_services.notification_send(
        recipient=admin,
        key="xss-browser",
        title=SHORT[0],
        body="\n".join(SHORT),
        url="javascript:alert(1)",
        email=False,
    )
    start = timezone.localdate() + dt.timedelta(days=3)
    event = HandoverEvent.objects.create(
        name=SHORT[1],
        project_name=SHORT[2],
        venue="".join(SHORT[:4])[:200],
        start_date=start,
        end_date=start,
        created_by=admin,
    )
    pages.append(event.get_absolute_url())
    return pages


def test_no_payload_runs_and_csp_blocks_nothing(
    page: Page,
    page_problems: list[str],
    log_in: Callable[[User], Page],
    admin_user: User,
    manager: User,
) -> None:
    pages = _stage(admin_user, manager)
    assert len(pages) >= 20
    dialogs: list[str] = []
    console_csp: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.on(
        "console",
        lambda message: (
            console_csp.append(message.text)
            if "Content Security Policy" in message.text
            else None
        ),
    )
    page.add_init_script(CSP_LISTENER)
    log_in(admin_user)

    violations = {}
    for url in pages:
        response = page.goto(url)
        assert response is not None and response.status == 200, url
        page.wait_for_load_state("load")
        found = page.evaluate("window.__cspViolations || []")
        if found:
            violations[url] = found

    assert dialogs == []
    assert violations == {}
    assert console_csp == []
    assert page_problems == []

    # The listeners themselves work: an injected inline script is blocked and
    # reported, and an alert from the test's side is seen as a dialog.
    page.evaluate(
        "() => { const s = document.createElement('script');"
        " s.textContent = 'alert(2)'; document.body.appendChild(s); }"
    )
    page.wait_for_function("window.__cspViolations.length > 0")
    page.evaluate("() => alert('self-check')")
    assert dialogs == ["self-check"]
