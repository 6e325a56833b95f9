"""What every scheduler test shares: a frozen moment and a short lease."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

NOW = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
LEASE = 30


@pytest.fixture(autouse=True)
def short_lease(settings):
    settings.KEHU_ACTION_LEASE_SECONDS = LEASE


@pytest.fixture
def clock(time_machine):
    """Frozen at NOW; `clock.shift(seconds)` moves it on."""
    time_machine.move_to(NOW, tick=False)
    return time_machine
