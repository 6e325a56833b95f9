"""The segments' part of `seed_demo`: a few segments a manager would keep, computed
from the demo rows of the apps before it (customers, tickets, deals and payments), with
a history that tells a story: two refreshes a month apart, so some customers entered
and some left."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from crm.core import seeding
from culture.segments import services
from culture.segments.models import Segment

DEMO_SEGMENTS = [
    (
        "华东 A 级经销商（近 90 天有投诉）",
        "重点经销商里最近投诉过的，需要经理亲自回访。",
        {
            "op": "and",
            "rules": [
                {"field": "tier", "operator": "in", "value": ["A"]},
                {
                    "field": "kind",
                    "operator": "in",
                    "value": ["dealer", "distributor", "agent"],
                },
                {"field": "macro_region", "operator": "in", "value": ["华东"]},
                {
                    "field": "complaints",
                    "operator": "count_gte",
                    "value": {"days": 90, "count": 1},
                },
            ],
        },
    ),
    (
        "大客户：近一年回款 ≥ 100 万",
        "近 365 天回款（终端客户口径）不少于 100 万元。",
        {
            "op": "and",
            "rules": [
                {
                    "field": "revenue",
                    "operator": "gte",
                    "value": {"days": 365, "amount": "1000000"},
                }
            ],
        },
    ),
    (
        "A/B 级 30 天未联系",
        "高价值客户里一个月没有联系的，或从未联系过的。",
        {
            "op": "and",
            "rules": [
                {"field": "tier", "operator": "in", "value": ["A", "B"]},
                {
                    "op": "or",
                    "rules": [
                        {"field": "last_contact", "operator": "gt", "value": 30},
                        {"field": "last_contact", "operator": "never", "value": None},
                    ],
                },
            ],
        },
    ),
    (
        "有进行中商机的意向客户",
        "",
        {
            "op": "and",
            "rules": [
                {"field": "stage", "operator": "in", "value": ["lead", "prospect"]},
                {"field": "open_deals", "operator": "count_gte", "value": 1},
            ],
        },
    ),
]


def seed_demo(run: seeding.DemoRun) -> str:
    manager = run.users.get("manager1")
    if manager is None or Segment.objects.exists():
        return ""
    now = timezone.now()
    for name, description, rules in DEMO_SEGMENTS:
        segment = services.segment_create(
            by=manager,
            data={
                "name": name,
                "description": description,
                "rules": rules,
                "visibility": Segment.Visibility.DEPARTMENT,
            },
        )
        # A month ago with a shorter memory, then today: the history shows movement.
        services.segment_refresh(
            segment_id=segment.pk, now=now - dt.timedelta(days=30), reason="demo"
        )
        services.segment_refresh(segment_id=segment.pk, now=now, reason="demo")
    return f"{len(DEMO_SEGMENTS)} segments"


seeding.register(__name__, demo=seed_demo)
