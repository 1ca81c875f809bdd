"""Run an RQ worker inside the app context on Broadcaster's queues (highest priority first)."""

import os

from rq import Worker

from app import create_app
from app.extensions import db
from app.queues import QUEUE_NAMES


def main() -> None:
    app = create_app()
    with app.app_context():
        # Each job runs in a forked child: it must not reuse the parent's pooled DB connections.
        os.register_at_fork(after_in_child=lambda: db.engine.dispose(close=False))
        queues = [app.extensions["queues"][name] for name in QUEUE_NAMES]
        Worker(queues, connection=app.extensions["redis"]).work(with_scheduler=True)


if __name__ == "__main__":
    main()
