"""Admins see the actions the pipeline parked as needs_review, and retry or cancel them.

Each retry and cancel is audited; other roles get 403; the page's query count does not
grow with the number of parked actions.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from pytest_django.asserts import assertContains, assertNotContains

from crm.core.models import AccessLog
from crm.scheduler import services
from crm.scheduler.models import ScheduledAction
from tests.scheduler.conftest import NOW

State = ScheduledAction.State
LIST = reverse("scheduler:action_review")


def parked(n: int, *, kind: str = "tests.poison") -> ScheduledAction:
    action = services.action_schedule(
        kind=kind, target_id=500 + n, due_at=NOW, key=f"{kind}:{n}"
    )
    ScheduledAction.objects.filter(pk=action.pk).update(
        state=State.NEEDS_REVIEW,
        attempts=7,
        last_error=f"Poisoned: template broken for #{500 + n}",
    )
    action.refresh_from_db()
    return action


@pytest.mark.django_db
def test_admin_sees_each_parked_action_with_kind_target_attempts_and_error(
    login, admin_user
):
    action = parked(1)
    services.action_schedule(kind="tests.fine", target_id=9, due_at=NOW, key="fine:9")

    response = login(admin_user).get(LIST)

    assertContains(response, "待人工核查的定时动作")
    assertContains(response, f'data-action-id="{action.pk}"', count=1)
    assertContains(response, "tests.poison")
    assertContains(response, "#501")
    assertContains(response, "Poisoned: template broken for #501")
    assertContains(response, '<td class="text-end">7</td>', html=False)
    assertContains(response, "data-confirm=", count=2)
    assertNotContains(response, "tests.fine")


@pytest.mark.django_db
def test_admin_home_counts_the_parked_actions(login, admin_user):
    parked(1)
    parked(2)
    response = login(admin_user).get(reverse("home"))
    assertContains(response, reverse("scheduler:action_review"))
    assertContains(
        response,
        '<div class="fs-3 text-warning-emphasis" data-testid="actions-needing-review-count">2</div>',
        html=True,
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    "persona", ["sales_rep", "manager", "service_agent", "readonly_user"]
)
def test_other_roles_get_403_and_change_nothing(request, login, persona):
    action = parked(1)
    client = login(request.getfixturevalue(persona))
    assert client.get(LIST).status_code == 403
    for name in ("scheduler:action_retry", "scheduler:action_cancel"):
        assert client.post(reverse(name, args=[action.pk])).status_code == 403
    action.refresh_from_db()
    assert action.state == State.NEEDS_REVIEW


@pytest.mark.django_db
def test_anonymous_is_sent_to_login(client):
    response = client.get(LIST)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.django_db
def test_retry_puts_the_action_back_due_now_with_fresh_attempts_and_audits(
    login, admin_user, clock
):
    action = parked(1)
    client = login(admin_user)
    assert (
        client.get(reverse("scheduler:action_retry", args=[action.pk])).status_code
        == 405
    )

    response = client.post(
        reverse("scheduler:action_retry", args=[action.pk]), follow=True
    )

    assertContains(response, "已重新安排定时动作 tests.poison #501")
    action.refresh_from_db()
    assert (action.state, action.attempts, action.due_at) == (State.PENDING, 0, NOW)
    assert services.actions_sweep() == [action.pk]
    log = AccessLog.objects.get(action="action_retried")
    assert (log.user, log.object_type, log.object_id) == (
        admin_user,
        "scheduledaction",
        action.pk,
    )
    assert log.detail == "tests.poison #501"


@pytest.mark.django_db
def test_cancel_stops_the_action_for_good_and_audits(login, admin_user, clock):
    action = parked(1)

    response = login(admin_user).post(
        reverse("scheduler:action_cancel", args=[action.pk]), follow=True
    )

    assertContains(response, "已取消定时动作 tests.poison #501")
    action.refresh_from_db()
    assert action.state == State.CANCELLED
    clock.shift(timedelta(days=1))
    assert services.actions_sweep() == []
    assert (
        AccessLog.objects.filter(action="action_cancelled", object_id=action.pk).count()
        == 1
    )


@pytest.mark.django_db
def test_an_action_not_parked_cannot_be_retried_or_cancelled(login, admin_user):
    pending = services.action_schedule(
        kind="tests.fine", target_id=9, due_at=NOW, key="fine:9"
    )
    client = login(admin_user)
    for name in ("scheduler:action_retry", "scheduler:action_cancel"):
        response = client.post(reverse(name, args=[pending.pk]), follow=True)
        assertContains(response, "该动作已不在待人工核查状态。")
    for name in ("scheduler:action_retry", "scheduler:action_cancel"):
        assert client.post(reverse(name, args=[2**63 - 1])).status_code == 404
    pending.refresh_from_db()
    assert pending.state == State.PENDING
    assert not AccessLog.objects.filter(
        action__in=["action_retried", "action_cancelled"]
    ).exists()


@pytest.mark.django_db
def test_the_list_costs_the_same_queries_for_1_or_30_parked_actions(
    login, admin_user, django_assert_num_queries
):
    client = login(admin_user)
    parked(0)
    client.get(LIST)  # warm the session and caches
    with CaptureQueriesContext(connection) as small:
        client.get(LIST)
    for n in range(1, 30):
        parked(n)
    with django_assert_num_queries(len(small.captured_queries)):
        response = client.get(LIST)
    assertContains(response, "data-action-id=", count=30)
