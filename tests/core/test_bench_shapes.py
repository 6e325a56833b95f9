"""The bench's data shapes (bench/shapes.py) and its per-term figures (bench/run.py,
bench/report.py): the copies hold what their names promise, and a slow search term
shows in the report instead of hiding in the scenario's percentiles."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.utils import timezone

from bench import report, run, shapes
from customers.models import Customer, CustomerPhone
from tests.factories import CustomerFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def generated(team_a):
    """40 customers as the generator mixes them: persons and organisations in any
    order of arrival, each with a phone; the `sales` login owns some."""
    sales = UserFactory(username="sales", team=team_a)
    now = timezone.now()
    customers = [
        CustomerFactory.build(
            name=f"客户{n}",
            is_organization=n % 3 == 0,
            kind=Customer.Kind.ENTERPRISE if n % 3 == 0 else Customer.Kind.OWNER,
            owner=sales if n % 4 == 0 else None,
            team=team_a if n % 4 == 0 else None,
            last_contacted_at=now - dt.timedelta(days=n),
        )
        for n in range(40)
    ]
    Customer.objects.bulk_create(customers)
    CustomerPhone.objects.bulk_create(
        CustomerPhone(customer=c, number=f"1390000{n:04d}", is_primary=True)
        for n, c in enumerate(customers)
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE customers_customer SET updated_at = now() - "
            "(id * 7919 % 40) * interval '1 day', created_at = now() - "
            "(id * 7919 % 40 + 1) * interval '1 day'"
        )
    return customers


def _rows(sql: str) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchall()


def test_orgs_first_makes_every_organisation_older_than_every_person(generated):
    shapes.prepare("orgs_first", log=lambda message: None)
    table = "bench_shape_orgs_first.customers_customer"
    by_kind = (
        "SELECT max(id) FILTER (WHERE is_organization), "
        "max(updated_at) FILTER (WHERE is_organization), "
        "max(created_at) FILTER (WHERE is_organization), "
        "min(id) FILTER (WHERE NOT is_organization), "
        "min(updated_at) FILTER (WHERE NOT is_organization), "
        "min(created_at) FILTER (WHERE NOT is_organization) "
        "FROM bench_shape_orgs_first.customers_customer"
    )
    [
        (
            org_max_id,
            org_updated,
            org_created,
            person_min_id,
            person_updated,
            person_created,
        )
    ] = _rows(by_kind)
    assert org_max_id < person_min_id
    assert org_updated < person_updated
    assert org_created < person_created
    # Nothing lost, every phone on its own customer's new id, the same indexes.
    assert _rows(
        f"SELECT count(*) FROM {table} c JOIN bench_shape_orgs_first."  # noqa: S608
        "customers_customerphone p ON p.customer_id = c.id "
        "JOIN customers_customerphone o ON o.number = p.number "
        "JOIN customers_customer g ON g.id = o.customer_id AND g.name = c.name"
    ) == [(40,)]
    inverted = f"SELECT count(*) FROM {table} WHERE updated_at < created_at"  # noqa: S608
    assert _rows(inverted) == [(0,)]
    indexes = {
        name
        for (name,) in _rows(
            "SELECT indexname FROM pg_indexes WHERE schemaname = "
            "'bench_shape_orgs_first' AND tablename = 'customers_customer'"
        )
    }
    assert {"customer_kind_recent", "customer_recent", "customer_name_grams"} <= indexes


def test_same_updated_at_ties_one_customer_in_ten_from_the_sales_scope(generated):
    # The generated newest row keeps its time, so it ties with the block whatever
    # its owner; which row that is depends on the ids the sequence handed out.
    [(newest_id,)] = _rows(
        "SELECT id FROM customers_customer ORDER BY updated_at DESC, id DESC LIMIT 1"
    )
    shapes.prepare("same_updated_at", log=lambda message: None)
    table = "bench_shape_same_updated_at.customers_customer"
    tied = _rows(
        f"SELECT id, owner_id IS NOT NULL FROM {table} "  # noqa: S608
        f"WHERE updated_at = (SELECT max(updated_at) FROM {table})"
    )
    # The block (40 / 10) is the sales login's customers, lowest ids first.
    block = sorted(c.pk for c in generated if c.owner_id is not None)[:4]
    assert {id_ for id_, _ in tied} == {*block, newest_id}
    assert all(in_scope for id_, in_scope in tied if id_ in block)


def test_a_shape_is_reused_until_its_data_changes(generated):
    quiet = lambda message: None  # noqa: E731
    assert not shapes.prepare("same_updated_at", log=quiet)["reused"]
    assert shapes.prepare("same_updated_at", log=quiet)["reused"]
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("CREATE INDEX customer_probe ON customers_customer (notes)")
    assert not shapes.prepare("same_updated_at", log=quiet)["reused"]


def _sample(term: str, ms: float) -> run.Sample:
    return run.Sample(
        path=f"/customers/?q={term}",
        status=200,
        server_ms=ms,
        client_ms=ms,
        queries=10,
        sql_ms=1,
        cpu_ms=1,
        size=100,
    )


def test_a_slow_term_has_its_own_p99_in_results_and_report():
    samples = [_sample(term, 10) for term in ("王伟", "科技") * 20]
    samples += [_sample("%E6%9C%89%E9%99%90", 300) for _ in range(2)]
    summary = run.summarise(samples)
    assert summary["terms"]["有限"]["p99_ms"] == 300
    assert summary["terms"]["王伟"]["p95_ms"] == 10
    assert summary["p95_ms"] == 10  # the scenario's figures hide it
    table = "\n".join(report.term_table({"customers.search_broad": summary}))
    assert (
        "| `customers.search_broad` | 有限 | 2 | 300.0 | 300.0 | 300.0 | 300.0 |"
        in table
    )


def test_filters_are_reported_by_query_string():
    assert run.request_label("/customers/?kind=enterprise&sort=name") == (
        "kind=enterprise&sort=name"
    )
    assert run.request_label("/customers/") == "(page)"


def test_a_shapes_run_leaves_the_main_table_as_written(tmp_path):
    doc = tmp_path / "benchmarks.md"
    start, end = report.markers("full")
    doc.write_text(f"# Benchmarks\n\n{start}\nedited by hand\n{end}\n\nprose\n")
    shape_figures = {
        "size": "full",
        "text": "every organisation older",
        "date": "2026-12-07T14:00:00+00:00",
        "git": {"commit": "0123456789abcdef", "dirty": False},
        "load_average_at_start": [1.0, 1.0, 1.0],
        "reused": False,
        "seconds": 180.0,
        "scenarios": {
            "customers.search_broad": {
                "goal": "p95 < 100 ms",
                "role": "sales",
                "requests": 2,
                "errors": 0,
                "p50_ms": 40.0,
                "p95_ms": 60.0,
                "p99_ms": 61.0,
                "queries": 12,
                "meets_goal": True,
            }
        },
    }
    results = {
        "size": "full",
        "scenarios": {"x": {}},
        "shapes": {"orgs_first": shape_figures},
    }
    report.update_doc(doc, results, shapes_only=True)
    text = doc.read_text()
    assert "edited by hand" in text
    assert text.index(end) < text.index("**Shape `orgs_first`**") < text.index("prose")
    assert (
        "| `customers.search_broad` | sales | p95 < 100 ms | 40.0 | 60.0 | 61.0 |"
        in text
    )
