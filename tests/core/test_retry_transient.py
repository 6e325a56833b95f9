"""D6: a transaction PostgreSQL aborts as a deadlock victim or a serialization failure
is run again (at most 3 more times) by crm.core.db.retry_transient, so the user sees
their save succeed; what still fails answers 503 "send it again", never 500."""

from __future__ import annotations

import threading

import psycopg
import pytest
from django.db import OperationalError, connection, transaction
from django.test import RequestFactory

from crm.accounts.models import Department
from crm.core import db as core_db
from crm.core.db import MAX_RETRIES, retry_transient
from crm.core.middleware import TransientConflictMiddleware


def _run_in_threads(*targets):
    errors: list[BaseException] = []

    def wrap(target):
        def run():
            try:
                target()
            except BaseException as error:  # noqa: BLE001 - reported by the test
                errors.append(error)
            finally:
                connection.close()

        return run

    threads = [threading.Thread(target=wrap(t)) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    return errors


@pytest.mark.django_db(transaction=True)
def test_a_real_deadlock_victim_is_retried_and_both_saves_land():
    first = Department.objects.create(name="甲部门")
    second = Department.objects.create(name="乙部门")
    both_hold_one = threading.Barrier(2, timeout=20)
    attempts = {"ab": 0, "ba": 0}
    before = core_db.retry_counts["retried"]

    def renamer(key, lock_first, lock_second, suffix):
        @retry_transient
        def rename():
            attempts[key] += 1
            with transaction.atomic():
                Department.objects.select_for_update().get(pk=lock_first.pk)
                if attempts[key] == 1:
                    both_hold_one.wait()  # each holds one row: opposite order
                row = Department.objects.select_for_update().get(pk=lock_second.pk)
                row.name = row.name + suffix
                row.save(update_fields=["name"])

        return rename

    errors = _run_in_threads(
        renamer("ab", first, second, "·1"), renamer("ba", second, first, "·2")
    )

    assert errors == []
    # PostgreSQL chose one victim; it ran again and both renames are saved.
    assert sorted(attempts.values()) == [1, 2]
    assert core_db.retry_counts["retried"] - before == 1
    assert Department.objects.get(pk=first.pk).name == "甲部门·2"
    assert Department.objects.get(pk=second.pk).name == "乙部门·1"


@pytest.mark.django_db(transaction=True)
def test_a_serialization_failure_is_retried_and_no_update_is_lost():
    dept = Department.objects.create(name="计数")
    both_read = threading.Barrier(2, timeout=20)
    first_committed = threading.Event()
    attempts = {"early": 0, "late": 0}

    def appender(key, suffix):
        @retry_transient
        def append():
            attempts[key] += 1
            with transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                row = Department.objects.get(pk=dept.pk)  # the snapshot starts here
                if attempts[key] == 1:
                    both_read.wait()
                    if key == "late":
                        first_committed.wait(timeout=20)
                Department.objects.filter(pk=dept.pk).update(name=row.name + suffix)
            if key == "early":
                first_committed.set()

        return append

    errors = _run_in_threads(appender("early", "+甲"), appender("late", "+乙"))

    assert errors == []
    assert attempts == {"early": 1, "late": 2}
    assert Department.objects.get(pk=dept.pk).name == "计数+甲+乙"


def _deadlock() -> OperationalError:
    error = OperationalError("deadlock detected")
    error.__cause__ = psycopg.errors.DeadlockDetected("deadlock detected")
    return error


@pytest.mark.django_db(transaction=True)
def test_it_gives_up_after_three_retries_and_leaves_other_errors_alone():
    calls = {"n": 0}

    @retry_transient
    def always_a_victim():
        calls["n"] += 1
        raise _deadlock()

    with pytest.raises(OperationalError):
        always_a_victim()
    assert calls["n"] == 1 + MAX_RETRIES

    calls["n"] = 0

    @retry_transient
    def connection_lost():
        calls["n"] += 1
        raise OperationalError("server closed the connection unexpectedly")

    with pytest.raises(OperationalError):
        connection_lost()
    assert calls["n"] == 1


@pytest.mark.django_db
def test_inside_an_outer_transaction_the_owner_of_the_transaction_decides():
    calls = {"n": 0}

    @retry_transient
    def victim():
        calls["n"] += 1
        raise _deadlock()

    with pytest.raises(OperationalError):
        victim()  # pytest-django's test transaction is open: one try only
    assert calls["n"] == 1


@pytest.mark.django_db
def test_a_deadlock_that_reaches_the_top_answers_503_with_a_message():
    request = RequestFactory().post("/customers/1/edit/")
    request.LANGUAGE_CODE = "zh-hans"
    middleware = TransientConflictMiddleware(lambda r: None)

    response = middleware.process_exception(request, _deadlock())

    assert response.status_code == 503
    assert response["Retry-After"] == "2"
    assert "本次没有保存" in response.content.decode()
    assert (
        middleware.process_exception(request, OperationalError("connection lost"))
        is None
    )
