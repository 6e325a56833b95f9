"""What each station records on a case (issue 17 part 2): the area difference, fee
lines, meter readings, keys, the acceptance signature and the quick rating — through
the panels' endpoints as a clerk's tablet posts them (htmx and plain), with bad input
refused and nothing written, the board's counters against a recount, and the access
rule of every endpoint."""

from __future__ import annotations

import base64
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse

from service.handover import captures, outcomes
from service.handover.models import CaseLog, FeePayment, MeterReading, UnitHandover
from tests.handover.outcome_builders import (
    board,
    data_url,
    make_case,
    png_bytes,
    ready_to_accept,
    recount,
)

State = UnitHandover.State
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def case(admin_user):
    return make_case(admin_user)


def _post(client, name, case, data, **extra):
    return client.post(reverse(f"handover:{name}", args=[case.pk]), data, **extra)


# --- settlement ------------------------------------------------------------------------------


def test_the_area_difference_is_suggested_then_saved(case, service_agent, login):
    client = login(service_agent)
    response = _post(
        client,
        "capture_settlement",
        case,
        {"price_per_m2": "20000", "compute": "1"},
        **HTMX,
    )
    assert response.status_code == 200
    body = response.content.decode()
    # (101.50 − 100) m² × 20,000 元/m²
    assert "30000.00" in body and 'data-testid="settlement-suggestion"' in body
    case.refresh_from_db()
    assert case.area_difference_amount is None  # a suggestion saves nothing
    response = _post(
        client, "capture_settlement", case, {"amount": "29800.50", "save": "1"}, **HTMX
    )
    assert response.status_code == 200
    case.refresh_from_db()
    assert case.area_difference_amount == Decimal("29800.50")
    assert CaseLog.objects.filter(case=case, action="settlement").count() == 1


def test_the_suggestion_needs_both_areas_and_a_price(case, admin_user, login):
    unit = case.event_unit.unit
    unit.measured_area = None
    unit.save(update_fields=["measured_area"])
    response = _post(
        login(admin_user),
        "capture_settlement",
        case,
        {"price_per_m2": "20000", "compute": "1"},
        **HTMX,
    )
    assert "缺少合同面积、实测面积或单价，无法计算。" in response.content.decode()


@pytest.mark.parametrize("amount", ["10000000.01", "-10000001", "abc", ""])
def test_the_area_difference_is_bounded(case, admin_user, login, amount):
    response = _post(
        login(admin_user), "capture_settlement", case, {"amount": amount, "save": "1"}
    )
    assert response.status_code == 400
    case.refresh_from_db()
    assert case.area_difference_amount is None
    assert case.version == 1


def test_a_plain_post_returns_to_the_page_it_came_from(case, admin_user, login):
    response = _post(
        login(admin_user),
        "capture_settlement",
        case,
        {"amount": "-1200", "save": "1", "next": "/handover/"},
    )
    assert response.status_code == 302 and response.url == "/handover/"
    other = _post(
        login(admin_user),
        "capture_settlement",
        case,
        {"amount": "-1200", "save": "1", "next": "//evil.example/x"},
    )
    assert other.url == reverse("handover:case_outcome", args=[case.pk])


# --- fees ------------------------------------------------------------------------------------


def test_fee_lines_are_listed_with_their_total_and_counted(case, service_agent, login):
    client = login(service_agent)
    for item, amount, method in (
        ("property_fee", "3600.00", "wechat"),
        ("maintenance_fund", "12000.50", "pos"),
    ):
        response = _post(
            client,
            "capture_fee_add",
            case,
            {"item": item, "amount": amount, "method": method, "receipt_number": "R1"},
            **HTMX,
        )
        assert response.status_code == 200
    body = response.content.decode()
    assert body.count('data-testid="fee-line"') == 2
    assert "15600.50" in body
    assert FeePayment.objects.filter(case=case, cashier=service_agent).count() == 2
    assert board(case.event)["fees:cents"] == 1_560_050
    assert board(case.event) == recount(case.event)


@pytest.mark.parametrize(
    "data",
    [
        {"item": "property_fee", "amount": "0", "method": "cash"},
        {"item": "property_fee", "amount": "-5", "method": "cash"},
        {"item": "property_fee", "amount": "10000000.01", "method": "cash"},
        {"item": "bribe", "amount": "10", "method": "cash"},
        {"item": "property_fee", "amount": "10", "method": "cheque"},
        {
            "item": "property_fee",
            "amount": "10",
            "method": "cash",
            "receipt_number": "x" * 41,
        },
    ],
)
def test_bad_fee_lines_write_nothing(case, admin_user, login, data):
    response = _post(login(admin_user), "capture_fee_add", case, data)
    assert response.status_code == 400
    assert not FeePayment.objects.exists()
    assert "fees:cents" not in board(case.event)


