"""The value app's part of `seed_demo`: build its rollups from the demo's deals and
payments (the apps before it in INSTALLED_APPS have seeded theirs): monthly revenue,
RFM, the tier rules (their changes land on the timelines and bells, as the daily job
would make them) and every segment's dashboard."""

from __future__ import annotations

from crm.core import seeding
from culture.value import rollups, segment_dashboard, services


def seed_demo(run: seeding.DemoRun) -> str:
    months = rollups.revenue_rebuild()
    scored = services.rfm_compute()
    changes = services.tiers_assign()
    segments = segment_dashboard.snapshots_rebuild()
    return (
        f"value rollups rebuilt ({months} customer-months, {scored} RFM scores, "
        f"{changes} tier changes, {segments} segment dashboards)"
    )


seeding.register(__name__, demo=seed_demo)
