"""Migrations: one head, and the models match what the migrations build."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import current_app

from app.extensions import db


def _script_directory(app) -> ScriptDirectory:
    config = app.extensions["migrate"].migrate.get_config()
    return ScriptDirectory.from_config(config)


def test_single_head(app):
    with app.app_context():
        heads = _script_directory(current_app).get_heads()
    assert len(heads) == 1, f"migrations have several heads: {heads}; merge them"


def test_database_is_at_head(app):
    with app.app_context(), db.engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
        assert current == _script_directory(current_app).get_current_head()


def test_models_match_migrations(app):
    with app.app_context(), db.engine.connect() as connection:
        options = dict(current_app.extensions["migrate"].configure_args, compare_type=True)
        context = MigrationContext.configure(connection, opts=options)
        differences = compare_metadata(context, db.metadata)
    assert differences == [], f"models differ from migrations; run `flask db migrate`: {differences}"
