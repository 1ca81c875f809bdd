"""Queue names in one place, and the Redis connection the app and workers share."""

from __future__ import annotations

from flask import Flask, current_app
from redis import Redis
from rq import Queue

HIGH = "high"  # user-facing work: imports, syncs, webhook processing
DEFAULT = "default"  # campaign sending
LOW = "low"  # housekeeping: sweepers, retention
QUEUE_NAMES = (HIGH, DEFAULT, LOW)


def init_app(app: Flask) -> None:
    # Connections are lazy in redis-py: nothing is contacted until first use.
    connection = Redis.from_url(app.config["REDIS_URL"], socket_connect_timeout=2, socket_timeout=5)
    app.extensions["redis"] = connection
    app.extensions["queues"] = {name: Queue(name, connection=connection) for name in QUEUE_NAMES}


def redis_connection() -> Redis:
    return current_app.extensions["redis"]


def get_queue(name: str) -> Queue:
    return current_app.extensions["queues"][name]
