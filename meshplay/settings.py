"""Settings, read from the environment (django-environ) with defaults that suit a local run.

Production sets at least SECRET_KEY, DEBUG=false, ALLOWED_HOSTS, DATABASE_URL, REDIS_URL and
CREDENTIAL_KEYS; the README lists every variable.
"""

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=True)
SECRET_KEY = env.str(
    "SECRET_KEY",
    default="django-insecure-local-only-key-change-me-0123456789abcdefghijklmnop",
)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# Keys for secrets at rest: comma-separated Fernet keys, the first one encrypts, all decrypt.
# Without them a key is derived from SECRET_KEY, which is fine for a local run only
# (a system check warns when DEBUG is off).
CREDENTIAL_KEYS = env.list("CREDENTIAL_KEYS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_fsm",
    "django_tables2",
    "django_filters",
    "django_htmx",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "axes",
    "core",
    "accounts",
    "credentials",
    "connections",
    "environments",
    "notifications",
    "maintenance",
    "live",
    "overview",
    "operations",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "core.errors.FriendlyErrors",  # the product's 404/500 pages with DEBUG on too (make run)
    "core.sessions.SessionCookieCheck",  # a cookie no key could be: no session, not a 500
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # last: it answers a locked-out sign-in (see AXES_* below)
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    # first: it refuses a locked-out sign-in before any password is checked
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

# Sign-in throttling (django-axes): AXES_FAILURE_LIMIT failures for one user name from one
# address lock that pair out for AXES_COOLOFF_MINUTES; a success resets the count.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = env.float("AXES_COOLOFF_MINUTES", default=15) / 60  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_SENSITIVE_PARAMETERS = ["password", "secret", "token", "key", "kubeconfig"]
# Behind a reverse proxy, list its addresses: the client is then read from X-Forwarded-For.
TRUSTED_PROXIES = env.list("TRUSTED_PROXIES", default=[])
AXES_CLIENT_IP_CALLABLE = "accounts.client_ip.client_ip"

# /metrics: a bearer token (Prometheus' `authorization` setting), or a signed-in staff user.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")

ROOT_URLCONF = "meshplay.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "live.context_processors.live_release",
            ],
        },
    },
    {  # the hot fragments only (the table's rows and state menus): core/jinja2.py
        "BACKEND": "django.template.backends.jinja2.Jinja2",
        "DIRS": [BASE_DIR / "templates" / "jinja2"],
        "APP_DIRS": False,
        "OPTIONS": {"environment": "core.jinja2.environment", "autoescape": True},
    },
]

WSGI_APPLICATION = "meshplay.wsgi.application"
ASGI_APPLICATION = "meshplay.asgi.application"

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
# PostgreSQL: connections are kept (a new one per request cost ~5-10 ms of every poll, most of
# an unchanged one) and checked before reuse; SQLite opens a file, nothing to keep.
_postgres = "postgresql" in DATABASES["default"]["ENGINE"]
DATABASES["default"].setdefault(
    "CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60 if _postgres else 0)
)
DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
if _postgres:
    # Short queries, many at once: PostgreSQL's JIT compiler spent 0.5-1 s compiling queries
    # that run in milliseconds once a table passed a million rows, and parallel workers made
    # the table's per-state counts read whole bitmaps (bench/table.py: 4.3 s -> 0.11 s a page).
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
        "options",
        env.str("PG_SESSION_OPTIONS", default="-c jit=off -c max_parallel_workers_per_gather=0"),
    )
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web, worker and beat share one SQLite file in the local run: wait for the lock instead of
    # failing, and take the write lock at the start of a transaction.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE"}
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "staticfiles")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "overview"
LOGOUT_REDIRECT_URL = "login"

