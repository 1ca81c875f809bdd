"""A running campaign's current send rate, for its live page, without a query that scans messages.

Each look at the page leaves a sample of the campaign's maintained counters (time, messages attempted) in a small
Redis sorted set shared by every viewer; the rate is the growth over the samples of the last RATE_WINDOW_SECONDS.
"""

from __future__ import annotations

import time

from redis.exceptions import RedisError

from app.queues import redis_connection

KEY = "send-rate:{}"
RATE_WINDOW_SECONDS = 20.0  # long enough to smooth batch boundaries, short enough to show a slowdown soon
MIN_SPAN_SECONDS = 1.5  # two samples closer than this say little
KEY_TTL_SECONDS = 120
clock = time.time  # the samples' clock (tests set it)


def sample(campaign_id: int, attempted: int, now: float | None = None) -> float | None:
    """Note that `attempted` messages have been tried now; messages a second over the window, or None when unknown
    (a first look, or Redis is down)."""
    now = clock() if now is None else now
    key = KEY.format(campaign_id)
    try:
        pipe = redis_connection().pipeline()
        pipe.zadd(key, {f"{now:.3f}:{attempted}": now})
        pipe.zremrangebyscore(key, "-inf", f"({now - RATE_WINDOW_SECONDS}")  # keep one exactly a window old
        pipe.zrange(key, 0, 0, withscores=True)
        pipe.expire(key, KEY_TTL_SECONDS)
        oldest = pipe.execute()[2]
    except RedisError:
        return None
    if not oldest:
        return None
    member, since = oldest[0]
    span = now - since
    if span < MIN_SPAN_SECONDS:
        return None
    return max(0.0, (attempted - int(member.decode().rsplit(":", 1)[1])) / span)
