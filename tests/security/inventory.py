"""The URL inventory and canary world of the security sweeps, shared with the access matrix.

Every URL the sweeps request comes from `tests/accounts/test_access_matrix.py`'s MATRIX
(every URL pattern of the project × 9 personas), so a new page joins the sweeps as soon
as it joins the matrix. `build_world()` makes the same personas as `tests/conftest.py`
outside a test function, so that a module-scoped fixture can crawl once for several
tests; the canary customers also get ID numbers here, for the PII scan.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import transaction
from stdnum.cn import ric

from crm.accounts.roles import Role
from customers import services as customer_services
from tests import personas
from tests.accounts.test_access_matrix import (
    ACTORS,
    CANARIES,
    LOGIN,
    MATRIX,
    PHONES,
    PROBE,
    VISIBLE,
    World,
    _body,
)

__all__ = [
    "ACTORS",
    "CANARIES",
    "ID_NUMBERS",
    "LOGIN",
    "MATRIX",
    "MOBILE",
    "ID_NUMBER",
    "PHONES",
    "PROBE",
    "ROLE_OF",
    "VISIBLE",
    "World",
    "body_of",
    "build_world",
    "get_rows",
    "without_request_ids",
    "post_rows",
    "rolled_back",
    "warm",
]

body_of = _body

# The PII patterns of S14: a mainland mobile number and an 18-character ID number.
MOBILE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")
ID_NUMBER = re.compile(r"(?<!\d)\d{17}[\dXx](?!\d)")
# Request ids (uuid4 hex) on the audit page and in log lines: about one in twenty
# crawls met one holding eleven digits in a row that read as a mobile number.
REQUEST_ID = re.compile(r"(?<![0-9a-f])[0-9a-f]{32}(?![0-9a-f])")


def without_request_ids(text: str) -> str:
    return REQUEST_ID.sub("", text)


def _id_number(body: str) -> str:
    return body + ric.calc_check_digit(body + "0")


ID_NUMBERS = {
    "own_team": _id_number("11010119800101123"),
    "other_team": _id_number("31010119850202234"),
    "other_dept": _id_number("44030119900303345"),
    "pool": _id_number("51010119950404456"),
    "unverified": _id_number("12010119970505567"),
}

ROLE_OF = {
    "anonymous": None,
    "sales_rep": Role.SALES,
    "teammate": Role.SALES,
    "outsider": Role.SALES,
    "far_outsider": Role.SALES,
    "manager": Role.MANAGER,
    "service_agent": Role.SERVICE,
    "admin_user": Role.ADMIN,
    "readonly_user": None,
}


def build_world() -> World:
    """The personas of tests/conftest.py and the matrix's canaries, with ID numbers.

    Call inside a transaction that the caller rolls back.
    """
    world = World(personas.make_personas())
    admin = world.actors["admin_user"]
    for target, customer in world.customers.items():
        customer_services.customer_update(
            by=admin,
            customer=customer,
            version=customer.version,
            data={},
            id_number=ID_NUMBERS[target],
        )
        customer.refresh_from_db()
    return world


def get_rows() -> list[tuple[str, str | None, dict[str, object]]]:
    """(url name, target, {actor: expected}) of every GET row of the matrix."""
    return [
        (row[0], row[2], dict(zip(ACTORS, row[3:], strict=True)))
        for row in MATRIX
        if row[1] == "GET"
    ]


def post_rows() -> list[tuple[str, str | None, dict[str, object]]]:
    """(url name, target, {actor: expected}) of every POST row of the matrix."""
    return [
        (row[0], row[2], dict(zip(ACTORS, row[3:], strict=True)))
        for row in MATRIX
        if row[1] == "POST"
    ]


@contextmanager
def rolled_back(world: World) -> Iterator[World]:
    """Whatever `world.url()` and the requests create inside is undone afterwards.

    The matrix gives each row a fresh World; a sweep that reuses one World for every
    row undoes each row's records instead (a savepoint) and forgets what World cached
    about them, so that rows which create the same record do not collide.
    """
    saved = {
        name: dict(value) if isinstance(value, dict) else value
        for name, value in vars(world).items()
    }
    savepoint = transaction.savepoint()
    try:
        yield world
    finally:
        transaction.savepoint_rollback(savepoint)
        vars(world).update(saved)


def warm(world: World) -> World:
    """Make the records World caches (tickets, handover events) outside any row's
    savepoint, so that `rolled_back` keeps them instead of remaking them per row."""
    for target in CANARIES:
        world.ticket(target)
    for kind in ("event", "draft_event"):
        if hasattr(world, "handover_event"):
            world.handover_event(kind)
    if hasattr(world, "handover_appointments"):
        world.handover_appointments()
    return world
