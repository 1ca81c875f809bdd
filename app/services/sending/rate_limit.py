"""The shared send rate: GCRA in one Lua script on Redis's own clock, so N workers on M machines share one rate.

Each limit is a key holding its theoretical arrival time (TAT) in microseconds. A caller reserves sends under
all its limits at once (the sender's and the campaign's) and is told how long to wait before sending. Reserving
rather than asking again later keeps callers in order and the pace smooth: no thundering herd of retries, no
drift between machines whose clocks disagree, since only Redis's TIME is used. At high rates a caller reserves a
block of evenly spaced slots in one call, so Redis is asked once per block instead of once per message.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from flask import current_app
from redis import Redis

KEY_PREFIX = "broadcaster:rate"

# KEYS: one TAT key per limit. ARGV: per key its emission interval and burst tolerance (µs), then the longest
# wait the caller accepts (µs), then how many slots to reserve. The slots are `spacing` apart (the longest
# interval). Returns the wait for the first slot in µs (0 = send now) or, when that would be longer than
# accepted, minus the wait without reserving anything.
GCRA_SCRIPT = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000000 + tonumber(now_parts[2])
local count = #KEYS
local max_wait = tonumber(ARGV[2 * count + 1])
local slots = tonumber(ARGV[2 * count + 2] or 1)
local send_at = now
local spacing = 0
local tats = {}
for i = 1, count do
  local tat = tonumber(redis.call('GET', KEYS[i]) or now)
  if tat < now then tat = now end
  tats[i] = tat
  local allowed_at = tat - tonumber(ARGV[2 * i])
  if allowed_at > send_at then send_at = allowed_at end
  if tonumber(ARGV[2 * i - 1]) > spacing then spacing = tonumber(ARGV[2 * i - 1]) end
end
local wait = send_at - now
if wait > max_wait then return -math.max(wait, 1) end
for i = 1, count do
  local interval = tonumber(ARGV[2 * i - 1])
  local new_tat = tats[i]
  for j = 0, slots - 1 do
    new_tat = math.max(new_tat, send_at + j * spacing) + interval
  end
  local ttl_ms = math.ceil((new_tat - now) / 1000) + 1000
  redis.call('SET', KEYS[i], string.format('%.0f', new_tat), 'PX', ttl_ms)
end
return wait
"""

@dataclass(frozen=True)
class Limit:
    """`per_second` sends on `key`; up to `burst` of them may go back to back after a quiet spell."""

    key: str
    per_second: float
    burst: int = 1

    def arguments(self) -> tuple[int, int]:
        interval = 1_000_000 / self.per_second
        return round(interval), round(interval * (max(1, self.burst) - 1))


@dataclass(frozen=True)
class Reservation:
    """`count` reserved send slots: the first after `wait` seconds, the others `spacing` seconds apart."""

    wait: float
    spacing: float
    count: int


class RateLimiter:
    """Reserves sends under one or more limits; thread-safe (it only shares the redis-py connection pool)."""

    def __init__(self, connection: Redis):
        self._script = connection.register_script(GCRA_SCRIPT)

    def reserve(self, limits: Sequence[Limit], max_wait: float) -> float | None:
        """Reserve one send under every limit: seconds to wait before sending, or None (nothing reserved) when
        the wait would exceed `max_wait`."""
        reservation = self.reserve_many(limits, 1, max_wait)
        return None if reservation is None else reservation.wait

    def reserve_many(self, limits: Sequence[Limit], count: int, max_wait: float) -> Reservation | None:
        """Reserve `count` evenly spaced sends under every limit, or None (nothing reserved) when the first would
        wait longer than `max_wait`. Spacing them at the slowest limit's interval never bursts, whatever the
        limits' burst allowances."""
        spacing = max((limit.arguments()[0] for limit in limits), default=0) / 1e6
        if not limits:
            return Reservation(0.0, spacing, count)
        arguments = [value for limit in limits for value in limit.arguments()]
        reply = int(self._script(keys=[limit.key for limit in limits],
                                 args=[*arguments, int(max_wait * 1e6), max(1, count)]))
        return None if reply < 0 else Reservation(reply / 1e6, spacing, max(1, count))


def sender_rate() -> float:
    """Messages per second one sender (phone number) may send, from SEND_RATE_PER_SECOND."""
    return float(current_app.config["SEND_RATE_PER_SECOND"])


def send_limits(phone_number_id: str, campaign_id: int, campaign_rate: float | None) -> list[Limit]:
    """The sender's shared limit, and the campaign's own when it sets a lower max rate."""
    limits = [Limit(f"{KEY_PREFIX}:sender:{phone_number_id}", sender_rate())]
    if campaign_rate and campaign_rate > 0:
        limits.append(Limit(f"{KEY_PREFIX}:campaign:{campaign_id}", float(campaign_rate)))
    return limits


def effective_rate(campaign_rate: float | None) -> float:
    """The rate a campaign can actually reach: its own max rate, capped by its sender's."""
    rate = sender_rate()
    return min(rate, float(campaign_rate)) if campaign_rate and campaign_rate > 0 else rate
