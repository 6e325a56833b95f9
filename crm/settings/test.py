"""Settings for the pytest suite: the real PostgreSQL and Redis, fast password hashing."""

from __future__ import annotations

import tempfile

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
