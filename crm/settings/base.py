"""Settings shared by every environment; values that differ come from the environment."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import environ
from celery.schedules import crontab
from csp.constants import NONE, SELF
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()

SECRET_KEY = env("SECRET_KEY", default="dev-only-insecure-key-change-me-for-production")
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
DATA_DIR = Path(env("KEHU_DATA_DIR", default=str(BASE_DIR / "var")))

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django.contrib.postgres",
    "axes",
    "crispy_forms",
    "crispy_bootstrap5",
    "django_htmx",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "pgtrigger",
    "pghistory",
    "crm.core",
    "crm.accounts",
    "crm.scheduler",
    "crm.notifications",
    "crm.channels",
    "customers",
    "service",
    "service.property",
    "service.handover",
    "service.defects",
    "culture.deals",
    "culture.segments",
    "culture.value",
    "culture.satisfaction",
    "culture.scorecard",
    # Last: its demo seeder rebuilds the dashboard's rollups from every app's demo rows.
    "culture.dashboards",
]

MIDDLEWARE = [
    # First: every response carries X-Request-ID, and audit rows and logs the request id.
    "crm.core.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "crm.core.middleware.LanguageMiddleware",
    # No database connection to be had (refused, timed out, too many clients): a 503
    # with Retry-After before any middleware reads the session, not a 500 per request.
    "crm.core.middleware.DatabaseUnavailableMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # request.user.is_verified(): has this session passed its second step?
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "csp.middleware.CSPMiddleware",
    "crm.core.middleware.SessionLimitsMiddleware",
    # Sessions that owe their second step see only the code or enrolment page.
    "crm.accounts.middleware.TwoStepMiddleware",
    # Attaches the acting user and URL to every audit row written during a request.
    "pghistory.middleware.HistoryMiddleware",
    # A deadlock victim the services could not retry in time answers 503, not 500.
    "crm.core.middleware.TransientConflictMiddleware",
    # A GET parameter out of its domain range answers 400 with a message (bounds.py).
    "crm.core.bounds.BadParameterMiddleware",
    # A page number past a list's last page redirects there with a message (pagination.py).
    "crm.core.pagination.PageOutOfRangeMiddleware",
    # Last, as django-axes asks: it turns a lockout into the lockout page.
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    # django-axes first: it refuses a locked-out username/IP before the password check.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Brute force: 5 failures of one username from one IP lock it for 15 minutes.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
# Failed sign-ins from one address within a minute, across usernames, before the login
# form refuses that address (credential stuffing); high enough for an office behind NAT.
KEHU_LOGIN_FAILURES_PER_IP = env.int("KEHU_LOGIN_FAILURES_PER_IP", default=30)
# The client's address (crm/core/network.py): REMOTE_ADDR, or behind KEHU_PROXY_COUNT
# proxies of ours the hop the outermost one appended to X-Forwarded-For.
KEHU_PROXY_COUNT = env.int("KEHU_PROXY_COUNT", default=0)
AXES_CLIENT_IP_CALLABLE = "crm.core.network.client_ip"

# No inline script anywhere; styles may be inline (Bootstrap and htmx set them).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF, "'unsafe-inline'"],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "frame-ancestors": [NONE],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
    }
}

ROOT_URLCONF = "crm.urls"
WSGI_APPLICATION = "crm.wsgi.application"
AUTH_USER_MODEL = "accounts.User"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "crm.core.context_processors.navigation",
            ],
        },
    },
]

DATABASES = {
    "default": {
        **env.db_url("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/kehu"),
        "CONN_MAX_AGE": env.int("CONN_MAX_AGE", default=60),
        "CONN_HEALTH_CHECKS": True,
    }
}
DATABASES["default"].setdefault("OPTIONS", {})
DATABASES["default"]["OPTIONS"].setdefault("connect_timeout", 3)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env("REDIS_URL", default="redis://127.0.0.1:6379/0")

# Sessions in PostgreSQL, so a Redis outage cannot log everyone out or take the UI down.
SESSION_ENGINE = "django.contrib.sessions.backends.db"
# Idle timeout (the cookie is renewed on every request) and an absolute limit since login.
SESSION_COOKIE_AGE = env.int("SESSION_IDLE_SECONDS", default=60 * 30)
SESSION_SAVE_EVERY_REQUEST = True
KEHU_SESSION_ABSOLUTE_SECONDS = env.int(
    "SESSION_ABSOLUTE_SECONDS", default=60 * 60 * 10
)
# Two-step verification (TOTP app + backup codes, django-otp; crm/accounts/two_step.py):
# available to everyone; required for these roles, or for all staff. Production
# requires it for managers and admins (prod.py).
KEHU_MFA_REQUIRED_ROLES = env.list("KEHU_MFA_REQUIRED_ROLES", default=[])
KEHU_MFA_REQUIRED_FOR_ALL = env.bool("KEHU_MFA_REQUIRED_FOR_ALL", default=False)
OTP_TOTP_ISSUER = "Kehu CRM"
# After n wrong codes in a row no code is checked for factor * 2^(n-1) seconds:
# 16 s after 5, over 8 minutes after 10.
OTP_TOTP_THROTTLE_FACTOR = env.int("OTP_TOTP_THROTTLE_FACTOR", default=1)
OTP_STATIC_THROTTLE_FACTOR = OTP_TOTP_THROTTLE_FACTOR
# The admin lists devices but never shows their secrets (or backup codes) to anyone.
OTP_ADMIN_HIDE_SENSITIVE_DATA = True
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

AUTH_PASSWORD_VALIDATORS = [
    {
        "NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"
    },
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "crm.accounts.passwords.ContextWordsValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", _("简体中文")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env("TIME_ZONE", default="Asia/Shanghai")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
MEDIA_ROOT = DATA_DIR / "media"

CRISPY_ALLOWED_TEMPLATE_PACKS = "bootstrap5"
CRISPY_TEMPLATE_PACK = "bootstrap5"

EMAIL_BACKEND = env(
    "EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend"
)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="kehu@localhost")
# SMTP (production's EMAIL_BACKEND; README "E-mail and SMS").
EMAIL_HOST = env("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_USE_SSL = env.bool("EMAIL_USE_SSL", default=False)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=30)
# The development file backend writes one file per e-mail here.
EMAIL_FILE_PATH = env("EMAIL_FILE_PATH", default=str(DATA_DIR / "mail"))

# --- Messages to customers (crm/channels, docs/channels.md) ---
KEHU_SMS_BACKEND = env(
    "KEHU_SMS_BACKEND", default="crm.channels.backends.RecordingSmsBackend"
)
KEHU_SMS_FILE_PATH = env("KEHU_SMS_FILE_PATH", default=str(DATA_DIR / "sms"))
KEHU_SMS_GATEWAY_URL = env("KEHU_SMS_GATEWAY_URL", default="")
KEHU_SMS_GATEWAY_TOKEN = env("KEHU_SMS_GATEWAY_TOKEN", default="")
KEHU_SMS_GATEWAY_TIMEOUT = env.float("KEHU_SMS_GATEWAY_TIMEOUT", default=10)
# Deliveries of one message before it is failed (a permanent refusal fails at once).
KEHU_CHANNEL_MAX_ATTEMPTS = env.int("KEHU_CHANNEL_MAX_ATTEMPTS", default=3)
# The site's address as customers reach it, for links in e-mails and SMS.
KEHU_PUBLIC_URL = env("KEHU_PUBLIC_URL", default="http://127.0.0.1:8000")

# --- Celery (see docs/reliability.md: the database, not Redis, holds timed work) ---
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_ETA_TASK_LIMIT = 100
CELERY_WORKER_SOFT_SHUTDOWN_TIMEOUT = 10
CELERY_TIMEZONE = TIME_ZONE

# --- Access (docs/access.md): what each role sees of customers and their records ---
# Scopes: "own" (owned by me), "team" (mine or my team's), "department", "all".
KEHU_VISIBILITY = env.json(
    "KEHU_VISIBILITY",
    default={
        "sales": "team",
        "service": "all",
        "manager": "department",
        "admin": "all",
    },
)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "crm.core.audit.RequestIdLogFilter"}},
    "formatters": {
        "with_request_id": {
            "format": "%(levelname)s %(name)s [%(request_id)s] %(message)s"
        }
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["request_id"],
            "formatter": "with_request_id",
        }
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    # At DEBUG, django.template logs the whole template context (customer names, phone
    # numbers) for every missing variable: never below INFO, whatever LOG_LEVEL says.
    "loggers": {"django.template": {"level": "INFO"}},
}
# The security audit log (crm/core/audit.py) is kept at least 3 years: it holds the
# PIPL Art. 55-56 processing records (reveals, exports). `audit_purge` refuses less.
KEHU_AUDIT_RETENTION_DAYS = env.int("KEHU_AUDIT_RETENTION_DAYS", default=1095)
KEHU_UNMASKED_ROLES = env.list(
    "KEHU_UNMASKED_ROLES", default=["sales", "manager", "admin"]
)
# Encrypts ID numbers at rest (customers/identity.py); production must set its own.
KEHU_FIELD_KEY = env("KEHU_FIELD_KEY", default=SECRET_KEY)
# Public pool (公海) rules: how many pool customers one salesperson may hold through
# claims, and how many days without contact send a customer back to the pool.
KEHU_POOL_CLAIM_LIMIT = env.int("KEHU_POOL_CLAIM_LIMIT", default=50)
KEHU_POOL_RETURN_DAYS = env.int("KEHU_POOL_RETURN_DAYS", default=30)
KEHU_POOL_WARNING_DAYS = env.int("KEHU_POOL_WARNING_DAYS", default=3)
# Key accounts (tier A or flagged) with no contact for this many days get a follow-up.
KEHU_DORMANT_KEY_ACCOUNT_DAYS = env.int("KEHU_DORMANT_KEY_ACCOUNT_DAYS", default=30)
# The scheduled-action pipeline (crm/scheduler): how often the sweeper runs and how long
# a claimed action may take before another worker may claim it again.
KEHU_SWEEP_SECONDS = env.float("KEHU_SWEEP_SECONDS", default=15)
# The managers' dashboard: minutes between two incremental refreshes of its rollups
# (culture/dashboards/rollups.py, a scheduled action that re-arms itself).
KEHU_ROLLUP_MINUTES = env.int("KEHU_ROLLUP_MINUTES", default=10)
KEHU_ACTION_LEASE_SECONDS = env.int("KEHU_ACTION_LEASE_SECONDS", default=60)
# A failed action is retried after KEHU_ACTION_BACKOFF_SECONDS x 2 ** attempts (at most
# 30 x that), and after KEHU_ACTION_MAX_ATTEMPTS deliveries it is parked as needs_review
# for an admin (docs/reliability.md, "A poison action"): 20 s, 40 s ... ~15 min in all.
KEHU_ACTION_MAX_ATTEMPTS = env.int("KEHU_ACTION_MAX_ATTEMPTS", default=7)
KEHU_ACTION_BACKOFF_SECONDS = env.float("KEHU_ACTION_BACKOFF_SECONDS", default=10)
# The sweep has its own queue: behind a backlog of deliveries in the default queue it
# would wait, and so would every expired lease it exists to recover.
CELERY_TASK_ROUTES = {"crm.scheduler.tasks.actions_sweep_task": {"queue": "sweep"}}
CELERY_WORKER_QUEUES = "celery,sweep"  # what every worker must consume (-Q)
CELERY_BEAT_SCHEDULE = {
    "scheduled-actions-sweep": {
        "task": "crm.scheduler.tasks.actions_sweep_task",
        "schedule": KEHU_SWEEP_SECONDS,
        # A sweep that waited longer than one interval is pointless: the next one comes.
        "options": {"expires": KEHU_SWEEP_SECONDS},
    },
    "customers-daily": {
        "task": "customers.tasks.customers_daily_task",
        "schedule": crontab(hour=7, minute=0),
    },
    # Arms the managers' dashboard's next rollup refresh (a scheduled action) if the
    # chain of refreshes stopped; idempotent per time slot.
    "dashboards-rollups-arm": {
        "task": "culture.dashboards.tasks.rollups_arm_task",
        "schedule": KEHU_ROLLUP_MINUTES * 60,
        "options": {"expires": KEHU_ROLLUP_MINUTES * 60},
    },
    # The same for the culture scorecard's rollups (culture/scorecard/rollups.py).
    "scorecard-rollups-arm": {
        "task": "culture.scorecard.tasks.rollups_arm_task",
        "schedule": KEHU_ROLLUP_MINUTES * 60,
        "options": {"expires": KEHU_ROLLUP_MINUTES * 60},
    },
    # Arms the weekly culture report (culture/scorecard/weekly_report.py: a scheduled
    # action due Monday 08:00 that re-arms itself) if the chain stopped.
    "scorecard-weekly-report-arm": {
        "task": "culture.scorecard.tasks.weekly_report_arm_task",
        "schedule": crontab(hour=6, minute=0),
    },
    # A refresh of every dynamic segment (culture/segments), before the working day.
    "segments-daily": {
        "task": "culture.segments.tasks.segments_daily_task",
        "schedule": crontab(hour=5, minute=30),
    },
    # Sent surveys whose link no longer opens become 已过期 (culture/satisfaction).
    "surveys-expire": {
        "task": "culture.satisfaction.tasks.surveys_expire_task",
        "schedule": crontab(minute=41),
    },
    # Customer value (culture/value): schedules the revenue rollup's refresh and the
    # daily RFM and tier job as scheduled actions.
    "value-tick": {
        "task": "culture.value.tasks.value_tick_task",
        "schedule": 300,
        "options": {"expires": 300},
    },
    # 入伙 no-shows: an absent case per booked appointment whose day has passed
    # without check-in (service/handover/outcomes.py), after midnight.
    "handover-no-shows": {
        "task": "service.handover.tasks.no_shows_task",
        "schedule": crontab(hour=0, minute=30),
    },
    # Double-submission tokens (crm/core/once.py) older than a week.
    "form-submissions-purge": {
        "task": "crm.core.tasks.form_submissions_purge_task",
        "schedule": crontab(hour=3, minute=30),
    },
    # Rate-limit counters (crm/core/limits.py) whose window ended.
    "limit-counters-purge": {
        "task": "crm.core.tasks.limit_counters_purge_task",
        "schedule": crontab(minute=17),
    },
}
# Service desk: a breached ticket goes to the department's managers this long after its
# team lead was told; the public intake form accepts this many submissions an hour.
KEHU_ESCALATION_MANAGER_MINUTES = env.int("KEHU_ESCALATION_MANAGER_MINUTES", default=60)
# Service recovery (culture/satisfaction/recovery.py): an unhappy answer's recovery task
# is due this many hours after the answer; overdue, it escalates as an SLA breach does
# (the team lead at the due time, the department's managers KEHU_ESCALATION_MANAGER_MINUTES
# later).
KEHU_RECOVERY_HOURS = env.int("KEHU_RECOVERY_HOURS", default=24)
KEHU_INTAKE_PER_IP_HOUR = env.int("KEHU_INTAKE_PER_IP_HOUR", default=10)
KEHU_INTAKE_PER_PHONE_HOUR = env.int("KEHU_INTAKE_PER_PHONE_HOUR", default=3)
# The customer's personal link to a ticket (/report/t/<token>/): days it opens, and
# messages per client address and per ticket an hour.
KEHU_FOLLOW_LINK_DAYS = env.int("KEHU_FOLLOW_LINK_DAYS", default=30)
# An owner's personal 入伙 booking link (service/handover/links.py) lives at most this long.
KEHU_OWNER_LINK_DAYS = env.int("KEHU_OWNER_LINK_DAYS", default=60)
# Requests to the owners' booking pages (/o/…) per client address an hour, and the
# handover service desk's phone those pages give when online changes are closed.
KEHU_OWNER_PER_IP_HOUR = env.int("KEHU_OWNER_PER_IP_HOUR", default=300)
KEHU_HANDOVER_DESK_PHONE = env("KEHU_HANDOVER_DESK_PHONE", default="400-800-1234")
KEHU_FOLLOW_PER_IP_HOUR = env.int("KEHU_FOLLOW_PER_IP_HOUR", default=20)
# Defects (service/defects): hours from recording to the rectification due time, per
# severity; the contractor's personal link opens this many days; requests to the
# contractors' pages (/c/…) per client address an hour.
KEHU_DEFECT_DUE_HOURS = env.json(
    "KEHU_DEFECT_DUE_HOURS", default={"P0": 2, "P1": 24, "P2": 72}
)
KEHU_CONTRACTOR_LINK_DAYS = env.int("KEHU_CONTRACTOR_LINK_DAYS", default=14)
KEHU_CONTRACTOR_PER_IP_HOUR = env.int("KEHU_CONTRACTOR_PER_IP_HOUR", default=120)
KEHU_FOLLOW_PER_TICKET_HOUR = env.int("KEHU_FOLLOW_PER_TICKET_HOUR", default=10)
# The team (by name) whose queue a ticket without a routed category lands in when its
# creator is not on a desk team, e.g. from the public form (service/routing.py).
KEHU_TICKET_DEFAULT_TEAM = env("KEHU_TICKET_DEFAULT_TEAM", default="")
# Satisfaction surveys (culture/satisfaction, docs/satisfaction.md): the personal link
# opens this many days; the message leaves this many minutes after the case ends; the
# one reminder this many hours after it; answers per client address an hour.
KEHU_SURVEY_LINK_DAYS = env.int("KEHU_SURVEY_LINK_DAYS", default=7)
KEHU_SURVEY_DELAY_MINUTES = env.int("KEHU_SURVEY_DELAY_MINUTES", default=0)
KEHU_SURVEY_REMINDER_HOURS = env.int("KEHU_SURVEY_REMINDER_HOURS", default=48)
KEHU_SURVEY_PER_IP_HOUR = env.int("KEHU_SURVEY_PER_IP_HOUR", default=60)
# After each import batch or chunk, pause this many seconds per second of CPU it took,
# so an import leaves the cores to the web workers (customers/imports.py); 0: flat out.
KEHU_IMPORT_PAUSE_RATIO = env.float("KEHU_IMPORT_PAUSE_RATIO", default=1.0)
# An upload neither imported nor cancelled this many hours after it was stored is purged:
# its rows and, if still there, its file (customers/imports.py, a scheduled action).
KEHU_IMPORT_UNCONFIRMED_HOURS = env.int("KEHU_IMPORT_UNCONFIRMED_HOURS", default=24)
# The data rows one import file may hold (no fixed cap: files are read row by row) and
# its size in bytes (customers/imports.py).
KEHU_IMPORT_MAX_ROWS = env.int("KEHU_IMPORT_MAX_ROWS", default=50_000)
KEHU_IMPORT_MAX_BYTES = env.int("KEHU_IMPORT_MAX_BYTES", default=20 * 1024 * 1024)
# A finished import's rows (names, phones, reasons) and file are purged this many days
# after it finished; its summary stays (the daily customers job, `import_purge`).
KEHU_IMPORT_RETENTION_DAYS = env.int("KEHU_IMPORT_RETENTION_DAYS", default=30)
# Personal data controls (customers/exports.py, customers/services.py): an export of
# more rows than this needs a second person's approval; exports per user per day; ID
# number reveals per user per hour; how long an approved export may be downloaded.
KEHU_EXPORT_APPROVAL_ROWS = env.int("KEHU_EXPORT_APPROVAL_ROWS", default=200)
# Salespeople may import customers and export their own list (large exports still
# need a manager's approval); off by default: import and export are for managers.
KEHU_SALES_IMPORT_EXPORT = env.bool("KEHU_SALES_IMPORT_EXPORT", default=False)
KEHU_EXPORT_DAILY_LIMIT = env.int("KEHU_EXPORT_DAILY_LIMIT", default=10)
KEHU_EXPORT_DOWNLOAD_HOURS = env.int("KEHU_EXPORT_DOWNLOAD_HOURS", default=24)
KEHU_REVEAL_HOURLY_LIMIT = env.int("KEHU_REVEAL_HOURLY_LIMIT", default=30)
EXPORT_ROOT = DATA_DIR / "exports"
