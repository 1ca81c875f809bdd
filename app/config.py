"""Configuration from environment variables (and a `.env` file if present)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from dotenv import load_dotenv

ROOT = Path(__file__).resolve().parent.parent
INSTANCE_DIR = Path(os.environ.get("BROADCASTER_INSTANCE", ROOT / "instance"))


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def persistent_secret_key(instance_dir: Path) -> str:
    """Generate the key once and keep it, so sessions survive a restart."""
    path = instance_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    instance_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    # O_EXCL: when web and worker start together only one of them writes the key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key


def database_url(value: str | None) -> str:
    """Default to SQLite under instance/; accept the postgres:// form hosting providers hand out."""
    if not value:
        return f"sqlite:///{INSTANCE_DIR / 'broadcaster.db'}"
    for prefix in ("postgres://", "postgresql://"):
        if value.startswith(prefix):
            return "postgresql+psycopg://" + value.removeprefix(prefix)
    return value


class Config:
    """Settings read from the environment when the app is created."""

    def __init__(self) -> None:
        load_dotenv(ROOT / ".env")
        self.DEBUG = env_bool("FLASK_DEBUG", False)
        self.INSTANCE_DIR = str(INSTANCE_DIR)
        self.SECRET_KEY = os.environ.get("SECRET_KEY") or persistent_secret_key(INSTANCE_DIR)
        self.SQLALCHEMY_DATABASE_URI = database_url(os.environ.get("DATABASE_URL"))
        self.REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
        self.PORT = env_int("PORT", 5000)
        self.MAX_CONTENT_LENGTH = env_int("MAX_UPLOAD_MB", 20) * 1024 * 1024
        self.SESSION_COOKIE_HTTPONLY = True
        self.SESSION_COOKIE_SAMESITE = "Lax"
        self.SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not self.DEBUG)
        self.REMEMBER_COOKIE_HTTPONLY = True
        self.REMEMBER_COOKIE_SAMESITE = "Lax"
        self.REMEMBER_COOKIE_SECURE = self.SESSION_COOKIE_SECURE
        self.WTF_CSRF_TIME_LIMIT = None  # tied to the session instead, so long-open dashboards keep working
        self.LOGIN_MAX_ATTEMPTS_PER_ACCOUNT = env_int("LOGIN_MAX_ATTEMPTS_PER_ACCOUNT", 5)
        self.LOGIN_MAX_ATTEMPTS_PER_IP = env_int("LOGIN_MAX_ATTEMPTS_PER_IP", 20)
        self.LOGIN_LOCKOUT_SECONDS = env_int("LOGIN_LOCKOUT_SECONDS", 15 * 60)
        self._sending_settings()
        self.DEFAULT_REGION = os.environ.get("DEFAULT_REGION", "IN")
        self.TIMEZONE = os.environ.get("TIMEZONE", "Asia/Kolkata")
        self._whatsapp_settings()

    def _sending_settings(self) -> None:
        for name, (default, kind) in SENDING_DEFAULTS.items():
            value = os.environ.get(name)
            setattr(self, name, kind(value) if value not in (None, "") else default)

    def _whatsapp_settings(self) -> None:
        for name, default in WHATSAPP_DEFAULTS.items():
            setattr(self, name, os.environ.get(name) or default)


# Read by the dispatch engine; documented in the README's configuration table.
SENDING_DEFAULTS = {
    "SEND_RATE_PER_SECOND": (80.0, float),  # Meta's default throughput per phone number
    "SEND_MAX_ATTEMPTS": (5, int),
    "SEND_SETTLE_GRACE_SECONDS": (600, int),
    "SEND_BATCH_SIZE": (2000, int),  # a cap: a batch holds about 5 s of its lane's share of the rate
    "SEND_PARALLEL_BATCHES": (4, int),
    "SEND_RETRY_BASE_SECONDS": (2.0, float),
    "SEND_RETRY_MAX_SECONDS": (3600.0, float),
    "WHATSAPP_SEND_CONCURRENCY": (16, int),
    "SEND_READ_TIMEOUT_SECONDS": (None, float),  # unset: the client's 20 s
}

# Read by app.whatsapp; documented in the README's configuration table.
WHATSAPP_DEFAULTS = {
    "WHATSAPP_API_BASE_URL": "https://graph.facebook.com",
    "WHATSAPP_API_VERSION": "v23.0",
    "WHATSAPP_ACCESS_TOKEN": None,
    "WHATSAPP_PHONE_NUMBER_ID": None,
    "WHATSAPP_BUSINESS_ACCOUNT_ID": None,
    "WHATSAPP_APP_SECRET": None,
    "WHATSAPP_VERIFY_TOKEN": None,
}


class TestConfig(Config):
    """Config for the test suite: databases and Redis come from the test fixtures."""

    __test__ = False  # not a pytest test class

    def __init__(self, database: str, redis_url: str) -> None:
        super().__init__()
        self.TESTING = True
        self.SECRET_KEY = "test-secret-key"
        self.SQLALCHEMY_DATABASE_URI = database_url(database)
        self.REDIS_URL = redis_url
        self.SESSION_COOKIE_SECURE = False
        self.REMEMBER_COOKIE_SECURE = False
