"""Campaigns to a segment: managers and admins queue one; a background job makes one
survey per visible member (at most once), sends in committed chunks and counts sent and
skipped; the progress page polls the counts."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied
from django.urls import reverse
from django.utils import timezone

from crm.accounts.roles import Role
from crm.channels.backends import RecordingSmsBackend
from crm.channels.models import OutboundMessage
from culture.satisfaction import services
from culture.satisfaction.models import Campaign, Survey
from culture.segments import services as segment_services
from culture.segments.models import SegmentMember
from tests.channels.delivery import deliver_messages
from tests.factories import CustomerFactory, UserFactory
from tests.satisfaction.helpers import link_path, run_due

pytestmark = pytest.mark.django_db


@pytest.fixture
def segment(manager, sales_rep, far_outsider):
    segment = segment_services.segment_create(
        by=manager,
        data={"name": "老客户回访", "kind": "static", "visibility": "team"},
    )
    members = [
        *[CustomerFactory(owner=sales_rep) for _ in range(5)],  # mobiles
        CustomerFactory(owner=sales_rep, phone="", email="zhao@example.com"),
        CustomerFactory(owner=sales_rep, phone="01088886666", email=""),
        CustomerFactory(owner=far_outsider),  # not the manager's to survey
    ]
    SegmentMember.objects.bulk_create(
        SegmentMember(segment=segment, customer=customer, since=timezone.now())
        for customer in members
    )
    return segment


def _campaign(by, segment, channel="sms", kind="nps") -> Campaign:
    return services.campaign_create(
        by=by, name="十二月回访", segment=segment, kind=kind, channel=channel
    )


def test_a_campaign_surveys_each_visible_member_once_in_chunks(
    manager, segment, sms_folder, monkeypatch
):
    monkeypatch.setattr(services, "CAMPAIGN_CHUNK", 2)
    campaign = _campaign(manager, segment)
    assert campaign.status == Campaign.Status.QUEUED

    assert run_due(services.CAMPAIGN_RUN)
    campaign.refresh_from_db()
    assert (campaign.status, campaign.total, campaign.sent, campaign.skipped) == (
        "done",
        7,
        5,
        2,
    )
    assert campaign.finished_at is not None
    surveys = Survey.objects.filter(campaign=campaign)
    assert surveys.filter(status="sent", kind="nps", channel="sms").count() == 5
    assert surveys.filter(status="unreachable", nonce="").count() == 2

    deliver_messages()
    recorded = RecordingSmsBackend().recorded()
    assert len(recorded) == 5
    assert len({link_path(sms["body"]) for sms in recorded}) == 5

    # Run again (a redelivered action): nothing more is made or sent.
    services.campaign_run(type("Action", (), {"target_id": campaign.pk})())
    assert surveys.count() == 7
    assert OutboundMessage.objects.count() == 5


def test_a_run_stopped_halfway_goes_on_where_it_stopped(
    manager, segment, sms_folder, monkeypatch
):
    monkeypatch.setattr(services, "CAMPAIGN_CHUNK", 2)
    campaign = _campaign(manager, segment)
    services._campaign_prepare(campaign, timezone.now())
    services._campaign_chunk(campaign)  # then the worker died
    campaign.refresh_from_db()
    assert (campaign.status, campaign.sent) == ("running", 2)

    services.campaign_run(type("Action", (), {"target_id": campaign.pk})())
    campaign.refresh_from_db()
    assert (campaign.status, campaign.total, campaign.sent, campaign.skipped) == (
        "done",
        7,
        5,
        2,
    )
    assert OutboundMessage.objects.count() == 5


def test_by_email_only_members_with_an_address_are_sent(manager, segment, sms_folder):
    from django.core import mail

    campaign = _campaign(manager, segment, channel="email", kind="csat")
    run_due(services.CAMPAIGN_RUN)
    campaign.refresh_from_db()
    assert (campaign.sent, campaign.skipped) == (1, 6)
    deliver_messages()
    assert [message.to for message in mail.outbox] == [["zhao@example.com"]]


def test_only_managers_and_admins_create_campaigns_on_segments_they_see(
    sales_rep, manager, far_outsider, segment
):
    with pytest.raises(PermissionDenied):
        _campaign(sales_rep, segment)
    other_manager = UserFactory(
        username="mgr_far", role=Role.MANAGER, team=far_outsider.team
    )
    with pytest.raises(PermissionDenied):
        _campaign(other_manager, segment)


def test_the_form_queues_the_campaign_and_the_page_polls_its_progress(
    client, login, manager, sales_rep, segment, sms_folder
):
    login(manager)
    form = client.get(reverse("satisfaction:campaign_create"))
    assert segment.name in form.content.decode()
    created = client.post(
        reverse("satisfaction:campaign_create"),
        {"name": "回访", "segment": segment.pk, "kind": "csat", "channel": "sms"},
    )
    campaign = Campaign.objects.get()
    assert created.status_code == 302
    assert created["Location"] == reverse(
        "satisfaction:campaign_detail", args=[campaign.pk]
    )
    progress = reverse("satisfaction:campaign_progress", args=[campaign.pk])
    queued = client.get(progress).content.decode()
    assert 'data-status="queued"' in queued and "hx-trigger" in queued

    run_due(services.CAMPAIGN_RUN)
    done = client.get(progress).content.decode()
    assert 'data-status="done"' in done and "hx-trigger" not in done
    assert "已发送 5" in done and "无联系方式 2" in done

    login(sales_rep)
    assert client.get(progress).status_code == 403


def test_the_survey_list_filters_and_masks_phones_for_managers(
    client, login, manager, admin_user, segment, sms_folder, settings
):
    campaign = _campaign(manager, segment)
    run_due(services.CAMPAIGN_RUN)
    phone = (
        Survey.objects.filter(campaign=campaign, status="sent").first().customer.phone
    )

    page = login(manager).get(reverse("satisfaction:survey_list") + "?status=sent")
    html = page.content.decode()
    assert html.count('data-testid="survey-row"') == 5
    shown_whole = "manager" in settings.KEHU_UNMASKED_ROLES
    assert (phone in html) == shown_whole
    unreachable = client.get(
        reverse("satisfaction:survey_list") + "?status=unreachable"
    )
    assert unreachable.content.decode().count('data-testid="survey-row"') == 2
