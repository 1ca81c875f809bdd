"""The system page: workers, queues, scheduled and failed jobs (retry, discard), test connection, retention."""

from datetime import timedelta

import pytest
from rq import Worker
from rq.job import Job
from rq.registry import FailedJobRegistry
from rq_scheduler import Scheduler

from app.clock import utcnow
from app.extensions import db
from app.models import AuditEntry, ContactImport, WebhookEvent
from app.models.contact_import import ImportStatus
from app.queues import DEFAULT
from app.services.contacts.imports.uploads import imports_folder
from app.whatsapp.sim_config import SimulatorConfig
from app.whatsapp.sim_server import SimulatorServer
from app.whatsapp.simulator import create_simulator
from jobs import maintenance
from jobs.schedule import PERIODIC_JOBS, register_periodic_jobs
from tests.conftest import csrf_token_from, run_jobs
from tests.factories.jobs import FLAG


@pytest.fixture
def failed_job(app, monkeypatch):
    monkeypatch.setenv(FLAG, "1")
    job = app.extensions["queues"][DEFAULT].enqueue("tests.factories.jobs.flaky_job", 21)
    run_jobs(app)
    monkeypatch.delenv(FLAG)
    assert job.get_status(refresh=True) == "failed"
    return job


def _token(client):
    return csrf_token_from(client.get("/admin/system").get_data(as_text=True))


def test_system_page_lists_failed_jobs_with_their_error(admin_client, failed_job):
    html = admin_client.get("/admin/system").get_data(as_text=True)
    assert "tests.factories.jobs.flaky_job(21)" in html
    assert "RuntimeError: deliberate failure for 21" in html


def test_retry_failed_job_runs_it_again(app, admin_client, failed_job):
    admin_client.post(f"/admin/system/jobs/{failed_job.id}/retry", data={"csrf_token": _token(admin_client)})
    assert failed_job.id not in FailedJobRegistry(DEFAULT, connection=app.extensions["redis"])
    run_jobs(app)
    assert failed_job.get_status(refresh=True) == "finished" and failed_job.return_value() == 42
    with app.app_context():
        assert "job.retry" in set(db.session.scalars(db.select(AuditEntry.action)))


def test_discard_failed_job_forgets_it(app, admin_client, failed_job):
    response = admin_client.post(f"/admin/system/jobs/{failed_job.id}/discard",
                                 data={"csrf_token": _token(admin_client)}, follow_redirects=True)
    assert "Job discarded." in response.get_data(as_text=True)
    assert not Job.exists(failed_job.id, connection=app.extensions["redis"])
    again = admin_client.post(f"/admin/system/jobs/{failed_job.id}/discard",
                              data={"csrf_token": _token(admin_client)}, follow_redirects=True)
    assert "no longer exists" in again.get_data(as_text=True)


def test_system_page_shows_workers_and_scheduled_jobs(app, admin_client):
    worker = Worker([app.extensions["queues"][DEFAULT]], connection=app.extensions["redis"], name="test-worker-1")
    worker.register_birth()
    with app.app_context():
        register_periodic_jobs(Scheduler(connection=app.extensions["redis"]))
    try:
        html = admin_client.get("/admin/system", headers={"HX-Request": "true", "HX-Target": "system-live"})
    finally:
        worker.register_death()
    body = html.get_data(as_text=True)
    assert "<html" not in body and "test-worker-1" in body
    assert "jobs.maintenance.apply_retention" in body


def test_registering_periodic_jobs_twice_keeps_one_copy(app):
    scheduler = Scheduler(connection=app.extensions["redis"])
    with app.app_context():
        register_periodic_jobs(scheduler)
        register_periodic_jobs(scheduler)
    assert len(list(scheduler.get_jobs())) == len(PERIODIC_JOBS)


@pytest.fixture
def simulator_url():
    server = SimulatorServer(create_simulator(SimulatorConfig(access_token="good-token")), "127.0.0.1", 0).start()
    yield server.url
    server.shutdown()


