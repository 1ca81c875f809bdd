"""`/healthz`."""

from rq import Worker

from app import create_app
from app.config import TestConfig
from app.queues import DEFAULT


def test_healthy(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["db"] == "ok" and body["redis"] == "ok"
    assert body["workers"] == 0
    assert set(body["queues"]) == {"high", "default", "low"}


def test_counts_queued_jobs_and_live_workers(app, client):
    app.extensions["queues"][DEFAULT].enqueue("builtins.print", "queued")
    worker = Worker([app.extensions["queues"][DEFAULT]], connection=app.extensions["redis"])
    worker.register_birth()
    try:
        body = client.get("/healthz").get_json()
    finally:
        worker.register_death()
    assert body["queues"]["default"] == 1
    assert body["workers"] == 1


def test_unhealthy_when_redis_is_unreachable(app):
    broken = create_app(TestConfig(app.config["SQLALCHEMY_DATABASE_URI"], "redis://127.0.0.1:1/0"))
    response = broken.test_client().get("/healthz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["db"] == "ok"
    assert body["redis"].startswith("error")


def test_unhealthy_when_database_is_unreachable(app, tmp_path):
    missing = tmp_path / "no-such-dir" / "x.db"
    broken = create_app(TestConfig(f"sqlite:///{missing}", app.config["REDIS_URL"]))
    response = broken.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.get_json()["db"].startswith("error")


def test_healthz_needs_no_login(client):
    assert client.get("/healthz").status_code == 200
