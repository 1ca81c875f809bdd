"""Configuration from environment variables (and a `.env` file if present).

Every setting and its default lives here once. Code reads `current_app.config["NAME"]` with no fallback of its
own, so a setting configured as 0 stays 0; the README's configuration table documents each one.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from dotenv import load_dotenv

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_INSTANCE_DIR = ROOT / "instance"

# Read by the send path: name → (default, type).
SENDING_DEFAULTS: dict[str, tuple[Any, Callable[[str], Any]]] = {
    "SEND_RATE_PER_SECOND": (80.0, float),  # Meta's default throughput per phone number
    "SEND_MAX_ATTEMPTS": (5, int),
    "SEND_SETTLE_GRACE_SECONDS": (600, int),  # 0: settle an unanswered send at the next sweep
    "SEND_BATCH_SIZE": (2000, int),  # a cap: a batch holds about 5 s of its lane's share of the rate
    "SEND_PARALLEL_BATCHES": (4, int),
    "SEND_RETRY_BASE_SECONDS": (2.0, float),  # 0: retry at once (still never sooner than WhatsApp asked)
    "SEND_RETRY_MAX_SECONDS": (3600.0, float),
    "WHATSAPP_SEND_CONCURRENCY": (16, int),
    "SEND_READ_TIMEOUT_SECONDS": (None, float),  # unset: the client's 20 s
}
# Read by outbound webhooks (app/services/api/outbound): name → (default, type).
OUTBOUND_WEBHOOK_DEFAULTS: dict[str, tuple[Any, Callable[[str], Any]]] = {
    "OUTBOUND_WEBHOOK_ALLOW_PRIVATE": (False, bool),  # the settings page's default; tests and local set-ups allow
    "OUTBOUND_WEBHOOK_BATCH_SIZE": (200, int),  # deliveries claimed and sent per transaction
    "OUTBOUND_WEBHOOK_CONCURRENCY": (16, int),  # requests in flight per job (threads)
    "OUTBOUND_WEBHOOK_PARALLEL_JOBS": (2, int),  # delivery jobs that may run at once
    "OUTBOUND_WEBHOOK_CONNECT_TIMEOUT_SECONDS": (3.0, float),
    "OUTBOUND_WEBHOOK_READ_TIMEOUT_SECONDS": (5.0, float),
    "OUTBOUND_WEBHOOK_MAX_RESPONSE_BYTES": (65536, int),  # read at most this much of an answer, then drop it
    "OUTBOUND_WEBHOOK_RETRY_BASE_SECONDS": (30.0, float),  # doubled after each failure, with jitter
    "OUTBOUND_WEBHOOK_RETRY_MAX_SECONDS": (3600.0, float),
    "OUTBOUND_WEBHOOK_RETRY_HOURS": (24.0, float),  # then a delivery is given up (it can still be redelivered)
    "OUTBOUND_WEBHOOK_DISABLE_AFTER_DAYS": (3.0, float),  # failing this long without a success: disabled
    "OUTBOUND_WEBHOOK_KEEP_DAYS": (30.0, float),  # events and their delivery log, once no delivery waits
}
# Settings where 0 (or less) means nothing sensible: refused at start with the setting's name.
POSITIVE = ("SEND_RATE_PER_SECOND", "SEND_MAX_ATTEMPTS", "SEND_BATCH_SIZE", "SEND_PARALLEL_BATCHES",
            "WHATSAPP_SEND_CONCURRENCY", "SEND_READ_TIMEOUT_SECONDS", "IMPORT_MAX_ROWS", "OUTBOUND_WEBHOOK_BATCH_SIZE",
            "OUTBOUND_WEBHOOK_CONCURRENCY", "OUTBOUND_WEBHOOK_PARALLEL_JOBS", "OUTBOUND_WEBHOOK_RETRY_HOURS",
            "OUTBOUND_WEBHOOK_KEEP_DAYS", "API_RATE_PER_SECOND", "API_RATE_BURST", "API_BULK_MAX_CONTACTS",
            "API_BULK_JOB_MAX_CONTACTS")

# Read by app.whatsapp through WhatsAppSettings.from_mapping; None means not configured.
WHATSAPP_DEFAULTS = {
    "WHATSAPP_API_BASE_URL": "https://graph.facebook.com",
    "WHATSAPP_API_VERSION": "v23.0",
    "WHATSAPP_ACCESS_TOKEN": None,
    "WHATSAPP_PHONE_NUMBER_ID": None,
    "WHATSAPP_BUSINESS_ACCOUNT_ID": None,
    "WHATSAPP_APP_SECRET": None,
    "WHATSAPP_VERIFY_TOKEN": None,
}


class Environment:
    """Typed reads of one environment mapping; an unset or empty variable gives the default."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self.values = values

    def text(self, name: str, default: str | None) -> str | None:
        return self.values.get(name) or default

    def number(self, name: str, default: Any, kind: Callable[[str], Any] = int) -> Any:
        value = self.values.get(name)
        if value in (None, ""):
            return default
        try:
            return kind(value)
        except ValueError:
            raise ValueError(f"{name} should be a number, not “{value}”.") from None

    def flag(self, name: str, default: bool) -> bool:
        value = self.values.get(name)
        if value in (None, ""):
            return default
        return value.strip().lower() in {"1", "true", "yes", "on"}


