"""Settings for the station backend, read from the environment (see .env.example)."""

import os
import tempfile
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# A .env file beside manage.py is read when present; real environment variables win. It is
# optional: without the check, django-environ logs a "not found … check this" line.
if (BASE_DIR / ".env").is_file():
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)

SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("Set SECRET_KEY (or DEBUG=1 for local development).")
    SECRET_KEY = "django-insecure-local-development-only"

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "cpo",
    "stations",
    "ocpp_gateway",
    "alerts",
    # A client for people without hardware: `manage.py simulate_charger`.
    "simulator",
]

MIDDLEWARE = [
    # First: every later log line of the request carries its id (virta/logging.py).
    "virta.logging.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Content-Security-Policy; bidi controls in pages neutralised (virta/middleware.py).
    "virta.middleware.PanelHeadersMiddleware",
    # A NUL in the query string is a 400, never a database error.
    "virta.middleware.HostileInputMiddleware",
    # Static files, before anything that would spend work on them (see Static files below).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Audit lines written while serving a request say where it came from.
    "cpo.audit.AuditRequestMiddleware",
    # The CPO the user works in (header, default scope) and its time zone for every page.
    "cpo.current.CurrentCpoMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "virta.urls"

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
                "cpo.context_processors.team_menu",
                "stations.context_processors.station_menu",
                "cpo.context_processors.current_cpo",
            ],
        },
    },
]

ASGI_APPLICATION = "virta.asgi.application"

# --- Database -----------------------------------------------------------------
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
# No persistent connection per thread (with async consumers one per worker thread would
# leak). On PostgreSQL a psycopg pool hands connections out instead: without it every
# database call of a consumer opens a new connection (bench/RESULTS.md).
DATABASES["default"]["CONN_MAX_AGE"] = 0
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    _pool_max = env.int("DATABASE_POOL_MAX_SIZE", default=10)
    if _pool_max:
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": 1,
            "max_size": _pool_max,
            "timeout": 10,
            # While the database is away the pool retries connecting with a doubling delay
            # (1, 2, 4, 8 s…) for `reconnect_timeout` seconds, one attempt at a time: after
            # a 10 s restart the next attempt could come 16 s later, every request waiting.
            # Giving up after 5 s starts a new round on the next request: a restarted
            # database is in use again within a few seconds.
            "reconnect_timeout": 5.0,
        }
        # The pool checks a connection before handing it out (Django passes psycopg_pool
        # `check=ConnectionPool.check_connection`): after a PostgreSQL restart every pooled
        # connection is dead, and the first request on each would fail with a 500. Costs
        # one round trip per checkout (each gateway database call).
        DATABASES["default"]["CONN_HEALTH_CHECKS"] = env.bool("DATABASE_POOL_CHECK", default=True)
elif DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Writers wait for each other instead of failing at once with "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20
    # Take the write lock when a transaction begins: a read-then-write transaction in
    # SQLite's default (DEFERRED) mode fails at once with "database is locked" when another
    # process writes, instead of waiting for the timeout above.
    DATABASES["default"]["OPTIONS"]["transaction_mode"] = "IMMEDIATE"
    # The test database is a file (one per test run), not in-memory: tests/e2e's daphne opens
    # it. In RAM where there is a tmpfs: on disk, the fsyncs make the suite three times slower.
    _test_dir = "/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir()
    DATABASES["default"]["TEST"] = {
        "NAME": os.path.join(_test_dir, f"virta-test-{os.getpid()}.sqlite3")
    }

