"""The owner's booking pages behind the personal link (/o/<token>/) and the check-in
desk's side of their QR code, through the Django test client and the real database:
the link (valid, expired, tampered, revoked, a co-owner's and a proxy's), booking,
changing and cancelling until the cut-off, the walk-in hold, the refusals, CSRF, the
QR code read back and accepted by the desk, and the per-address limit."""

from __future__ import annotations

import datetime as dt
import struct
import zlib
from urllib.parse import urlsplit

import pytest
import time_machine
import zxingcpp
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from pytest_django.asserts import assertContains, assertNotContains

from crm.core import limits
from service.handover import checkin_codes, links, services
from service.handover.models import Appointment, EventUnit
from tests.handover.builders import slots_of
from tests.handover.owner_builders import owned_unit, scoped_event

pytestmark = pytest.mark.django_db


@pytest.fixture
def event(new_event):
    # Five days ahead: far from the 24-hour cut-off; two days of three 1-hour slots.
    return new_event(days_ahead=5, days=2, slots_per_day=3, capacity=3)


@pytest.fixture
def batch(event):
    return scoped_event(event)


@pytest.fixture
def home(event, batch):
    event.refresh_from_db()
    return owned_unit(event, batch)


def page(token: str) -> str:
    return reverse("owner_booking", args=[token])


def book(client, token: str, slot, party_size: int = 2):
    return client.post(page(token), {"slot": slot.pk, "party_size": party_size})


def active_booking(home) -> Appointment:
    return Appointment.objects.active().get(event_unit=home.event_unit)


# --- the link ---------------------------------------------------------------------------


def test_valid_link_shows_the_unit_batch_holder_and_free_slots(client, home, event):
    response = client.get(page(home.token))
    assert response.status_code == 200
    assertContains(response, "1栋2单元1502")
    assertContains(response, "第一批（1–2栋）")
    assertContains(response, "林晓东")
    # The other owners of the unit are named by their surname only.
    assertContains(response, "陈**")
    assertNotContains(response, "陈美玲")
    assertContains(response, 'data-testid="owner-slot"', count=len(slots_of(event)))
    assertContains(response, "余 3 户")
    assert response["Cache-Control"].startswith("max-age=0")
    assert "no-store" in response["Cache-Control"]


def test_opening_the_link_records_its_use_once_every_few_minutes(client, home):
    assert home.link.last_used_at is None
    client.get(page(home.token))
    home.link.refresh_from_db()
    first = home.link.last_used_at
    assert first is not None
    client.get(page(home.token))
    home.link.refresh_from_db()
    assert home.link.last_used_at == first


def test_expired_link_answers_410_with_an_explanation(client, home):
    with time_machine.travel(home.link.expires_at + dt.timedelta(minutes=1)):
        response = client.get(page(home.token))
    assert response.status_code == 410
    assertContains(response, "链接已过期", status_code=410)
    assertContains(response, "400-800-1234", status_code=410)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),
        lambda t: t.replace(":", ";", 1),
        lambda t: "x" * 40,
        lambda t: t + "x" * 400,
    ],
    ids=["signature", "payload", "garbage", "overlong"],
)
def test_tampered_link_answers_404_and_books_nothing(client, home, event, mangle):
    token = mangle(home.token)
    response = client.get(page(token))
    assert response.status_code == 404
    assertContains(response, "链接无效", status_code=404)
    response = client.post(page(token), {"slot": slots_of(event)[0].pk})
    assert response.status_code == 404
    assert not Appointment.objects.exists()


def test_another_links_nonce_opens_nothing(client, home):
    from django.core import signing

    forged = signing.dumps(
        {"l": home.link.pk, "n": home.co_link.nonce}, salt=links.LINK_SALT
    )
    assert client.get(page(forged)).status_code == 404


def test_revoked_link_cannot_be_reused(client, home, event, admin_user):
    assert client.get(page(home.token)).status_code == 200
    assert links.link_revoke(home.link, by=admin_user)
    response = client.get(page(home.token))
    assert response.status_code == 410
    assertContains(response, "链接已失效", status_code=410)
    assert book(client, home.token, slots_of(event)[0]).status_code == 410
    assert not Appointment.objects.exists()
    # The owner's new link works; the co-owner's was never affected.
    fresh = links.link_for(event_unit=home.event_unit, holder=home.primary)
    assert fresh.pk != home.link.pk
    assert client.get(page(links.token_for(fresh))).status_code == 200
    assert client.get(page(home.co_token)).status_code == 200


