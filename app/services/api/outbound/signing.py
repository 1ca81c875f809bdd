"""How receivers know a delivery is ours and fresh: HMAC-SHA256 over "<timestamp>.<body>" with the endpoint's secret.

The timestamp is signed with the body, so a receiver that refuses timestamps older than a few minutes also refuses
a captured delivery replayed later. The admin page shows receivers how to check it (templates/admin/outbound_*).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

TIMESTAMP_HEADER = "X-Broadcaster-Timestamp"
SIGNATURE_HEADER = "X-Broadcaster-Signature"
EVENT_ID_HEADER = "X-Broadcaster-Event-Id"  # the same on every retry and redelivery: receivers dedupe on it
EVENT_TYPE_HEADER = "X-Broadcaster-Event"
DELIVERY_HEADER = "X-Broadcaster-Delivery"
SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The header value: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(secret: str, timestamp: str, body: bytes, header: str) -> bool:
    """What a receiver does (used by our tests and the bench's receiver): constant-time compare."""
    return hmac.compare_digest(signature(secret, timestamp, body), header or "")
