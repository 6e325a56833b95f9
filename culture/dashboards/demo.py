"""The dashboard's part of `seed_demo`: rebuild the rollups from the demo rows (the
apps before it in INSTALLED_APPS have seeded theirs) and arm the refresh."""

from __future__ import annotations

from crm.core import seeding
from culture.dashboards import rollups


def seed_demo(run: seeding.DemoRun) -> str:
    result = rollups.rebuild()
    rollups.schedule_next()
    return f"dashboard rollups rebuilt ({result['days']} days)"


seeding.register(__name__, demo=seed_demo)
