"""Which segment a user may open or change: 404 outside their scope, 403 for a segment
they may see but not change."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied

from crm.accounts import access
from culture.segments import services
from culture.segments.models import Segment


def get_segment_for(user: Any, pk: int, *, write: bool = False) -> Segment:
    segment = access.get_object_for(
        Segment.objects.visible_to(user).select_related("owner"), pk
    )
    if write and not services.can_edit(user, segment):
        from crm.core import audit

        audit.record_denial(None, audit.DENIED_ROLE)
        raise PermissionDenied
    return segment
