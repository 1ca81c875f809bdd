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
        self.wait = f"{minutes} minute" if minutes == 1 else f"{minutes} minutes"
        super().__init__(f"Too many failed sign-in attempts. Try again in {self.wait}.")
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


def count_attempt(ip: str, email: str) -> None:
    """Count an attempt before its password is checked; raise LoginThrottled if it is past either limit.

    Counting first and deciding on the count INCR returns keeps the limit under concurrency: checking, hashing
    (slow on purpose) and then counting let 40 guesses sent together all through against a limit of 5.
    """
    window = current_app.config["LOGIN_LOCKOUT_SECONDS"]
    counters = _counters(ip, email)
    try:
        with redis_connection().pipeline() as pipe:  # MULTI/EXEC: the window and the count are set together
            for counter in counters:
                pipe.set(counter.key, 0, ex=window, nx=True)  # the window starts at the first attempt
                pipe.incr(counter.key)
                pipe.ttl(counter.key)
            results = pipe.execute()
    except RedisError:
        # Failing open keeps staff able to sign in during a Redis outage; the outage shows on /healthz.
        log.warning("login throttle unavailable: Redis error", exc_info=True)
        return
    for number, counter in enumerate(counters):
        count, ttl = results[3 * number + 1], results[3 * number + 2]
        if count > counter.limit:
            raise LoginThrottled(max(1, ttl))


# Takes back one counted attempt only while its window lasts: a DECR on an expired key would make one that
# never expires.
_UNCOUNT = "if redis.call('exists', KEYS[1]) == 1 then return redis.call('decr', KEYS[1]) end return 0"


def forgive(ip: str, email: str) -> None:
    """The password was right: the account's failures are forgotten and the IP gets its attempt back."""
    ip_counter, account_counter = _counters(ip, email)
    redis = redis_connection()
    try:
        redis.delete(account_counter.key)
        redis.eval(_UNCOUNT, 1, ip_counter.key)
    except RedisError:
        log.warning("login throttle unavailable: Redis error", exc_info=True)
