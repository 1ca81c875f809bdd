"""Failed-login throttling per IP and per account, shared by all web processes through Redis."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from flask import current_app
from redis.exceptions import RedisError

from app.queues import redis_connection
from app.services.errors import ServiceError

log = logging.getLogger(__name__)


class LoginThrottled(ServiceError):
    def __init__(self, retry_after: int) -> None:
        minutes = max(1, -(-retry_after // 60))
        unit = "minute" if minutes == 1 else "minutes"
        super().__init__(f"Too many failed sign-in attempts. Try again in {minutes} {unit}.")
        self.retry_after = retry_after


@dataclass(frozen=True)
class _Counter:
    key: str
    limit: int


def _counters(ip: str, email: str) -> list[_Counter]:
    config = current_app.config
    return [
        _Counter(f"login-failures:ip:{ip}", config["LOGIN_MAX_ATTEMPTS_PER_IP"]),
        _Counter(f"login-failures:account:{email}", config["LOGIN_MAX_ATTEMPTS_PER_ACCOUNT"]),
    ]


def check(ip: str, email: str) -> None:
    """Raise LoginThrottled while either counter is at its limit."""
    redis = redis_connection()
    try:
        for counter in _counters(ip, email):
            count = int(redis.get(counter.key) or 0)
            if count >= counter.limit:
                raise LoginThrottled(max(1, redis.ttl(counter.key)))
    except RedisError:
        # Failing open keeps staff able to sign in during a Redis outage; the outage shows on /healthz.
        log.warning("login throttle unavailable: Redis error", exc_info=True)


def record_failure(ip: str, email: str) -> None:
    window = current_app.config["LOGIN_LOCKOUT_SECONDS"]
    redis = redis_connection()
    try:
        with redis.pipeline() as pipe:
            for counter in _counters(ip, email):
                pipe.set(counter.key, 0, ex=window, nx=True)  # the window starts at the first failure
                pipe.incr(counter.key)
            pipe.execute()
    except RedisError:
        log.warning("login throttle unavailable: Redis error", exc_info=True)


def clear_account(email: str) -> None:
    try:
        redis_connection().delete(f"login-failures:account:{email}")
    except RedisError:
        log.warning("login throttle unavailable: Redis error", exc_info=True)
