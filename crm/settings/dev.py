"""Development settings used by `make run`."""

from __future__ import annotations

from .base import *  # noqa: F403
from .base import env

DEBUG = env.bool("DEBUG", default=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Serve static files straight from static/ without collectstatic.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
# Two-step verification stays optional so that the demo logins `make run` prints work.
KEHU_MFA_REQUIRED_ROLES = env.list("KEHU_MFA_REQUIRED_ROLES", default=[])
# E-mails to customers and staff land as files in var/mail/ (EMAIL_FILE_PATH).
EMAIL_BACKEND = env(
    "EMAIL_BACKEND", default="django.core.mail.backends.filebased.EmailBackend"
)
