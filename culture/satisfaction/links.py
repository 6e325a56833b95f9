"""The customer's personal survey link (docs/satisfaction.md, "The link").

The URL carries `signing.dumps({"s": survey id, "n": nonce})` under its own salt, the
approach of the owners' booking links (service/handover/links.py): a token cannot be
forged, nor reused from another purpose. The row decides the rest: the link opens
until `expires_at` (KEHU_SURVEY_LINK_DAYS after it is sent) and once: answering
clears the nonce.
"""

from __future__ import annotations

import datetime as dt
import secrets

from django.conf import settings
from django.core import signing
from django.urls import reverse
from django.utils import timezone

from culture.satisfaction.models import Survey

LINK_SALT = "satisfaction.survey_link"
TOKEN_MAX = 300


class LinkError(Exception):
    """A link that opens no question. `reason`: invalid, expired or answered
    (`survey` is set for answered, for the thank-you page)."""

    def __init__(self, reason: str, survey: Survey | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.survey = survey


def new_nonce() -> str:
    return secrets.token_hex(16)


def link_lifetime() -> dt.timedelta:
    return dt.timedelta(days=settings.KEHU_SURVEY_LINK_DAYS)


def send_delay() -> dt.timedelta:
    return dt.timedelta(minutes=settings.KEHU_SURVEY_DELAY_MINUTES)


def expiry_from(now: dt.datetime) -> dt.datetime:
    """The link opens from when the message leaves for the lifetime."""
    return now + send_delay() + link_lifetime()


def token_for(survey: Survey) -> str:
    return signing.dumps({"s": survey.pk, "n": survey.nonce}, salt=LINK_SALT)


def url_for(survey: Survey) -> str:
    """The personal link as the customer opens it (KEHU_PUBLIC_URL + path)."""
    path = reverse("survey_answer", args=[token_for(survey)])
    return settings.KEHU_PUBLIC_URL.rstrip("/") + path


def open_link(token: str, *, now: dt.datetime | None = None) -> Survey:
    """The unanswered, unexpired survey a token names; LinkError otherwise."""
    now = now or timezone.now()
    if len(token) > TOKEN_MAX or not token.isprintable():
        raise LinkError("invalid")
    try:
        # The signature's own age is a second bound (a row's expiry changed by hand
        # cannot stretch a link for ever): the lifetime, the delay and a day's slack.
        data = signing.loads(
            token,
            salt=LINK_SALT,
            max_age=link_lifetime() + send_delay() + dt.timedelta(days=1),
        )
    except signing.SignatureExpired as exc:
        raise LinkError("expired") from exc
    except signing.BadSignature as exc:
        raise LinkError("invalid") from exc
    if not isinstance(data, dict) or not isinstance(data.get("s"), int):
        raise LinkError("invalid")
    survey = (
        Survey.objects.select_related("ticket", "customer").filter(pk=data["s"]).first()
    )
    if survey is None:
        raise LinkError("invalid")
    if survey.answered_at is not None:
        raise LinkError("answered", survey)
    if not survey.nonce or not secrets.compare_digest(
        survey.nonce, str(data.get("n", ""))
    ):
        raise LinkError("invalid")
    if survey.expires_at <= now:
        raise LinkError("expired")
    return survey
