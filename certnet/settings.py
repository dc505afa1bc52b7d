"""Django settings for certnet.

Everything a deployment changes comes from the environment (12-factor): DATABASE_URL,
CERTNET_SECRET_KEY, CERTNET_DEBUG, CERTNET_ALLOWED_HOSTS, CERTNET_VAR_DIR, CERTNET_MAX_REQUEST_BYTES.
The defaults give the embedded single-machine set-up: SQLite (WAL) under var/.
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("CERTNET_VAR_DIR", BASE_DIR / "var"))


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _secret_key() -> str:
    """Use the configured key, else one generated once and kept under var/ so sessions survive restarts."""
    configured = os.environ.get("CERTNET_SECRET_KEY")
    if configured:
        return configured
    key_file = VAR_DIR / "secret_key"
    if key_file.exists():
        return key_file.read_text().strip()
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(50)
    key_file.write_text(key)
    key_file.chmod(0o600)
    return key


SECRET_KEY = _secret_key()
DEBUG = _env_bool("CERTNET_DEBUG", False)
ALLOWED_HOSTS = os.environ.get("CERTNET_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]").split(",")

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "certnet.core",
    "certnet.accounts",
    "certnet.registry",
    "certnet.notifications",
    "certnet.incidents",
    "certnet.intel",
    "certnet.taxii",
    "certnet.feeds",
    "certnet.web",
    "huey.contrib.djhuey",
]

# The test run adds a probe app whose model exercises every visibility feature.
TESTING = "pytest" in sys.modules or "mypy" in sys.modules  # mypy must see the test models too
if TESTING:
    INSTALLED_APPS.append("certnet.core.tests.probe")

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "certnet.core.middleware.RequestSizeLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "certnet.urls"
WSGI_APPLICATION = "certnet.wsgi.application"

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

_default_sqlite = f"sqlite:///{VAR_DIR / 'certnet.sqlite3'}"
DATABASES = {
    "default": dj_database_url.parse(os.environ.get("DATABASE_URL", _default_sqlite), conn_max_age=60)
}
_postgres = DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
if _postgres and _env_bool("CERTNET_PG_PREPARE", True):
    # Parameters bound on the server, and a statement run five times on a connection prepared there:
    # planning is most of the database's work on the API's small statements. Off
    # (CERTNET_PG_PREPARE=0) behind a pooler in transaction mode, which cannot keep prepared statements.
    DATABASES["default"]["OPTIONS"] = {"server_side_binding": True, "prepare_threshold": 5}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets readers run beside the one writer; IMMEDIATE takes the write lock at BEGIN so
    # two writers queue instead of failing halfway (the audit chain relies on serialised writes).
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;",
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/login/"

PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

# Cookies: HttpOnly, SameSite, and Secure whenever the deployment says it is behind TLS.
_behind_tls = _env_bool("CERTNET_HTTPS", False)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = _behind_tls
SESSION_COOKIE_AGE = 8 * 3600
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
CSRF_COOKIE_HTTPONLY = True
CSRF_COOKIE_SAMESITE = "Strict"
CSRF_COOKIE_SECURE = _behind_tls
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if _behind_tls:
    SECURE_SSL_REDIRECT = True
    SECURE_HSTS_SECONDS = 31536000
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(
    parents=True, exist_ok=True
)  # whitenoise serves from the app folders (finders) until collectstatic fills it
WHITENOISE_USE_FINDERS = True

# Requests larger than this are refused with 413 before anything reads them.
CERTNET_MAX_REQUEST_BYTES = int(os.environ.get("CERTNET_MAX_REQUEST_BYTES", str(1024 * 1024)))

CERTNET_TOKEN_DEFAULT_DAYS = int(os.environ.get("CERTNET_TOKEN_DEFAULT_DAYS", "90"))
CERTNET_FRAMEWORK_FILE = BASE_DIR / "certnet" / "registry" / "framework" / "pakistan.yaml"
CERTNET_DEMO_FILE = BASE_DIR / "certnet" / "registry" / "framework" / "demo.yaml"

# Evidence files live outside the database, behind Django's storage API, so an S3-compatible store
# (django-storages) is a settings change. Each file is limited in size; the limit is said in the error.
CERTNET_EVIDENCE_DIR = Path(os.environ.get("CERTNET_EVIDENCE_DIR", VAR_DIR / "evidence"))
CERTNET_EVIDENCE_MAX_BYTES = int(os.environ.get("CERTNET_EVIDENCE_MAX_BYTES", str(25 * 1024 * 1024)))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    "evidence": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(CERTNET_EVIDENCE_DIR), "file_permissions_mode": 0o600},
    },
}
# The paths that carry evidence accept bodies up to an evidence file plus its framing: multipart
# uploads a little more, a JSON report a third more (base64) and the report itself. Everything else
# stays under CERTNET_MAX_REQUEST_BYTES (certnet.core.middleware). Django's own cap on what it reads
# into memory must admit the largest of them; the middleware has refused larger bodies by then.
_EVIDENCE_UPLOAD_BYTES = CERTNET_EVIDENCE_MAX_BYTES + 256 * 1024
# The feed pipeline: the Parquet events store and the deduplicator's window (embedded mode).
CERTNET_EVENTS_DIR = Path(os.environ.get("CERTNET_EVENTS_DIR", VAR_DIR / "events"))
# An S3-compatible bucket instead of the directory: s3://bucket/prefix?endpoint_override=host:port
# (&scheme=http for a server without TLS); credentials from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY.
CERTNET_EVENTS_URL = os.environ.get("CERTNET_EVENTS_URL", "")
CERTNET_FEEDS_STATE_DIR = Path(os.environ.get("CERTNET_FEEDS_STATE_DIR", VAR_DIR / "feeds"))
# An installation's own mappings (`certnet feeds shadowserver-schema FILE`), beside the shipped ones.
CERTNET_FEED_MAPPINGS_DIR = Path(os.environ.get("CERTNET_FEED_MAPPINGS_DIR", VAR_DIR / "feeds" / "mappings"))
CERTNET_FEED_DIGEST_HOUR = int(
    os.environ.get("CERTNET_FEED_DIGEST_HOUR", "6")
)  # UTC hour of the daily digests
CERTNET_FEED_STREAM_MAX_BATCHES = int(os.environ.get("CERTNET_FEED_STREAM_MAX_BATCHES", "32"))
CERTNET_FEED_BLOCK_BYTES = int(os.environ.get("CERTNET_FEED_BLOCK_BYTES", str(4 * 1024 * 1024)))

# The largest envelope a TAXII client may add (advertised as max_content_length). The door lets up to
# twice that through so the TAXII server itself refuses the excess, in TAXII's error format.
CERTNET_TAXII_MAX_CONTENT_LENGTH = int(
    os.environ.get("CERTNET_TAXII_MAX_CONTENT_LENGTH", str(10 * 1024 * 1024))
)
CERTNET_UPLOAD_LIMITS: list[tuple[str, int]] = [
    (r"/api/v1/(incidents|reports)/\d+/evidence$", _EVIDENCE_UPLOAD_BYTES),
    (r"/incidents/\d+/evidence/upload/$", _EVIDENCE_UPLOAD_BYTES),
    (r"/api/v1/reports$", CERTNET_EVIDENCE_MAX_BYTES * 4 // 3 + CERTNET_MAX_REQUEST_BYTES),
    (r"/taxii2/api/collections/[^/]+/objects/$", 2 * CERTNET_TAXII_MAX_CONTENT_LENGTH),
]
DATA_UPLOAD_MAX_MEMORY_SIZE = max(CERTNET_MAX_REQUEST_BYTES, *(limit for _, limit in CERTNET_UPLOAD_LIMITS))
# Intel imports are streamed to a spooled file, never read into memory whole, so their limit stays
# out of DATA_UPLOAD_MAX_MEMORY_SIZE above. Larger files go through `certnet intel import`.
CERTNET_MAX_IMPORT_BYTES = int(os.environ.get("CERTNET_MAX_IMPORT_BYTES", str(100 * 1024 * 1024)))
CERTNET_UPLOAD_LIMITS.append((r"/api/v1/intel/imports(/misp)?$", CERTNET_MAX_IMPORT_BYTES))

# Outgoing mail: an SMTP relay when CERTNET_SMTP_HOST is set; otherwise messages are written as files
# under var/outbox so the embedded set-up never fails on a missing relay.
CERTNET_SMTP_HOST = os.environ.get("CERTNET_SMTP_HOST", "")
if CERTNET_SMTP_HOST:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_HOST = CERTNET_SMTP_HOST
    EMAIL_PORT = int(os.environ.get("CERTNET_SMTP_PORT", "25"))
    EMAIL_HOST_USER = os.environ.get("CERTNET_SMTP_USER", "")
    EMAIL_HOST_PASSWORD = os.environ.get("CERTNET_SMTP_PASSWORD", "")
    EMAIL_USE_TLS = _env_bool("CERTNET_SMTP_STARTTLS", False)
    EMAIL_TIMEOUT = 20
else:
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = str(VAR_DIR / "outbox")
DEFAULT_FROM_EMAIL = os.environ.get("CERTNET_MAIL_FROM", "certnet@localhost")
CERTNET_BASE_URL = os.environ.get("CERTNET_BASE_URL", "http://127.0.0.1:8000")

# Incoming mail (`certnet smtpd`): where it listens, the largest message it accepts, and the CERT whose
# triage queue receives mail whose recipient address is no CERT's incident contact.
CERTNET_SMTPD_HOST = os.environ.get("CERTNET_SMTPD_HOST", "127.0.0.1")
CERTNET_SMTPD_PORT = int(os.environ.get("CERTNET_SMTPD_PORT", "2525"))
CERTNET_MAIL_MAX_BYTES = int(os.environ.get("CERTNET_MAIL_MAX_BYTES", str(30 * 1024 * 1024)))
CERTNET_MAIL_DEFAULT_CERT = os.environ.get("CERTNET_MAIL_DEFAULT_CERT", "ncert")

# Background jobs (clock sweeps, notification mail). Embedded: Huey on a SQLite file under var/.
# Production: REDIS_URL, and any number of `certnet run_huey` workers. Tests run tasks in-process.
REDIS_URL = os.environ.get("REDIS_URL", "")
_huey_immediate = TESTING or _env_bool("CERTNET_JOBS_IMMEDIATE", False)
if REDIS_URL:
    HUEY: dict[str, object] = {
        "huey_class": "huey.RedisHuey",
        "name": "certnet",
        "url": REDIS_URL,
        "immediate": _huey_immediate,
    }
else:
    HUEY = {
        "huey_class": "huey.SqliteHuey",
        "name": "certnet",
        "filename": str(VAR_DIR / "jobs.sqlite3"),
        "immediate": _huey_immediate,
    }
HUEY["consumer"] = {"workers": int(os.environ.get("CERTNET_JOB_WORKERS", "2")), "worker_type": "thread"}
# New reports are announced to their handling CERT in batches: the job starts this many seconds after
# the first report that needs it and takes every report waiting (0: one job per report, at once).
CERTNET_ANNOUNCE_BATCH_SECONDS = float(
    os.environ.get("CERTNET_ANNOUNCE_BATCH_SECONDS", "0" if _huey_immediate else "1")
)
# How long before a statutory or service-level deadline its "coming due" notice goes out.
CERTNET_DUE_SOON_HOURS = int(os.environ.get("CERTNET_DUE_SOON_HOURS", "4"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("CERTNET_LOG_LEVEL", "WARNING")},
    # `run_huey` gives the job consumer's logger a handler of its own; without this every line would
    # also reach the root handler and print twice.
    "loggers": {"huey": {"handlers": [], "level": "INFO", "propagate": False}},
}
