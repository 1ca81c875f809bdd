"""The shared rate limiter (GCRA on Redis's clock): many clients on separate connections share one rate."""

import threading
import time

from redis import Redis

from app.services.sending.rate_limit import Limit, RateLimiter, effective_rate, send_limits


def paced_sends(redis_url: str, limits: list[Limit], clients: int, sends_each: int) -> list[float]:
    """Each client (its own connection, like a worker on another machine) reserves and waits, then 'sends'."""
    times: list[float] = []
    lock = threading.Lock()

    def client() -> None:
        limiter = RateLimiter(Redis.from_url(redis_url))
        for _ in range(sends_each):
            wait = limiter.reserve(limits, max_wait=10)
            time.sleep(wait)
            with lock:
                times.append(time.monotonic())

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return sorted(times)


def test_many_clients_together_hold_the_shared_rate(app, redis_url):
    times = paced_sends(redis_url, [Limit("broadcaster:rate:test:shared", 200)], clients=4, sends_each=60)
    assert len(times) == 240
    achieved = (len(times) - 1) / (times[-1] - times[0])
    assert 180 <= achieved <= 210
    # No burst beyond the rate: any 100 ms window holds about 20 sends (plus scheduling jitter).
    assert max(sum(1 for t in times if start <= t < start + 0.1) for start in times) <= 24


def test_the_campaign_limit_applies_on_top_of_the_sender_limit(app, redis_url):
    limits = [Limit("broadcaster:rate:test:sender", 500), Limit("broadcaster:rate:test:campaign", 50)]
    times = paced_sends(redis_url, limits, clients=3, sends_each=10)
    assert 45 <= (len(times) - 1) / (times[-1] - times[0]) <= 55


def test_a_burst_allowance_lets_that_many_go_at_once(app):
    limiter = RateLimiter(app.extensions["redis"])
    burst = Limit("broadcaster:rate:test:burst", 10, burst=5)
    waits = [limiter.reserve([burst], max_wait=10) for _ in range(7)]
    assert waits[:5] == [0, 0, 0, 0, 0]
    assert 0.08 <= waits[5] <= 0.11 and 0.18 <= waits[6] <= 0.21


def test_a_wait_longer_than_accepted_reserves_nothing(app):
    limiter = RateLimiter(app.extensions["redis"])
    slow = Limit("broadcaster:rate:test:slow", 2)
    assert limiter.reserve([slow], max_wait=1) == 0
    assert 0.45 <= limiter.reserve([slow], max_wait=1) <= 0.5
    assert limiter.reserve([slow], max_wait=0.6) is None  # would be 1 s
    assert 0.9 <= limiter.reserve([slow], max_wait=2) <= 1.0  # the refused one took no slot


def test_limits_come_from_the_config_and_the_campaign(app):
    with app.app_context():
        app.config["SEND_RATE_PER_SECOND"] = 80
        assert [limit.per_second for limit in send_limits("123", 7, None)] == [80]
        assert [(limit.key, limit.per_second) for limit in send_limits("123", 7, 5)] == [
            ("broadcaster:rate:sender:123", 80), ("broadcaster:rate:campaign:7", 5)]
        assert (effective_rate(None), effective_rate(5), effective_rate(500)) == (80, 5, 80)


def test_a_block_of_slots_is_reserved_in_one_call_and_counts_in_full(app):
    limiter = RateLimiter(app.extensions["redis"])
    fast = Limit("broadcaster:rate:test:block", 1000)
    started = time.monotonic()
    block = limiter.reserve_many([fast], 20, max_wait=1)
    assert (block.wait, block.spacing, block.count) == (0, 0.001, 20)
    # The next caller queues behind all twenty slots: 20 ms after the block, less the time since (a busy machine).
    wait = limiter.reserve([fast], max_wait=1)
    assert 0.020 - (time.monotonic() - started) - 0.003 <= wait <= 0.021


def test_a_block_is_spaced_at_the_slowest_limit_and_refused_whole(app):
    limiter = RateLimiter(app.extensions["redis"])
    limits = [Limit("broadcaster:rate:test:block-sender", 1000), Limit("broadcaster:rate:test:block-campaign", 100)]
    started = time.monotonic()
    block = limiter.reserve_many(limits, 5, max_wait=1)
    assert (block.wait, block.spacing) == (0, 0.01)

    def since() -> float:  # waits shrink by the time the test itself took (a busy machine can stall it)
        return time.monotonic() - started + 0.005

    assert 0.05 - since() <= limiter.reserve_many(limits, 5, max_wait=1).wait <= 0.05  # both keys past all five
    assert limiter.reserve_many(limits, 5, max_wait=0.1 - since() - 0.01) is None  # would be about 100 ms
    assert 0.1 - since() <= limiter.reserve(limits, max_wait=1) <= 0.1  # the refused block took no slot


def test_blocks_from_many_clients_hold_the_shared_rate(app, redis_url):
    limit, times, lock = Limit("broadcaster:rate:test:blocks", 400), [], threading.Lock()

    def client() -> None:
        limiter = RateLimiter(Redis.from_url(redis_url))
        for _ in range(6):
            block = limiter.reserve_many([limit], 10, max_wait=10)
            start = time.monotonic() + block.wait
            with lock:
                times.extend(start + n * block.spacing for n in range(block.count))

    threads = [threading.Thread(target=client) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    times.sort()
    assert len(times) == 240
    assert 380 <= (len(times) - 1) / (times[-1] - times[0]) <= 410
    # Blocks never overlap: any 100 ms holds about 40 slots (plus the jitter of each client's Redis round trip).
    assert max(sum(1 for t in times if start <= t < start + 0.1) for start in times) <= 44
