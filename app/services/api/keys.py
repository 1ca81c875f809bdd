"""API keys: create (the secret is shown once), revoke, list, and authenticate a request's bearer key.

A key is `bk_<prefix>_<secret>` with 256 random bits of secret, so a plain SHA-256 is the right hash: no one can
guess such a secret, and a slow password hash would cost every request tens of milliseconds. The prefix finds the
row; the digests are compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update

from app.clock import utcnow
from app.extensions import db
from app.models import ApiKey
from app.services.admin import audit
from app.services.api import scopes as api_scopes
from app.services.errors import NotFound, ServiceError

KEY_FORMAT = re.compile(r"^bk_([a-z0-9]{8})_([A-Za-z0-9_-]{43})$")
TOUCH_EVERY = timedelta(minutes=1)  # last_used_at is written at most this often, not on every request
MAX_NAME = 100


@dataclass(frozen=True)
class Caller:
    """The key a request authenticated with: what views and services need, without holding an ORM row."""

    id: int
    name: str
    prefix: str
    scopes: tuple[str, ...]

    def allows(self, needed: str) -> bool:
        return api_scopes.allows(self.scopes, needed)

    @property
    def audit_name(self) -> str:
        """How the audit log names this caller."""
        return f"API key “{self.name}” ({self.prefix})"


def digest(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


def create_key(name: str, scopes: list[str], user_id: int | None) -> tuple[ApiKey, str]:
    """A new key and its full secret, which is never stored and cannot be shown again. Commits."""
    name = " ".join((name or "").split())
    if not name:
        raise ServiceError("Give the key a name, e.g. “Shop orders”.", field="name")
    if len(name) > MAX_NAME:
        raise ServiceError(f"Use at most {MAX_NAME} characters for the name.", field="name")
    chosen = api_scopes.clean(scopes)
    prefix = secrets.token_hex(4)
    raw_key = f"bk_{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey(name=name, prefix=prefix, secret_hash=digest(raw_key), scopes=chosen, created_by_id=user_id)
    db.session.add(key)
    db.session.flush()
    audit.record("api_key.create", f"Created API key “{name}” ({prefix}) with {', '.join(chosen)}",
                 target=f"api_key:{key.id}", details={"prefix": prefix, "scopes": chosen})
    db.session.commit()
    return key, raw_key


def revoke_key(key_id: int) -> ApiKey:
    """Revoke a key for good: its next request is refused. Commits."""
    key = db.session.get(ApiKey, key_id)
    if key is None:
        raise NotFound("That API key does not exist.")
    if key.revoked_at is not None:
        raise ServiceError("This key is already revoked.")
    key.revoked_at = utcnow()
    audit.record("api_key.revoke", f"Revoked API key “{key.name}” ({key.prefix})", target=f"api_key:{key.id}",
                 details={"prefix": key.prefix})
    db.session.commit()
    return key


def list_keys() -> list[ApiKey]:
    """Active keys first, newest first."""
    return list(db.session.scalars(select(ApiKey).order_by(ApiKey.revoked_at.is_not(None), ApiKey.id.desc())))


def authenticate(raw_key: str, now: datetime | None = None) -> tuple[Caller | None, str | None]:
    """(caller, None) for a good key, else (None, why not): a sentence safe to send back."""
    match = KEY_FORMAT.match(raw_key or "")
    if match is None:
        return None, "The API key is not in the right format (bk_…)."
    row = db.session.execute(select(ApiKey.id, ApiKey.name, ApiKey.prefix, ApiKey.secret_hash, ApiKey.scopes,
                                    ApiKey.revoked_at, ApiKey.last_used_at)
                             .where(ApiKey.prefix == match.group(1))).first()
    if row is None or not hmac.compare_digest(row.secret_hash, digest(raw_key)):
        return None, "The API key is not valid."
    if row.revoked_at is not None:
        return None, "The API key was revoked."
    _touch(row.id, row.last_used_at, now or utcnow())
    return Caller(row.id, row.name, row.prefix, tuple(row.scopes or ())), None


def _touch(key_id: int, last_used_at: datetime | None, now: datetime) -> None:
    """Record use at most once a minute; the WHERE lets only one of many concurrent requests write."""
    if last_used_at is not None and now - last_used_at < TOUCH_EVERY:
        return
    db.session.execute(update(ApiKey).where(ApiKey.id == key_id, or_(ApiKey.last_used_at.is_(None),
                                                                     ApiKey.last_used_at < now - TOUCH_EVERY))
                       .values(last_used_at=now))
    db.session.commit()
