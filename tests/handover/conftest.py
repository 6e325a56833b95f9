"""Fixtures for the handover tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from service.handover.models import HandoverEvent
from tests.handover.builders import make_event


@pytest.fixture
def new_event(admin_user) -> Callable[..., HandoverEvent]:
    def _new_event(**kwargs) -> HandoverEvent:
        return make_event(admin_user, **kwargs)

    return _new_event
