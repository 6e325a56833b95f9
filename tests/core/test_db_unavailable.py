"""Running out of database connections answers 503 with Retry-After, not 500 (issue 11,
finding 4: 60 parallel logins, 2 answered 500 after psycopg's connection timeout).

Each request runs in a thread of its own, so it opens its own connection, with the
database settings pointed at a PostgreSQL that refuses it for real: a role whose one
allowed connection is taken (too many connections), a port nobody listens on, a server
that never answers (the connect timeout), and a connection that PostgreSQL terminates
in the middle of the request. The test's own connection is not touched."""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from django.db import connection
from django.test import Client

from tests.conftest import PASSWORD

PAGE = "系统繁忙，暂时无法处理您的请求"


def in_a_thread(job: Callable[[], Any]) -> Any:
    """`job`'s result, run in a new thread (a new database connection)."""
    outcome: list[Any] = []

    def work() -> None:
        try:
            outcome.append(job())
        except Exception as error:  # noqa: BLE001 - the test looks at what came back
            outcome.append(error)
        finally:
            connection.close()

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(timeout=60)
    assert outcome, "the request never finished"
    return outcome[0]


@contextmanager
def database_settings(**changes: Any) -> Iterator[None]:
    """Point new connections (those of other threads) elsewhere for the block."""
    params = connection.settings_dict
    saved = {key: params.get(key) for key in changes}
    saved_options = dict(params.get("OPTIONS", {}))
    params.update(changes)
    try:
        yield
    finally:
        params.update(saved)
        params["OPTIONS"] = saved_options


def admin_connection() -> psycopg.Connection:
    params = connection.settings_dict
    return psycopg.connect(
        host=params["HOST"],
        port=params["PORT"] or 5432,
        user=params["USER"],
        dbname=params["NAME"],
        autocommit=True,
    )


def assert_answered_503(response: Any, caplog: Any) -> None:
    assert not isinstance(response, Exception), repr(response)
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert PAGE in response.content.decode()
    warnings = [r for r in caplog.records if r.name == "kehu.db"]
    assert [r.levelno for r in warnings] == [logging.WARNING]
    assert "database unavailable" in warnings[0].getMessage()
    # One warning line: no ERROR, no traceback anywhere.
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not [r for r in caplog.records if r.exc_info]


def sign_in() -> Any:
    """The request of the finding: a sign-in, which needs the database."""
    return Client(raise_request_exception=False).post(
        "/accounts/login/", {"username": "sales_a", "password": PASSWORD}
    )


@pytest.fixture
def exhausted_role(db: Any) -> Iterator[str]:
    """A role allowed one connection, which is already taken."""
    role = f"kehu_test_exhausted_{os.getpid()}"
    with admin_connection() as admin:
        admin.execute(f'DROP ROLE IF EXISTS "{role}"')
        admin.execute(f'CREATE ROLE "{role}" LOGIN CONNECTION LIMIT 1')
    params = connection.settings_dict
    holder = psycopg.connect(
        host=params["HOST"],
        port=params["PORT"] or 5432,
        user=role,
        dbname=params["NAME"],
    )
    try:
        yield role
    finally:
        holder.close()
        with admin_connection() as admin:
            admin.execute(f'DROP ROLE IF EXISTS "{role}"')


def test_no_connection_left_for_the_role_answers_503(
    exhausted_role: str, caplog: Any
) -> None:
    with database_settings(USER=exhausted_role):
        response = in_a_thread(sign_in)
    assert_answered_503(response, caplog)


def test_a_database_that_refuses_connections_answers_503_on_every_page(
    client: Client, sales_rep: Any, caplog: Any
) -> None:
    client.force_login(sales_rep)  # the session cookie; its row is never reached
    client.raise_request_exception = False
    intake = {"name": "赵", "phone": "13912345678", "ticket_type": "repair"}
    requests = [
        sign_in,
        lambda: client.get("/"),
        lambda: client.get("/customers/"),
        lambda: Client(raise_request_exception=False).post("/report/", intake),
    ]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    with database_settings(HOST="127.0.0.1", PORT=str(closed_port)):
        for request in requests:
            caplog.clear()
            assert_answered_503(in_a_thread(request), caplog)


def test_a_database_that_never_answers_times_out_into_503(db: Any, caplog: Any) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # the kernel accepts; nobody ever answers
        port = silent.getsockname()[1]
        options = {**connection.settings_dict["OPTIONS"], "connect_timeout": 2}
        with database_settings(HOST="127.0.0.1", PORT=str(port), OPTIONS=options):
            response = in_a_thread(sign_in)
    assert_answered_503(response, caplog)


@pytest.mark.django_db(transaction=True)
def test_a_connection_lost_during_the_request_answers_503(
    sales_rep: Any, caplog: Any
) -> None:
    """The connection was there when the request began (the middleware's check
    passed), then PostgreSQL ended it and a new one is refused: the session read fails
    in a middleware, and the 500 handler answers 503."""
    client = Client(raise_request_exception=False)
    client.force_login(sales_rep)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]

    def request() -> Any:
        connection.ensure_connection()
        pid = connection.connection.info.backend_pid
        with admin_connection() as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", [pid])
        with database_settings(HOST="127.0.0.1", PORT=str(closed_port)):
            return client.get("/")

    assert_answered_503(in_a_thread(request), caplog)
    # Once the database is back, the same session carries on.
    assert client.get("/").status_code == 200


def test_other_database_errors_are_not_taken_for_unavailability(db: Any) -> None:
    from django.db import DatabaseError, transaction

    from crm.core import db as core_db

    statements = [
        "SELECT no_such_column FROM core_accesslog",
        # QueryCanceled: a slow query is a bug to see, not a busy database.
        "SET LOCAL statement_timeout = 1; SELECT pg_sleep(1)",
    ]
    for statement in statements:
        with pytest.raises(DatabaseError) as raised, transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(statement)
        assert not core_db.is_unavailable(raised.value)
