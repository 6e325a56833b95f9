"""Extension points other apps use to take part in customer operations.

`merge_hooks`: functions (survivor, duplicate) that move an app's records from the
duplicate to the survivor inside the merge transaction. Tickets, handovers and surveys
register theirs in AppConfig.ready(), as customers' own models are moved by the service.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

MergeHook = Callable[[Any, Any], None]
merge_hooks: list[MergeHook] = []


def register_merge_hook(hook: MergeHook) -> None:
    if hook not in merge_hooks:
        merge_hooks.append(hook)
