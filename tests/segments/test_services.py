"""Membership in SQL, its history, static lists and the bulk actions."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import call_command
from django.utils import timezone

from crm.core.models import AccessLog
from crm.scheduler.models import ScheduledAction
from culture.segments import services
from culture.segments.models import Segment, SegmentMember, SegmentMembershipEvent
from customers.models import Customer, FollowUp
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def members(segment) -> set[int]:
    return set(
        SegmentMember.objects.filter(segment=segment).values_list(
            "customer_id", flat=True
        )
    )


def test_saving_schedules_a_refresh_and_the_refresh_fills_members(manager, sales_rep):
    inside = CustomerFactory(owner=sales_rep, tier="A", kind="dealer")
    CustomerFactory(owner=sales_rep, tier="B", kind="dealer")
    segment = services_make(manager)
    action = ScheduledAction.objects.get(
        kind=services.SEGMENT_REFRESH, target_id=segment.pk
    )
    services.segment_refresh_action(action)
    segment.refresh_from_db()
    assert members(segment) == {inside.pk}
    assert segment.member_count == 1 and segment.refreshed_at is not None


def services_make(by, **kwargs):
    from tests.segments.conftest import A_DEALERS

    return services.segment_create(
        by=by,
        data={"name": "A 级经销商", "kind": "dynamic", "rules": A_DEALERS, **kwargs},
    )


def test_refresh_records_who_entered_and_who_left(manager, sales_rep):
    stays = CustomerFactory(owner=sales_rep, tier="A", kind="dealer")
    leaves = CustomerFactory(owner=sales_rep, tier="A", kind="dealer")
    comes = CustomerFactory(owner=sales_rep, tier="B", kind="dealer")
    segment = services_make(manager)
    first = timezone.now() - dt.timedelta(days=1)
    assert services.segment_refresh(segment_id=segment.pk, now=first) == (2, 0)
    Customer.objects.filter(pk=leaves.pk).update(tier="B")
    Customer.objects.filter(pk=comes.pk).update(tier="A")  # moved from tier B to A
    assert services.segment_refresh(segment_id=segment.pk) == (1, 1)
    # A second run changes nothing and writes no history.
    assert services.segment_refresh(segment_id=segment.pk) == (0, 0)
    segment.refresh_from_db()
    assert members(segment) == {stays.pk, comes.pk}
    assert segment.member_count == 2
    history = list(
        SegmentMembershipEvent.objects.filter(segment=segment)
        .order_by("at", "customer_id")
        .values_list("customer_id", "action")
    )
    assert history == [
        (stays.pk, "entered"),
        (leaves.pk, "entered"),
        (leaves.pk, "left"),
        (comes.pk, "entered"),
    ] or sorted(history[2:]) == sorted([(leaves.pk, "left"), (comes.pk, "entered")])
    assert SegmentMember.objects.get(segment=segment, customer=stays).since == first


def test_empty_and_huge_segments(manager, sales_rep):
    CustomerFactory.create_batch(5, owner=sales_rep, tier="C")
    empty = services_make(manager)
    assert services.segment_refresh(segment_id=empty.pk) == (0, 0)
    everyone = services.segment_create(
        by=manager,
        data={
            "name": "全部",
            "rules": {
                "op": "and",
                "rules": [
                    {"field": "tier", "operator": "in", "value": ["A", "B", "C", "D"]}
                ],
            },
        },
    )
    assert services.segment_refresh(segment_id=everyone.pk) == (5, 0)
    everyone.refresh_from_db()
    assert everyone.member_count == Customer.objects.count() == 5


def test_command_refreshes_one_or_all(manager, sales_rep, capsys):
    CustomerFactory(owner=sales_rep, tier="A", kind="dealer")
    segment = services_make(manager)
    call_command("segments_refresh", "--segment", str(segment.pk))
    assert "+1 -0" in capsys.readouterr().out
    call_command("segments_refresh")
    assert f"segment {segment.pk}: +0 -0" in capsys.readouterr().out


def test_daily_sweep_schedules_each_dynamic_segment_once_a_day(manager, make_segment):
    dynamic = make_segment(manager)
    make_segment(manager, kind="static", name="名单")
    assert services.segments_refresh_schedule() == 1
    assert services.segments_refresh_schedule() == 1
    day = timezone.localdate().isoformat()
    assert (
        ScheduledAction.objects.filter(
            idempotency_key=f"segment:{dynamic.pk}:refresh:{day}"
        ).count()
        == 1
    )


def test_invalid_rules_save_nothing(manager):
    with pytest.raises(ValidationError) as caught:
        services.segment_create(
            by=manager,
            data={
                "name": "坏",
                "rules": {
                    "op": "and",
                    "rules": [{"field": "tier", "operator": "in", "value": ["Z"]}],
                },
            },
        )
    assert "未知的取值" in str(caught.value)
    assert not Segment.objects.exists()


def test_sales_may_only_keep_private_segments(sales_rep, make_segment):
    with pytest.raises(ValidationError, match="仅自己可见"):
        make_segment(sales_rep, visibility="department")
    assert make_segment(sales_rep).visibility == "private"


def test_update_checks_the_version(manager, make_segment):
    segment = make_segment(manager)
    services.segment_update(
        by=manager, segment=segment, data={"name": "新名"}, version=1
    )
    with pytest.raises(ValidationError, match="已被他人修改"):
        services.segment_update(
            by=manager, segment=segment, data={"name": "再改"}, version=1
        )


def test_others_cannot_edit(manager, teammate, make_segment, admin_user):
    segment = make_segment(manager, visibility="team")
    with pytest.raises(PermissionDenied):
        services.segment_update(
            by=teammate, segment=segment, data={"name": "x"}, version=1
        )
    services.segment_update(
        by=admin_user, segment=segment, data={"name": "x"}, version=1
    )


# --- static lists ---------------------------------------------------------------------


def test_static_add_and_remove_write_history(manager, sales_rep, make_segment):
    segment = make_segment(manager, kind="static", name="VIP 名单")
    one, two = CustomerFactory(owner=sales_rep), CustomerFactory(owner=sales_rep)
    added = services.static_members_add(
        by=manager,
        segment=segment,
        customers=Customer.objects.filter(pk__in=[one.pk, two.pk]),
    )
    assert added == 2
    # Adding again adds nobody.
    assert (
        services.static_members_add(
            by=manager, segment=segment, customers=Customer.objects.filter(pk=one.pk)
        )
        == 0
    )
    assert (
        services.static_members_remove(
            by=manager, segment=segment, customer_ids=[one.pk]
        )
        == 1
    )
    segment.refresh_from_db()
    assert members(segment) == {two.pk} and segment.member_count == 1
    actions = list(
        SegmentMembershipEvent.objects.filter(segment=segment, customer=one)
        .order_by("id")
        .values_list("action", "reason")
    )
    assert actions == [("entered", "manual"), ("left", "manual")]
    assert AccessLog.objects.filter(
        action=services.AUDIT_MEMBERS_ADDED, row_count=2
    ).exists()
    # A refresh keeps a static list as it is.
    assert services.segment_refresh(segment_id=segment.pk) == (0, 0)
    assert members(segment) == {two.pk}


def test_static_add_is_bounded(manager, sales_rep, make_segment, monkeypatch):
    monkeypatch.setattr(services, "STATIC_ADD_MAX", 2)
    segment = make_segment(manager, kind="static", name="名单")
    CustomerFactory.create_batch(3, owner=sales_rep)
    with pytest.raises(ValidationError, match="一次最多添加 2 位"):
        services.static_members_add(
            by=manager, segment=segment, customers=Customer.objects.all()
        )
    assert not SegmentMember.objects.exists()


def test_dynamic_segments_refuse_manual_members(manager, make_segment, sales_rep):
    segment = make_segment(manager)
    with pytest.raises(ValidationError, match="不能手工增减"):
        services.static_members_add(
            by=manager,
            segment=segment,
            customers=Customer.objects.filter(pk=CustomerFactory(owner=sales_rep).pk),
        )


# --- bulk actions ---------------------------------------------------------------------


def test_bulk_followups_go_to_each_owner_for_visible_members(
    manager, sales_rep, teammate, far_outsider, make_segment, team_a
):
    mine = CustomerFactory(owner=sales_rep, tier="A", kind="dealer")
    theirs = CustomerFactory(owner=teammate, tier="A", kind="dealer")
    pool = CustomerFactory(owner=None, team=team_a, tier="A", kind="dealer")
    hidden = CustomerFactory(owner=far_outsider, tier="A", kind="dealer")
    segment = make_segment(manager)
    services.segment_refresh(segment_id=segment.pk)
    due = timezone.now() + dt.timedelta(days=1)
    created = services.segment_followups_create(
        by=manager, segment=segment, note="回访", due_at=due
    )
    assert created == (3, False)  # the other department's customer is not the manager's
    assignees = dict(FollowUp.objects.values_list("customer_id", "assignee_id"))
    assert assignees == {
        mine.pk: sales_rep.pk,
        theirs.pk: teammate.pk,
        pool.pk: manager.pk,
    }
    assert hidden.pk not in assignees
    assert (
        ScheduledAction.objects.filter(kind="customers.followup_reminder").count() == 3
    )


def test_bulk_followups_are_limited_and_checked(
    manager, sales_rep, make_segment, monkeypatch
):
    CustomerFactory.create_batch(3, owner=sales_rep, tier="A", kind="dealer")
    segment = make_segment(manager)
    services.segment_refresh(segment_id=segment.pk)
    monkeypatch.setattr(services, "BULK_MAX", 2)
    due = timezone.now() + dt.timedelta(days=1)
    with pytest.raises(ValidationError, match="超过 2 位"):
        services.segment_followups_create(
            by=manager, segment=segment, note="回访", due_at=due
        )
    with pytest.raises(ValidationError):
        services.segment_followups_create(
            by=manager,
            segment=segment,
            note="回访",
            due_at=timezone.now() - dt.timedelta(days=1),
        )
    assert not FollowUp.objects.exists()


def test_bulk_reassign_for_managers_only(manager, sales_rep, teammate, make_segment):
    moved = CustomerFactory(owner=sales_rep, tier="A", kind="dealer")
    segment = make_segment(manager)
    services.segment_refresh(segment_id=segment.pk)
    own = make_segment(sales_rep, name="我的")
    services.segment_refresh(segment_id=own.pk)
    with pytest.raises(PermissionDenied):
        services.segment_reassign(by=sales_rep, segment=own, new_owner=teammate)
    assert (
        services.segment_reassign(by=manager, segment=segment, new_owner=teammate) == 1
    )
    moved.refresh_from_db()
    assert moved.owner == teammate
    assert AccessLog.objects.filter(
        action=services.AUDIT_REASSIGN, row_count=1
    ).exists()


def test_merging_customers_moves_static_memberships(manager, sales_rep, make_segment):
    from customers import services as customer_services

    survivor = CustomerFactory(owner=sales_rep, tier="A", kind="dealer")
    duplicate = CustomerFactory(owner=sales_rep, tier="A", kind="dealer")
    static = make_segment(manager, kind="static", name="名单")
    services.static_members_add(
        by=manager, segment=static, customers=Customer.objects.filter(pk=duplicate.pk)
    )
    dynamic = make_segment(manager)
    services.segment_refresh(segment_id=dynamic.pk)
    customer_services.customer_merge(by=manager, survivor=survivor, duplicate=duplicate)
    assert members(static) == {survivor.pk}
    assert members(dynamic) == {survivor.pk}
    dynamic.refresh_from_db()
    static.refresh_from_db()
    assert (static.member_count, dynamic.member_count) == (1, 1)
    assert (
        SegmentMembershipEvent.objects.filter(customer=duplicate, action="left").count()
        == 2
    )
    assert services.segment_refresh(segment_id=dynamic.pk) == (0, 0)


def test_large_bulk_followups_run_once_through_the_scheduler(
    manager, sales_rep, make_segment, monkeypatch
):
    from culture.segments.models import SegmentFollowUpJob

    CustomerFactory.create_batch(3, owner=sales_rep, tier="A", kind="dealer")
    segment = make_segment(manager)
    services.segment_refresh(segment_id=segment.pk)
    monkeypatch.setattr(services, "FOLLOWUPS_INLINE_MAX", 2)
    due = timezone.now() + dt.timedelta(days=1)
    assert services.segment_followups_create(
        by=manager, segment=segment, note="年底回访", due_at=due
    ) == (3, True)
    assert not FollowUp.objects.exists()
    job = SegmentFollowUpJob.objects.get()
    action = ScheduledAction.objects.get(
        kind=services.SEGMENT_FOLLOWUPS, target_id=job.pk
    )
    services.segment_followups_run(action)
    services.segment_followups_run(action)  # delivered twice: nothing more
    job.refresh_from_db()
    assert job.status == "done" and job.created_count == 3
    assert FollowUp.objects.filter(note="年底回访", assignee=sales_rep).count() == 3
