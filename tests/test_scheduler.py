"""scheduler.py starts without the FutureWarning rq-scheduler's cron scheduling sets off in crontab."""

import warnings

import pytest
from rq_scheduler import Scheduler
from rq_scheduler.utils import get_next_scheduled_time

from jobs.schedule import register_periodic_jobs
from scheduler import quiet_crontab_warning


def test_registering_the_periodic_jobs_warns_no_more(app):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(FutureWarning, match="crontab will use datetime.utcnow"):  # what every start printed
            get_next_scheduled_time("* * * * *")
        quiet_crontab_warning()
        with app.app_context():
            register_periodic_jobs(Scheduler(connection=app.extensions["redis"]))


def test_only_that_warning_from_rq_scheduler_is_hidden():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        quiet_crontab_warning()
        with pytest.raises(FutureWarning):  # the same words from any other module still show
            warnings.warn("Version 0.22.0+ of crontab will use datetime.utcnow()", FutureWarning, stacklevel=1)
        with pytest.raises(FutureWarning):
            warnings.warn_explicit("something else", FutureWarning, "utils.py", 28, module="rq_scheduler.utils")
