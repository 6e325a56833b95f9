"""Which team's queue a new ticket lands in.

1. The category's team, or, when a subcategory has none, its nearest ancestor's (the
   tree is how the desk is organised: 维修 > 水电 > 漏水 all go where 维修 goes).
   These tickets are assigned round-robin within the team (services._auto_assign).
2. No category, or none up the tree with a team: the ticket still needs a team,
   because the team lead is who the SLA warning and breach go to when nobody is
   assigned (services.sla_escalate); without one the ticket is in no team queue and
   its breach reaches nobody until the managers' stage. In order:
   a. the creator's team, when it is a desk team (one that some category routes to):
      the agent who took the call keeps it in the desk that will triage it. A sales
      rep's team or a back-office team (工程部) is not a desk team;
   b. settings.KEHU_TICKET_DEFAULT_TEAM (a team name), for tickets nobody on a desk
      created: the public report form, sales reps, back-office staff;
   c. the only desk team, when there is exactly one (most deployments).
   Otherwise (several desks and no setting) no team, as before.
   Such a ticket is left unassigned in the team queue: without a category nobody knows
   yet who should do the work, so it waits in the team's 未分派 queue for whoever
   triages it instead of being dealt round-robin.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings

from crm.accounts.models import Team
from service.models import Category

log = logging.getLogger("kehu.service")
# A category tree is a few levels deep; the bound also stops a cycle made in admin.
MAX_DEPTH = 10


def category_team(category: Category | None) -> Team | None:
    """The team of the category or of its nearest ancestor that has one."""
    seen: set[int] = set()
    while category is not None and category.pk not in seen and len(seen) < MAX_DEPTH:
        if category.team_id:
            return category.team
        seen.add(category.pk)
        category = category.parent
    return None


def desk_teams() -> Any:
    """Teams that some category routes tickets to: the service desk's teams."""
    return Team.objects.filter(
        pk__in=Category.objects.filter(team__isnull=False).values("team")
    )


def default_team(*, by: Any) -> Team | None:
    """The team of a ticket that no category routes (module docstring, 2a-c)."""
    team_id = getattr(by, "team_id", None)
    if team_id and desk_teams().filter(pk=team_id).exists():
        return by.team
    name = getattr(settings, "KEHU_TICKET_DEFAULT_TEAM", "")
    if name:
        team = Team.objects.filter(name=name).first()
        if team is not None:
            return team
        log.warning("KEHU_TICKET_DEFAULT_TEAM names no team: %r", name)
    desks = list(desk_teams()[:2])
    return desks[0] if len(desks) == 1 else None
