"""The in-process worker used by tests really runs queued jobs on the real Redis."""

from app.queues import LOW
from tests.conftest import run_jobs


def test_run_jobs_executes_queued_work(app):
    job = app.extensions["queues"][LOW].enqueue("builtins.len", "hello")
    run_jobs(app)
    job.refresh()
    assert job.is_finished and job.return_value() == 5