# Threads on which the OCPP gateway runs its database calls in parallel (ocpp_gateway/db.py):
# by default two fewer than the PostgreSQL pool holds, so that panel requests in the same
# process still find a connection during a charger storm.
_db_pool_size = (DATABASES["default"].get("OPTIONS", {}).get("pool") or {}).get("max_size", 10)
OCPP_DB_THREADS = env.int("OCPP_DB_THREADS", default=max(2, _db_pool_size - 2))

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Channel layer --------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                # redis-py 8 reads with a 5 s socket timeout by default, but channels-redis
                # blocks in BZPOPMIN for 5 s: the read timed out and killed the consumer
                # (and its charger's socket) every few seconds. No read timeout; keepalive
                # finds dead peers instead.
                "hosts": [{"address": REDIS_URL, "socket_timeout": None, "socket_keepalive": True}],
                "capacity": 1000,
                "expiry": 60,
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# Seconds /readyz waits for the database and for the channel layer (virta/health.py).
READYZ_TIMEOUT = env.float("READYZ_TIMEOUT", default=2.0)

# /metrics (virta/metrics.py): off unless one of these is set. A bearer token scrapes must
# send, and/or addresses or networks (comma-separated, e.g. 10.0.0.0/8) they must come from.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
METRICS_ALLOWED_ADDRESSES = env.list("METRICS_ALLOWED_ADDRESSES", default=[])
# Off: the gateway's per-frame counters do nothing (to measure their cost, bench/).
OCPP_METRICS = env.bool("OCPP_METRICS", default=True)

# --- Alerts (alerts/, `manage.py alerts`) -------------------------------------------
# Seconds between the alerts worker's rounds (evaluate, dispatch, deliver).
ALERTS_INTERVAL = env.float("ALERTS_INTERVAL", default=10.0)
# Alert changes of one CPO and rule within this many seconds share one notification.
ALERTS_GROUP_WINDOW = env.int("ALERTS_GROUP_WINDOW", default=30)
# Failed deliveries are retried after ALERTS_RETRY_BASE s, doubling up to ALERTS_RETRY_MAX.
ALERTS_RETRY_BASE = env.int("ALERTS_RETRY_BASE", default=30)
ALERTS_RETRY_MAX = env.int("ALERTS_RETRY_MAX", default=3600)
ALERTS_WEBHOOK_TIMEOUT = env.float("ALERTS_WEBHOOK_TIMEOUT", default=10.0)
# Plain http:// webhook URLs (development, tests); production endpoints use HTTPS.
ALERTS_WEBHOOK_ALLOW_HTTP = env.bool("ALERTS_WEBHOOK_ALLOW_HTTP", default=DEBUG)

# --- Auth -----------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "stations:home"
# A refused CSRF check gets a panel page that says what to do (virta/errors.py).
CSRF_FAILURE_VIEW = "virta.errors.csrf_failure"
LOGOUT_REDIRECT_URL = "login"
# Panel login brute force (cpo/throttle.py, SECURITY.md): after LOGIN_MAX_FAILURES failed
# logins for one username, or LOGIN_MAX_FAILURES_PER_ADDRESS from one client address,
# within LOGIN_LOCKOUT_SECONDS, logins for that username / from that address are refused
# without checking the password for LOGIN_LOCKOUT_SECONDS. 0 turns a limit off.
LOGIN_MAX_FAILURES = env.int("LOGIN_MAX_FAILURES", default=5)
LOGIN_MAX_FAILURES_PER_ADDRESS = env.int("LOGIN_MAX_FAILURES_PER_ADDRESS", default=20)
LOGIN_LOCKOUT_SECONDS = env.int("LOGIN_LOCKOUT_SECONDS", default=900)
# Behind a proxy that appends the client's address to X-Forwarded-For (and cannot be
# bypassed): count failures per that address, not per the proxy's. Off: REMOTE_ADDR.
PANEL_TRUST_X_FORWARDED_FOR = env.bool("PANEL_TRUST_X_FORWARDED_FOR", default=False)

# --- E-mail (invitations to the panel) ---------------------------------------------
# EMAIL_URL in django-environ's form (smtp+tls://user:password@host:587, smtp+ssl://…:465,
# consolemail://, filemail:///path/to/dir), or the discrete EMAIL_HOST, EMAIL_PORT,
# EMAIL_HOST_USER, EMAIL_HOST_PASSWORD, EMAIL_USE_TLS / EMAIL_USE_SSL. Neither: messages
# are printed on the server's console (development).
if env.str("EMAIL_URL", default=""):
    for _key, _value in env.email_url("EMAIL_URL").items():
        if _key.startswith("EMAIL_") and _value not in (None, ""):
            globals()[_key] = _value
