"""A logged-in staff user over real HTTP (gunicorn), recording every answer with its time."""

from __future__ import annotations

import http.client
import http.cookiejar
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from bench.run import NoRedirect

TOKEN = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


@dataclass
class Answer:
    at: float  # wall clock when the request was sent
    method: str
    path: str
    status: int  # 0: no HTTP answer (connection refused or reset, timeout)
    seconds: float
    error: str = ""


@dataclass
class HttpLog:
    answers: list[Answer] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, answer: Answer) -> None:
        with self.lock:
            self.answers.append(answer)

    def snapshot(self) -> list[Answer]:
        with self.lock:
            return list(self.answers)


class WebUser:
    """One browser-like session: cookies, CSRF token from the form, no redirects followed."""

    def __init__(self, base: str, log: HttpLog, timeout: float = 15) -> None:
        self.base = base
        self.log = log
        self.timeout = timeout
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}),
            urllib.request.HTTPCookieProcessor(self.jar),
            NoRedirect(),
        )
        self.token = ""

    def request(
        self, path: str, data: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        req = urllib.request.Request(self.base + path, data=body)  # noqa: S310 - loopback
        began, wall = time.monotonic(), time.time()
        status, payload, error = 0, b"", ""
        try:
            with self.opener.open(req, timeout=self.timeout) as response:
                status, payload = response.status, response.read()
        except urllib.error.HTTPError as failure:
            status, payload = failure.code, failure.read()
        except (
            TimeoutError,
            urllib.error.URLError,
            http.client.HTTPException,
            ConnectionError,
            OSError,
        ) as failure:
            error = f"{type(failure).__name__}: {failure}"
        self.log.add(
            Answer(
                at=wall,
                method="POST" if data is not None else "GET",
                path=path,
                status=status,
                seconds=round(time.monotonic() - began, 3),
                error=error,
            )
        )
        return status, payload

    def login(self, username: str, password: str) -> None:
        status, page = self.request("/accounts/login/")
        token = TOKEN.search(page.decode(errors="replace"))
        if status != 200 or not token:
            raise RuntimeError(f"login page answered {status}")
        status, _ = self.request(
            "/accounts/login/",
            {
                "username": username,
                "password": password,
                "csrfmiddlewaretoken": token.group(1),
            },
        )
        if status != 302:
            raise RuntimeError(f"login as {username} failed (HTTP {status})")

    def form_token(self, path: str) -> str:
        """The CSRF token of the form at `path` (login rotates it, so ask afterwards)."""
        status, page = self.request(path)
        token = TOKEN.search(page.decode(errors="replace"))
        if status != 200 or not token:
            raise RuntimeError(f"no form at {path} (HTTP {status})")
        self.token = token.group(1)
        return self.token

    def post_form(self, path: str, fields: dict[str, Any]) -> int:
        data = {k: str(v) for k, v in fields.items()}
        data["csrfmiddlewaretoken"] = self.token
        status, _ = self.request(path, data)
        return status
