"""The notice pages (service/handover/notice_views.py): who may see and do what, the
two-step start, the polled progress, filters, masking, links and their revocation."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone
from pytest_django.asserts import assertContains, assertNotContains

from crm.core.models import AccessLog
from crm.scheduler import services as scheduler
from service.handover import links, notices
from service.handover.models import EventUnit, Notice, NoticeRun, OwnerLink
from tests.handover.notice_builders import (
    make_batch,
    make_units,
    notice_pdf_folder,  # noqa: F401
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def event(new_event):
    return new_event()


def run_to_end(run: NoticeRun) -> NoticeRun:
    notices.notice_run_advance(run_id=run.pk, chunks=1000)
    run.refresh_from_db()
    return run


def deliver_due() -> None:
    """Sweep and deliver the due actions as beat and a worker would."""
    while ids := scheduler.actions_sweep():
        for pk in ids:
            scheduler.action_deliver(action_id=pk)


def url(name: str, *args) -> str:
    return reverse(f"handover:{name}", args=args)


# --- who may do what -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("persona", "status"),
    [
        ("sales_rep", 200),
        ("service_agent", 200),
        ("manager", 200),
        ("admin_user", 200),
        ("readonly_user", 403),
    ],
)
def test_every_staff_role_sees_the_notice_pages(
    request, client, event, manager, persona, status
):
    (eu,) = make_units(event, count=1)
    run = run_to_end(
        notices.notice_run_start(by=manager, event=event, channel="letter")
    )
    client.force_login(request.getfixturevalue(persona))
    for page in (
        url("notice_list", event.pk),
        url("owner_links", event.pk),
        url("notice_run_progress", run.pk),
    ):
        assert client.get(page).status_code == status, page


def test_the_pages_ask_anonymous_visitors_to_log_in(client, event):
    response = client.get(url("notice_list", event.pk))
    assert response.status_code == 302 and "/login" in response["Location"]


@pytest.mark.parametrize("persona", ["sales_rep", "service_agent", "readonly_user"])
def test_only_managers_and_admins_act(request, client, event, manager, persona):
    (eu,) = make_units(event, count=1)
    run = run_to_end(
        notices.notice_run_start(by=manager, event=event, channel="letter")
    )
    link = run.notices.get().link
    client.force_login(request.getfixturevalue(persona))
    # The letters' PDF holds every owner's booking link: for the roles that send.
    assert client.get(url("notice_run_pdf", run.pk)).status_code == 403
    listing = client.get(url("notice_list", event.pk))
    assert "letters.pdf" not in listing.content.decode()
    posts = {
        url("notice_run_start", event.pk): {"channel": "sms", "round": "1"},
        url("letters_delivered", run.pk): {"delivered_on": "2026-01-01"},
        url("unit_notice_pdf", eu.pk): {},
        url("owner_link_revoke", link.pk): {},
    }
    for page, data in posts.items():
        assert client.post(page, data).status_code == 403, page
    link.refresh_from_db()
    assert link.revoked_at is None
    assert NoticeRun.objects.count() == 1


def test_a_draft_event_s_notices_are_hidden_from_the_staff_who_cannot_see_it(
    client, new_event, manager, sales_rep
):
    draft = new_event(publish=False)
    client.force_login(sales_rep)
    assert client.get(url("notice_list", draft.pk)).status_code == 404
    assert client.get(url("owner_links", draft.pk)).status_code == 404


# --- starting a run ----------------------------------------------------------------------


def test_a_manager_sees_how_many_owners_will_be_notified_then_starts_the_run(
    client, event, manager, django_capture_on_commit_callbacks
):
    batch = make_batch(event)
    make_units(event, count=3, batch=batch, co_owners=1)
    make_units(event, count=1, batch=batch, phone=False)
    make_units(event, count=1, batch=batch, eligibility=EventUnit.Eligibility.NOT_READY)
    client.force_login(manager)
    form = {"channel": "sms", "batch": batch.pk, "round": "1"}

    response = client.post(url("notice_run_start", event.pk), form)
    assert response.status_code == 200
    assertContains(response, "将通过短信通知 6 位业主")
    assertContains(response, "业主没有手机号：1")
    assertContains(response, "房屋未具备交付条件：1")
    assert not NoticeRun.objects.exists()

    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(
            url("notice_run_start", event.pk), {**form, "confirm": "1"}
        )
    assert response.status_code == 302
    run = NoticeRun.objects.get()
    assert (run.batch, run.channel, run.total, run.created_by) == (
        batch,
        "sms",
        5,
        manager,
    )
    assert len(callbacks) == 1  # the task is queued after commit

    page = client.get(url("notice_list", event.pk))
    assertContains(page, f'hx-get="{url("notice_run_progress", run.pk)}"')
    assertContains(page, 'hx-trigger="every 1s"')


@pytest.mark.parametrize(
    "form",
    [
        {"channel": "fax", "round": "1"},
        {"channel": "sms", "round": "0"},
        {"channel": "sms", "round": "x"},
        {"channel": "sms", "round": "1", "batch": "999999"},
        {"channel": "sms", "round": "1", "batch": "abc"},
    ],
)
def test_bad_input_is_explained_and_starts_nothing(client, new_event, manager, form):
    event = new_event()
    other = make_batch(new_event(name="另一个活动"))
    if form.get("batch") == "999999":
        form = {**form, "batch": other.pk}  # another event's batch
    client.force_login(manager)
    response = client.post(url("notice_run_start", event.pk), {**form, "confirm": "1"})
    assert response.status_code == 400
    assertContains(response, "alert-danger", status_code=400)
    assert not NoticeRun.objects.exists()


def test_a_second_run_while_one_is_unfinished_is_refused_with_a_message(
    client, event, manager
):
    make_units(event, count=1)
    notices.notice_run_start(by=manager, event=event, channel="sms")
    client.force_login(manager)
    response = client.post(
        url("notice_run_start", event.pk),
        {"channel": "sms", "round": "1", "confirm": "1"},
        follow=True,
    )
    assertContains(response, "已有正在发送的通知任务")
    assert NoticeRun.objects.count() == 1


# --- progress, lists, masking ------------------------------------------------------------


def test_the_progress_partial_moves_and_stops_polling_when_done(
    client, event, manager, monkeypatch
):
    monkeypatch.setattr(notices, "CHUNK", 2)
    make_units(event, count=4)
    run = notices.notice_run_start(by=manager, event=event, channel="sms")
    client.force_login(manager)
    notices.notice_run_advance(run_id=run.pk, chunks=1)
    # The page's poll while the worker holds the run: half done, still polling.
    NoticeRun.objects.filter(pk=run.pk).update(
        lease_until=timezone.now() + dt.timedelta(minutes=1)
    )
    response = client.get(url("notice_run_progress", run.pk), HTTP_HX_REQUEST="true")
    assertContains(response, "50%")
    assertContains(response, "已处理 2 / 4 户")
    assertContains(response, 'hx-trigger="every 1s"')
    NoticeRun.objects.filter(pk=run.pk).update(lease_until=None)
    run_to_end(run)
    response = client.get(url("notice_run_progress", run.pk), HTTP_HX_REQUEST="true")
    assertContains(response, "100%")
    assertContains(response, "待发送 4")
    # Done: the messages still leave through the pipeline, so the card looks less often.
    assertContains(response, 'hx-trigger="every 3s"')
    deliver_due()
    response = client.get(url("notice_run_progress", run.pk), HTTP_HX_REQUEST="true")
    assertContains(response, "已送达 4")
    assertNotContains(response, "hx-trigger")


def test_the_poll_queues_a_run_that_no_worker_holds(
    client, event, manager, django_capture_on_commit_callbacks
):
    make_units(event, count=1)
    run = notices.notice_run_start(by=manager, event=event, channel="sms")
    NoticeRun.objects.filter(pk=run.pk).update(queued_at=None)  # the publish was lost
    client.force_login(manager)
    with django_capture_on_commit_callbacks() as callbacks:
        client.get(url("notice_run_progress", run.pk))
    assert len(callbacks) == 1
    with django_capture_on_commit_callbacks() as callbacks:
        client.get(url("notice_run_progress", run.pk))
    assert callbacks == []  # just queued: not again


def test_phones_are_masked_for_the_desk_and_shown_to_managers(
    client, event, manager, service_agent
):
    make_units(event, count=1)
    run_to_end(notices.notice_run_start(by=manager, event=event, channel="sms"))
    phone = Notice.objects.get().recipient.phone
    client.force_login(service_agent)
    for page in (url("notice_list", event.pk), url("owner_links", event.pk)):
        response = client.get(page)
        assertNotContains(response, phone)
        assertContains(response, phone[:3] + "****" + phone[-4:])
    client.force_login(manager)
    assertContains(client.get(url("notice_list", event.pk)), phone)


def test_the_notice_list_filters_by_batch_state_and_channel(client, event, manager):
    first, second = make_batch(event, "第一批"), make_batch(event, "第二批")
    make_units(event, count=2, batch=first)
    make_units(event, count=1, batch=second)
    run_to_end(notices.notice_run_start(by=manager, event=event, channel="sms"))
    Notice.objects.filter(event_unit__batch=second).update(state="failed")
    client.force_login(manager)
    base = url("notice_list", event.pk)

    def rows(query: str) -> int:
        response = client.get(base + query)
        assert response.status_code == 200
        return response.content.decode().count('data-testid="notice-row"')

    assert rows("") == 3
    assert rows(f"?batch={first.pk}") == 2
    assert rows("?state=failed") == 1
    assert rows("?channel=letter") == 0
    assert rows("?state=bogus&channel=bogus") == 3  # unknown choices are ignored
    assert client.get(base + "?batch=abc").status_code == 404


def test_the_pages_cost_the_same_queries_at_two_sizes(client, event, manager):
    make_units(event, count=2, co_owners=1)
    run_to_end(notices.notice_run_start(by=manager, event=event, channel="sms"))
    client.force_login(manager)
    pages = [url("notice_list", event.pk), url("owner_links", event.pk)]
    client.get(pages[0])  # warm the session and caches
    small = [count_queries(client, page) for page in pages]
    make_units(event, count=8, co_owners=1)
    run_to_end(
        notices.notice_run_start(by=manager, event=event, channel="sms", round=2)
    )
    assert [count_queries(client, page) for page in pages] == small


def count_queries(client, page: str) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        assert client.get(page).status_code == 200
    return len(captured)


def test_empty_pages_say_so(client, event, manager):
    client.force_login(manager)
    assertContains(client.get(url("notice_list", event.pk)), "还没有发送过通知")
    assertContains(client.get(url("owner_links", event.pk)), "没有符合条件的房间")


# --- letters, links, PDFs ----------------------------------------------------------------


def test_a_manager_marks_a_letter_run_delivered_on_a_date(client, event, manager):
    make_units(event, count=2)
    run = run_to_end(
        notices.notice_run_start(by=manager, event=event, channel="letter")
    )
    client.force_login(manager)
    page = client.get(url("notice_list", event.pk))
    assertContains(page, url("notice_run_pdf", run.pk))
    response = client.post(
        url("letters_delivered", run.pk), {"delivered_on": "2999-01-01"}, follow=True
    )
    assertContains(response, "alert")
    assert not run.notices.filter(state="delivered").exists()
    day = timezone.localdate() - dt.timedelta(days=2)
    response = client.post(
        url("letters_delivered", run.pk), {"delivered_on": day.isoformat()}, follow=True
    )
    assertContains(response, "已登记 2 封信函送达")
    assert run.notices.filter(state="delivered").count() == 2
    pdf = client.get(url("notice_run_pdf", run.pk))
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    assert b"".join(pdf.streaming_content).startswith(b"%PDF")
    logged = AccessLog.objects.get(object_type="noticerun", object_id=run.pk)
    assert (logged.user, logged.action, logged.row_count) == (
        manager,
        "customer_viewed",
        2,
    )


def test_an_sms_run_has_no_pdf(client, event, manager):
    make_units(event, count=1)
    run = run_to_end(notices.notice_run_start(by=manager, event=event, channel="sms"))
    client.force_login(manager)
    assert client.get(url("notice_run_pdf", run.pk)).status_code == 404


def test_a_manager_revokes_a_link_and_it_opens_nothing_any_more(client, event, manager):
    (eu,) = make_units(event, count=1)
    link = links.link_for(event_unit=eu, holder=eu.unit.ownerships.get().customer)
    token = links.token_for(link)
    assert client.get(reverse("owner_booking", args=[token])).status_code == 200
    client.force_login(manager)
    page = client.get(url("owner_links", event.pk))
    assertContains(page, url("owner_link_revoke", link.pk))
    assertContains(page, "data-confirm")
    response = client.post(url("owner_link_revoke", link.pk), follow=True)
    assertContains(response, "已撤销")
    assertContains(response, 'data-testid="link-revoked"')
    link.refresh_from_db()
    assert link.revoked_by == manager
    client.logout()
    # Gone, with the page that says so (not the owner's unit).
    assert client.get(reverse("owner_booking", args=[token])).status_code == 410
    with pytest.raises(links.LinkError, match="revoked"):
        links.open_link(token)


def test_a_link_of_an_event_the_user_cannot_see_is_a_404(
    client, new_event, admin_user, sales_rep
):
    draft = new_event(publish=False)
    (eu,) = make_units(draft, count=1)
    link = links.link_for(event_unit=eu, holder=eu.unit.ownerships.get().customer)
    client.force_login(sales_rep)
    assert client.post(url("owner_link_revoke", link.pk)).status_code == 403
    assert OwnerLink.objects.get().revoked_at is None


def test_a_manager_prints_one_unit_s_notice(client, event, manager):
    (eu,) = make_units(event, count=1)
    client.force_login(manager)
    response = client.post(url("unit_notice_pdf", eu.pk))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")
    assert client.post(url("unit_notice_pdf", 987654321)).status_code == 404
