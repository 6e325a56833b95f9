"""C3 and C4 on the service desk (shared/domain/reliability.md).

C3, two agents on one ticket: 8 agents edit the same ticket at once, each reading the
version it saw and retrying on a conflict, so no save overwrites one it did not see: the
final version counts exactly the successful saves and the audit history holds each of
them, ending at the final state (0 lost updates). Close against reopen and assign
against assign at the same moment: exactly one wins, the other is told.

C4, numbering: 16 agents opening tickets at once get unique references.

PR tier: 8 × 10 edits, 16 × 5 tickets; nightly: 8 × 500 edits, 16 × 500 tickets.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.apps import apps

from crm.accounts.roles import Role
from service import services
from service.models import Ticket, TicketTransition
from tests.concurrency.threads import run_together
from tests.factories import (
    CategoryFactory,
    CustomerFactory,
    TeamFactory,
    TicketFactory,
    UserFactory,
)


def edit_with_retry(by: Any, ticket_pk: int, edits: int) -> int:
    """`edits` saves, each counting one up from the subject it read (a read-modify-write,
    so a save made over an unseen one would lose a count); a conflict means someone else
    saved first: read again and retry. Returns the saves made."""
    saved = 0
    while saved < edits:
        seen = Ticket.objects.get(pk=ticket_pk)
        try:
            services.ticket_update(
                by=by,
                ticket=seen,
                version=seen.version,
                data={"subject": str(int(seen.subject) + 1)},
            )
        except services.EditConflict:
            continue
        saved += 1
    return saved


def check_no_lost_update(agents: list[Any], edits: int) -> None:
    ticket = TicketFactory(subject="0", status="in_progress")
    start = ticket.version
    results = run_together(
        [lambda by=by: edit_with_retry(by, ticket.pk, edits) for by in agents],
        timeout=600,
    )
    assert all(isinstance(r, int) for r in results), results
    total = len(agents) * edits
    assert sum(results) == total
    ticket.refresh_from_db()
    # Every save counted on top of the one before it: none was lost.
    assert ticket.subject == str(total)
    assert ticket.version == start + total
    # The audit trail replays to the final state: one update event per save, in order.
    events = apps.get_model("service", "TicketEvent").objects.filter(
        pgh_obj_id=ticket.pk, pgh_label="update"
    )
    subjects = list(events.order_by("pgh_id").values_list("subject", flat=True))
    assert subjects == [str(k) for k in range(1, total + 1)]


@pytest.fixture
def agents(db) -> list[Any]:
    team = TeamFactory(name="并发客服组")
    return [UserFactory(team=team, role=Role.SERVICE) for _ in range(8)]


@pytest.mark.django_db(transaction=True)
def test_c3_eight_agents_editing_one_ticket_lose_no_update(agents):
    check_no_lost_update(agents, edits=10)


@pytest.mark.nightly
@pytest.mark.django_db(transaction=True)
def test_c3_eight_agents_times_five_hundred_edits(agents):
    check_no_lost_update(agents, edits=500)


@pytest.mark.django_db(transaction=True)
def test_c3_close_against_reopen_and_assign_against_assign_one_wins(agents):
    close_against_reopen(agents)
    assign_against_assign(agents)


def close_against_reopen(agents):
    for _ in range(5):
        ticket = TicketFactory(status="resolved", assignee=agents[0])
        seen_a = Ticket.objects.get(pk=ticket.pk)
        seen_b = Ticket.objects.get(pk=ticket.pk)
        results = run_together(
            [
                lambda seen=seen_a: services.ticket_transition(
                    by=agents[0], ticket=seen, to_status="closed"
                ),
                lambda seen=seen_b: services.ticket_transition(
                    by=agents[1], ticket=seen, to_status="in_progress"
                ),
            ]
        )
        winners = [r for r in results if isinstance(r, Ticket)]
        losers = [r for r in results if isinstance(r, services.EditConflict)]
        assert (len(winners), len(losers)) == (1, 1), results
        ticket.refresh_from_db()
        assert ticket.status == winners[0].status
        assert TicketTransition.objects.filter(ticket=ticket).count() == 1


def assign_against_assign(agents):
    for _ in range(5):
        ticket = TicketFactory(status="new", assignee=None)
        version = ticket.version
        results = run_together(
            [
                lambda to=to, pk=ticket.pk, seen=version: services.ticket_assign(
                    by=agents[0],
                    ticket=Ticket.objects.get(pk=pk),
                    assignee=to,
                    version=seen,
                )
                for to in (agents[1], agents[2])
            ]
        )
        winners = [r for r in results if isinstance(r, Ticket)]
        losers = [r for r in results if isinstance(r, services.EditConflict)]
        assert (len(winners), len(losers)) == (1, 1), results
        ticket.refresh_from_db()
        assert ticket.assignee == winners[0].assignee
        assert ticket.version == version + 1


def check_unique_references(admin_user: Any, threads: int, each: int) -> None:
    team = TeamFactory(name="编号组")
    UserFactory(team=team, role=Role.SERVICE)
    category = CategoryFactory(name="编号", team=team)
    customer = CustomerFactory()

    def create_many() -> list[str]:
        return [
            services.ticket_create(
                by=admin_user,
                customer=customer,
                ticket_type="inquiry",
                channel="hotline",
                subject="编号并发",
                description="同时开单。",
                category=category,
            ).reference
            for _ in range(each)
        ]

    results = run_together([create_many] * threads, timeout=1800)
    assert all(isinstance(batch, list) for batch in results), [
        r for r in results if not isinstance(r, list)
    ][:3]
    references = [ref for batch in results for ref in batch]
    assert len(references) == threads * each
    assert len(set(references)) == threads * each
    assert all(re.fullmatch(r"\d{10}", ref) for ref in references)
    assert Ticket.objects.filter(reference__in=references).count() == threads * each


@pytest.mark.django_db(transaction=True)
def test_c4_sixteen_agents_opening_tickets_get_unique_references(admin_user):
    check_unique_references(admin_user, threads=16, each=5)


@pytest.mark.nightly
@pytest.mark.django_db(transaction=True)
def test_c4_sixteen_times_five_hundred(admin_user):
    check_unique_references(admin_user, threads=16, each=500)
