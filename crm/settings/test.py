"""Settings for the pytest suite: the real PostgreSQL and Redis, fast password hashing."""

from __future__ import annotations

import os
import tempfile
from urllib.parse import urlsplit, urlunsplit

from .base import *  # noqa: F403

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
# Serve static files straight from static/ without collectstatic.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True

# Django's test client logs in without a request, which django-axes refuses; the axes
# tests put its backend back (tests/accounts/test_lockout.py).
AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend"]

# Tests travel in time by hours and days; the idle and absolute session limits are
# tested on their own (tests/core/test_security_headers.py) with the real values.
SESSION_COOKIE_AGE = 60 * 60 * 24 * 366
KEHU_SESSION_ABSOLUTE_SECONDS = 60 * 60 * 24 * 366

# Two-step verification is optional here; tests/accounts/test_mfa.py turns it on.
KEHU_MFA_REQUIRED_ROLES: list[str] = []
KEHU_MFA_REQUIRED_FOR_ALL = False

# SMS recorded by the development backend go to a private folder, not var/sms/.
KEHU_SMS_FILE_PATH = tempfile.mkdtemp(prefix="kehu-test-sms-")

# pytest-xdist (`make test` runs most of the suite in worker processes gw0, gw1, ...):
# pytest-django gives each worker its own test database (test_<name>_gw0, ...), and here
# each gets its own Redis database too, the one N after REDIS_URL's for worker gwN
# (modulo Redis's 16), so that one worker's broker tests never count or take the other's
# messages. The worker's URL goes into the environment, marked with the worker's name:
# a process a test starts with these settings (a Celery worker) inherits both and keeps
# that URL, or the one the test gives it, instead of moving on again.


def redis_url_for_worker(url: str, worker: str) -> str:
    """`url` with its database moved on by the worker's number (gw0: the same)."""
    parts = urlsplit(url)
    database = int(parts.path.strip("/") or 0)
    moved = (database + int(worker.removeprefix("gw"))) % 16
    return urlunsplit(parts._replace(path=f"/{moved}"))


_XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
if _XDIST_WORKER and os.environ.get("KEHU_TEST_REDIS_WORKER") != _XDIST_WORKER:
    REDIS_URL = redis_url_for_worker(REDIS_URL, _XDIST_WORKER)  # noqa: F405
    CELERY_BROKER_URL = REDIS_URL
    os.environ["REDIS_URL"] = REDIS_URL
    os.environ["KEHU_TEST_REDIS_WORKER"] = _XDIST_WORKER