# Security: on whenever DEBUG is off, so that `check --deploy` is clean in production.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Sessions: Django's cached_db engine, read from the cache (Redis, shared by every process) and
# written through to the database.
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
# load balancers and Prometheus reach these over plain HTTP inside the network
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# Celery: Redis when REDIS_URL is set; otherwise the embedded default chosen by `make run`.
REDIS_URL = env.str("REDIS_URL", default="")
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "memory://")
# The cache (sessions): Redis at CACHE_URL, else at REDIS_URL; without Redis none (sessions
# are then read from the database: a cache of one process would keep a signed-out session
# alive in the others). `make run` points CACHE_URL at its embedded Redis.
CACHE_URL = env.str("CACHE_URL", default=REDIS_URL if REDIS_URL.startswith("redis") else "")
CACHES = {
    "default": (
        {
            # Django's, whose errors are misses and whose entries live 5 minutes at most
            "BACKEND": "core.cache.RedisCache",
            "LOCATION": CACHE_URL,
            "KEY_PREFIX": "meshplay",
            "MAX_ENTRY_SECONDS": 300,
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
        if CACHE_URL
        else {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}
    )
}
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# A batch is acknowledged only when done: a worker killed mid-batch loses nothing (the message
# comes back, and the claims' lease lets the next round take those connections anyway).
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 300}
CELERY_TASK_ROUTES = {
    "connections.tasks.probe_batch": {"queue": "probes"},
    "connections.tasks.discover_cluster": {"queue": "discovery"},
}
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A broker that goes away, for however long: the worker keeps trying, once a second (see
# meshplay/broker.py, which also keeps a lost Redis connection from stopping it).
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
CELERY_WORKER_CONSUMER = "meshplay.broker:Consumer"

# Health probes: intervals and timeouts in seconds (see connections/health.py).
PROBE_INTERVAL = env.int("PROBE_INTERVAL", default=30)  # default per connection
# cap for disconnected ones: a recovery is seen within 2 minutes whatever the outage's length
PROBE_BACKOFF_MAX = env.int("PROBE_BACKOFF_MAX", default=110)
PROBE_TICK = env.float("PROBE_TICK", default=5.0)  # how often beat claims due connections
PROBE_BATCH_SIZE = env.int("PROBE_BATCH_SIZE", default=2500)  # connections per probes task
PROBE_BATCHES_PER_TICK = env.int("PROBE_BATCHES_PER_TICK", default=8)  # claimed per tick at most
PROBE_CONCURRENCY = env.int("PROBE_CONCURRENCY", default=500)  # probes in flight per batch
PROBE_PER_HOST_CONCURRENCY = env.int("PROBE_PER_HOST_CONCURRENCY", default=20)  # per batch
# Name lookups of probes: c-ares, at most this many at once, answers kept this many seconds;
# PROBE_DNS_SERVERS (host or host:port, comma-separated) overrides /etc/resolv.conf.
PROBE_DNS_SERVERS = env.list("PROBE_DNS_SERVERS", default=[])
PROBE_DNS_CONCURRENCY = env.int("PROBE_DNS_CONCURRENCY", default=64)
PROBE_DNS_CACHE_SECONDS = env.float("PROBE_DNS_CACHE_SECONDS", default=10.0)
# Probe now (connections/probing/now.py): a connection is probed at most every N s on demand,
# and a user asks at most M times a minute
PROBE_NOW_MIN_SECONDS = env.float("PROBE_NOW_MIN_SECONDS", default=10.0)
PROBE_NOW_PER_MINUTE = env.int("PROBE_NOW_PER_MINUTE", default=20)
PROBE_NOW_CONCURRENCY = env.int("PROBE_NOW_CONCURRENCY", default=2)  # at once, whoever asks
# A claimed connection's lease: renewed while its batch runs, so a killed worker's connections
# are claimed again within this many seconds.
PROBE_CLAIM_LEASE = env.int("PROBE_CLAIM_LEASE", default=15)
PROBE_RETRY_INTERVAL = env.int("PROBE_RETRY_INTERVAL", default=5)  # default per connection
# down this long: back off (an outage of up to 10 minutes is re-checked every interval)
PROBE_BACKOFF_AFTER = env.int("PROBE_BACKOFF_AFTER", default=600)
PROBE_APPLY_EVERY = env.float("PROBE_APPLY_EVERY", default=0.5)  # a batch writes results so often
# Locations (docs/locations.md): this worker's location (it consumes probes.<name>); how often
# its workers report, and after how long without a report a location is stale (no round is
# sent to it, it is left out of every count); how long past the probe timeout a round waits.
PROBE_LOCATION = env.str("PROBE_LOCATION", default="")
LOCATION_HEARTBEAT = env.float("LOCATION_HEARTBEAT", default=10.0)
LOCATION_STALE_AFTER = env.float("LOCATION_STALE_AFTER", default=35.0)
ROUND_GRACE = env.float("ROUND_GRACE", default=3.0)
if LOCATION_STALE_AFTER <= 2 * LOCATION_HEARTBEAT:
    raise ImproperlyConfigured(
        f"LOCATION_STALE_AFTER ({LOCATION_STALE_AFTER:g} s) must exceed two heartbeats "
        f"(LOCATION_HEARTBEAT {LOCATION_HEARTBEAT:g} s): a location would flap between online "
        "and stale."
    )
PROBE_HISTORY_KEEP = env.int("PROBE_HISTORY_KEEP", default=200)  # raw results per connection
PROBE_ALLOW_LINK_LOCAL = env.bool("PROBE_ALLOW_LINK_LOCAL", default=False)
# Optional allow-list of networks probes, discovery and scrapes may reach (empty: any).
PROBE_ALLOWED_NETWORKS = env.list("PROBE_ALLOWED_NETWORKS", default=[])
SCRAPE_INTERVAL = env.int("SCRAPE_INTERVAL", default=60)  # connected Prometheus / Grafana
DISCOVERY_INTERVAL = env.int("DISCOVERY_INTERVAL", default=300)  # connected clusters
# A discovery pass that has not ended by then is stopped (the worker's soft time limit; the
# process is killed 30 s later): an API server that trickles cannot hold a worker.
DISCOVERY_TIME_LIMIT = env.int("DISCOVERY_TIME_LIMIT", default=240)
# The network phase of a pass (listing the cluster) is cut at this many seconds, whatever the
# API server trickles, so one slow cluster costs this, not the worker; below the limit above.
DISCOVERY_PASS_TIMEOUT = env.int("DISCOVERY_PASS_TIMEOUT", default=60)
PRUNE_INTERVAL = env.int("PRUNE_INTERVAL", default=600)  # rolling up old probe results
SCRAPE_RETENTION = env.int("SCRAPE_RETENTION", default=7 * 24 * 3600)  # seconds of samples kept
PROBE_ROLLUP_RETENTION = env.int("PROBE_ROLLUP_RETENTION", default=90 * 24 * 3600)  # seconds
PRUNE_BATCH_SIZE = env.int("PRUNE_BATCH_SIZE", default=50_000)  # rows per pruning statement
# A pruning run stops starting batches after this many seconds (the next run goes on); kept
# well inside the task's 600 s soft time limit.
PRUNE_TIME_BUDGET = env.float("PRUNE_TIME_BUDGET", default=300.0)
# Uptime and mean latency per connection (connections/probing/uptime.py): how often beat
# refreshes them from the probe history, and the seconds a run may spend before the next resumes.
UPTIME_INTERVAL = env.int("UPTIME_INTERVAL", default=300)
UPTIME_TIME_BUDGET = env.float("UPTIME_TIME_BUDGET", default=120.0)
# Notifications (notifications/): how often beat routes and delivers, a delivery's timeout
# (connect and read each; a send is aborted at twice this), sends in flight per worker run.
NOTIFY_TICK = env.float("NOTIFY_TICK", default=5.0)
# Maintenance windows (maintenance/): how often beat applies them. A window starts and ends at
# most this late; a run is a few queries in the steady state, so it can be short.
MAINTENANCE_TICK = env.float("MAINTENANCE_TICK", default=15.0)
NOTIFY_TIMEOUT = env.float("NOTIFY_TIMEOUT", default=5.0)
NOTIFY_SEND_CONCURRENCY = env.int("NOTIFY_SEND_CONCURRENCY", default=8)
NOTIFY_TASK_TIME_LIMIT = env.int("NOTIFY_TASK_TIME_LIMIT", default=120)
NOTIFY_EVENT_RETENTION = env.int("NOTIFY_EVENT_RETENTION", default=30 * 24 * 3600)  # seconds
# Email channels go through Django's email backend: SMTP to EMAIL_HOST (set it and its friends).
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="meshplay@localhost")
# Every SMTP send through Django's default connection (invitations, password resets) gives up
# after this many seconds: a mail server that hangs costs the page that sends, not a worker.
EMAIL_TIMEOUT = env.float("EMAIL_TIMEOUT", default=10.0)
# Invitations (accounts/invitations.py): a link works once, for this many seconds (3 days).
INVITE_MAX_AGE = env.int("INVITE_MAX_AGE", default=3 * 24 * 3600)
# The Apprise services a channel may use (schemes); each is a network service.
NOTIFY_APPRISE_SCHEMES = env.list(
    "NOTIFY_APPRISE_SCHEMES",
    default=[
        *("json", "jsons", "form", "forms", "xml", "xmls", "ntfy", "ntfys", "slack", "msteams"),
        *("workflows", "discord", "tgram", "pagerduty", "opsgenie", "gotify", "gotifys"),
        *("matrix", "matrixs", "mailto", "mailtos", "pushover", "rocket", "rockets", "mmost"),
        *("mmosts", "gchat", "zulip", "wxteams", "signal", "signals", "pagertree"),
    ],
)

