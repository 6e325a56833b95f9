"""S4: every URL refuses an unsafe request without this session's CSRF token, and no
state change answers GET.

The URLs are those of the access matrix, each opened on its canary record, posted by a
persona that may use it (so that only the token stands in the way) and anonymously.
"""

from __future__ import annotations

import re
from pathlib import Path

from django.conf import settings
from django.test import Client
from django.urls import reverse

from tests.accounts.worlds import world  # noqa: F401 - a fixture
from tests.security.inventory import ACTORS, LOGIN, MATRIX, PROBE, rolled_back, warm

REPO = Path(__file__).resolve().parents[2]
ALLOWED = (200, 302, 400)


def _urls(world):  # noqa: ANN001, ANN202, F811
    """(method in the matrix, url, a persona the matrix lets use it) per matrix row."""
    warm(world)
    seen = set()
    for url_name, method, target, *statuses in MATRIX:
        if (url_name, target) in seen:
            continue
        seen.add((url_name, target))
        expected = dict(zip(ACTORS, statuses, strict=True))
        persona = next(
            (a for a in ACTORS[1:] if expected[a] in ALLOWED),
            next((a for a in ACTORS[1:] if expected[a] not in (LOGIN, PROBE)), None),
        )
        # The consumer's requests run inside, and what they create is undone after.
        with rolled_back(world):
            yield method, world.url(url_name, target), persona


def _client(world, persona) -> Client:  # noqa: ANN001, F811
    client = Client(enforce_csrf_checks=True, raise_request_exception=False)
    if persona:
        client.force_login(world.actors[persona])
    client.get(reverse("login"))  # sets this session's CSRF cookie
    return client


def _clients(world) -> dict[str, Client]:  # noqa: ANN001, F811
    """One signed-in client per persona, made before any row's savepoint (a session
    saved inside one would be rolled back with the row)."""
    return {persona: _client(world, persona) for persona in ACTORS[1:]}


def _token(client: Client) -> str:
    return client.cookies[settings.CSRF_COOKIE_NAME].value


def test_every_url_refuses_a_post_without_a_token(world):  # noqa: F811
    problems = []
    checked = 0
    anonymous = _client(world, None)
    clients = {None: anonymous, **_clients(world)}
    for _method, url, persona in _urls(world):
        for who, client in (("anonymous", anonymous), (persona, clients[persona])):
            status = client.post(url, {"name": "无令牌"}).status_code
            checked += 1
            if status != 403:
                problems.append(f"POST {url} as {who} without a token: {status}")
    # The middleware treats every unsafe method alike; a few URLs stand for the rest.
    admin = clients["admin_user"]
    for url in (reverse("customers:customer_create"), reverse("logout")):
        for method in (admin.put, admin.patch, admin.delete):
            status = method(url).status_code
            if status != 403:
                problems.append(f"{method.__name__} {url} without a token: {status}")
    # Django's own language switch is a POST too.
    status = anonymous.post(reverse("set_language"), {"language": "en"}).status_code
    if status != 403:
        problems.append(f"POST set_language without a token: {status}")
    assert not problems, "\n".join(problems)
    assert checked >= 2 * 60


def test_every_post_url_refuses_another_sessions_token_and_get(world):  # noqa: F811
    """Another session's token is refused (403), and a GET changes nothing (405)."""
    mallory = _client(world, "outsider")
    foreign_token = _token(mallory)
    problems = []
    clients = _clients(world)
    for method, url, persona in _urls(world):
        if method != "POST":
            continue
        client = clients[persona]
        assert _token(client) != foreign_token
        response = client.post(url, {"csrfmiddlewaretoken": foreign_token})
        if response.status_code != 403:
            problems.append(f"POST {url} as {persona}: {response.status_code}")
        response = client.post(url, {}, headers={"X-CSRFToken": foreign_token})
        if response.status_code != 403:
            problems.append(f"POST {url} as {persona} (header): {response.status_code}")
        status = client.get(url).status_code
        if status != 405:
            problems.append(f"GET {url} as {persona}: {status}")
    assert not problems, "\n".join(problems)


def test_the_sessions_own_token_is_accepted(world):  # noqa: F811
    """The refusals above are about the token: with the right one the same POST works."""
    client = _client(world, "sales_rep")
    url = reverse("notifications:notification_read_all")
    assert client.post(url).status_code == 403
    response = client.post(url, {"csrfmiddlewaretoken": _token(client)})
    assert response.status_code == 302


def test_no_view_is_exempt_from_csrf():
    skipped = {"tests", "node_modules", "var", "staticfiles"}
    sources = [
        path
        for top in REPO.iterdir()
        if top.is_dir() and not top.name.startswith(".") and top.name not in skipped
        for path in top.rglob("*.py")
    ]
    assert len(sources) > 50
    exempt = [
        str(path.relative_to(REPO))
        for path in sources
        if re.search(r"\bcsrf_exempt\b", path.read_text(errors="replace"))
    ]
    assert not exempt, exempt
