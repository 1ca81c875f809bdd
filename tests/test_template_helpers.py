"""The layout's banner and badge reads must not turn a database outage into a broken error page."""

from sqlalchemy.exc import OperationalError

from app.template_helpers import _even_without_the_database


def _database_away() -> list[str]:
    raise OperationalError("SELECT 1", {}, Exception("connection refused"))


def test_a_layout_read_gives_its_default_while_the_database_is_away(app):
    with app.app_context():
        assert _even_without_the_database(_database_away, ())() == ()
        assert _even_without_the_database(lambda: ["a banner"], ())() == ["a banner"]
