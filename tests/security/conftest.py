"""One crawl of every GET page × every persona, shared by the header sweep (S2) and the
PII scanner (S14), plus the log lines captured while it ran.

The crawl runs once per test session inside a transaction that is rolled back, so it
costs one pass over the inventory whichever sweeps use it; the tests then only read
the recorded answers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from http.cookies import SimpleCookie

import pytest
from django.db import transaction
from django.test import Client, override_settings

from tests.security.inventory import (
    ACTORS,
    PROBE,
    body_of,
    build_world,
    get_rows,
    rolled_back,
    warm,
)

# The loggers whose output the log scan reads (our apps log under their module names).
CAPTURED_LOGGERS = ("django", "celery", "crm", "customers", "service")


@dataclass
class Answer:
    url_name: str
    target: str | None
    actor: str
    url: str
    status: int
    headers: dict[str, str]
    cookies: SimpleCookie
    body: str

    @property
    def is_html(self) -> bool:
        return self.headers.get("Content-Type", "").startswith("text/html")

    def __str__(self) -> str:
        return f"GET {self.url} as {self.actor} ({self.status})"


@dataclass
class Crawl:
    answers: list[Answer] = field(default_factory=list)
    log_lines: list[str] = field(default_factory=list)
    world_facts: dict = field(default_factory=dict)


class _ListHandler(logging.Handler):
    def __init__(self, lines: list[str]) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines = lines

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + logging.Formatter().formatException(record.exc_info)
        self.lines.append(f"{record.name}: {text}")


def _capture_logs(lines: list[str]):  # noqa: ANN202 - returns the undo function
    handler = _ListHandler(lines)
    saved = []
    for name in CAPTURED_LOGGERS:
        logger = logging.getLogger(name)
        saved.append((logger, logger.level))
        logger.setLevel(logging.DEBUG)
        logger.addHandler(handler)

    def undo() -> None:
        for logger, level in saved:
            logger.removeHandler(handler)
            logger.setLevel(level)

    return undo


def crawl_pages(world) -> list[Answer]:  # noqa: ANN001
    clients = {}
    for actor in ACTORS:
        client = Client(raise_request_exception=False)
        if actor != "anonymous":
            client.force_login(world.actors[actor])
        clients[actor] = client
    answers = []
    for url_name, target, expected in get_rows():
        with rolled_back(world):
            url = world.url(url_name, target)
            for actor in ACTORS:
                # The health probe pings the Celery workers (a second each): once will do.
                if expected[actor] == PROBE and actor != "anonymous":
                    continue
                response = clients[actor].get(url)
                answers.append(
                    Answer(
                        url_name=url_name,
                        target=target,
                        actor=actor,
                        url=url,
                        status=response.status_code,
                        headers=dict(response.headers),
                        cookies=response.cookies,
                        body=body_of(response),
                    )
                )
    return answers


@pytest.fixture(scope="session")
def crawl(django_db_setup, django_db_blocker, tmp_path_factory) -> Crawl:
    """Every GET row of the access matrix, requested by every persona, once."""
    result = Crawl()
    media = tmp_path_factory.mktemp("crawl-media")
    with django_db_blocker.unblock(), override_settings(MEDIA_ROOT=media):
        undo = _capture_logs(result.log_lines)
        try:
            with transaction.atomic():
                world = warm(build_world())
                result.answers = crawl_pages(world)
                result.world_facts = {
                    "customer_ids": {t: c.pk for t, c in world.customers.items()}
                }
                transaction.set_rollback(True)
        finally:
            undo()
    return result


@pytest.fixture(scope="module")
def sweep_world(django_db_setup, django_db_blocker, tmp_path_factory):
    """The personas and canaries, built once per module and rolled back after it.

    Modules using it mark themselves `django_db`: each test then runs in a savepoint
    inside this transaction, so one test's writes do not reach the next.
    """
    media = tmp_path_factory.mktemp("sweep-media")
    with django_db_blocker.unblock(), override_settings(MEDIA_ROOT=media):
        with transaction.atomic():
            yield build_world()
            transaction.set_rollback(True)
