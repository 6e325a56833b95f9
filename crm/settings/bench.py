"""Settings for `make bench`: production-like (DEBUG off, production session behaviour),
plain HTTP on loopback, against the separate bench database.

Built on base rather than prod: prod requires deployment secrets and will enforce MFA,
neither of which a benchmark login can provide, and TLS belongs to the proxy in front.
The database is `kehu_bench` on the server that DATABASE_URL names (BENCH_DATABASE_URL
overrides it), so that a million generated customers never land in the development data.
"""

from __future__ import annotations

from .base import *  # noqa: F403
from .base import DATABASES, LOGGING, MIDDLEWARE, env

DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1"]

BENCH_DATABASE_NAME = "kehu_bench"
if env("BENCH_DATABASE_URL", default=""):
    DATABASES["default"].update(env.db_url("BENCH_DATABASE_URL"))
else:
    DATABASES["default"]["NAME"] = BENCH_DATABASE_NAME
# A data shape of the customer list (bench/shapes.py): its copy of the customer tables
# comes first on the search_path, the generated data is read for everything else.
KEHU_BENCH_SHAPE = env("KEHU_BENCH_SHAPE", default="")
if KEHU_BENCH_SHAPE:
    if not KEHU_BENCH_SHAPE.replace("_", "").isalpha():
        raise ValueError(f"KEHU_BENCH_SHAPE: not a shape name: {KEHU_BENCH_SHAPE!r}")
    DATABASES["default"].setdefault("OPTIONS", {})["options"] = (
        f"-c search_path=bench_shape_{KEHU_BENCH_SHAPE},public"
    )

# As in production: every request re-saves the session (idle timeout), one UPDATE each.
SESSION_SAVE_EVERY_REQUEST = True
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_SSL_REDIRECT = False

# No collectstatic step: static files are served from static/ (they are not measured).
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
EMAIL_BACKEND = "django.core.mail.backends.dummy.EmailBackend"
LOGGING["root"]["level"] = env("LOG_LEVEL", default="WARNING")

# Outermost, so that its timing covers every other middleware (sessions, auth) too.
MIDDLEWARE = ["crm.core.bench_middleware.QueryTimingMiddleware", *MIDDLEWARE]
# Where the middleware writes the heaviest query of a request that asks for it with the
# X-Kehu-Bench-Capture header; empty means never.
KEHU_BENCH_CAPTURE_DIR = env("KEHU_BENCH_CAPTURE_DIR", default="")
# The booking burst's 2,000 owners all come from 127.0.0.1 (bench/handover_burst.py);
# the per-address limit still counts every request, it just does not stop them.
KEHU_OWNER_PER_IP_HOUR = env.int("KEHU_OWNER_PER_IP_HOUR", default=1_000_000)
