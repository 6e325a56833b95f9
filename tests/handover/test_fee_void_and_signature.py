"""Correcting a fee line (作废 with a reason, then the right line entered) and the
owner's signature shown on the case page (issue 17).

Fees: the voided row stays (never deleted) with who, when and why; the case page, the
daily report, the board's `fees:cents` and the acceptance form PDF count the valid
lines only and agree; a CaseLog row says what was voided. Refused voids (no reason, too
long, twice, after the outcome, another event's line) write nothing.

Signature: served by an access-checked view from the case's own file (no path from the
request), PNG/JPEG only; the case pages show it at a constant query count."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest
from django.core.files.base import ContentFile
from django.db import IntegrityError, connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from pypdf import PdfReader

from service.handover import acceptance_pdf, captures, counters, outcomes, reports
from service.handover.models import CaseLog, FeePayment, UnitHandover
from tests.handover.outcome_builders import (
    board,
    make_case,
    png_bytes,
    ready_to_accept,
    recount,
    sign,
)

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def case(admin_user):
    return make_case(admin_user)


def pay(case, by, amount, item="property_fee", method="wechat"):
    return captures.fee_add(
        case, by=by, item=item, amount=Decimal(amount), method=method
    )


def void_url(line):
    return reverse("handover:capture_fee_void", args=[line.pk])


def assert_board_agrees(case):
    """The case, outcome, fee and rating keys equal their recount (make_case bumps
    no visit or arrival keys, so those are left to the station tests)."""
    assert board(case.event) == recount(case.event)
    assert "fees:cents" not in counters.recount_differs(case.event_id)


# --- voiding ---------------------------------------------------------------------------------


def test_a_wrong_line_is_voided_then_the_right_one_entered(case, service_agent, login):
    right = pay(case, service_agent, "3600.00")
    wrong = pay(case, service_agent, "12000.00", item="maintenance_fund")
    assert board(case.event)["fees:cents"] == 1_560_000
    client = login(service_agent)
    response = client.post(
        void_url(wrong), {"reason": "金额录错，应为 1200 元"}, **HTMX
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert body.count('data-testid="fee-line"') == 1
    assert "12000.00" not in body and "3600.00" in body
    assert response["HX-Trigger"] == "case-changed"
    wrong.refresh_from_db()
    assert wrong.is_voided and wrong.voided_by == service_agent
    assert wrong.void_reason == "金额录错，应为 1200 元"
    assert FeePayment.objects.filter(case=case).count() == 2  # kept, not deleted
    log = CaseLog.objects.get(case=case, action="fee_void")
    assert log.actor == service_agent
    assert "专项维修资金 12000.00" in log.note and "金额录错" in log.note
    assert board(case.event)["fees:cents"] == 360_000
    assert_board_agrees(case)
    # The corrected line.
    client.post(
        reverse("handover:capture_fee_add", args=[case.pk]),
        {"item": "maintenance_fund", "amount": "1200.00", "method": "pos"},
        **HTMX,
    )
    lines, total = captures.fee_lines(case)
    assert [line.amount for line in lines] == [Decimal("3600.00"), Decimal("1200.00")]
    assert total == captures.fees_total(case) == Decimal("4800.00")
    assert board(case.event)["fees:cents"] == 480_000
    assert_board_agrees(case)
    assert right.pk in {line.pk for line in lines}
    # The void is kept in the history (pghistory) with the acting user's context.
    updates = FeePayment.pgh_event_model.objects.filter(
        pgh_obj_id=wrong.pk, pgh_label="update"
    )
    assert updates.get().voided_by_id == service_agent.pk


@pytest.mark.parametrize("reason", ["", "   ", "长" * 201])
def test_a_void_needs_a_reason(case, admin_user, login, reason):
    line = pay(case, admin_user, "100.00")
    client = login(admin_user)
    response = client.post(void_url(line), {"reason": reason}, **HTMX)
    assert response.status_code == 200  # htmx swaps the panel with its error
    assert 'data-testid="fee-void-error"' in response.content.decode()
    plain = client.post(void_url(line), {"reason": reason})
    assert plain.status_code == 400
    assert 'data-testid="fee-void-error"' in plain.content.decode()
    line.refresh_from_db()
    assert not line.is_voided
    assert not CaseLog.objects.filter(case=case, action="fee_void").exists()
    assert board(case.event)["fees:cents"] == 10_000


def test_the_service_refuses_a_blank_or_long_reason(case, admin_user):
    line = pay(case, admin_user, "100.00")
    for reason in ("", " ", "x" * 201):
        with pytest.raises(captures.CaptureRefused):
            captures.fee_void(line, by=admin_user, reason=reason)
    line.refresh_from_db()
    assert not line.is_voided


def test_a_line_is_voided_once(case, admin_user, login):
    line = pay(case, admin_user, "100.00")
    captures.fee_void(line, by=admin_user, reason="重复收费")
    response = login(admin_user).post(void_url(line), {"reason": "again"})
    assert response.status_code == 400
    assert "该收费记录已作废。" in response.content.decode()
    assert CaseLog.objects.filter(case=case, action="fee_void").count() == 1
    assert "fees:cents" not in board(case.event)  # 0
    assert_board_agrees(case)


def test_nothing_is_voided_after_the_outcome(admin_user, login):
    case = ready_to_accept(make_case(admin_user))
    line = pay(case, admin_user, "100.00")
    outcomes.case_accept(case, by=admin_user, version=case.version + 1)
    response = login(admin_user).post(void_url(line), {"reason": "录错"})
    assert response.status_code == 400
    assert "不能再修改" in response.content.decode()
    line.refresh_from_db()
    assert not line.is_voided
    assert_board_agrees(case)


def test_the_database_keeps_a_void_whole(case, admin_user):
    line = pay(case, admin_user, "100.00")
    with pytest.raises(IntegrityError), transaction.atomic():
        FeePayment.objects.filter(pk=line.pk).update(voided_at=timezone.now())
    with pytest.raises(IntegrityError), transaction.atomic():
        FeePayment.objects.filter(pk=line.pk).update(void_reason="x")


def test_only_valid_lines_count_everywhere(case, admin_user, manager, login):
    pay(case, admin_user, "3600.00")
    wrong = pay(case, admin_user, "999.00", item="other", method="cash")
    captures.fee_void(wrong, by=admin_user, reason="收错")
    # The case page's panel.
    page = login(admin_user).get(reverse("handover:case_outcome", args=[case.pk]))
    body = page.content.decode()
    assert body.count('data-testid="fee-line"') == 1 and "999.00" not in body
    # The daily report (交楼日报表): the fee rows and their total.
    report = reports.daily_report(case.event, timezone.localdate())
    assert [(key, amount.total, n.total) for key, _l, amount, n in report.fees] == [
        ("property_fee", Decimal("3600.00"), 1)
    ]
    assert report.fees_total[0].total == Decimal("3600.00")
    # The board.
    assert board(case.event)["fees:cents"] == 360_000
    assert_board_agrees(case)
    # The acceptance form (验房交接单).
    form = acceptance_pdf.form_for(case, user=manager)
    assert [f.amount for f in form.fees] == [Decimal("3600.00")]
    assert form.total_fees == Decimal("3600.00")
    pdf = login(manager).get(reverse("handover:acceptance_form_pdf", args=[case.pk]))
    text = "".join(
        "".join(p.extract_text().split())
        for p in PdfReader(io.BytesIO(pdf.content)).pages
    )
    assert "3600.00" in text and "999.00" not in text


def test_a_line_of_a_case_the_user_cannot_see_is_not_found(
    case, admin_user, login, sales_rep
):
    line = pay(case, admin_user, "100.00")
    case.event.status = "draft"
    case.event.save(update_fields=["status"])
    assert login(sales_rep).post(void_url(line), {"reason": "x"}).status_code == 404
    missing = reverse("handover:capture_fee_void", args=[987654321])
    assert login(admin_user).post(missing, {"reason": "x"}).status_code == 404
    line.refresh_from_db()
    assert not line.is_voided


def test_the_void_endpoint_s_access_rule(
    case, admin_user, readonly_user, sales_rep, login
):
    line = pay(case, admin_user, "100.00")
    url = void_url(line)
    anonymous = Client().post(url, {"reason": "x"})
    assert anonymous.status_code == 302 and "login" in anonymous.url
    assert login(readonly_user).post(url, {"reason": "x"}).status_code == 403
    assert login(sales_rep).get(url).status_code == 405
    # Every on-site role may void, as every on-site role collects (captures.fee_add).
    assert login(sales_rep).post(url, {"reason": "录错"}).status_code == 302
    line.refresh_from_db()
    assert line.voided_by == sales_rep


def test_the_panel_offers_void_only_while_the_case_is_open(admin_user, login):
    case = ready_to_accept(make_case(admin_user))
    pay(case, admin_user, "100.00")
    client = login(admin_user)
    page = client.get(reverse("handover:case_outcome", args=[case.pk]))
    assert 'data-testid="fee-void"' in page.content.decode()
    case.refresh_from_db()
    outcomes.case_accept(case, by=admin_user, version=case.version)
    page = client.get(reverse("handover:case_outcome", args=[case.pk]))
    assert 'data-testid="fee-void"' not in page.content.decode()


# --- the signature -----------------------------------------------------------------------


def signature_url(case):
    return reverse("handover:case_signature", args=[case.pk])


def test_the_case_pages_show_the_signature_through_the_checked_view(
    case, admin_user, sales_rep, login
):
    sign(case)
    case.refresh_from_db()
    client = login(sales_rep)
    for page in ("case_outcome", "case_detail"):
        body = client.get(reverse(f"handover:{page}", args=[case.pk])).content.decode()
        assert signature_url(case) in body, page
        assert "/media/" not in body and case.signature.name not in body
    response = client.get(signature_url(case))
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert response.content == png_bytes()
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Cache-Control"] == "private, no-store"
    assert response["Content-Disposition"].startswith("inline")


def test_no_signature_no_image(case, admin_user, login):
    assert login(admin_user).get(signature_url(case)).status_code == 404
    page = login(admin_user).get(reverse("handover:case_detail", args=[case.pk]))
    assert signature_url(case) not in page.content.decode()


@pytest.mark.parametrize(
    "name",
    [
        "handover/refusals/2026/01/photo.png",
        "../../../etc/passwd",
        "handover/signatures/../../x.png",
    ],
)
def test_a_file_outside_the_signatures_is_never_served(case, admin_user, login, name):
    UnitHandover.objects.filter(pk=case.pk).update(
        signature=name, signed_at=timezone.now()
    )
    assert login(admin_user).get(signature_url(case)).status_code == 404


def test_a_signature_file_that_is_not_an_image_is_not_served(case, admin_user, login):
    case.signature.save("case.png", ContentFile(b"<svg onload=alert(1)/>"), save=True)
    assert login(admin_user).get(signature_url(case)).status_code == 404


def test_the_signature_s_access_rule(case, admin_user, readonly_user, sales_rep, login):
    sign(case)
    url = signature_url(case)
    anonymous = Client().get(url)
    assert anonymous.status_code == 302 and "login" in anonymous.url
    assert login(readonly_user).get(url).status_code == 403
    assert login(sales_rep).post(url).status_code == 405
    case.event.status = "draft"
    case.event.save(update_fields=["status"])
    assert login(sales_rep).get(url).status_code == 404  # a draft: its planners only
    assert login(admin_user).get(url).status_code == 200
    missing = reverse("handover:case_signature", args=[987654321])
    assert login(admin_user).get(missing).status_code == 404


# --- the case page's queries ----------------------------------------------------------------


def _queries(client, url):
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


@pytest.mark.parametrize("page", ["case_outcome", "case_detail"])
def test_the_case_page_s_query_count_does_not_grow_with_fee_lines(
    admin_user, login, page
):
    small, large = make_case(admin_user), make_case(admin_user)
    for case in (small, large):
        sign(case)
    pay(small, admin_user, "100.00")
    for n in range(6):
        line = pay(large, admin_user, f"{100 + n}.00", method="cash")
        if n % 2:
            captures.fee_void(line, by=admin_user, reason="录错")
    client = login(admin_user)
    _queries(client, reverse(f"handover:{page}", args=[small.pk]))  # warm caches
    assert _queries(client, reverse(f"handover:{page}", args=[small.pk])) == _queries(
        client, reverse(f"handover:{page}", args=[large.pk])
    )