def _test_connection(app, admin_client, base_url, token):
    app.config.update(WHATSAPP_API_BASE_URL=base_url, WHATSAPP_ACCESS_TOKEN=token,
                      WHATSAPP_PHONE_NUMBER_ID="106540352242922", WHATSAPP_BUSINESS_ACCOUNT_ID="102290129340398")
    page_token = csrf_token_from(admin_client.get("/admin/settings").get_data(as_text=True))
    return admin_client.post("/admin/settings/test-connection", data={"csrf_token": page_token},
                             headers={"HX-Request": "true"}).get_data(as_text=True)


def test_test_connection_succeeds_against_the_simulator(app, admin_client, simulator_url):
    html = _test_connection(app, admin_client, simulator_url, "good-token")
    assert "Connected" in html and "the built-in simulator" in html and "message template" in html


def test_test_connection_explains_a_bad_token(app, admin_client, simulator_url):
    html = _test_connection(app, admin_client, simulator_url, "wrong-token")
    assert "Connection failed (code 190)" in html


def test_test_connection_explains_an_unreachable_api(app, admin_client):
    html = _test_connection(app, admin_client, "http://127.0.0.1:9", "any")
    assert "Connection failed" in html and "Could not reach WhatsApp" in html


def test_retention_removes_old_audit_entries_import_files_and_webhook_bodies(app):
    with app.app_context():
        old, recent = utcnow() - timedelta(days=400), utcnow() - timedelta(days=5)
        db.session.add_all([AuditEntry(action="x", actor="a", summary="old", created_at=old),
                            AuditEntry(action="x", actor="a", summary="recent", created_at=recent)])
        folder = imports_folder()
        folder.mkdir(parents=True, exist_ok=True)
        for name, finished in [("old.csv", old), ("new.csv", recent)]:
            (folder / name).write_text("phone\n")
            db.session.add(ContactImport(file_name=name, stored_name=name, file_format="csv", file_size=6,
                                         status=ImportStatus.COMPLETED, finished_at=finished))
        db.session.add_all([WebhookEvent(body="{}", received_at=old, processed_at=old),
                            WebhookEvent(body="{}", received_at=old),  # never processed: kept
                            WebhookEvent(body="{}", received_at=recent, processed_at=recent)])
        db.session.commit()
        result = maintenance.apply_retention()
        assert result == {"audit_entries": 1, "import_files": 1, "webhook_events": 1}
        assert db.session.scalar(db.select(db.func.count()).select_from(WebhookEvent)) == 2
        assert not (folder / "old.csv").exists() and (folder / "new.csv").exists()
        summaries = set(db.session.scalars(db.select(AuditEntry.summary)))
        assert "old" not in summaries and "recent" in summaries
        assert db.session.scalar(db.select(db.func.count()).select_from(ContactImport)) == 2  # summaries stay


def test_webhook_events_page_lists_and_reprocesses(app, admin_client):
    from app.models import WebhookEvent

    with app.app_context():
        event = WebhookEvent(body='{"object": "whatsapp_business_account", "entry": []}', received_at=utcnow(),
                            processed_at=utcnow(), outcome="orphaned: statuses for wamid.X")
        db.session.add(event)
        db.session.commit()
        event_id = event.id
    page = admin_client.get("/admin/webhook-events?show=problems").get_data(as_text=True)
    assert "orphaned: statuses for wamid.X" in page and "whatsapp_business_account" in page
    token = csrf_token_from(page)
    response = admin_client.post(f"/admin/webhook-events/{event_id}/reprocess", data={"csrf_token": token},
                                 follow_redirects=True)
    assert f"Event {event_id} queued for processing again." in response.get_data(as_text=True)
    run_jobs(app)
    with app.app_context():
        event = db.session.get(WebhookEvent, event_id)
        assert event.processed_at is not None and event.attempts == 1 and not event.outcome.startswith("orphaned")
        assert "webhook.reprocess" in set(db.session.scalars(db.select(AuditEntry.action)))
