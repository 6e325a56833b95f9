"""The defect pages through the test client: recording on a phone-sized form, the
cascade, transitions, the ticket link and panel, the customer's timeline, the
contractor page and the contractor's own link (expired, tampered, foreign, replayed)."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.core import signing
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from pytest_django.asserts import assertContains, assertNotContains

from crm.core import once
from service.defects import services
from service.defects.models import Defect, DefectPhoto
from service.handover import counters
from tests.defects.builders import case_for, contractor, defect, leaf, photo, step

pytestmark = pytest.mark.django_db
S = Defect.State


@pytest.fixture(autouse=True)
def public_url(settings):
    settings.KEHU_PUBLIC_URL = "https://kehu.example.cn"


def record_data(leaf_category, **extra):
    data = {
        "room": "bathroom",
        "trade": leaf_category.parent.parent_id,
        "part": leaf_category.parent_id,
        "category": leaf_category.pk,
        "severity": "",
        "description": "地漏返水",
        "contractor": "",
        "due_at": "",
        once.FIELD: once.new_token(),
    }
    data.update(extra)
    return data


# --- recording ----------------------------------------------------------------------------


def test_record_from_a_case_in_a_few_taps(login, service_agent, admin_user):
    case = case_for(admin_user)
    client = login(service_agent)
    url = reverse("defects:record", args=[case.pk])
    page = client.get(url)
    assertContains(page, "记录问题")
    assertContains(page, "土建")
    assertContains(page, 'capture="environment"')
    category = leaf("防水", "卫生间", "渗漏")
    response = client.post(
        url,
        record_data(category, photos=[photo("found.jpg")]),
    )
    item = Defect.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("defects:defect_detail", args=[item.pk])
    assert item.case == case and item.event == case.event
    assert item.severity == "P0"
    assert item.reported_by == service_agent
    assert item.photos.filter(kind=DefectPhoto.Kind.FOUND).count() == 1
    assert counters.read(case.event_id)["defect:open"] == 1
    detail = client.get(response["Location"])
    assertContains(detail, "地漏返水")
    assertContains(detail, "问题照片")


def test_save_and_record_another(login, service_agent, admin_user):
    case = case_for(admin_user)
    client = login(service_agent)
    url = reverse("defects:record", args=[case.pk])
    response = client.post(url, record_data(leaf(), next="again"))
    assert response.status_code == 302 and response["Location"] == url


def test_the_cascade_offers_the_next_level(login, sales_rep):
    category = leaf("门窗", "窗户", "渗水")
    client = login(sales_rep)
    url = reverse("defects:category_options")
    parts = client.get(url, {"level": 2, "trade": category.parent.parent_id})
    assertContains(parts, "窗户")
    assertNotContains(parts, "给水")
    symptoms = client.get(url, {"level": 3, "part": category.parent_id})
    assertContains(symptoms, "渗水 · P1")
    assert client.get(url, {"level": 9}).status_code == 400
    assert client.get(url, {"level": 2, "trade": "x"}).status_code == 404


@pytest.mark.parametrize(
    ("change", "field_error"),
    [
        ({"category": ""}, "category"),
        ({"description": ""}, "description"),
        ({"room": "roof"}, "room"),
        ({"severity": "P7"}, "severity"),
        ({"due_at": "2019-01-01T10:00"}, "due_at"),
        ({"due_at": "not a date"}, "due_at"),
        ({"category": "99999999999999"}, "category"),
    ],
)
def test_bad_input_is_a_form_error(
    login, service_agent, admin_user, change, field_error
):
    case = case_for(admin_user)
    client = login(service_agent)
    response = client.post(
        reverse("defects:record", args=[case.pk]), record_data(leaf(), **change)
    )
    assert response.status_code == 400
    assert field_error in response.context["form"].errors
    assert not Defect.objects.exists()


def test_a_non_image_photo_is_refused(login, service_agent, admin_user):
    case = case_for(admin_user)
    client = login(service_agent)
    fake = SimpleUploadedFile("x.jpg", b"MZ\x90\x00 not an image", "image/jpeg")
    response = client.post(
        reverse("defects:record", args=[case.pk]), record_data(leaf(), photos=[fake])
    )
    assert response.status_code == 400
    assert not Defect.objects.exists()


def test_record_by_unit_and_a_replayed_post_records_once(login, service_agent):
    from tests.property.builders import unit_with_owner

    unit = unit_with_owner()
    client = login(service_agent)
    url = reverse("defects:record_unit", args=[unit.pk])
    data = record_data(leaf())
    assert client.post(url, data).status_code == 302
    client.post(url, data)
    assert Defect.objects.count() == 1
    assert Defect.objects.get().source == Defect.Source.PRE_INSPECTION


def test_no_role_and_anonymous_may_not_record(client, login, readonly_user, admin_user):
    case = case_for(admin_user)
    url = reverse("defects:record", args=[case.pk])
    assert client.get(url).status_code == 302
    assert login(readonly_user).get(url).status_code == 403


def test_csrf_is_required(service_agent, admin_user):
    case = case_for(admin_user)
    client = Client(enforce_csrf_checks=True)
    client.force_login(service_agent)
    response = client.post(
        reverse("defects:record", args=[case.pk]), record_data(leaf())
    )
    assert response.status_code == 403
    assert not Defect.objects.exists()


# --- list, detail and transitions ---------------------------------------------------------


def test_list_filters(login, sales_rep, admin_user, manager):
    fixer = contractor()
    late = defect(admin_user, with_contractor=fixer)
    Defect.objects.filter(pk=late.pk).update(
        due_at=timezone.now() - dt.timedelta(hours=1)
    )
    calm = defect(admin_user, severity="P2")
    closed = defect(admin_user)
    step(manager, closed, "void", reason="重复")
    client = login(sales_rep)
    url = reverse("defects:defect_list")

    def ids(**params):
        page = client.get(url, params)
        assert page.status_code == 200
        return {d.pk for d in page.context["page"].object_list}

    assert ids() == {late.pk, calm.pk, closed.pk}
    assert ids(state="open") == {late.pk, calm.pk}
    assert ids(state="void") == {closed.pk}
    assert ids(severity="P2") == {calm.pk}
    assert ids(contractor=fixer.pk) == {late.pk}
    assert ids(overdue="1") == {late.pk}
    assert ids(event=late.event_id) == {late.pk}
    assert ids(state="nonsense") == {late.pk, calm.pk, closed.pk}
    assert client.get(url, {"contractor": "abc"}).status_code == 404


def test_transitions_through_the_page(login, service_agent, manager, admin_user):
    item = defect(admin_user)
    client = login(service_agent)
    detail = reverse("defects:defect_detail", args=[item.pk])

    def post(action, **data):
        item.refresh_from_db()
        data.setdefault("version", item.version)
        return client.post(
            reverse("defects:defect_transition", args=[item.pk, action]), data
        )

    page = client.get(detail)
    assertContains(page, 'data-testid="action-assign"')
    assertNotContains(page, 'data-testid="action-force_close"')
    assert post("assign").status_code == 400  # no contractor
    assert post("assign", contractor=contractor().pk).status_code == 302
    assert post("start").status_code == 302
    assert post("ready").status_code == 400  # no photo
    assert post("ready", photo=photo()).status_code == 302
    assert post("reject", comment="还漏").status_code == 302
    item.refresh_from_db()
    assert item.rework_rounds == 1
    assert post("ready", photo=photo()).status_code == 302
    assert post("verify").status_code == 302
    item.refresh_from_db()
    assert item.state == S.CLOSED
    assertContains(client.get(detail), "第 2 轮复验通过")
    # Refused: a closed defect, an unknown action, a stale version.
    assert post("start").status_code == 400
    assert post("fly").status_code == 404
    other = defect(admin_user)
    response = client.post(
        reverse("defects:defect_transition", args=[other.pk, "assign"]),
        {"version": other.version + 5, "contractor": contractor().pk},
    )
    assert response.status_code == 400
    assertContains(response, "已被他人修改", status_code=400)


def test_only_managers_and_admins_void_force_close_and_decide(
    login, service_agent, manager, admin_user
):
    item = defect(admin_user)
    url = reverse("defects:defect_transition", args=[item.pk, "force_close"])
    data = {"version": item.version, "reason": "业主签字放弃"}
    assert login(service_agent).post(url, data).status_code == 403
    client = login(manager)
    assert client.post(url, {"version": item.version}).status_code == 400
    assert client.post(url, data).status_code == 302
    item.refresh_from_db()
    assert item.state == S.FORCE_CLOSED and item.approved_by == manager


def test_a_missing_defect_is_404(login, sales_rep):
    client = login(sales_rep)
    assert (
        client.get(reverse("defects:defect_detail", args=[987654])).status_code == 404
    )


# --- the service desk -----------------------------------------------------------------------


def test_create_a_repair_ticket_from_a_defect(login, service_agent, admin_user):
    item = defect(admin_user)
    client = login(service_agent)
    url = reverse("defects:defect_ticket_create", args=[item.pk])
    assert client.post(url).status_code == 302
    item.refresh_from_db()
    ticket = item.ticket
    assert ticket is not None and ticket.ticket_type == "repair"
    owner = item.unit.ownerships.get(is_active=True, role="primary").customer
    assert ticket.customer == owner
    # Linked, not copied: the ticket page shows the defect in its panel.
    page = client.get(ticket.get_absolute_url())
    assertContains(page, 'data-testid="ticket-defects"')
    assertContains(page, reverse("defects:defect_detail", args=[item.pk]))
    # A second one is refused with a message.
    client.post(url)
    assert type(ticket).objects.count() == 1


def test_link_an_existing_ticket_and_sales_may_not(
    login, service_agent, sales_rep, admin_user
):
    from service import services as desk

    item = defect(admin_user)
    owner = item.unit.ownerships.get(is_active=True).customer
    ticket = desk.ticket_create(
        by=admin_user,
        customer=owner,
        ticket_type="repair",
        channel="hotline",
        subject="卫生间漏水",
        description="楼下投诉",
    )
    url = reverse("defects:defect_ticket_link", args=[item.pk])
    assert (
        login(sales_rep).post(url, {"reference": ticket.reference}).status_code == 403
    )
    client = login(service_agent)
    bad = client.post(url, {"reference": "2026000000"})
    assert bad.status_code == 400
    assert client.post(url, {"reference": ticket.reference}).status_code == 302
    item.refresh_from_db()
    assert item.ticket == ticket


def test_record_a_warranty_defect_from_a_ticket(login, service_agent, admin_user):
    from service import services as desk
    from tests.property.builders import unit_with_owner

    unit = unit_with_owner()
    owner = unit.ownerships.get().customer
    ticket = desk.ticket_create(
        by=admin_user,
        customer=owner,
        ticket_type="repair",
        channel="hotline",
        subject="窗户渗水",
        description="下雨渗水",
    )
    client = login(service_agent)
    page = client.get(ticket.get_absolute_url())
    url = reverse("defects:record_ticket", args=[ticket.reference, unit.pk])
    assertContains(page, url)
    assert (
        client.post(url, record_data(leaf("门窗", "窗户", "渗水"))).status_code == 302
    )
    item = Defect.objects.get()
    assert item.ticket == ticket and item.source == Defect.Source.WARRANTY
    # A unit the ticket's customer does not own: 404.
    stranger = unit_with_owner()
    other = reverse("defects:record_ticket", args=[ticket.reference, stranger.pk])
    assert client.get(other).status_code == 404


# --- the customer's timeline ----------------------------------------------------------------


def test_defects_appear_on_the_owners_timeline(login, admin_user):
    from customers import timeline

    item = defect(admin_user)
    owner = item.unit.ownerships.get(is_active=True).customer
    entries, _cursor = timeline.entries(owner)
    assert any(e.kind == "defect" and e.id == item.pk for e in entries)


# --- contractors ------------------------------------------------------------------------------


def test_managers_make_the_contractor_link(login, manager, service_agent, admin_user):
    fixer = contractor()
    defect(admin_user, with_contractor=fixer)
    url = reverse("defects:contractor_detail", args=[fixer.pk])
    assert login(service_agent).post(url).status_code == 403
    page = login(service_agent).get(url)
    assertContains(page, "洗手盆下水管接口漏水")
    assertNotContains(page, "生成整改链接")
    made = login(manager).post(url)
    assertContains(made, "https://kehu.example.cn/c/")


def test_the_contractor_sees_their_open_items_only(admin_user):
    mine, theirs = contractor("甲方水电"), contractor("乙方门窗")
    own = defect(admin_user, with_contractor=mine)
    defect(admin_user, with_contractor=theirs, category=leaf("门窗", "窗户", "渗水"))
    page = Client().get(
        services.contractor_url(mine).removeprefix("https://kehu.example.cn")
    )
    assert page.status_code == 200
    assertContains(page, "甲方水电")
    assertContains(page, f'data-defect="{own.pk}"')
    assert page.content.decode().count('data-testid="contractor-item"') == 1


def _link(fixer):
    return services.contractor_url(fixer).removeprefix("https://kehu.example.cn")


def test_the_contractor_marks_ready_with_a_photo_once(admin_user):
    fixer = contractor()
    item = defect(admin_user, with_contractor=fixer)
    url = _link(fixer)
    visitor = Client()
    data = {"defect": item.pk, "photo": photo(), once.FIELD: once.new_token()}
    assert visitor.post(url, data).status_code == 302
    item.refresh_from_db()
    assert item.state == S.READY_FOR_REVIEW
    assert (
        item.photos.filter(kind=DefectPhoto.Kind.FIXED, uploaded_by=None).count() == 1
    )
    last = item.events.order_by("-id").first()
    assert last.contractor == fixer and last.actor is None
    # Replayed (same token, or a fresh one): acts once.
    visitor.post(
        url, {"defect": item.pk, "photo": photo(), once.FIELD: data[once.FIELD]}
    )
    again = visitor.post(
        url, {"defect": item.pk, "photo": photo(), once.FIELD: once.new_token()}
    )
    assert again.status_code == 400
    assert item.photos.filter(kind=DefectPhoto.Kind.FIXED).count() == 1
    assert item.events.filter(to_state=S.READY_FOR_REVIEW).count() == 1


def test_without_a_photo_or_with_a_bad_one_nothing_changes(admin_user):
    fixer = contractor()
    item = defect(admin_user, with_contractor=fixer)
    url = _link(fixer)
    assert Client().post(url, {"defect": item.pk}).status_code == 400
    fake = SimpleUploadedFile("a.png", b"GIF89a....", "image/png")
    assert Client().post(url, {"defect": item.pk, "photo": fake}).status_code == 400
    assert Client().post(url, {"defect": "x", "photo": photo()}).status_code == 400
    item.refresh_from_db()
    assert item.state == S.ASSIGNED


def test_another_contractors_item_is_404(admin_user):
    mine, theirs = contractor("甲方水电"), contractor("乙方门窗")
    foreign = defect(admin_user, with_contractor=theirs)
    response = Client().post(_link(mine), {"defect": foreign.pk, "photo": photo()})
    assert response.status_code == 404
    foreign.refresh_from_db()
    assert foreign.state == S.ASSIGNED


def test_an_expired_link_is_410(admin_user, settings):
    settings.KEHU_CONTRACTOR_LINK_DAYS = 14
    fixer = contractor()
    item = defect(admin_user, with_contractor=fixer)
    url = _link(fixer)
    with time_machine.travel(timezone.now() + dt.timedelta(days=13)):
        assert Client().get(url).status_code == 200
    with time_machine.travel(timezone.now() + dt.timedelta(days=15)):
        expired = Client().get(url)
        assert expired.status_code == 410
        assertContains(expired, "链接已过期", status_code=410)
        assertNotContains(expired, item.description, status_code=410)
        posted = Client().post(url, {"defect": item.pk, "photo": photo()})
        assert posted.status_code == 410
    item.refresh_from_db()
    assert item.state == S.ASSIGNED


def test_a_tampered_or_foreign_token_is_404(admin_user):
    fixer, other = contractor("甲方水电"), contractor("乙方门窗")
    token = services.contractor_token(fixer)
    value, _, signature = token.rpartition(":")
    forged = signing.dumps({"c": other.pk}, salt=services.CONTRACTOR_SALT)
    for bad in (
        forged.rpartition(":")[0] + ":" + signature,
        token[:-1] + ("A" if token[-1] != "A" else "B"),
        signing.dumps({"c": other.pk}),  # our key, another purpose
        signing.dumps({"c": other.pk}, salt="service.follow"),
        signing.dumps({"c": other.pk}, salt=services.CONTRACTOR_SALT, key="other"),
        "x" * 400,
        "not-a-token",
    ):
        response = Client().get(reverse("contractor_items", args=[bad]))
        assert response.status_code == 404, bad
        assertNotContains(response, "乙方门窗", status_code=404)
    # A contractor switched off: its link opens nothing.
    type(fixer).objects.filter(pk=fixer.pk).update(active=False)
    assert Client().get(reverse("contractor_items", args=[token])).status_code == 404


def test_the_contractor_page_is_rate_limited(admin_user, settings):
    settings.KEHU_CONTRACTOR_PER_IP_HOUR = 2
    url = _link(contractor())
    visitor = Client()
    assert visitor.get(url).status_code == 200
    assert visitor.get(url).status_code == 200
    assert visitor.get(url).status_code == 429


# --- the settings area --------------------------------------------------------------------------


def test_admins_edit_contractors_and_categories(login, admin_user, manager):
    client = login(admin_user)
    response = client.post(
        reverse("defects_admin:contractors_create"),
        {"name": "华南防水工程", "contact_name": "刘工", "phone": "", "active": "on"},
    )
    assert response.status_code == 302
    parent = leaf().parent
    response = client.post(
        reverse("defects_admin:categories_create"),
        {"parent": parent.pk, "name": "锈蚀", "default_severity": "P2", "position": 9},
    )
    assert response.status_code == 302, response.context["form"].errors
    made = parent.children.get(name="锈蚀")
    assert made.level == 3
    assert (
        login(manager).get(reverse("defects_admin:contractors_list")).status_code == 403
    )


# --- the handover pages link here ---------------------------------------------------------------


def test_the_case_page_and_the_inspection_station_link_to_recording(
    login, service_agent, admin_user
):
    from service.handover.models import StationDefinition, StationVisit

    case = case_for(admin_user)
    station = StationDefinition.objects.create(
        event=case.event, code="inspection", name="联合验房", position=1
    )
    StationVisit.objects.create(
        case=case,
        station=station,
        state=StationVisit.State.IN_SERVICE,
        queued_at=timezone.now() - dt.timedelta(minutes=5),
        started_at=timezone.now(),
    )
    client = login(admin_user)
    record = reverse("defects:record", args=[case.pk])
    assertContains(client.get(reverse("handover:case_detail", args=[case.pk])), record)
    page = client.get(
        reverse("handover:station_page", args=[case.event_id, station.pk])
    )
    assertContains(page, 'data-testid="record-defect"')
    assertContains(page, record)


def test_photos_are_served_to_staff_only(
    client, login, sales_rep, readonly_user, admin_user
):
    item = defect(admin_user, photos=[photo("found.jpg")])
    shot = item.photos.get()
    url = reverse("defects:defect_photo", args=[shot.pk])
    detail = reverse("defects:defect_detail", args=[item.pk])
    assertContains(login(sales_rep).get(detail), url)
    response = login(sales_rep).get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert b"".join(response.streaming_content).startswith(b"\xff\xd8")
    assert login(readonly_user).get(url).status_code == 403
    assert Client().get(url).status_code == 302
    missing = reverse("defects:defect_photo", args=[987654])
    assert login(sales_rep).get(missing).status_code == 404


def test_history_shows_state_names(login, sales_rep, admin_user):
    item = defect(admin_user, with_contractor=contractor())
    page = login(sales_rep).get(reverse("defects:defect_detail", args=[item.pk]))
    assertContains(page, "待派单 → 待接单")


@pytest.mark.parametrize(
    "data",
    [
        {"version": "abc"},
        {"version": "99999999999999999999"},
        {"version": "-1"},
        {"version": "1", "reason": "长" * 301},
        {"version": "1", "contractor": "987654321"},
        {"version": "1", "decision": "closed"},
    ],
)
def test_bad_transition_input_is_a_form_error(login, manager, admin_user, data):
    item = defect(admin_user)
    url = reverse("defects:defect_transition", args=[item.pk, "void"])
    response = login(manager).post(url, data)
    assert response.status_code == 400
    item.refresh_from_db()
    assert item.state == S.OPEN


def test_managers_move_the_due_time_on_the_page(
    login, manager, service_agent, admin_user
):
    item = defect(admin_user)
    url = reverse("defects:defect_due", args=[item.pk])
    later = (timezone.localtime() + dt.timedelta(days=3)).strftime("%Y-%m-%dT%H:%M")
    detail = reverse("defects:defect_detail", args=[item.pk])
    assertNotContains(login(service_agent).get(detail), 'data-testid="due-change"')
    assert login(service_agent).post(url, {"due_at": later}).status_code == 403
    client = login(manager)
    assertContains(client.get(detail), 'data-testid="due-change"')
    assert client.post(url, {"due_at": "2019-01-01T10:00"}).status_code == 400
    assert client.post(url, {"due_at": "bad"}).status_code == 400
    response = client.post(url, {"due_at": later, "version": item.version})
    assert response.status_code == 302
    item.refresh_from_db()
    assert timezone.localtime(item.due_at).strftime("%Y-%m-%dT%H:%M") == later
