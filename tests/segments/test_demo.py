from __future__ import annotations

import pytest

from crm.core import seeding
from culture.segments import demo
from culture.segments.models import Segment, SegmentMember
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def test_demo_segments_are_made_once_and_computed(manager, sales_rep):
    CustomerFactory.create_batch(3, owner=sales_rep, tier="A", last_contacted_at=None)
    run = seeding.DemoRun(users={"manager1": manager}, customers=3, seed=1)
    assert demo.seed_demo(run) == f"{len(demo.DEMO_SEGMENTS)} segments"
    assert demo.seed_demo(run) == ""
    assert Segment.objects.count() == len(demo.DEMO_SEGMENTS)
    dormant = Segment.objects.get(name="A/B 级 30 天未联系")
    assert SegmentMember.objects.filter(segment=dormant).count() == 3
    assert dormant.refreshed_at is not None
