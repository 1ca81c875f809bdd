"""Broadcaster: a self-hosted WhatsApp broadcast and reply desk."""

from __future__ import annotations

import logging

from flask import Flask

from app.config import Config


def create_app(config: object | None = None) -> Flask:
    """Build the app; every step is an init_app / register_* call."""
    app = Flask(__name__, template_folder="../templates", static_folder="../static")
    app.config.from_object(config or Config())
    configure_logging(app)
    trust_reverse_proxy(app)
    register_extensions(app)
    register_blueprints(app)
    register_hooks(app)
    return app


def configure_logging(app: Flask) -> None:
    if not app.testing:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)


def trust_reverse_proxy(app: Flask) -> None:
    """Behind TRUSTED_PROXY_HOPS proxies, the visitor's address and scheme are the ones they forward."""
    hops = app.config["TRUSTED_PROXY_HOPS"]
    if hops:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)


def register_extensions(app: Flask) -> None:
    from app import queues
    from app.extensions import csrf, db, login_manager, migrate

    db.init_app(app)
    from app.models.base import include_migration_object, render_migration_item

    migrate.init_app(app, db, directory=_migrations_dir(), render_as_batch=True, render_item=render_migration_item,
                     include_object=include_migration_object)
    csrf.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.user_loader(_load_user)
    queues.init_app(app)
    _configure_sqlite(app)


def register_blueprints(app: Flask) -> None:
    from app.blueprints import BLUEPRINTS
    from app.numbers import IntegerConverter

    app.url_map.converters["int"] = IntegerConverter  # before any rule is added
    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)


def register_hooks(app: Flask) -> None:
    from app import cli, errors, security, template_helpers

    security.init_app(app)
    errors.init_app(app)
    cli.init_app(app)
    template_helpers.init_app(app)


def _migrations_dir() -> str:
    from app.config import ROOT

    return str(ROOT / "migrations")


def _load_user(login_id: str):
    from app.services.accounts import sign_in

    return sign_in.signed_in_user(login_id)


def _configure_sqlite(app: Flask) -> None:
    """WAL and a busy timeout let the web process and workers share one SQLite file."""
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        return
    from sqlalchemy import event

    from app.extensions import db

    with app.app_context():
        @event.listens_for(db.engine, "connect")
        def _pragmas(dbapi_connection, _record):
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=10000")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()
