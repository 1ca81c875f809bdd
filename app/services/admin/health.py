"""System health: database, Redis, workers and queue depths."""

from __future__ import annotations

from dataclasses import dataclass, field

from redis.exceptions import RedisError
from rq import Worker
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from app.extensions import db
from app.queues import QUEUE_NAMES, get_queue, redis_connection


@dataclass
class Health:
    db: str
    redis: str
    workers: int = 0
    queues: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.db == "ok" and self.redis == "ok"


def check() -> Health:
    """Probe the database and Redis; never raises."""
    health = Health(db=_check_db(), redis="ok")
    try:
        redis_connection().ping()
        health.workers = Worker.count(connection=redis_connection())
        health.queues = {name: get_queue(name).count for name in QUEUE_NAMES}
    except (RedisError, OSError) as error:
        health.redis = f"error: {error.__class__.__name__}: {error}"
    return health


def _check_db() -> str:
    try:
        db.session.execute(text("SELECT 1"))
        return "ok"
    except SQLAlchemyError as error:
        db.session.rollback()
        return f"error: {error.__class__.__name__}: {str(error).splitlines()[0]}"
