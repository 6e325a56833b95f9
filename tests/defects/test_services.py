"""The defect state machine, its rules, history, counters and the overdue escalation,
against the real database (service/defects/services.py)."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from crm.notifications.models import Notification
from crm.scheduler import services as scheduler
from crm.scheduler.models import ScheduledAction
from service.defects import catalog, services
from service.defects.models import Defect, DefectCategory, DefectEvent, DefectPhoto
from service.handover import counters
from tests.defects.builders import case_for, contractor, defect, leaf, photo, step
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
S = Defect.State


def states(item):
    return list(item.events.order_by("id").values_list("from_state", "to_state"))


# --- categories and recording -------------------------------------------------------------


def test_default_tree_has_three_levels_and_is_idempotent():
    services.categories_ensure_default()
    count = DefectCategory.objects.count()
    assert services.categories_ensure_default() == 0
    assert DefectCategory.objects.count() == count
    assert {c.name for c in DefectCategory.objects.filter(level=1)} >= {
        "土建",
        "门窗",
        "水电",
        "防水",
        "涂料",
    }
    leaves = DefectCategory.objects.filter(level=3)
    assert leaves.count() == sum(
        len(symptoms) for _t, parts in catalog.DEFAULT_TREE for _p, symptoms in parts
    )
    assert not leaves.filter(parent__level=1).exists()


def test_record_takes_severity_and_due_time_from_the_category(admin_user, settings):
    settings.KEHU_DEFECT_DUE_HOURS = {"P0": 2, "P1": 24, "P2": 72}
    before = timezone.now()
    item = defect(admin_user, category=leaf("水电", "给水", "漏水"))
    assert item.severity == "P0"
    assert item.state == S.OPEN
    assert (
        dt.timedelta(hours=2) <= item.due_at - before < dt.timedelta(hours=2, minutes=1)
    )
    assert item.source == Defect.Source.HANDOVER
    assert item.event_id == item.case.event_id
    assert states(item) == [("", "open")]


def test_record_with_a_severity_and_due_time_given(admin_user):
    due = timezone.now() + dt.timedelta(days=5)
    item = defect(admin_user, severity="P2", due_at=due)
    assert item.severity == "P2"
    assert item.due_at == due


def test_record_with_a_contractor_is_assigned_at_once(admin_user):
    item = defect(admin_user, with_contractor=contractor())
    assert item.state == S.ASSIGNED
    assert item.assigned_at is not None
    assert states(item) == [("", "open"), ("open", "assigned")]


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("due_at", {"due_at": "past"}),
        ("severity", {"severity": "P9"}),
        ("photos", {"photos": "pdf"}),
    ],
)
def test_record_refuses_bad_input(admin_user, field, kwargs):
    from django.core.files.uploadedfile import SimpleUploadedFile

    if kwargs.get("due_at") == "past":
        kwargs["due_at"] = timezone.now() - dt.timedelta(days=1)
    if kwargs.get("photos") == "pdf":
        kwargs["photos"] = [SimpleUploadedFile("a.pdf", b"%PDF-1.4 x")]
    with pytest.raises(ValidationError) as error:
        defect(admin_user, **kwargs)
    assert field in error.value.message_dict
    assert not Defect.objects.exists()


def test_record_refuses_a_category_that_is_not_a_leaf(admin_user):
    services.categories_ensure_default()
    trade = DefectCategory.objects.filter(level=1).first()
    with pytest.raises(ValidationError) as error:
        defect(admin_user, category=trade)
    assert "category" in error.value.message_dict


def test_record_refuses_a_case_of_another_unit(admin_user):
    case = case_for(admin_user)
    other = case_for(admin_user, event=case.event)
    with pytest.raises(ValidationError):
        services.defect_record(
            by=admin_user,
            unit=other.event_unit.unit,
            case=case,
            room="kitchen",
            category=leaf(),
            description="x",
        )


def test_record_by_unit_without_a_case(admin_user):
    from tests.property.builders import unit_with_owner

    unit = unit_with_owner()
    item = defect(admin_user, unit=unit)
    assert item.case is None and item.event is None
    assert item.source == Defect.Source.PRE_INSPECTION


# --- every transition ------------------------------------------------------------------------


def test_the_whole_path_with_a_rework_round(admin_user):
    fixer = contractor()
    item = defect(admin_user)
    step(admin_user, item, "assign", contractor=fixer)
    step(admin_user, item, "start")
    step(admin_user, item, "ready", photo=photo())
    step(admin_user, item, "reject", comment="仍有渗水")
    item.refresh_from_db()
    assert item.state == S.IN_PROGRESS and item.rework_rounds == 1
    step(admin_user, item, "ready", photo=photo())
    step(admin_user, item, "verify")
    item.refresh_from_db()
    assert item.state == S.CLOSED
    assert item.closed_by == admin_user and item.closed_at is not None
    assert states(item) == [
        ("", "open"),
        ("open", "assigned"),
        ("assigned", "in_progress"),
        ("in_progress", "ready"),
        ("ready", "in_progress"),
        ("in_progress", "ready"),
        ("ready", "closed"),
    ]
    # The pass round is the second (one rework).
    assert "第 2 轮" in item.events.order_by("-id").first().comment
    assert item.photos.filter(kind=DefectPhoto.Kind.FIXED).count() == 2


def test_dispute_then_decide_either_way(admin_user, manager):
    item = defect(admin_user, with_contractor=contractor())
    step(admin_user, item, "dispute", comment="非我方施工范围")
    item.refresh_from_db()
    assert item.state == S.IN_DISPUTE
    step(manager, item, "decide", decision="assigned")
    item.refresh_from_db()
    assert item.state == S.ASSIGNED
    step(admin_user, item, "dispute")
    step(manager, item, "decide", decision="void", comment="确属业主自行损坏")
    item.refresh_from_db()
    assert item.state == S.VOID and item.closed_at is not None


def test_void_and_force_close_need_a_reason_and_a_manager(
    admin_user, manager, service_agent
):
    item = defect(admin_user)
    with pytest.raises(ValidationError):
        step(manager, item, "void")
    with pytest.raises(PermissionDenied):
        step(service_agent, item, "void", reason="重复记录")
    with pytest.raises(PermissionDenied):
        step(service_agent, item, "force_close", reason="业主同意")
    step(manager, item, "force_close", reason="业主书面同意不再整改")
    item.refresh_from_db()
    assert item.state == S.FORCE_CLOSED
    assert item.approved_by == manager and item.close_reason


def test_void_from_an_open_state(admin_user, manager):
    item = defect(admin_user)
    step(manager, item, "void", reason="重复记录")
    item.refresh_from_db()
    assert item.state == S.VOID and item.close_reason == "重复记录"


@pytest.mark.parametrize(
    ("state", "action"),
    [
        (S.OPEN, "start"),
        (S.OPEN, "ready"),
        (S.OPEN, "verify"),
        (S.OPEN, "dispute"),
        (S.ASSIGNED, "verify"),
        (S.ASSIGNED, "assign"),
        (S.IN_PROGRESS, "verify"),
        (S.IN_PROGRESS, "dispute"),
        (S.READY_FOR_REVIEW, "start"),
        (S.CLOSED, "reject"),
        (S.CLOSED, "void"),
        (S.VOID, "assign"),
        (S.FORCE_CLOSED, "force_close"),
        (S.IN_DISPUTE, "start"),
    ],
)
def test_refused_transitions_change_nothing(admin_user, state, action):
    item = defect(admin_user)
    Defect.objects.filter(pk=item.pk).update(
        state=state, contractor=contractor(), approved_by=admin_user, close_reason="x"
    )
    events = DefectEvent.objects.count()
    with pytest.raises(ValidationError):
        step(
            admin_user,
            item,
            action,
            contractor=contractor(),
            photo=photo(),
            reason="r",
            decision="assigned",
        )
    item.refresh_from_db()
    assert item.state == state
    assert DefectEvent.objects.count() == events


def test_rules_assign_needs_a_contractor_ready_needs_a_photo(admin_user):
    item = defect(admin_user)
    with pytest.raises(ValidationError) as error:
        step(admin_user, item, "assign")
    assert "contractor" in error.value.message_dict
    step(admin_user, item, "assign", contractor=contractor())
    step(admin_user, item, "start")
    with pytest.raises(ValidationError) as error:
        step(admin_user, item, "ready")
    assert "photo" in error.value.message_dict


def test_a_stale_version_is_refused(admin_user):
    item = defect(admin_user)
    stale = item.version
    step(admin_user, item, "assign", contractor=contractor())
    with pytest.raises(ValidationError):
        services.defect_transition(
            by=admin_user, defect=item, action="start", version=stale
        )
    item.refresh_from_db()
    assert item.state == S.ASSIGNED


def test_allowed_actions_per_role(admin_user, manager, service_agent):
    item = defect(admin_user)
    assert services.allowed_actions(item, service_agent) == ["assign"]
    assert set(services.allowed_actions(item, manager)) == {
        "assign",
        "void",
        "force_close",
    }


# --- counters -------------------------------------------------------------------------------


def test_counters_follow_recording_and_closing(admin_user, manager):
    case = case_for(admin_user)
    category = leaf("门窗", "窗户", "渗水")
    first = defect(admin_user, case=case, category=category)
    second = defect(admin_user, case=case, category=category, severity="P2")
    trade = category.parent.parent
    board = counters.read(case.event_id)
    assert board["defect:severity:P1"] == 1
    assert board["defect:severity:P2"] == 1
    assert board[f"defect:category:{trade.pk}"] == 2
    assert board["defect:open"] == 2
    step(manager, first, "void", reason="重复")
    step(admin_user, second, "assign", contractor=contractor())
    board = counters.read(case.event_id)
    assert board["defect:open"] == 1
    # A recount of the event equals the counters.
    rows = Defect.objects.filter(event_id=case.event_id)
    assert board["defect:open"] == rows.filter(state__in=Defect.OPEN_STATES).count()


def test_no_counters_without_an_event(admin_user):
    from service.handover.models import BoardCounter
    from tests.property.builders import unit_with_owner

    defect(admin_user, unit=unit_with_owner())
    assert not BoardCounter.objects.exists()


# --- overdue escalation ---------------------------------------------------------------------


def _deliver_due(when):
    """The beat's sweep and the workers' deliveries at `when`."""
    with time_machine.travel(when, tick=False):
        ids = scheduler.actions_sweep(now=when)
        for pk in ids:
            scheduler.action_deliver(action_id=pk, now=when)
    return ids


def test_an_overdue_defect_is_escalated_once(admin_user, manager):
    staff = UserFactory(username="contractor_staff", role="service")
    item = defect(admin_user, with_contractor=contractor(staff=staff))
    action = ScheduledAction.objects.get(
        kind=services.DEFECT_OVERDUE, target_id=item.pk
    )
    assert action.due_at == item.due_at
    # Before due: nothing. Due passes: the event's planner and the contractor's staff.
    _deliver_due(item.due_at - dt.timedelta(minutes=1))
    assert not Notification.objects.exists()
    assert _deliver_due(item.due_at + dt.timedelta(minutes=1))
    item.refresh_from_db()
    assert item.escalated_at is not None
    told = set(Notification.objects.values_list("recipient__username", flat=True))
    assert told == {staff.username, admin_user.username}
    # Delivered again (at-least-once): nobody is told twice.
    action = ScheduledAction.objects.get(idempotency_key=services.overdue_key(item))
    services.defect_overdue(action)
    assert Notification.objects.count() == 2


def test_closed_before_due_nothing_happens(admin_user, manager):
    item = defect(admin_user, with_contractor=contractor())
    step(manager, item, "force_close", reason="业主同意")
    action = ScheduledAction.objects.get(
        kind=services.DEFECT_OVERDUE, target_id=item.pk
    )
    assert action.state == ScheduledAction.State.CANCELLED
    # Even a stale delivery of the action does nothing.
    services.defect_overdue(action)
    item.refresh_from_db()
    assert item.escalated_at is None
    assert not Notification.objects.exists()


def test_not_yet_due_is_not_escalated(admin_user):
    item = defect(admin_user)
    action = ScheduledAction.objects.get(
        kind=services.DEFECT_OVERDUE, target_id=item.pk
    )
    services.defect_overdue(action)
    item.refresh_from_db()
    assert item.escalated_at is None
    assert not Notification.objects.exists()


def test_one_failing_escalation_does_not_block_the_others(admin_user, monkeypatch):
    first = defect(admin_user)
    second = defect(admin_user)
    real = services.overdue_recipients

    def flaky(item):
        if item.pk == first.pk:
            raise RuntimeError("mail server down")
        return real(item)

    monkeypatch.setattr(services, "overdue_recipients", flaky)
    _deliver_due(max(first.due_at, second.due_at) + dt.timedelta(minutes=1))
    first.refresh_from_db()
    second.refresh_from_db()
    assert second.escalated_at is not None
    assert first.escalated_at is None
    failed = ScheduledAction.objects.get(idempotency_key=services.overdue_key(first))
    assert failed.state == ScheduledAction.State.PENDING and failed.attempts == 1


def test_moving_the_due_time_moves_the_escalation(admin_user, manager, service_agent):
    item = defect(admin_user, with_contractor=contractor())
    old_key = services.overdue_key(item)
    later = item.due_at + dt.timedelta(days=2)
    with pytest.raises(PermissionDenied):
        services.defect_due_change(
            by=service_agent, defect=item, version=item.version, due_at=later
        )
    with pytest.raises(ValidationError):
        services.defect_due_change(
            by=manager,
            defect=item,
            version=item.version,
            due_at=timezone.now() - dt.timedelta(hours=1),
        )
    moved = services.defect_due_change(
        by=manager, defect=item, version=item.version, due_at=later
    )
    assert moved.due_at == later
    assert (
        ScheduledAction.objects.get(idempotency_key=old_key).state
        == ScheduledAction.State.CANCELLED
    )
    # The old due time passes: nothing; the new one: escalated.
    _deliver_due(item.due_at + dt.timedelta(minutes=1))
    assert not Notification.objects.exists()
    _deliver_due(later + dt.timedelta(minutes=1))
    moved.refresh_from_db()
    assert moved.escalated_at is not None
    assert Notification.objects.exists()
    assert "整改时限改为" in item.events.order_by("-id").first().comment