elif env.str("EMAIL_HOST", default=""):
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_HOST = env.str("EMAIL_HOST")
    EMAIL_USE_SSL = env.bool("EMAIL_USE_SSL", default=False)
    EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=not EMAIL_USE_SSL)
    EMAIL_PORT = env.int("EMAIL_PORT", default=465 if EMAIL_USE_SSL else 587)
    EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
    EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
else:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Virta CSMS <noreply@localhost>")
# A mail server that does not answer must not hold a panel request for long.
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
# How long an invitation's set-password link works (Django's password-reset tokens).
PASSWORD_RESET_TIMEOUT = env.int("INVITATION_VALID_DAYS", default=3) * 24 * 3600

# --- Cache (login throttle counters) ------------------------------------------
# The counters must be shared by every process serving the panel: with REDIS_URL, Django's
# Redis cache; otherwise a per-process memory cache (development, tests, one process).
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "virta",
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- I18N -----------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

# --- Static files ------------------------------------------------------------------
# Served by the project itself (daphne has no static handler; no proxy is needed) through
# WhiteNoise. In production `manage.py collectstatic` (a deploy step) writes the files to
# STATIC_ROOT under names that carry a hash of their content, with gzip copies; those are
# served compressed with a year's `Cache-Control: immutable`. With STATIC_MANIFEST off
# (DEBUG, and the test suite) files are served as they are in static/ and the apps, no
# collectstatic needed, and a changed file is picked up at once.
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles"))
STATIC_MANIFEST = env.bool("STATIC_MANIFEST", default=not DEBUG)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if STATIC_MANIFEST
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = not STATIC_MANIFEST
WHITENOISE_AUTOREFRESH = not STATIC_MANIFEST

# --- Production hardening (effective when DEBUG is off) --------------------------
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
# Chargers may only speak plain ws on a private network: never redirect /ocpp/.
SECURE_REDIRECT_EXEMPT = [r"^ocpp/"]
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SECURE_REFERRER_POLICY = "same-origin"
# Cookies are not sent on cross-site subrequests or POSTs (a second line behind CSRF tokens).
SESSION_COOKIE_SAMESITE = "Lax"
# The panel's scripts and styles are files of its own: nothing inline runs (SECURITY.md).
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
# Django admin's templates keep some inline styles (scripts stay files).
ADMIN_CONTENT_SECURITY_POLICY = CONTENT_SECURITY_POLICY.replace(
    "style-src 'self'", "style-src 'self' 'unsafe-inline'"
)
CSRF_COOKIE_SAMESITE = "Lax"

# --- OCPP -----------------------------------------------------------------------
# Heartbeat interval (seconds) given to Accepted stations in BootNotification.
OCPP_HEARTBEAT_INTERVAL = env.int("OCPP_HEARTBEAT_INTERVAL", default=300)
# Retry delay (seconds) given to stations in the pool (Pending / Rejected).
OCPP_POOL_RETRY_INTERVAL = env.int("OCPP_POOL_RETRY_INTERVAL", default=60)
# What a station in the pool (no CPO) is told at boot: Pending, Accepted or Rejected.
OCPP_POOL_BOOT_STATUS = env.str("OCPP_POOL_BOOT_STATUS", default="Pending")
if OCPP_POOL_BOOT_STATUS not in {"Pending", "Accepted", "Rejected"}:
    raise ImproperlyConfigured("OCPP_POOL_BOOT_STATUS must be Pending, Accepted or Rejected.")