def test_a_htmx_post_with_errors_answers_the_panel(case, admin_user, login):
    response = _post(
        login(admin_user),
        "capture_fee_add",
        case,
        {"item": "property_fee", "amount": "", "method": "cash"},
        **HTMX,
    )
    # htmx swaps only 2xx answers: the panel comes back with the field's error.
    assert response.status_code == 200
    body = response.content.decode()
    assert 'id="capture-fees-' in body and "<html" not in body
    assert "invalid-feedback" in body or "is-invalid" in body


# --- meters ----------------------------------------------------------------------------------


def test_meter_readings_one_per_kind_and_replaced(case, admin_user, login):
    client = login(admin_user)
    response = _post(
        client,
        "capture_meters",
        case,
        {
            "number_water": "W-001",
            "reading_water": "12.5",
            "reading_electricity": "0",
        },
    )
    assert response.status_code == 302
    response = _post(
        client,
        "capture_meters",
        case,
        {"number_water": "W-001", "reading_water": "13.25"},
        **HTMX,
    )
    assert response.status_code == 200
    readings = dict(
        MeterReading.objects.filter(case=case).values_list("kind", "reading")
    )
    assert readings == {"water": Decimal("13.25"), "electricity": Decimal("0")}


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"reading_gas": "-1"},
        {"reading_gas": "10000000"},
        {"reading_gas": "1e400"},
        {"reading_gas": "5", "number_gas": "9" * 41},
    ],
)
def test_bad_meter_readings_write_nothing(case, admin_user, login, data):
    response = _post(login(admin_user), "capture_meters", case, data)
    assert response.status_code == 400
    assert not MeterReading.objects.exists()


# --- keys ------------------------------------------------------------------------------------


def test_keys_handed_with_their_items(case, admin_user, login):
    response = _post(
        login(admin_user),
        "capture_keys",
        case,
        {"action": "custody", "item_entrance": "3", "item_access_card": "2"},
        **HTMX,
    )
    assert response.status_code == 200
    case.refresh_from_db()
    assert case.key_action == "custody"
    assert case.key_items == {"entrance": 3, "access_card": 2}
    assert case.keys_handed_at is not None
    assert "物业托管" in response.content.decode()
    assert response["HX-Trigger"] == "case-changed"  # the outcome panel re-reads


@pytest.mark.parametrize(
    "data",
    [
        {"action": "owner"},
        {"action": "owner", "item_entrance": "51"},
        {"action": "owner", "item_entrance": "-1"},
        {"action": "thief", "item_entrance": "1"},
        {"item_entrance": "1"},
    ],
)
def test_bad_keys_write_nothing(case, admin_user, login, data):
    response = _post(login(admin_user), "capture_keys", case, data)
    assert response.status_code == 400
    case.refresh_from_db()
    assert case.key_action == "" and case.key_items == {}


# --- signature -------------------------------------------------------------------------------


def test_the_signature_is_stored_as_a_png(case, admin_user, login):
    response = _post(
        login(admin_user), "capture_signature", case, {"signature": data_url()}, **HTMX
    )
    assert response.status_code == 200
    assert 'data-testid="signature-recorded"' in response.content.decode()
    case.refresh_from_db()
    assert case.signed_at is not None
    with case.signature.open("rb") as stored:
        assert stored.read() == png_bytes()


def test_signing_again_replaces_the_file(case, admin_user, login):
    client = login(admin_user)
    _post(client, "capture_signature", case, {"signature": data_url()})
    case.refresh_from_db()
    first = case.signature.name
    storage = case.signature.storage
    _post(
        client,
        "capture_signature",
        case,
        {"signature": data_url(png_bytes((320, 100)))},
    )
    case.refresh_from_db()
    assert case.signature.name != first
    assert storage.exists(case.signature.name)


JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "请先签名。"),
        (
            "data:image/jpeg;base64," + base64.b64encode(JPEG).decode(),
            "签名必须是 PNG 图片。",
        ),
        (
            "data:image/png;base64," + base64.b64encode(JPEG).decode(),
            "签名必须是 PNG 图片。",
        ),
        ("data:image/png;base64,@@@not-base64@@@", "签名数据无法读取，请重新签名。"),
        (
            "data:image/png;base64,"
            + base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64).decode(),
            "签名数据无法读取，请重新签名。",
        ),
        (
            "data:image/png;base64,"
            + base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * (301 * 1024)).decode(),
            "签名图片过大（上限 300 KB）。",
        ),
    ],
    ids=["empty", "jpeg", "jpeg-as-png", "not-base64", "broken-png", "too-big"],
)
def test_a_bad_signature_is_refused(case, admin_user, login, value, message):
    response = _post(login(admin_user), "capture_signature", case, {"signature": value})
    assert response.status_code == 400
    assert message in response.content.decode()
    case.refresh_from_db()
    assert not case.signature and case.signed_at is None


