"""The scorecard's part of `seed_demo` and `seed_scale`.

Demo: rebuild the scorecard's rollups from the rows the apps before it seeded.

Scale (`make bench`): one satisfaction survey per generated ticket (1,000,000 at full
size), asked when the ticket was resolved (the open ones still pending), four in five
CSAT and one in five NPS, three in five answered within two days; and the service
recovery of every unhappy answer, most called back within the day. Set-based: one
INSERT … SELECT over the tickets per chunk (crm/core/scale.py), with repeatable draws.
"""

from __future__ import annotations

from crm.core import seeding
from crm.core.scale import SIZES, Dataset, draw, uniform, weighted
from culture.scorecard import rollups


def seed_demo(run: seeding.DemoRun) -> str:
    result = rollups.rebuild()
    return f"scorecard rollups rebuilt ({result['days']} days)"


CSAT_SCORES = [("5", 55), ("4", 25), ("3", 9), ("2", 6), ("1", 5)]
NPS_SCORES = [
    ("10", 30),
    ("9", 22),
    ("8", 15),
    ("7", 10),
    ("6", 6),
    ("5", 5),
    ("4", 3),
    ("3", 3),
    ("2", 2),
    ("1", 2),
    ("0", 2),
]

SCALE_SURVEYS = Dataset(
    name="surveys",
    model="satisfaction.Survey",
    rows=SIZES,
    unit="tickets",
    source=(
        "service_ticket AS t CROSS JOIN LATERAL (SELECT t.id AS i) AS g "
        "WHERE t.id BETWEEN {start} AND {stop}"
    ),
    base={
        "ticket": "t.id",
        "customer": "t.customer_id",
        "team": "t.team_id",
        "staff": "t.assignee_id",
        "asked": "coalesce(t.resolved_at, t.closed_at)",
        "opened": "t.created_at",
        "is_nps": f"{draw(161, 100)} < 20",
        "answers": f"{draw(162, 100)} < 60",
        "score_n": f"{draw(163, 100)}",
        "delay": f"({uniform(164)} * 2880)::int",
    },
    columns={
        "source": "'ticket'",
        "kind": "CASE WHEN is_nps THEN 'nps' ELSE 'csat' END",
        "customer_id": "customer",
        "ticket_id": "ticket",
        "team_id": "team",
        "staff_id": "staff",
        "channel": "'sms'",
        "status": (
            "CASE WHEN asked IS NULL THEN 'pending' WHEN answers THEN 'answered' "
            "WHEN asked < now() - interval '7 days' THEN 'expired' ELSE 'sent' END"
        ),
        "expires_at": "coalesce(asked, opened) + interval '7 days'",
        "sent_at": "asked + interval '5 minutes'",
        "answered_at": (
            "CASE WHEN asked IS NOT NULL AND answers "
            "THEN asked + interval '5 minutes' + delay * interval '1 minute' END"
        ),
        "score": (
            "CASE WHEN asked IS NOT NULL AND answers THEN (CASE WHEN is_nps THEN "
            f"{weighted('score_n', NPS_SCORES)} ELSE "
            f"{weighted('score_n', CSAT_SCORES)} END)::smallint END"
        ),
        "created_at": "coalesce(asked, opened)",
    },
)

# The recovery of every unhappy answer (CSAT ≤ 3, NPS ≤ 6): done when answered more
# than two days ago (called back after 1–30 hours: about one in five late), else open.
SCALE_RECOVERIES = Dataset(
    name="recoveries",
    model="satisfaction.RecoveryTask",
    rows=SIZES,
    unit="surveys",
    source=(
        "satisfaction_survey AS s CROSS JOIN LATERAL (SELECT s.id AS i) AS g "
        "WHERE s.id BETWEEN {start} AND {stop} AND s.answered_at IS NOT NULL "
        "AND s.score <= CASE WHEN s.kind = 'nps' THEN 6 ELSE 3 END"
    ),
    base={
        "survey": "s.id",
        "customer": "s.customer_id",
        "team": "s.team_id",
        "opened": "s.answered_at",
        "done": "s.answered_at < now() - interval '2 days'",
        "hours": f"(1 + {uniform(171)} * 29)",
    },
    columns={
        "survey_id": "survey",
        "customer_id": "customer",
        "team_id": "team",
        "status": "CASE WHEN done THEN 'done' ELSE 'open' END",
        "due_at": "opened + interval '24 hours'",
        "called_back_at": "CASE WHEN done THEN opened + hours * interval '1 hour' END",
        "closed_at": "CASE WHEN done THEN opened + hours * interval '1 hour' END",
        "outcome": "CASE WHEN done THEN 'resolved' ELSE '' END",
        "created_at": "opened",
        "updated_at": "opened",
    },
)


seeding.register(
    __name__,
    demo=seed_demo,
    scale=seeding.Scale(
        datasets=[SCALE_SURVEYS, SCALE_RECOVERIES],
        also_emptied=["satisfaction_recoverytaskevent"],
    ),
)
