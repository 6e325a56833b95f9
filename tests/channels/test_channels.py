"""The channel layer (crm/channels): messages queued in a transaction, delivered once
by the scheduled-action pipeline, through Django's mail backend or the SMS backend.

The HTTP gateway adapter is tested against a real HTTP server on 127.0.0.1 that
answers as a gateway would (no mock of urllib)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.utils import timezone

from crm.channels import registry
from crm.channels import services as channels
from crm.channels.backends import RecordingSmsBackend
from crm.channels.models import OutboundMessage
from crm.scheduler import services as scheduler
from crm.scheduler.models import ScheduledAction

pytestmark = pytest.mark.django_db
State = OutboundMessage.State
GATEWAY = "crm.channels.backends.HttpGatewaySmsBackend"


def deliver_due(now=None) -> list[int]:
    """Sweep as beat would and deliver each action as a worker would."""
    now = now or timezone.now()
    return [
        pk
        for pk in scheduler.actions_sweep(now=now)
        if scheduler.action_deliver(action_id=pk, now=now)
    ]


def refreshed(message: OutboundMessage) -> OutboundMessage:
    message.refresh_from_db()
    return message


@pytest.fixture
def sms_folder(settings, tmp_path):
    settings.KEHU_SMS_FILE_PATH = str(tmp_path / "sms")
    return tmp_path / "sms"


def test_an_email_is_queued_then_sent_once_through_django_mail(settings):
    message = channels.message_queue(
        channel="email",
        to="wang@example.com",
        subject="工单 2026000001 的回复",
        body="师傅明天上午到。",
        purpose="test",
        key="test:email:1",
    )
    assert message.state == State.QUEUED and mail.outbox == []

    assert deliver_due()
    assert (
        refreshed(message).state == State.SENT
        and message.sent_at
        and message.attempts == 1
    )
    assert len(mail.outbox) == 1
    sent = mail.outbox[0]
    assert sent.to == ["wang@example.com"] and sent.subject == "工单 2026000001 的回复"
    assert sent.extra_headers["X-Kehu-Idempotency-Key"] == "test:email:1"

    # Queued again with the same key, swept again: nothing more leaves.
    again = channels.message_queue(
        channel="email", to="wang@example.com", body="x", key="test:email:1"
    )
    assert again.pk == message.pk
    assert deliver_due(timezone.now() + timedelta(hours=1)) == []
    assert len(mail.outbox) == 1


def test_the_development_sms_backend_records_each_message(sms_folder):
    message = channels.message_queue(
        channel="sms", to="138 0013 8000", body="您的工单已受理。", key="test:sms:1"
    )
    assert message.to == "13800138000"
    deliver_due()
    assert refreshed(message).state == State.SENT
    recorded = RecordingSmsBackend().recorded()
    assert [(r["to"], r["body"]) for r in recorded] == [
        ("13800138000", "您的工单已受理。")
    ]
    assert (sms_folder / "sms.jsonl").exists()


def test_bad_addresses_are_refused_when_queued():
    with pytest.raises(ValidationError) as error:
        channels.message_queue(channel="email", to="not-an-address", body="x", key="k1")
    assert "邮箱地址无效" in str(error.value)
    with pytest.raises(ValidationError):
        channels.message_queue(channel="sms", to="call me", body="x", key="k2")
    assert not OutboundMessage.objects.exists()


def test_delivery_is_an_at_most_once_action_and_a_crash_mid_send_is_not_repeated(
    sms_folder, settings
):
    settings.KEHU_ACTION_LEASE_SECONDS = 30
    message = channels.message_queue(channel="sms", to="13800138000", body="x", key="k")
    action = ScheduledAction.objects.get(target_id=message.pk, kind=channels.DELIVER)
    now = timezone.now()
    assert scheduler.actions_sweep(now=now) == [action.pk]
    # The worker claims it (state sending) and dies before finishing.
    ScheduledAction.objects.filter(pk=action.pk).update(
        state=ScheduledAction.State.SENDING, lease_until=now + timedelta(seconds=30)
    )
    later = now + timedelta(minutes=5)
    assert scheduler.actions_sweep(now=later) == []
    action.refresh_from_db()
    assert action.state == ScheduledAction.State.NEEDS_REVIEW
    assert RecordingSmsBackend().recorded() == []
    assert refreshed(message).state == State.QUEUED


def test_outcome_callbacks_hear_sent_and_failed_and_cannot_undo_a_send(sms_folder):
    heard = []
    registry.on_outcome("test.outcome", lambda m: heard.append((m.pk, m.state)))

    def broken(message):
        raise RuntimeError("bug in a domain callback")

    registry.on_outcome("test.outcome", broken)
    message = channels.message_queue(
        channel="sms", to="13800138000", body="x", key="k-out", purpose="test.outcome"
    )
    deliver_due()
    assert heard == [(message.pk, State.SENT)]
    assert refreshed(message).state == State.SENT
    assert len(RecordingSmsBackend().recorded()) == 1


# --- the HTTP gateway adapter, against a real local server ------------------------------


class Gateway:
    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.answers: list[tuple[int, dict]] = []


@pytest.fixture
def gateway(settings) -> Iterator[Gateway]:
    state = Gateway()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            length = int(self.headers.get("Content-Length", 0))
            state.requests.append(
                {
                    "path": self.path,
                    "auth": self.headers.get("Authorization"),
                    "key": self.headers.get("Idempotency-Key"),
                    "json": json.loads(self.rfile.read(length)),
                }
            )
            status, body = (
                state.answers.pop(0) if state.answers else (200, {"id": "gw-1"})
            )
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.KEHU_SMS_BACKEND = GATEWAY
    settings.KEHU_SMS_GATEWAY_URL = f"http://127.0.0.1:{server.server_port}/send"
    settings.KEHU_SMS_GATEWAY_TOKEN = "secret-token"
    settings.KEHU_SMS_GATEWAY_TIMEOUT = 5
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def test_the_http_gateway_gets_a_json_post_with_the_token(gateway):
    message = channels.message_queue(
        channel="sms", to="13800138000", body="您的回复已送达", key="gw:1"
    )
    deliver_due()
    assert refreshed(message).state == State.SENT and message.provider_id == "gw-1"
    [request] = gateway.requests
    assert request["path"] == "/send"
    assert request["auth"] == "Bearer secret-token"
    assert request["key"] == "gw:1"
    assert request["json"] == {
        "to": "13800138000",
        "text": "您的回复已送达",
        "key": "gw:1",
    }


def test_a_gateway_error_is_retried_with_back_off_then_sent(gateway, settings):
    settings.KEHU_ACTION_BACKOFF_SECONDS = 10
    gateway.answers = [(503, {"error": "busy"})]
    message = channels.message_queue(
        channel="sms", to="13800138000", body="x", key="gw:2"
    )
    now = timezone.now()
    deliver_due(now)
    assert refreshed(message).state == State.QUEUED
    assert message.attempts == 1 and "503" in message.error
    # Not before the back-off.
    assert deliver_due(now + timedelta(seconds=5)) == []
    deliver_due(now + timedelta(minutes=2))
    assert refreshed(message).state == State.SENT and message.attempts == 2
    assert message.error == ""
    assert len(gateway.requests) == 2


def test_a_permanent_refusal_fails_at_once_and_retries_stop_at_the_limit(
    gateway, settings
):
    gateway.answers = [(400, {"error": "bad number"})]
    refused = channels.message_queue(
        channel="sms", to="13800138000", body="x", key="gw:3"
    )
    deliver_due()
    assert refreshed(refused).state == State.FAILED and "400" in refused.error
    assert refused.attempts == 1

    settings.KEHU_CHANNEL_MAX_ATTEMPTS = 2
    gateway.answers = [(500, {}), (500, {})]
    flaky = channels.message_queue(
        channel="sms", to="13800138001", body="x", key="gw:4"
    )
    now = timezone.now()
    deliver_due(now)
    deliver_due(now + timedelta(hours=1))
    assert refreshed(flaky).state == State.FAILED and flaky.attempts == 2
    assert deliver_due(now + timedelta(days=1)) == []
    assert len(gateway.requests) == 3


def test_an_unreachable_gateway_is_a_retry_not_a_crash(settings):
    settings.KEHU_SMS_BACKEND = GATEWAY
    settings.KEHU_SMS_GATEWAY_URL = "http://127.0.0.1:9/nothing-listens"
    settings.KEHU_SMS_GATEWAY_TIMEOUT = 2
    message = channels.message_queue(
        channel="sms", to="13800138000", body="x", key="gw:5"
    )
    deliver_due()
    assert refreshed(message).state == State.QUEUED and "unreachable" in message.error
