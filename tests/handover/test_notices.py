"""Notice runs (service/handover/notices.py): one notice per owner and round, through
the channel layer's recording SMS backend, resumable without sending twice."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from crm.channels.backends import RecordingSmsBackend
from crm.channels.models import OutboundMessage
from crm.scheduler import services as scheduler
from crm.scheduler.models import ScheduledAction
from service.handover import links, notices, services
from service.handover.models import EventUnit, Notice, NoticeRun
from tests.handover.notice_builders import (
    add_proxy,
    make_batch,
    make_units,
    notice_pdf_folder,  # noqa: F401
)

pytestmark = pytest.mark.django_db
Eligibility = EventUnit.Eligibility


@pytest.fixture
def sms(settings, tmp_path):
    settings.KEHU_SMS_FILE_PATH = str(tmp_path / "sms")
    return RecordingSmsBackend()


def deliver_due(now=None) -> int:
    """Sweep as beat would and deliver as a worker would; how many were delivered."""
    now = now or timezone.now()
    delivered = 0
    while ids := scheduler.actions_sweep(now=now):
        delivered += sum(
            bool(scheduler.action_deliver(action_id=pk, now=now)) for pk in ids
        )
    return delivered


def run_to_end(run: NoticeRun) -> NoticeRun:
    notices.notice_run_advance(run_id=run.pk, chunks=1000)
    run.refresh_from_db()
    return run


def test_a_batch_run_texts_every_owner_once_and_counts_who_was_skipped(
    new_event, manager, sms
):
    event = new_event()
    batch = make_batch(event)
    make_units(event, count=3, batch=batch, co_owners=1)  # 6 owners
    make_units(event, count=1, batch=batch, phone=False)  # no mobile
    make_units(event, count=2, batch=batch, eligibility=Eligibility.ARREARS)
    make_units(event, count=2)  # another batch (none): not in this run

    run = notices.notice_run_start(by=manager, event=event, batch=batch, channel="sms")
    assert run.state == NoticeRun.State.PENDING and run.total == 6
    assert ScheduledAction.objects.filter(kind=notices.WATCH, target_id=run.pk).exists()

    run = run_to_end(run)
    assert run.state == NoticeRun.State.DONE and run.finished_at
    assert (run.done, run.percent, run.skipped) == (6, 100, 3)
    assert run.skip_reasons == {"arrears": 2, "no_mobile": 1}
    assert Notice.objects.filter(run=run, state=Notice.State.QUEUED).count() == 6

    deliver_due()
    recorded = sms.recorded()
    assert len(recorded) == 6
    assert len({r["to"] for r in recorded}) == 6
    body = recorded[0]["body"]
    assert "翠湖花园" in body and "/o/" in body and "预约" in body
    # The recording backend's hand-off counts as delivery (docs/handover.md).
    states = set(Notice.objects.filter(run=run).values_list("state", flat=True))
    assert states == {Notice.State.DELIVERED}
    notice = Notice.objects.filter(run=run).select_related("link", "message").first()
    # The signed token carries a timestamp: compare the link's signed part.
    assert links.token_for(notice.link).split(":")[0] in notice.message.body
    assert notice.sent_at and notice.delivered_at


def test_proxies_with_a_valid_authorisation_get_the_notice_too(new_event, manager, sms):
    event = new_event()
    (eu,) = make_units(event, count=1)
    proxy = add_proxy(eu)
    run = run_to_end(notices.notice_run_start(by=manager, event=event, channel="sms"))
    assert set(run.notices.values_list("recipient__name", flat=True)) == {
        "受托人",
        eu.unit.ownerships.get().customer.name,
    }
    assert run.notices.get(recipient=proxy).link.holder == proxy


def test_a_run_cut_off_midway_continues_where_it_stopped_and_sends_nobody_twice(
    new_event, manager, sms, monkeypatch
):
    monkeypatch.setattr(notices, "CHUNK", 2)
    event = new_event()
    make_units(event, count=5, co_owners=1)
    run = notices.notice_run_start(by=manager, event=event, channel="sms")

    # One chunk, then the worker dies: its lease is left behind, no task is queued.
    notices.notice_run_advance(run_id=run.pk, chunks=1)
    run.refresh_from_db()
    assert (run.state, run.done, run.percent) == (NoticeRun.State.RUNNING, 2, 40)
    assert Notice.objects.filter(run=run).count() == 4
    NoticeRun.objects.filter(pk=run.pk).update(
        lease_until=timezone.now() + dt.timedelta(minutes=1)
    )
    # A redelivered task meets the dead worker's lease and backs off.
    with pytest.raises(notices.RunBusy):
        notices.notice_run_advance(run_id=run.pk)
    deliver_due()  # the first chunk's messages go out meanwhile

    # The watchdog finds the lease run out and queues the run again.
    later = timezone.now() + dt.timedelta(minutes=3)
    NoticeRun.objects.filter(pk=run.pk).update(
        lease_until=timezone.now() - dt.timedelta(seconds=1), queued_at=None
    )
    action = ScheduledAction.objects.get(kind=notices.WATCH, target_id=run.pk)
    notices.notice_run_watch(action)
    run.refresh_from_db()
    assert run.queued_at is not None
    assert (
        ScheduledAction.objects.filter(kind=notices.WATCH, target_id=run.pk).count()
        == 2
    )

    run = run_to_end(run)
    assert (run.state, run.done, run.skipped) == (NoticeRun.State.DONE, 5, 0)
    # Run again by a duplicated task: nothing more.
    assert notices.notice_run_advance(run_id=run.pk) is None
    deliver_due(later)
    assert Notice.objects.count() == 10
    assert OutboundMessage.objects.count() == 10
    recorded = sms.recorded()
    assert len(recorded) == 10 and len({r["key"] for r in recorded}) == 10


def test_a_second_run_of_the_same_round_sends_only_to_owners_not_yet_notified(
    new_event, manager, sms
):
    event = new_event()
    make_units(event, count=2)
    run_to_end(notices.notice_run_start(by=manager, event=event, channel="sms"))
    make_units(event, count=1)
    second = run_to_end(
        notices.notice_run_start(by=manager, event=event, channel="sms")
    )
    assert second.notices.count() == 1
    assert second.skip_reasons == {"already_notified": 2}
    third = run_to_end(
        notices.notice_run_start(by=manager, event=event, channel="sms", round=2)
    )
    assert third.notices.count() == 3
    deliver_due()
    assert len(sms.recorded()) == 6


def test_only_one_unfinished_run_per_event(new_event, manager):
    event = new_event()
    make_units(event, count=1)
    notices.notice_run_start(by=manager, event=event, channel="sms")
    with pytest.raises(ValidationError):
        notices.notice_run_start(by=manager, event=event, channel="letter")


def test_bad_channel_round_and_foreign_batch_are_refused(new_event, manager):
    event, other = new_event(), new_event(name="别的活动")
    with pytest.raises(ValidationError) as error:
        notices.notice_run_start(
            by=manager, event=event, channel="fax", round=0, batch=make_batch(other)
        )
    assert set(error.value.message_dict) == {"channel", "round", "batch"}
    assert not NoticeRun.objects.exists()


def test_draft_and_closed_events_send_no_notices(new_event, manager):
    draft = new_event(publish=False)
    with pytest.raises(ValidationError, match="请先发布活动"):
        notices.notice_run_start(by=manager, event=draft, channel="sms")
    closed = new_event(name="已关闭的活动")
    services.event_close(by=manager, event=closed)
    with pytest.raises(ValidationError, match="活动已关闭"):
        notices.notice_run_start(by=manager, event=closed, channel="letter")
    assert not NoticeRun.objects.exists()


def test_only_managers_and_admins_send_notices(new_event, sales_rep, service_agent):
    event = new_event()
    for user in (sales_rep, service_agent):
        with pytest.raises(PermissionDenied):
            notices.notice_run_start(by=user, event=event, channel="sms")


def test_an_email_run_skips_owners_without_an_address(new_event, manager, mailoutbox):
    event = new_event()
    make_units(event, count=2, email=True)
    make_units(event, count=1)
    run = run_to_end(notices.notice_run_start(by=manager, event=event, channel="email"))
    assert run.skip_reasons == {"no_email": 1}
    deliver_due()
    assert len(mailoutbox) == 2
    assert mailoutbox[0].subject.startswith("入伙通知书")


def test_a_refused_sms_fails_the_notice_with_the_reason(new_event, manager, settings):
    settings.KEHU_SMS_BACKEND = "crm.channels.backends.HttpGatewaySmsBackend"
    settings.KEHU_SMS_GATEWAY_URL = ""  # a permanent refusal
    event = new_event()
    make_units(event, count=1)
    run = run_to_end(notices.notice_run_start(by=manager, event=event, channel="sms"))
    deliver_due()
    notice = run.notices.select_related("message").get()
    assert notice.state == Notice.State.FAILED
    assert "http" in notice.message.error


def test_a_real_gateway_leaves_the_notice_sent_not_delivered(
    new_event, manager, settings
):
    settings.KEHU_SMS_BACKEND = "tests.handover.test_notices.AcceptingGateway"
    event = new_event()
    make_units(event, count=1)
    run = run_to_end(notices.notice_run_start(by=manager, event=event, channel="sms"))
    deliver_due()
    notice = run.notices.get()
    assert notice.state == Notice.State.SENT and notice.delivered_at is None


class AcceptingGateway:
    """An SMS provider that accepts everything (the outside world's seam)."""

    def send(self, *, to: str, body: str, key: str) -> str:
        return "provider-1"


def test_letters_are_recorded_as_posted_then_marked_delivered_in_bulk(
    new_event, manager, sales_rep
):
    event = new_event()
    make_units(event, count=2, phone=False, co_owners=1)
    run = run_to_end(
        notices.notice_run_start(by=manager, event=event, channel="letter")
    )
    assert run.skipped == 0 and not OutboundMessage.objects.exists()
    assert set(run.notices.values_list("state", flat=True)) == {Notice.State.SENT}
    assert notice_pdf_exists(run)

    yesterday = timezone.localdate() - dt.timedelta(days=1)
    with pytest.raises(PermissionDenied):
        notices.letters_mark_delivered(
            by=sales_rep, notices=run.notices.all(), delivered_on=yesterday
        )
    with pytest.raises(ValidationError):
        notices.letters_mark_delivered(
            by=manager,
            notices=run.notices.all(),
            delivered_on=timezone.localdate() + dt.timedelta(days=1),
        )
    marked = notices.letters_mark_delivered(
        by=manager, notices=run.notices.all(), delivered_on=yesterday
    )
    assert marked == 4
    assert (
        notices.letters_mark_delivered(
            by=manager, notices=run.notices.all(), delivered_on=yesterday
        )
        == 0
    )
    notice = run.notices.first()
    assert notice.state == Notice.State.DELIVERED
    assert timezone.localtime(notice.delivered_at).date() == yesterday


def notice_pdf_exists(run: NoticeRun) -> bool:
    from service.handover import notice_pdf

    return notice_pdf.run_pdf_path(run).exists()


def test_a_revoked_link_opens_nothing_and_says_who_revoked_it(
    new_event, manager, sales_rep
):
    event = new_event()
    (eu,) = make_units(event, count=1)
    owner = eu.unit.ownerships.get().customer
    link = links.link_for(event_unit=eu, holder=owner)
    token = links.token_for(link)
    assert links.open_link(token) == link
    with pytest.raises(PermissionDenied):
        notices.owner_link_revoke(by=sales_rep, link=link)
    assert notices.owner_link_revoke(by=manager, link=link) is True
    link.refresh_from_db()
    assert link.revoked_by == manager and link.revoked_at
    with pytest.raises(links.LinkError) as error:
        links.open_link(token)
    assert error.value.reason == "revoked"
    # A later notice gives the owner a new link; the old one stays dead.
    assert links.link_for(event_unit=eu, holder=owner).pk != link.pk


def test_the_preview_counts_the_owners_a_run_would_notify(new_event, manager):
    event = new_event()
    make_units(event, count=2, co_owners=2)
    make_units(event, count=1, phone=False)
    make_units(event, count=1, eligibility=Eligibility.LEGAL_HOLD)
    preview = notices.notice_run_preview(
        event=event, batch=None, channel="sms", round=1
    )
    assert (preview.units, preview.eligible_units, preview.recipients) == (4, 3, 6)
    assert dict(preview.skipped) == {"no_mobile": 1, "legal_hold": 1}
