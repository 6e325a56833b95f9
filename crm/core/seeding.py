"""Demo data and scale data, each contributed by the app that owns the models.

The platform knows no domain: `seed_demo` and `seed_scale` (crm/core/management/commands)
make the users and teams, then only walk this registry. An app with data to contribute
has a module `demo` (`customers/demo.py`, `service/demo.py`, `service/handover/demo.py`)
that calls `register(__name__, demo=..., scale=...)` when imported. `contributions()`
imports those modules with Django's `autodiscover_modules("demo")`, so demo code is
loaded only by the commands and bench scripts that ask for it, never by a web process
or a worker.

Order: the apps' order in INSTALLED_APPS. It already lists every app after the apps it
builds on (customers, then service, then service.handover), so a contribution may use
the rows of those before it: the demo tickets are for demo customers, and the tickets
dataset draws its customers from the customers dataset. A new app goes after the apps
it depends on there, and nothing else orders it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.apps import apps
from django.utils.module_loading import autodiscover_modules

from crm.core.scale import Dataset, Reference, Staff

MODULE = "demo"


@dataclass(frozen=True)
class DemoRun:
    """What `seed_demo` hands every app's demo seeder."""

    users: dict[str, Any]  # the demo logins by username: admin, manager1, sales1 ...
    customers: int  # --customers: how many demo customers there should be in all
    seed: int  # --seed, for repeatable random choices


@dataclass(frozen=True)
class Scale:
    """An app's part of the bench data (see crm/core/scale.py)."""

    datasets: Sequence[Dataset] = ()
    # Idempotent reference rows its datasets point at (categories, SLA policies ...),
    # made before the signature is taken; returns what of them shapes the data.
    prepare: Callable[[Staff], Reference] | None = None
    # Temporary lookup tables its datasets join, made in the build's transaction:
    # (cursor, staff, size, reference).
    lookups: Callable[[Any, Staff, str, Reference], None] | None = None
    lookups_label: str = ""  # what the build log calls them
    # Tables that point at its generated rows' ids and are emptied with them.
    also_emptied: Sequence[str] = ()


@dataclass(frozen=True)
class Contribution:
    app_label: str
    # Adds the app's demo rows (idempotent); returns a phrase for the summary line
    # ("30 customers added") or "".
    demo: Callable[[DemoRun], str] | None = None
    scale: Scale = field(default_factory=Scale)


_CONTRIBUTIONS: dict[str, Contribution] = {}


def register(
    module: str,
    *,
    demo: Callable[[DemoRun], str] | None = None,
    scale: Scale | None = None,
) -> None:
    """Register the data of the app that contains `module` (pass `__name__`)."""
    app = apps.get_containing_app_config(module)
    if app is None:
        raise LookupError(f"{module} is not inside an installed app")
    _CONTRIBUTIONS[app.label] = Contribution(
        app_label=app.label, demo=demo, scale=scale or Scale()
    )


def contributions() -> list[Contribution]:
    """Every installed app's contribution, in INSTALLED_APPS order."""
    autodiscover_modules(MODULE)
    order = {app.label: n for n, app in enumerate(apps.get_app_configs())}
    return sorted(
        (c for c in _CONTRIBUTIONS.values() if c.app_label in order),
        key=lambda c: order[c.app_label],
    )


def datasets() -> list[Dataset]:
    """All scale datasets, in build order (also read by bench/)."""
    return [d for c in contributions() for d in c.scale.datasets]