# --- book, change, cancel -----------------------------------------------------------------


def test_owner_books_and_sees_the_confirmation_with_a_qr_code(client, home, event):
    slot = slots_of(event)[1]
    response = book(client, home.token, slot)
    assert response.status_code == 302
    assert response["Location"] == page(home.token) + "?done=booked"
    appointment = active_booking(home)
    assert appointment.slot == slot
    assert appointment.customer == home.primary
    assert appointment.party_size == 2
    assert appointment.channel == Appointment.Channel.OWNER_LINK
    assert appointment.booked_via_id == home.link.pk
    assert appointment.created_by is None
    slot.refresh_from_db()
    assert slot.booked_count == 1
    response = client.get(response["Location"])
    assertContains(response, "预约成功")
    assertContains(response, 'data-testid="owner-qr"')
    assertContains(response, checkin_codes.code_for(appointment.pk))
    assertContains(response, reverse("owner_change", args=[home.token]))
    assertContains(response, reverse("owner_cancel", args=[home.token]))


def test_co_owner_and_proxy_links_see_and_change_the_same_booking(client, home, event):
    first, second, third = slots_of(event)[:3]
    book(client, home.token, first)
    appointment = active_booking(home)
    for token in (home.co_token, home.proxy_token):
        response = client.get(page(token))
        assertContains(response, "您的预约")
        assertContains(response, checkin_codes.code_for(appointment.pk))
        assertNotContains(response, 'data-testid="owner-book-form"')
    # A second booking for the unit from another holder's link is refused.
    response = book(client, home.co_token, second)
    assert Appointment.objects.active().filter(event_unit=home.event_unit).count() == 1
    response = client.post(
        reverse("owner_change", args=[home.co_token]),
        {"slot": third.pk, "version": appointment.version},
    )
    assert response.status_code == 302
    changed = active_booking(home)
    assert changed.pk == appointment.pk
    assert changed.slot == third
    assert changed.booked_via_id == home.co_link.pk
    response = client.get(page(home.token))
    assertContains(response, third.start_time.strftime("%H:%M"))


def test_owner_changes_slot_and_the_seats_move(client, home, event):
    first, second = slots_of(event)[:2]
    book(client, home.token, first)
    appointment = active_booking(home)
    change = reverse("owner_change", args=[home.token])
    response = client.get(change)
    assertContains(response, "当前预约")
    response = client.post(change, {"slot": second.pk, "version": appointment.version})
    assert response["Location"] == page(home.token) + "?done=changed"
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.booked_count, second.booked_count) == (0, 1)
    # The page it was on is stale now: the same form again is refused, not applied.
    response = client.post(change, {"slot": first.pk, "version": appointment.version})
    assert response.status_code == 409
    assertContains(response, "预约已被他人修改", status_code=409)
    assert active_booking(home).slot == second


def test_cancel_asks_for_confirmation_then_releases_the_seat(client, home, event):
    slot = slots_of(event)[0]
    book(client, home.token, slot)
    appointment = active_booking(home)
    cancel = reverse("owner_cancel", args=[home.token])
    response = client.get(cancel)
    assertContains(response, "确定取消预约吗")
    assert Appointment.objects.active().count() == 1
    response = client.post(cancel, {"version": appointment.version})
    assert response["Location"] == page(home.token) + "?done=cancelled"
    appointment.refresh_from_db()
    assert appointment.state == Appointment.State.CANCELLED
    slot.refresh_from_db()
    assert slot.booked_count == 0
    response = client.get(response["Location"])
    assertContains(response, "已取消预约")
    assertContains(response, 'data-testid="owner-book-form"')