def test_signature_png_checks_the_size_before_decoding():
    huge = "data:image/png;base64," + "A" * (2 * 1024 * 1024)
    with pytest.raises(captures.CaptureRefused, match="300 KB"):
        captures.signature_png(huge)


# --- survey ----------------------------------------------------------------------------------


def test_the_rating_counts_once_and_moves_by_the_difference(case, admin_user, login):
    client = login(admin_user)
    _post(client, "capture_survey", case, {"rating": "4", "comment": "很顺利"})
    _post(client, "capture_survey", case, {"rating": "5"})
    case.refresh_from_db()
    assert (case.rating, case.rating_comment) == (5, "")
    figures = board(case.event)
    assert (figures["rating:sum"], figures["rating:count"]) == (5, 1)
    assert figures == recount(case.event)


@pytest.mark.parametrize("rating", ["0", "6", "x", ""])
def test_a_bad_rating_is_refused(case, admin_user, login, rating):
    response = _post(login(admin_user), "capture_survey", case, {"rating": rating})
    assert response.status_code == 400
    case.refresh_from_db()
    assert case.rating is None
    assert "rating:count" not in board(case.event)


def test_the_rating_may_follow_the_acceptance(admin_user, login):
    case = ready_to_accept(make_case(admin_user))
    outcomes.case_accept(case, by=admin_user, version=case.version)
    response = _post(login(admin_user), "capture_survey", case, {"rating": "3"})
    assert response.status_code == 302
    case.refresh_from_db()
    assert case.rating == 3


def test_nothing_else_is_recorded_after_the_outcome(admin_user, login):
    case = ready_to_accept(make_case(admin_user))
    outcomes.case_accept(case, by=admin_user, version=case.version)
    response = _post(
        login(admin_user),
        "capture_fee_add",
        case,
        {"item": "property_fee", "amount": "10", "method": "cash"},
    )
    assert response.status_code == 400
    assert "交房单当前为“已收楼”，不能再修改。" in response.content.decode()
    assert not FeePayment.objects.exists()


def test_a_capture_makes_an_open_outcome_page_stale(case, admin_user):
    version = case.version
    captures.keys_save(case, by=admin_user, action="owner", items={"entrance": 2})
    with pytest.raises(outcomes.OutcomeConflict):
        outcomes.case_not_accepted(
            case,
            by=admin_user,
            version=version,
            reason="不签",
            reinspection_on=case.event.end_date,
        )


# --- the station page's partials -------------------------------------------------------------


def test_the_station_partials_render_with_the_station_pages_context(
    case, admin_user, rf
):
    from django.template.loader import render_to_string

    request = rf.get("/handover/events/1/stations/2/")
    request.user = admin_user
    for code in ("settlement", "fees", "meters", "keys", "acceptance", "survey"):
        html = render_to_string(
            f"handover/onsite/stations/_{code}.html",
            {"case": case, "visit": None, "station": None},
            request=request,
        )
        assert f'data-testid="capture-{code}"' in html
        assert 'name="next" value="/handover/events/1/stations/2/"' in html
    html = render_to_string(
        "handover/onsite/_outcomes.html", {"case": case}, request=request
    )
    assert 'data-testid="case-outcomes"' in html


# --- access ----------------------------------------------------------------------------------

CAPTURES = {
    "capture_settlement": {"amount": "1", "save": "1"},
    "capture_fee_add": {"item": "other", "amount": "1", "method": "cash"},
    "capture_meters": {"reading_water": "1"},
    "capture_keys": {"action": "owner", "item_entrance": "1"},
    "capture_signature": {"signature": ""},
    "capture_survey": {"rating": "5"},
}


@pytest.mark.parametrize("name", CAPTURES)
def test_access_rule(admin_user, readonly_user, sales_rep, login, name):
    case = make_case(admin_user)
    url = reverse(f"handover:{name}", args=[case.pk])
    data = CAPTURES[name]
    anonymous = Client().post(url, data)
    assert anonymous.status_code == 302 and "login" in anonymous.url
    assert login(readonly_user).post(url, data).status_code == 403
    assert login(sales_rep).get(url).status_code == 405
    assert login(sales_rep).post(url, data).status_code in (302, 400)
    case.event.status = "draft"
    case.event.save(update_fields=["status"])
    assert login(sales_rep).post(url, data).status_code == 404
    missing = reverse(f"handover:{name}", args=[987654321])
    assert login(admin_user).post(missing, data).status_code == 404


def test_captures_need_the_csrf_token(case, admin_user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    response = _post(client, "capture_survey", case, {"rating": "5"})
    assert response.status_code == 403
    case.refresh_from_db()
    assert case.rating is None