# Whether a CBID never seen before may connect (and land in the pool).
OCPP_ALLOW_UNKNOWN_STATIONS = env.bool("OCPP_ALLOW_UNKNOWN_STATIONS", default=True)
# A station without a password whose live connection is challenged by a new one (SECURITY.md):
# "serial" lets the newcomer take over only once its BootNotification reports the serial
# number the station reported before; "never" refuses it while the live one holds;
# "always" lets the newest connection win as for stations with a password.
OCPP_REPLACE_WITHOUT_PASSWORD = env.str("OCPP_REPLACE_WITHOUT_PASSWORD", default="serial")
if OCPP_REPLACE_WITHOUT_PASSWORD not in {"serial", "never", "always"}:
    raise ImproperlyConfigured("OCPP_REPLACE_WITHOUT_PASSWORD must be serial, never or always.")

# --- Claiming stations (stations/services/claiming.py, SECURITY.md) ---------------
# Refused claims ("Add new station") per user and per target CPO within the window before
# further claims are refused unexamined (0 = no limit).
CLAIM_MAX_FAILURES_PER_USER = env.int("CLAIM_MAX_FAILURES_PER_USER", default=10)
CLAIM_MAX_FAILURES_PER_CPO = env.int("CLAIM_MAX_FAILURES_PER_CPO", default=30)
CLAIM_FAILURE_WINDOW = env.int("CLAIM_FAILURE_WINDOW", default=3600)
# Strong claim mode: claiming an OCPP station also asks for the serial number the charger
# reported at boot, or the station's claim code (shown to system administrators).
CLAIM_REQUIRE_PROOF = env.bool("CLAIM_REQUIRE_PROOF", default=False)
# Public base URL chargers use, e.g. "wss://csms.example.com"; shown on "Connect a charger".
OCPP_PUBLIC_URL = env.str("OCPP_PUBLIC_URL", default="ws://127.0.0.1:8000")
# Seconds to wait for a charger's answer to a CALL we send.
OCPP_CALL_TIMEOUT = env.int("OCPP_CALL_TIMEOUT", default=30)
# Websocket pings and socket lifetime are daphne's: see the Makefile's `run` target
# (--ping-interval, --ping-timeout, --websocket_timeout -1).
# The message log and last_seen are written in batches, at most this many seconds late.
OCPP_LOG_FLUSH_INTERVAL = env.float("OCPP_LOG_FLUSH_INTERVAL", default=1.0)
# Log rows kept in memory while the database is away (retried every flush interval); over
# it the oldest are dropped, counted and logged. 200,000 rows hold a minute and more of
# 2,000 busy chargers in about 100 MB.
OCPP_LOG_MAX_BUFFERED_ROWS = env.int("OCPP_LOG_MAX_BUFFERED_ROWS", default=200_000)
# StatusNotification and MeterValues of all chargers are written in shared transactions
# (ocpp_gateway/group_commit.py); an idle writer waits this many seconds for company.
OCPP_GROUP_COMMIT_WAIT = env.float("OCPP_GROUP_COMMIT_WAIT", default=0.005)
# Days of OCPP message log kept by `manage.py prune_ocpp_log`.
OCPP_LOG_RETENTION_DAYS = env.int("OCPP_LOG_RETENTION_DAYS", default=30)

# --- Server processes: garbage collector (virta/gc_tuning.py) ----------------------
# Freeze what is loaded at start and collect young objects in bigger batches: full
# collections over thousands of connections were the latency tail. Empty = Python's.
GC_FREEZE_AT_START = env.bool("GC_FREEZE_AT_START", default=True)
GC_THRESHOLDS = tuple(env.list("GC_THRESHOLDS", cast=int, default=[50000, 20, 100]))
if len(GC_THRESHOLDS) > 3 or any(t < 0 for t in GC_THRESHOLDS):
    raise ImproperlyConfigured("GC_THRESHOLDS takes up to 3 non-negative integers.")

