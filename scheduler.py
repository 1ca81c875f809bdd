"""Run rq-scheduler: starts scheduled/recurring work and registers the periodic jobs in jobs/schedule.py."""

from rq_scheduler import Scheduler

from app import create_app
from jobs.schedule import register_periodic_jobs


def main() -> None:
    app = create_app()
    with app.app_context():
        scheduler = Scheduler(connection=app.extensions["redis"], interval=5)
        register_periodic_jobs(scheduler)
        scheduler.run()


if __name__ == "__main__":
    main()