def private_folder(path: Path) -> Path:
    """Create a folder only its owner can open (0700), tightening one an earlier version left world-readable."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        path.chmod(0o700)
    except PermissionError:  # someone else's folder (a mounted volume, say): its owner decides
        pass
    return path


def persistent_secret_key(instance_dir: Path) -> str:
    """Generate the key once and keep it, so sessions survive a restart."""
    private_folder(instance_dir)  # it also holds the SQLite database, uploads and exports
    path = instance_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    key = secrets.token_hex(32)
    # O_EXCL: when web and worker start together only one of them writes the key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key


def database_url(value: str | None, instance_dir: Path = DEFAULT_INSTANCE_DIR) -> str:
    """Default to SQLite under instance/; accept the postgres:// form hosting providers hand out."""
    if not value:
        return f"sqlite:///{instance_dir / 'broadcaster.db'}"
    for prefix in ("postgres://", "postgresql://"):
        if value.startswith(prefix):
            return "postgresql+psycopg://" + value.removeprefix(prefix)
    return value


class Config:
    """Settings read from the environment (os.environ and .env unless `environ` is given) when the app is created."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        if environ is None:
            load_dotenv(ROOT / ".env")
            environ = os.environ
        env = Environment(environ)
        instance_dir = Path(env.text("BROADCASTER_INSTANCE", None) or DEFAULT_INSTANCE_DIR)
        self.DEBUG = env.flag("FLASK_DEBUG", False)
        self.INSTANCE_DIR = str(instance_dir)
        self.SECRET_KEY = env.text("SECRET_KEY", None) or persistent_secret_key(instance_dir)
        self.SQLALCHEMY_DATABASE_URI = database_url(env.text("DATABASE_URL", None), instance_dir)
        self.REDIS_URL = env.text("REDIS_URL", "redis://127.0.0.1:6379/0")
        self.PORT = env.number("PORT", 5000)
        self.MAX_CONTENT_LENGTH = env.number("MAX_UPLOAD_MB", 20) * 1024 * 1024
        self.IMPORT_MAX_ROWS = env.number("IMPORT_MAX_ROWS", 1_000_000)
        self._cookie_settings(env)
        self.LOGIN_MAX_ATTEMPTS_PER_ACCOUNT = env.number("LOGIN_MAX_ATTEMPTS_PER_ACCOUNT", 5)
        self.LOGIN_MAX_ATTEMPTS_PER_IP = env.number("LOGIN_MAX_ATTEMPTS_PER_IP", 20)
        self.LOGIN_LOCKOUT_SECONDS = env.number("LOGIN_LOCKOUT_SECONDS", 15 * 60)
        # Reverse proxies in front of the app whose X-Forwarded-For/-Proto are believed; 0: none, the headers are
        # ignored (a visitor could otherwise make up an address and dodge the per-IP sign-in lockout).
        self.TRUSTED_PROXY_HOPS = env.number("TRUSTED_PROXY_HOPS", 0)
        # The REST API: requests per second per key (GCRA in Redis), the burst a quiet key may send at once, and the
        # most contacts one bulk upsert may carry (more is answered 413).
        self.API_RATE_PER_SECOND = env.number("API_RATE_PER_SECOND", 10.0, float)
        self.API_RATE_BURST = env.number("API_RATE_BURST", 20)
        self.API_BULK_MAX_CONTACTS = env.number("API_BULK_MAX_CONTACTS", 10_000)  # more: a job with a status URL
        # The most one bulk call may hold at all (also bounded by MAX_UPLOAD_MB): more is answered 413.
        self.API_BULK_JOB_MAX_CONTACTS = env.number("API_BULK_JOB_MAX_CONTACTS", 100_000)
        self.DEFAULT_REGION = env.text("DEFAULT_REGION", "IN")
        self.TIMEZONE = env.text("TIMEZONE", "Asia/Kolkata")
        for name, (default, kind) in SENDING_DEFAULTS.items():
            setattr(self, name, env.number(name, default, kind))
        for name, default in WHATSAPP_DEFAULTS.items():
            setattr(self, name, env.text(name, default))
        for name, (default, kind) in OUTBOUND_WEBHOOK_DEFAULTS.items():
            setattr(self, name, env.flag(name, default) if kind is bool else env.number(name, default, kind))
        self._check_positive()

    def _cookie_settings(self, env: Environment) -> None:
        self.SESSION_COOKIE_HTTPONLY = True
        self.SESSION_COOKIE_SAMESITE = "Lax"
        self.SESSION_COOKIE_SECURE = env.flag("SESSION_COOKIE_SECURE", not self.DEBUG)
        self.REMEMBER_COOKIE_NAME = "remember_token"
        self.REMEMBER_COOKIE_DURATION = timedelta(days=30)  # Flask-Login's own default is a year
        self.REMEMBER_COOKIE_HTTPONLY = True
        self.REMEMBER_COOKIE_SAMESITE = "Lax"
        self.REMEMBER_COOKIE_SECURE = self.SESSION_COOKIE_SECURE
        self.WTF_CSRF_TIME_LIMIT = None  # tied to the session instead, so long-open dashboards keep working

    def _check_positive(self) -> None:
        for name in POSITIVE:
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be more than 0 (it is {value}).")
        if self.TRUSTED_PROXY_HOPS < 0:
            raise ValueError(f"TRUSTED_PROXY_HOPS must be 0 or more (it is {self.TRUSTED_PROXY_HOPS}).")


class TestConfig(Config):
    """The defaults, whatever the machine's environment or .env say; the database and Redis come from the fixtures."""

    __test__ = False  # not a pytest test class

    def __init__(self, database: str, redis_url: str) -> None:
        super().__init__({"SECRET_KEY": "test-secret-key", "DATABASE_URL": database, "REDIS_URL": redis_url,
                          "SESSION_COOKIE_SECURE": "off"})
        self.TESTING = True