# --- OCPP: hostile input and security (SECURITY.md) ----------------------------
# Largest text frame a charger may send (bytes); a bigger one closes the socket with 4009.
# Daphne's own --websocket-max-message-size (Makefile) cuts far bigger ones earlier.
OCPP_MAX_FRAME_BYTES = env.int("OCPP_MAX_FRAME_BYTES", default=256 * 1024)
# Per-connection token bucket for frames from a charger: sustained frames per second and
# burst. Over it a CALL gets CALLERROR GenericError; OCPP_RATE_LIMIT_STRIKES refused
# frames within a minute disconnect the charger (close code 4008).
OCPP_RATE_LIMIT_PER_SECOND = env.float("OCPP_RATE_LIMIT_PER_SECOND", default=10.0)
OCPP_RATE_LIMIT_BURST = env.int("OCPP_RATE_LIMIT_BURST", default=60)
OCPP_RATE_LIMIT_STRIKES = env.int("OCPP_RATE_LIMIT_STRIKES", default=50)
# Background tasks (commands waiting their turn, after-handlers) one connection may hold.
OCPP_MAX_TASKS_PER_CONNECTION = env.int("OCPP_MAX_TASKS_PER_CONNECTION", default=32)
# Handshake spam: new pool stations one source address may create per hour, and the
# largest pool (stations without a CPO) new CBIDs may still join. 0 = no limit.
OCPP_POOL_NEW_PER_ADDRESS_PER_HOUR = env.int("OCPP_POOL_NEW_PER_ADDRESS_PER_HOUR", default=100)
OCPP_POOL_MAX_SIZE = env.int("OCPP_POOL_MAX_SIZE", default=10000)
# Password brute force: this many failed Basic-auth attempts for one CBID from one address
# (or from one address for any CBID) within OCPP_AUTH_FAILURE_WINDOW seconds refuse that
# address's further attempts unchecked until the window has passed. A handshake without
# credentials is no guess and not counted; the address a station was last admitted from
# is never locked out.
OCPP_AUTH_MAX_FAILURES_PER_CBID = env.int("OCPP_AUTH_MAX_FAILURES_PER_CBID", default=10)
OCPP_AUTH_MAX_FAILURES_PER_ADDRESS = env.int("OCPP_AUTH_MAX_FAILURES_PER_ADDRESS", default=50)
OCPP_AUTH_FAILURE_WINDOW = env.int("OCPP_AUTH_FAILURE_WINDOW", default=900)
# TLS (security profile 2). Ports on which daphne itself terminates TLS (`-e ssl:PORT:…`):
# daphne puts no scheme in a websocket scope, so the local port tells.
OCPP_TLS_PORTS = [int(p) for p in env.list("OCPP_TLS_PORTS", default=[])]
# Behind a TLS-terminating proxy (deploy/haproxy-tls.cfg) that sets X-Forwarded-Proto:
# trust it. Only when daphne cannot be reached but through that proxy.
OCPP_TRUST_X_FORWARDED_PROTO = env.bool("OCPP_TRUST_X_FORWARDED_PROTO", default=False)
# Stale connection state: each process refreshes its live stations' last_seen every
# OCPP_LIVENESS_INTERVAL seconds and marks offline the stations whose last_seen is older
# than OCPP_LIVENESS_STALE_AFTER intervals (their process died).
OCPP_LIVENESS_INTERVAL = env.float("OCPP_LIVENESS_INTERVAL", default=60.0)
OCPP_LIVENESS_STALE_AFTER = env.int("OCPP_LIVENESS_STALE_AFTER", default=3)

# Log lines as text (`plain`, to stderr) or as JSON objects, one per line, to stdout (`json`).
LOG_FORMAT = env.str("LOG_FORMAT", default="plain")
if LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured("LOG_FORMAT must be plain or json.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        # JSON lines with the charger's CBID and the request id (virta/logging.py).
        "json": {"()": "virta.logging.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout" if LOG_FORMAT == "json" else "ext://sys.stderr",
            "formatter": LOG_FORMAT,
        }
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"ocpp": {"level": "WARNING"}},
}
