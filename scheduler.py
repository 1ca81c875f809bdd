"""Run rq-scheduler: starts scheduled/recurring work and registers the periodic jobs in jobs/schedule.py."""

import warnings

from rq_scheduler import Scheduler

from app import create_app
from jobs.schedule import register_periodic_jobs


def quiet_crontab_warning() -> None:
    """Hide the FutureWarning rq-scheduler's cron scheduling sets off in crontab, at every start and reschedule.

    rq_scheduler.utils.get_next_scheduled_time calls crontab's CronTab.next(now=datetime.now()) without
    `default_utc`, and crontab warns that its default "will" change. Nothing we pass avoids it, and no version
    pin does: rq-scheduler 0.14 needs crontab >= 0.23 and every release since 0.22 warns (the change never came).
    The old default is the right one there: the naive `now` is local time and rq-scheduler converts the answer
    itself. So only that message from that module is ignored; any other FutureWarning still shows.
    """
    warnings.filterwarnings("ignore", message=r"Version 0\.22\.0\+ of crontab", category=FutureWarning,
                            module=r"rq_scheduler\.utils")


def main() -> None:
    quiet_crontab_warning()
    app = create_app()
    with app.app_context():
        scheduler = Scheduler(connection=app.extensions["redis"], interval=5)
        register_periodic_jobs(scheduler)
        scheduler.run()


if __name__ == "__main__":
    main()
