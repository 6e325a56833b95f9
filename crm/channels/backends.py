"""Where a message leaves Kehu: Django's mail backend for e-mail, and a pluggable SMS
backend chosen by `settings.KEHU_SMS_BACKEND` (a dotted path to a class).

An SMS backend is a class with `send(*, to, body, key) -> str` that returns the
provider's message id (or "") and raises `ChannelError` when the message did not leave:
`permanent=True` for a refusal that will not change (a bad number, a bad token), False
for one worth retrying (timeout, 5xx). `key` is unique per message: pass it on when the
provider can drop duplicates.
"""

from __future__ import annotations

import json
import smtplib
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from django.conf import settings
from django.core.mail import EmailMessage
from django.utils.module_loading import import_string


class ChannelError(Exception):
    def __init__(self, text: str, *, permanent: bool = False) -> None:
        super().__init__(text)
        self.permanent = permanent


class SmsBackend(Protocol):
    def send(self, *, to: str, body: str, key: str) -> str: ...


def sms_backend() -> SmsBackend:
    return import_string(settings.KEHU_SMS_BACKEND)()


class RecordingSmsBackend:
    """Development and tests: nothing leaves; each SMS is one JSON line appended to
    `KEHU_SMS_FILE_PATH/sms.jsonl` (var/sms/ by default), to read with `recorded()`."""

    FILE_NAME = "sms.jsonl"

    def __init__(self, folder: str | Path | None = None) -> None:
        self.folder = Path(folder or settings.KEHU_SMS_FILE_PATH)

    def send(self, *, to: str, body: str, key: str) -> str:
        self.folder.mkdir(parents=True, exist_ok=True)
        line = {"to": to, "body": body, "key": key, "at": datetime.now(UTC).isoformat()}
        with (self.folder / self.FILE_NAME).open("a", encoding="utf-8") as out:
            out.write(json.dumps(line, ensure_ascii=False) + "\n")
        return key

    def recorded(self) -> list[dict[str, Any]]:
        path = self.folder / self.FILE_NAME
        if not path.exists():
            return []
        lines = path.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]


class HttpGatewaySmsBackend:
    """An SMS gateway that takes a JSON POST (the example adapter; most Chinese SMS
    providers' HTTP APIs differ only in field names: subclass and override `payload`).

    POST KEHU_SMS_GATEWAY_URL with `Authorization: Bearer KEHU_SMS_GATEWAY_TOKEN`, an
    `Idempotency-Key` header and {"to", "text", "key"}; a 2xx answer may carry {"id"}.
    4xx (but 408 and 429) is a permanent refusal, anything else is retried.
    """

    def __init__(self) -> None:
        self.url = settings.KEHU_SMS_GATEWAY_URL
        self.token = settings.KEHU_SMS_GATEWAY_TOKEN
        self.timeout = settings.KEHU_SMS_GATEWAY_TIMEOUT

    def payload(self, *, to: str, body: str, key: str) -> dict[str, Any]:
        return {"to": to, "text": body, "key": key}

    def send(self, *, to: str, body: str, key: str) -> str:
        if not self.url.startswith(("https://", "http://")):
            raise ChannelError(
                "KEHU_SMS_GATEWAY_URL is not an http(s) URL", permanent=True
            )
        request = urllib.request.Request(  # noqa: S310 - the scheme is checked above
            self.url,
            data=json.dumps(self.payload(to=to, body=body, key=key)).encode(),
            method="POST",
            headers={
                "Content-Type": "application/json",
                "Authorization": f"Bearer {self.token}",
                "Idempotency-Key": key,
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:  # noqa: S310  # nosec B310 - http(s) only, checked above
                raw = answer.read(65536)
        except urllib.error.HTTPError as exc:
            permanent = 400 <= exc.code < 500 and exc.code not in (408, 429)
            raise ChannelError(
                f"gateway answered {exc.code}", permanent=permanent
            ) from exc
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise ChannelError(f"gateway unreachable: {exc}") from exc
        try:
            answer_id = json.loads(raw or b"{}").get("id", "")
        except (ValueError, AttributeError):
            answer_id = ""
        return str(answer_id)[:100]


def send_email(*, to: str, subject: str, body: str, key: str) -> str:
    """Through Django's mail backend (EMAIL_BACKEND: SMTP in production, files under
    var/mail/ in development)."""
    email = EmailMessage(
        subject=" ".join(subject.split())[:200],
        body=body,
        to=[to],
        headers={"X-Kehu-Idempotency-Key": key},
    )
    try:
        email.send()
    except smtplib.SMTPRecipientsRefused as exc:
        raise ChannelError(f"recipient refused: {exc}", permanent=True) from exc
    except (smtplib.SMTPException, OSError) as exc:
        raise ChannelError(f"mail server: {exc}") from exc
    return ""
