"""Requests per API key, limited in Redis with the send path's GCRA script (app.services.sending.rate_limit), so
every web process shares one count per key."""

from __future__ import annotations

import math

from flask import current_app

from app.queues import redis_connection
from app.services.sending.rate_limit import Limit, RateLimiter

KEY_PREFIX = "broadcaster:api:rate"


def admit(key_id: int) -> bool:
    """Take one request slot for the key now; False (nothing taken) when it is over its rate."""
    limit = Limit(f"{KEY_PREFIX}:{key_id}", float(current_app.config["API_RATE_PER_SECOND"]),
                  int(current_app.config["API_RATE_BURST"]))
    return _limiter().reserve([limit], max_wait=0) is not None


def retry_after() -> int:
    """Whole seconds to wait before the next request: a denied key gets a slot again within one interval."""
    return max(1, math.ceil(1 / float(current_app.config["API_RATE_PER_SECOND"])))


def _limiter() -> RateLimiter:
    # One per app: registering the script is a local object, the Lua is loaded into Redis on first use.
    limiter = current_app.extensions.get("api_rate_limiter")
    if limiter is None:
        limiter = current_app.extensions["api_rate_limiter"] = RateLimiter(redis_connection())
    return limiter
