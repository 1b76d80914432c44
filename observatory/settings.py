"""Django settings, read from the environment (see the configuration table in README.md).

Defaults are the safe production ones: DEBUG is off, secure cookies and HSTS are on, and a
SECRET_KEY must be supplied. `make run` and `make test` set what a laptop needs.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import dj_database_url

from observatory.env import (
    ConfigError,
    env_bool,
    env_host_port,
    env_int,
    env_list,
    env_networks,
    env_required,
    env_str,
    secret_key_problem,
)
from observatory.logs import log_settings_from_env, logging_config

BASE_DIR = Path(__file__).resolve().parent.parent
# Local state of `make run` (embedded PostgreSQL, file broker); ignored by git.
DEVDATA_DIR = Path(env_str("OBSERVATORY_DEVDATA", str(BASE_DIR / ".devdata")))

DEBUG = env_bool("DEBUG", False)

if DEBUG:
    SECRET_KEY = env_str("SECRET_KEY", "django-insecure-development-only-never-use-in-production")
else:
    SECRET_KEY = env_required(
        "SECRET_KEY",
        "it is required when DEBUG is off; generate one with "
        "`python -c 'import secrets; print(secrets.token_urlsafe(50))'`.",
    )
    _problem = secret_key_problem(SECRET_KEY)
    if _problem:
        raise ConfigError(f"SECRET_KEY is too weak for production ({_problem}).")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
# Absolute URL of this deployment, used in emails and in what `make run` prints.
SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "drf_spectacular",
    "axes",
    "observatory.accounts",
    "observatory.tenancy",
    "observatory.calls",
    "observatory.pricing",
    "observatory.metrics",
    "observatory.notifications",
    "observatory.budgets",
    "observatory.alerts",
    "observatory.demo",
    "observatory.audit",
    "observatory.reliability",
    "ingest",
    "dashboards",
]

MIDDLEWARE = [
    "observatory.request_id.RequestIdMiddleware",
    "observatory.health.middleware.ProbeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Before everything only pages need: see ingest/middleware.py.
    "ingest.middleware.IngestFastPathMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "dashboards.middleware.ContentSecurityPolicyMiddleware",
    "observatory.health.middleware.DatabaseUnavailableMiddleware",
    # Last, so that it turns a locked-out login into the login page saying so.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "observatory.urls"
WSGI_APPLICATION = "observatory.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------
_database_url = env_required(
    "DATABASE_URL",
    "point it at PostgreSQL (postgres://user:password@host:5432/name), "
    "or use `make run` / `make test`, which start an embedded PostgreSQL.",
)
try:
    _database = dj_database_url.parse(
        _database_url,
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0),
        conn_health_checks=True,
    )
except ValueError as error:
    raise ConfigError(f"DATABASE_URL is not a valid database URL ({error}).") from None
if _database.get("ENGINE") != "django.db.backends.postgresql":
    raise ConfigError("DATABASE_URL must point at PostgreSQL (postgres:// or postgresql://).")
_database.setdefault("OPTIONS", {})["connect_timeout"] = env_int("DATABASE_CONNECT_TIMEOUT", 5, minimum=1)
# Django turns psycopg's prepared statements off altogether, which also ignores an explicit
# prepare=True. The ingest insert asks for it: planning that statement cost more than running
# it. A threshold no query reaches keeps everything else as Django runs it (Django's own
# client-side binding cursors are never prepared). Off behind a pooler in transaction mode
# that cannot carry prepared statements.
if env_bool("DATABASE_PREPARED_STATEMENTS", True):
    _database["OPTIONS"]["prepare_threshold"] = 2**31 - 1
DATABASES = {"default": _database}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Accounts -------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
# Login rate limiting (django-axes): after LOGIN_FAILURE_LIMIT failed logins for one email from
# one address, that pair is refused for LOGIN_LOCKOUT_MINUTES, counted in the database so that
# every web process agrees. Keying on the pair keeps a stranger from locking the owner out
# from elsewhere. API keys never go through this: they are not logins.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5, minimum=1, maximum=1000)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_LOCKOUT_MINUTES", 15, minimum=1, maximum=7 * 24 * 60))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
# A lockout lasts LOGIN_LOCKOUT_MINUTES from the last counted failure; attempts while locked
# out do not extend it, so the owner knows when to come back.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_RESET_ON_SUCCESS = True
AXES_USERNAME_CALLABLE = "observatory.accounts.lockout.login_username"
AXES_CLIENT_IP_CALLABLE = "observatory.accounts.lockout.login_client_address"
AXES_LOCKOUT_CALLABLE = "dashboards.views.login.login_locked_out"
# Successful logins are not logged to the database: only failures are needed to lock out.
AXES_DISABLE_ACCESS_LOG = True
# No start-up banner: every command (and its one-sentence errors) would print it.
AXES_VERBOSE = False
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- Time -----------------------------------------------------------------------------
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_TZ = True
USE_I18N = False
LANGUAGE_CODE = "en-us"

# --- Static files (plotly.js and our CSS are served by whitenoise; no CDN) --------------
STATIC_URL = "/static/"
# Where collectstatic writes (the image collects at build time); whitenoise serves from here.
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
# plotly.js comes from the pinned plotly package (dashboards/staticfiles.py), not from a CDN.
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    "dashboards.staticfiles.PlotlyFinder",
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# --- Security (production defaults; see `manage.py check --deploy`) --------------------
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
# Behind a TLS-terminating proxy, trust its X-Forwarded-Proto header.
BEHIND_PROXY = env_bool("BEHIND_PROXY", False)
if BEHIND_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"

# --- Email ----------------------------------------------------------------------------
EMAIL_HOST = env_str("EMAIL_HOST")
if EMAIL_HOST:
    EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
else:
    # No SMTP server configured: print mail to the log rather than lose it silently.
    EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_PORT = env_int("EMAIL_PORT", 587, minimum=1, maximum=65535)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    raise ConfigError("EMAIL_USE_TLS and EMAIL_USE_SSL are both on: choose one.")
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10, minimum=1)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Observatory <observatory@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Celery ---------------------------------------------------------------------------
# With no broker configured, messages go through files under .devdata so that a laptop
# needs no Redis or RabbitMQ; production sets CELERY_BROKER_URL (see docker-compose.yml).
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL")
if CELERY_BROKER_URL is None:
    _broker_dir = DEVDATA_DIR / "broker"
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "control_folder": str(_broker_dir / "control"),
    }
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 240, minimum=1)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 300, minimum=1)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A pool process holding more than this after a job is replaced by a fresh one: a bound on
# memory a job might keep (bench/soak.py measures the pool process; it is flat today).
CELERY_WORKER_MAX_MEMORY_PER_CHILD = env_int("CELERY_WORKER_MAX_MEMORY_MB", 512, minimum=64) * 1024  # KiB
CELERY_TIMEZONE = "UTC"
# One queue name for this deployment's jobs unless routes say otherwise; two deployments (or
# two test runs) sharing a broker stay apart by using different names.
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_TASK_DEFAULT_QUEUE", "celery")
if CELERY_TASK_SOFT_TIME_LIMIT >= CELERY_TASK_TIME_LIMIT:
    raise ConfigError(
        f"CELERY_TASK_SOFT_TIME_LIMIT={CELERY_TASK_SOFT_TIME_LIMIT} must be smaller than "
        f"CELERY_TASK_TIME_LIMIT={CELERY_TASK_TIME_LIMIT}, or jobs are killed before being asked to stop."
    )
if CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    # Redis has no acknowledgements: a message taken by a worker that then dies is handed out
    # again only after the visibility timeout. It must outlast the longest task, or a slow
    # task would run twice; the sweep that returns such messages runs a few times per timeout.
    _visibility = env_int("CELERY_BROKER_VISIBILITY_TIMEOUT", 3600, minimum=2)
    if _visibility <= CELERY_TASK_TIME_LIMIT:
        raise ConfigError(
            f"CELERY_BROKER_VISIBILITY_TIMEOUT={_visibility} must be longer than "
            f"CELERY_TASK_TIME_LIMIT={CELERY_TASK_TIME_LIMIT}, or a running task would be handed out twice."
        )
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": _visibility,
        "unacked_restore_interval": max(1, min(60, _visibility // 10)),
        "unacked_restore_throttle": 1,
        # Every sweep holds a lock in Redis for a moment; a worker killed while holding it
        # blocks everyone's sweeps until the lock expires (kombu's default: 300 s), so
        # messages of a dead worker came back that much later than the visibility timeout.
        "unacked_mutex_expire": max(5, min(300, _visibility // 2)),
        "socket_connect_timeout": 5,
    }

# --- Call store -----------------------------------------------------------------------
# Raw calls and their content are kept this long; whole daily partitions are dropped after.
RETENTION_DAYS = env_int("RETENTION_DAYS", 30, minimum=1, maximum=3650)
# Daily partitions are created this many days ahead of today by the upkeep job.
PARTITIONS_AHEAD_DAYS = env_int("PARTITIONS_AHEAD_DAYS", 7, minimum=2, maximum=90)
# Ingest refuses calls that started longer ago than this (or than RETENTION_DAYS, if shorter)
# or further in the future than INGEST_MAX_FUTURE_MINUTES (clock skew allowance).
INGEST_MAX_PAST_DAYS = env_int("INGEST_MAX_PAST_DAYS", 30, minimum=1, maximum=3650)
INGEST_MAX_FUTURE_MINUTES = env_int("INGEST_MAX_FUTURE_MINUTES", 10, minimum=0, maximum=1440)
# Requests per second one API key may make to ingest endpoints (0: unlimited). A key's own
# limit, set in the admin or the API, wins.
INGEST_RATE_LIMIT_PER_SECOND = env_int("INGEST_RATE_LIMIT_PER_SECOND", 1000, minimum=0)
# Largest request body ingest reads, before and after gzip decompression (413 beyond it).
INGEST_MAX_BODY_BYTES = env_int("INGEST_MAX_BODY_BYTES", 10 * 1024 * 1024, minimum=64 * 1024, maximum=512 * 1024 * 1024)
# Django refuses to read a body above DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB by default); the
# ingest limit is the one limit for every body, so an ingest request is never cut short by
# Django before ingest can answer 413. A proxy in front must allow at least as much.
DATA_UPLOAD_MAX_MEMORY_SIZE = INGEST_MAX_BODY_BYTES

# --- Cache (rate limits, guard answers) -----------------------------------------------
# A shared cache makes per-key limits hold across web workers; without one each process
# counts on its own.
_cache_url = env_str("CACHE_URL")
if _cache_url:
    if not _cache_url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError("CACHE_URL must be a redis:// or rediss:// URL.")
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": _cache_url}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Metrics --------------------------------------------------------------------------
# Hour and day rollups (and per-user days) are kept this long, well beyond raw calls.
ROLLUP_RETENTION_DAYS = env_int("ROLLUP_RETENTION_DAYS", 400, minimum=1, maximum=36500)
if ROLLUP_RETENTION_DAYS < RETENTION_DAYS:
    raise ConfigError(
        f"ROLLUP_RETENTION_DAYS={ROLLUP_RETENTION_DAYS} is shorter than RETENTION_DAYS={RETENTION_DAYS}: "
        "rollups must outlive the raw calls they summarise."
    )
# Minute rollups (per project and per user) are kept this many days.
ROLLUP_MINUTE_RETENTION_DAYS = env_int("ROLLUP_MINUTE_RETENTION_DAYS", 3, minimum=2, maximum=90)
# How often the rollup job runs; a call shows in rollups within about this plus the job's time.
ROLLUP_INTERVAL_SECONDS = env_int("ROLLUP_INTERVAL_SECONDS", 10, minimum=1, maximum=600)

# --- Budgets and alerts ---------------------------------------------------------------
# The guard endpoint answers from spend recorded by a job every BUDGET_GUARD_REFRESH_SECONDS,
# cached for up to BUDGET_GUARD_CACHE_SECONDS per web process: its answers are at most about
# the sum of the two behind (README, "Budgets and alerts").
BUDGET_GUARD_REFRESH_SECONDS = env_int("BUDGET_GUARD_REFRESH_SECONDS", 10, minimum=1, maximum=600)
BUDGET_GUARD_CACHE_SECONDS = env_int("BUDGET_GUARD_CACHE_SECONDS", 5, minimum=0, maximum=300)
# Seconds before a webhook that does not answer counts as a failed delivery.
ALERT_WEBHOOK_TIMEOUT = env_int("ALERT_WEBHOOK_TIMEOUT", 10, minimum=1, maximum=120)
# Webhooks reach public addresses only, so that a project admin cannot make the worker post to
# the deployment's own network (a cloud metadata service, an admin port). Private, loopback and
# link-local networks listed here are allowed too, e.g. an internal chat server.
ALERT_WEBHOOK_ALLOWED_NETWORKS = env_networks("ALERT_WEBHOOK_ALLOWED_NETWORKS")
# Attempts per email or webhook (1, 2, 4 ... minutes apart, at most an hour) before giving up.
ALERT_DELIVERY_MAX_ATTEMPTS = env_int("ALERT_DELIVERY_MAX_ATTEMPTS", 8, minimum=1, maximum=50)
# Local hour (in each project's time zone) from which the previous day's spend digest is sent.
SPEND_DIGEST_HOUR = env_int("SPEND_DIGEST_HOUR", 7, minimum=0, maximum=23)

# --- REST API -------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "observatory.tenancy.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Observatory API",
    "DESCRIPTION": "Ingest LLM call records and read calls, traces, metrics and budgets.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # 3.1: the ingest schemas come from msgspec, which writes nullable fields as JSON Schema does.
    "OAS_VERSION": "3.1.0",
    # Choice sets whose field names (kind, status, state) other components use too.
    "ENUM_NAME_OVERRIDES": {
        "CallKindEnum": "observatory.calls.models.CallKind",
        "CallStatusEnum": "observatory.calls.models.CallStatus",
        "AlertRuleKindEnum": "observatory.alerts.models.RuleKind",
        "AlertRuleStateEnum": "observatory.alerts.models.RuleState",
        "NotificationKindEnum": "observatory.notifications.models.NotificationKind",
        "DeliveryStatusEnum": "observatory.notifications.models.DeliveryStatus",
        "ScorecardStatusEnum": "observatory.reliability.scorecard.STATUS_VALUES",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "ingest.openapi.add_ingest_components",
    ],
}

# --- Logging --------------------------------------------------------------------------
# JSON lines unless DEBUG (LOG_FORMAT=json|text); see observatory/logs.py.
LOG_FORMAT, LOG_LEVEL = log_settings_from_env()
LOGGING = logging_config(log_format=LOG_FORMAT, level=LOG_LEVEL)

# --- Operations: readiness, metrics -----------------------------------------------------
# Seconds /readyz and /metrics wait for the broker before reporting it down.
HEALTH_CHECK_TIMEOUT = env_int("HEALTH_CHECK_TIMEOUT", 2, minimum=1, maximum=30)
# /metrics answers a request bearing this token, or one from these networks; with neither
# set it answers 404, so metrics are never public by accident.
METRICS_TOKEN = env_str("METRICS_TOKEN")
if METRICS_TOKEN is not None and len(METRICS_TOKEN) < 16:
    raise ConfigError(f"METRICS_TOKEN is {len(METRICS_TOKEN)} characters long; use at least 16.")
METRICS_ALLOWED_NETWORKS = env_networks("METRICS_ALLOWED_NETWORKS")
# Where a Celery worker serves its own metrics (task outcomes, alert sends); off when unset.
WORKER_METRICS_BIND = env_host_port("WORKER_METRICS_BIND")