def test_after_the_cut_off_the_page_gives_the_deadline_and_the_desk_phone(
    client, home, event
):
    slot = slots_of(event)[0]
    book(client, home.token, slot)
    appointment = active_booking(home)
    late = slot.starts_at - dt.timedelta(hours=event.owner_cutoff_hours - 1)
    with time_machine.travel(late):
        response = client.get(page(home.token))
        assertContains(response, "网上改约和取消已于")
        assertContains(response, "400-800-1234")
        assertNotContains(response, reverse("owner_cancel", args=[home.token]))
        response = client.post(
            reverse("owner_cancel", args=[home.token]),
            {"version": appointment.version},
        )
        assert response.status_code == 409
        later = slots_of(event)[-1]
        response = client.post(
            reverse("owner_change", args=[home.token]),
            {"slot": later.pk, "version": appointment.version},
        )
        assert response.status_code == 409
    appointment.refresh_from_db()
    assert appointment.state == Appointment.State.BOOKED
    assert appointment.slot == slot


# --- the walk-in hold and the refusals ------------------------------------------------------


def test_walk_in_hold_is_not_offered_to_owners_until_it_is_released(
    client, home, event
):
    slot = slots_of(event)[0]
    slot.walk_in_hold = 2
    slot.save(update_fields=["walk_in_hold"])
    response = client.get(page(home.token))
    assertContains(response, "余 1 户")
    release = dt.datetime.combine(
        slot.date, event.walk_in_release_time, tzinfo=timezone.get_current_timezone()
    )
    # After the release hour the held seats are anyone's (the later slots still open).
    with time_machine.travel(release + dt.timedelta(minutes=1)):
        response = client.get(page(home.token))
    assertNotContains(response, "余 1 户")


def test_full_slot_is_shown_full_and_refused_with_a_message(client, home, event):
    slot = slots_of(event)[0]
    for n in range(slot.capacity):
        neighbour = owned_unit(event, home.event_unit.batch, room=f"{n + 2}01")
        assert book(client, neighbour.token, slot).status_code == 302
    response = client.get(page(home.token))
    assertContains(response, "已满")
    response = book(client, home.token, slot)
    assert response.status_code == 400
    assertContains(response, "该时段已满", status_code=400)
    assert not Appointment.objects.filter(event_unit=home.event_unit).exists()


def test_slot_taken_by_the_hold_only_is_full_for_owners(client, home, event):
    slot = slots_of(event)[0]
    slot.walk_in_hold = slot.capacity
    slot.save(update_fields=["walk_in_hold"])
    response = book(client, home.token, slot)
    assert response.status_code in (400, 409)
    assertContains(response, "已满", status_code=response.status_code)
    assert not Appointment.objects.exists()


def test_window_not_yet_open_says_when_it_opens_and_refuses_a_booking(
    client, event, new_event
):
    other = new_event(name="翠湖花园三期集中交付", days_ahead=6)
    batch = scoped_event(other, opens_in_hours=48)
    other.refresh_from_db()
    home = owned_unit(other, batch, room="1801")
    response = client.get(page(home.token))
    assertContains(response, "的预约将于")
    assertNotContains(response, 'data-testid="owner-book-form"')
    response = book(client, home.token, slots_of(other)[0])
    assert response.status_code == 409
    assert not Appointment.objects.exists()


def test_unit_not_eligible_is_told_why_and_cannot_book(client, home, event):
    EventUnit.objects.filter(pk=home.event_unit.pk).update(
        eligibility=EventUnit.Eligibility.ARREARS
    )
    response = client.get(page(home.token))
    assertContains(response, "暂不能预约入伙")
    assertContains(response, "业主欠款")
    response = book(client, home.token, slots_of(event)[0])
    assert response.status_code == 409
    assert not Appointment.objects.exists()


def test_slot_of_another_batch_or_event_is_refused(client, home, new_event):
    other = new_event(name="别的活动", days_ahead=8)
    response = book(client, home.token, slots_of(other)[0])
    assert response.status_code == 400
    assertContains(response, "所选时段不可预约", status_code=400)


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"slot": "abc", "party_size": "1"},
        {"slot": "99999999999999999999999", "party_size": "1"},
        {"slot": "1", "party_size": "0"},
        {"slot": "1", "party_size": "100000"},
        {"slot": "1\x00", "party_size": "x"},
    ],
)
def test_bad_input_rerenders_with_a_message_and_writes_nothing(client, home, data):
    response = client.post(page(home.token), data)
    assert response.status_code == 400
    assertContains(response, 'data-testid="owner-error"', status_code=400)
    assert not Appointment.objects.exists()


