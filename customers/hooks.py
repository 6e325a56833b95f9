"""Extension points other apps use to take part in customer operations.

`merge_hooks`: functions (survivor, duplicate) that move an app's records from the
duplicate to the survivor inside the merge transaction. Tickets, handovers and surveys
register theirs in AppConfig.ready(), as customers' own models are moved by the service.

`merge_notes`: functions (survivor, duplicate) -> list of sentences that the merge
page shows before the user confirms: what the app's hook will do with the two
customers' records (for example which of two bookings is kept). The customers app
knows none of these apps; each registers its note beside its hook.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

MergeHook = Callable[[Any, Any], None]
MergeNote = Callable[[Any, Any], list[str]]
merge_hooks: list[MergeHook] = []
merge_notes: list[MergeNote] = []


def register_merge_hook(hook: MergeHook, *, note: MergeNote | None = None) -> None:
    if hook not in merge_hooks:
        merge_hooks.append(hook)
    if note is not None and note not in merge_notes:
        merge_notes.append(note)


def merge_preview(survivor: Any, duplicate: Any) -> list[str]:
    """Every registered app's sentences about what merging these two will do."""
    return [line for note in merge_notes for line in note(survivor, duplicate)]


# --- list filters -------------------------------------------------------------------------
#
# `list_filters`: extra filters of the customer list (and so of its exports, which read
# the list's parameters through the same form), registered by apps the customers app
# does not know, e.g. culture's `?segment=<id>`. `field(user)` builds the form field
# (its choices limited to what the user may pick, so a value outside them is a form
# error, never a wider list); `apply(customers, value)` narrows the list by the cleaned
# value; `label(value)` names it for the page's "filtered by" badge.


@dataclass(frozen=True)
class ListFilter:
    name: str
    field: Callable[[Any], Any]
    apply: Callable[[Any, Any], Any]


list_filters: dict[str, ListFilter] = {}


def register_list_filter(
    name: str, *, field: Callable[[Any], Any], apply: Callable[[Any, Any], Any]
) -> None:
    list_filters[name] = ListFilter(name=name, field=field, apply=apply)