# (connect, total) per kind; "default" for the rest.
PROBE_TIMEOUTS = {
    "default": (env.float("PROBE_CONNECT_TIMEOUT", default=3.0), env.float("PROBE_TIMEOUT", 5.0)),
    "kubernetes": (
        env.float("PROBE_CONNECT_TIMEOUT", default=3.0),
        env.float("PROBE_KUBERNETES_TIMEOUT", default=8.0),
    ),
}

REST_FRAMEWORK = {
    # token first: an anonymous request then gets 401 with WWW-Authenticate, not 403
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.api.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "core.api.exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # JSON only, with a nesting limit: a body nested deeper than MAX_JSON_DEPTH answers 400
    "DEFAULT_PARSER_CLASSES": ["core.parsers.BoundedJSONParser"],
}
MAX_JSON_DEPTH = 32
SPECTACULAR_SETTINGS = {
    "TITLE": "Meshplay Connections API",
    "DESCRIPTION": "Connections, their lifecycle, environments and credentials.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],  # the schema is public
    "SWAGGER_UI_DIST": "SIDECAR",  # vendored assets: nothing from a CDN
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # the system's fonts: ReDoc's own (Montserrat, Roboto) would come from a CDN
    "REDOC_UI_SETTINGS": {
        "theme": {
            "typography": {
                "fontFamily": "system-ui, -apple-system, 'Segoe UI', sans-serif",
                "headings": {"fontFamily": "system-ui, -apple-system, 'Segoe UI', sans-serif"},
                "code": {"fontFamily": "ui-monospace, 'SFMono-Regular', Menlo, monospace"},
            }
        }
    },
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "ConnectionStatusEnum": "connections.choices.Status",
        "ConnectionKindEnum": "connections.kinds.KIND_CHOICES",
        "CredentialKindEnum": "credentials.models.CredentialKind",
        "BulkActionEnum": "connections.choices.BULK_ACTIONS",
        "TriggerEnum": "connections.choices.Trigger",
        "NotificationChannelKindEnum": "notifications.choices.ChannelKind",
        "NotificationMessageKindEnum": "notifications.choices.MessageKind",
        "NotificationCategoryEnum": "notifications.choices.Category",
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "line": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "line"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # httpx logs every request URL at INFO; probes log their own, secret-free lines.
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
    },
}

# Live refresh (live/): a polled fragment answers 304 while nothing it shows has changed. An
# ETag heals (renders again) within this many seconds, so a write no signal saw still shows;
# LIVE_RELEASE changes every ETag.
LIVE_STAMP_HEAL_SECONDS = env.int("LIVE_STAMP_HEAL_SECONDS", default=600)
# required when DEBUG is off (a system check says so); in development, empty: a digest of the
# templates, scripts, styles and the project's Python
LIVE_RELEASE = env.str("LIVE_RELEASE", default="")
# the product's 404 and 500 pages even with DEBUG on (off: Django's debug pages, for developers)
FRIENDLY_ERRORS = env.bool("FRIENDLY_ERRORS", default=True)