def test_event_closed_pages_say_so(client, home, event, admin_user):
    services.event_close(by=admin_user, event=event)
    response = client.get(page(home.token))
    assertContains(response, "目前不接受预约")


def test_posts_need_the_csrf_token(home, event):
    client = Client(enforce_csrf_checks=True)
    assert client.get(page(home.token)).status_code == 200
    response = book(client, home.token, slots_of(event)[0])
    assert response.status_code == 403
    assert not Appointment.objects.exists()


def test_each_address_has_an_hourly_limit_on_posts(client, home, event, settings):
    settings.KEHU_OWNER_PER_IP_HOUR = 3
    for _ in range(3):
        assert client.post(page(home.token), {"slot": "x"}).status_code == 400
    response = book(client, home.token, slots_of(event)[0])
    assert response.status_code == 429
    assertContains(response, "操作太频繁", status_code=429)
    assert not Appointment.objects.exists()
    # Reading the page is not held up, nor is another address.
    assert client.get(page(home.token)).status_code == 200
    response = client.post(
        page(home.token),
        {"slot": slots_of(event)[0].pk, "party_size": 1},
        REMOTE_ADDR="10.1.2.3",
    )
    assert response.status_code != 429
    assert limits.used("owner-ip", "127.0.0.1") == 3


def test_the_page_reads_in_a_fixed_number_of_queries(
    client, home, event, django_assert_max_num_queries
):
    with django_assert_max_num_queries(8):
        client.get(page(home.token))
    for n in range(5):
        other = owned_unit(event, home.event_unit.batch, room=f"{n + 2}01")
        book(client, other.token, slots_of(event)[n % 3])
    with django_assert_max_num_queries(8):
        client.get(page(home.token))


# --- the QR code and the desk ---------------------------------------------------------------


class _Grey:
    """A decoded greyscale image as zxing-cpp reads it (no imaging library needed)."""

    def __init__(self, width: int, height: int, pixels: bytes) -> None:
        self.__array_interface__ = {
            "shape": (height, width),
            "typestr": "|u1",
            "data": pixels,
            "version": 3,
        }


