"""Production settings pass Django's deployment checks; Celery never loses a task."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys

from django.conf import settings

from crm.celery import app as celery_app


def _manage(*args: str, **env: str | None) -> subprocess.CompletedProcess:
    """Run manage.py with production settings; a None in `env` unsets that variable."""
    inherited = {k: v for k, v in os.environ.items() if k != "DEBUG"}
    environment = {
        **inherited,
        "DJANGO_SETTINGS_MODULE": "crm.settings.prod",
        "SECRET_KEY": secrets.token_urlsafe(64),
        # Production needs its own key for encrypted fields where the app has them.
        "KEHU_FIELD_KEY": secrets.token_urlsafe(64),
        "ALLOWED_HOSTS": "crm.example.com",
        **env,
    }
    environment = {k: v for k, v in environment.items() if v is not None}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=settings.BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_production_settings_pass_check_deploy_without_warnings():
    result = _manage("check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_a_secret_key():
    result = _manage("check", SECRET_KEY=None)
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_production_ignores_debug_from_the_environment():
    result = _manage(
        "shell",
        "-c",
        "from django.conf import settings; print(settings.DEBUG)",
        DEBUG="true",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "False"


def test_celery_acknowledges_late_and_requeues_tasks_of_a_lost_worker():
    conf = celery_app.conf
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1


def test_celery_uses_the_configured_redis_as_broker():
    assert celery_app.conf.broker_url == settings.REDIS_URL
