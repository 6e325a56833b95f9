"""Demo and scale data come from the apps through crm/core/seeding.py.

The platform commands (`seed_demo`, `seed_scale`) know no domain app: they walk the
registry, in INSTALLED_APPS order, and each app's `demo` module adds its own rows.
"""

from __future__ import annotations

import ast
from io import StringIO
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings
from django.core.management import call_command

from crm.core import scale, seeding
from customers.models import ContactLog, Customer
from service.handover import demo as handover_demo
from service.handover import demo_before, readiness
from service.handover.models import HandoverEvent
from service.models import Ticket
from service.property import demo as property_demo

DOMAIN_APPS = {"customers", "service", "culture"}


def _labels(contributions: list[seeding.Contribution]) -> list[str]:
    return [c.app_label for c in contributions]


def test_registry_holds_each_domain_app_in_installed_apps_order():
    found = _labels(seeding.contributions())
    assert found == [
        "customers",
        "service",
        "property",
        "handover",
        "deals",
        "segments",
        "value",
        "satisfaction",
        "scorecard",
        "dashboards",
    ]
    installed = [app.label for app in apps.get_app_configs()]
    assert found == sorted(found, key=installed.index)


def test_order_follows_installed_apps_not_the_order_apps_registered(monkeypatch):
    seeding.contributions()  # the demo modules are imported (and stay imported)
    monkeypatch.setattr(seeding, "_CONTRIBUTIONS", {})
    for module in ("service.handover.demo", "service.demo", "customers.demo"):
        seeding.register(module, demo=lambda run: "")
    assert _labels(seeding.contributions()) == ["customers", "service", "handover"]


def test_a_module_outside_the_installed_apps_cannot_register():
    with pytest.raises(LookupError):
        seeding.register("bench.run", demo=lambda run: "")


def test_scale_datasets_come_in_dependency_order_and_each_compiles():
    datasets = seeding.datasets()
    names = [d.name for d in datasets]
    # Tickets draw their customers from customers_customer: customers first.
    assert names.index("customers") < names.index("contact_logs")
    assert names.index("contact_logs") < names.index("tickets")
    assert names.index("tickets") < names.index("ticket_messages")
    assert names.index("handover_units") < names.index("deals")
    # Deals draw their customers and payments their deals.
    assert names.index("customers") < names.index("deals") < names.index("payments")
    # The scorecard's surveys, one per ticket, and the recoveries of the unhappy ones.
    assert names.index("tickets") < names.index("surveys") < names.index("recoveries")
    assert names[-3:] == ["payments", "surveys", "recoveries"]
    for dataset in datasets:
        plan = scale.build_sql(dataset)  # raises on a column nobody fills
        assert plan.sql or plan.missing, dataset.name


def test_seed_demo_adds_each_apps_data_once(db, monkeypatch):
    monkeypatch.delenv("CRM_DEMO_PASSWORD", raising=False)
    monkeypatch.setattr(property_demo, "BUILDINGS", 2)  # 200 units, not 1,000
    first = StringIO()
    call_command("seed_demo", customers=40, stdout=first)
    assert "demo users ready; 40 customers added; " in first.getvalue()
    # The demo project's owners are customers too (service/property/demo.py).
    assert Customer.objects.count() == 40 + property_demo.owner_count()
    assert ContactLog.objects.exists()  # customers: activity of the first sixty
    tickets = Ticket.objects.count()
    assert tickets > 0 and f"{tickets} tickets added" in first.getvalue()
    event = HandoverEvent.objects.get(name=handover_demo.DEMO_EVENT)
    assert event.status == HandoverEvent.Status.PUBLISHED
    # 入伙 books owners from the customers the app before it made.
    booked = {a.customer_id for s in event.slots.all() for a in s.appointments.all()}
    assert booked and booked <= set(Customer.objects.values_list("pk", flat=True))
    # Surveys: one per resolved demo ticket, answered with the ticket's 满意度.
    from culture.satisfaction.models import Survey

    resolved = Ticket.objects.filter(
        resolved_at__isnull=False, merged_into__isnull=True
    )
    assert Survey.objects.filter(source="ticket").count() == resolved.count()
    answered = Survey.objects.filter(source="ticket", answered_at__isnull=False)
    assert answered.exists()
    assert all(
        s.ticket.satisfaction == s.score for s in answered.select_related("ticket")
    )
    surveys = Survey.objects.count()

    second = StringIO()
    call_command("seed_demo", customers=40, stdout=second)
    assert "0 customers added; 0 tickets added" in second.getvalue()
    assert Ticket.objects.count() == tickets
    assert Survey.objects.count() == surveys
    # The booking core's demo event, and the one of the demo project's units.
    assert HandoverEvent.objects.count() == 2
    before_the_day = HandoverEvent.objects.get(name=demo_before.DEMO_EVENT)
    _rows, total = readiness.batch_numbers(before_the_day)
    assert total.in_scope == property_demo.unit_count()
    assert 0 < total.booked < total.notified == total.delivered


def _domain_imports(path: Path) -> list[str]:
    """Every import of a domain app in the file, at any depth (lazy ones too)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [node.module]
        else:
            continue
        found += [
            f"{path}:{node.lineno} {m}"
            for m in modules
            if m.split(".")[0] in DOMAIN_APPS
        ]
    return found


def test_platform_seeding_imports_no_domain_app():
    core = Path(settings.BASE_DIR) / "crm" / "core"
    files = [core / "seeding.py", core / "scale.py"]
    files += sorted((core / "management").rglob("*.py"))
    assert len(files) > 4
    assert [hit for path in files for hit in _domain_imports(path)] == []
