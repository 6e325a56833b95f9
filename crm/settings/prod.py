"""Production settings: everything secret or site-specific comes from the environment.

`DJANGO_SETTINGS_MODULE=crm.settings.prod manage.py check --deploy` passes with no warnings.
Kehu expects a TLS-terminating proxy in front that sets X-Forwarded-Proto.
"""

from __future__ import annotations

from .base import *  # noqa: F403
from .base import env

DEBUG = False
SECRET_KEY = env("SECRET_KEY")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS")
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
EMAIL_BACKEND = env(
    "EMAIL_BACKEND", default="django.core.mail.backends.smtp.EmailBackend"
)
KEHU_FIELD_KEY = env("KEHU_FIELD_KEY")
# Managers and admins sign in with a second factor (docs/security.md).
KEHU_MFA_REQUIRED_ROLES = env.list(
    "KEHU_MFA_REQUIRED_ROLES", default=["manager", "admin"]
)