def _read_png(data: bytes) -> _Grey:
    """The 1-bit greyscale PNG that segno writes (filters None and Up)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
            assert (depth, colour) == (1, 0)
        elif kind == b"IDAT":
            idat += body
    raw, stride = zlib.decompress(idat), (width + 7) // 8
    previous, pixels = bytes(stride), bytearray()
    for y in range(height):
        start = y * (stride + 1)
        kind, row = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        assert kind in (0, 2)
        if kind == 2:
            row = bytearray((a + b) & 0xFF for a, b in zip(row, previous, strict=True))
        previous = bytes(row)
        pixels += bytes(
            255 if row[x >> 3] >> (7 - (x & 7)) & 1 else 0 for x in range(width)
        )
    return _Grey(width, height, bytes(pixels))


def scanned_code(client, token: str) -> str:
    response = client.get(reverse("owner_qr", args=[token]))
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    found = zxingcpp.read_barcodes(_read_png(response.content))
    assert len(found) == 1
    return found[0].text


def test_qr_code_decodes_to_the_desk_page_which_checks_the_owner_in(
    client, home, event, service_agent
):
    slot = slots_of(event)[0]
    book(client, home.token, slot)
    appointment = active_booking(home)
    scanned = scanned_code(client, home.token)
    assert checkin_codes.code_for(appointment.pk) in scanned
    # Every holder's link shows the same code.
    assert scanned_code(client, home.co_token) == scanned
    desk = Client()
    desk.force_login(service_agent)
    url = urlsplit(scanned)
    assert url.path == reverse("handover:desk_check_in")
    response = desk.get(f"{url.path}?{url.query}")
    assertContains(response, "1栋2单元1502")
    assertContains(response, "林晓东")
    assertContains(response, 'data-testid="desk-check-in"')
    # A handheld scanner types the whole URL into the field: that works too.
    response = desk.get(url.path, {"code": scanned})
    assertContains(response, 'data-testid="desk-check-in"')
    with time_machine.travel(slot.starts_at):
        response = desk.post(url.path, {"code": scanned})
    assert response.status_code == 302
    appointment.refresh_from_db()
    assert appointment.state == Appointment.State.CHECKED_IN
    response = desk.get(response["Location"])
    assertContains(response, "已签到")


def test_desk_refuses_a_check_in_on_another_day(client, home, event, service_agent):
    book(client, home.token, slots_of(event)[0])
    appointment = active_booking(home)
    desk = Client()
    desk.force_login(service_agent)
    response = desk.post(
        reverse("handover:desk_check_in"),
        {"code": checkin_codes.code_for(appointment.pk)},
    )
    assert response.status_code == 409
    assertContains(response, "只能在预约当天签到", status_code=409)
    appointment.refresh_from_db()
    assert appointment.state == Appointment.State.BOOKED


def test_a_typed_code_reads_in_any_case_with_spaces(home, client, event):
    book(client, home.token, slots_of(event)[0])
    appointment = active_booking(home)
    code = checkin_codes.code_for(appointment.pk)
    typed = " ".join(code.lower())
    assert checkin_codes.appointment_id_from(typed) == appointment.pk


@pytest.mark.parametrize(
    "code",
    ["1-AAAAAAAAAA", "abc", "0-AAAAAAAAAA", "-", "1" * 30 + "-A", "x" * 401],
)
def test_desk_refuses_codes_it_did_not_sign(code, service_agent, home, client, event):
    book(client, home.token, slots_of(event)[0])
    desk = Client()
    desk.force_login(service_agent)
    response = desk.get(reverse("handover:desk_check_in"), {"code": code})
    assert response.status_code in (400, 404)
    assertNotContains(response, "林晓东", status_code=response.status_code)
    assertNotContains(
        response, 'data-testid="desk-check-in"', status_code=response.status_code
    )


def test_a_forged_signature_for_a_real_appointment_is_refused(
    client, home, event, service_agent
):
    book(client, home.token, slots_of(event)[0])
    appointment = active_booking(home)
    real = checkin_codes.code_for(appointment.pk)
    forged = real[:-1] + ("A" if real[-1] != "A" else "B")
    desk = Client()
    desk.force_login(service_agent)
    response = desk.get(reverse("handover:desk_check_in"), {"code": forged})
    assert response.status_code == 404
    assertContains(response, "签到码无效", status_code=404)


def test_anonymous_users_learn_nothing_from_the_desk_page(client, home, event):
    book(client, home.token, slots_of(event)[0])
    appointment = active_booking(home)
    code = checkin_codes.code_for(appointment.pk)
    anonymous = Client()
    for response in (
        anonymous.get(reverse("handover:desk_check_in"), {"code": code}),
        anonymous.post(reverse("handover:desk_check_in"), {"code": code}),
    ):
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))
    appointment.refresh_from_db()
    assert appointment.state == Appointment.State.BOOKED


def test_every_staff_role_may_use_the_desk_and_no_role_may_not(
    client, home, event, sales_rep, manager, service_agent, admin_user, readonly_user
):
    book(client, home.token, slots_of(event)[0])
    code = checkin_codes.code_for(active_booking(home).pk)
    for user, status in (
        (sales_rep, 200),
        (manager, 200),
        (service_agent, 200),
        (admin_user, 200),
        (readonly_user, 403),
    ):
        desk = Client()
        desk.force_login(user)
        response = desk.get(reverse("handover:desk_check_in"), {"code": code})
        assert response.status_code == status, user


def test_desk_masks_the_phone_for_roles_that_may_not_see_it(
    client, home, event, service_agent, admin_user
):
    book(client, home.token, slots_of(event)[0])
    code = checkin_codes.code_for(active_booking(home).pk)
    phone = home.primary.phone
    desk = Client()
    desk.force_login(service_agent)
    response = desk.get(reverse("handover:desk_check_in"), {"code": code})
    assertNotContains(response, phone)
    assertContains(response, phone[:3] + "****" + phone[-4:])
    desk.force_login(admin_user)
    assertContains(desk.get(reverse("handover:desk_check_in"), {"code": code}), phone)


def test_qr_of_a_unit_without_booking_is_404(client, home):
    assert client.get(reverse("owner_qr", args=[home.token])).status_code == 404
