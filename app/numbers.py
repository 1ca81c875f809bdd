"""Whole numbers from URLs and forms, read so that no input can overflow a database column: ASCII digits only
("²" passes str.isdigit() but not int()), and ids or page numbers within what the columns and OFFSET can take."""

from __future__ import annotations

from werkzeug import routing

MAX_ID = 2**63 - 1  # ids are BIGINT (SQLite INTEGER); a smaller INTEGER column still compares without overflow
MAX_PAGE = 10_000  # further than anyone pages; OFFSET stays small


def whole_number(value: object, maximum: int = MAX_ID) -> int | None:
    """The number typed, or None when it is not a plain whole number from 0 to maximum."""
    text = str(value if value is not None else "").strip()
    if not (text.isascii() and text.isdigit()) or len(text) > len(str(maximum)):
        return None
    number = int(text)
    return number if number <= maximum else None


def page_number(value: object) -> int:
    """A page number from a query string: 1 for anything that is not one, and at most MAX_PAGE."""
    text = str(value if value is not None else "").strip()
    if not (text.isascii() and text.isdigit()):
        return 1
    if len(text) > len(str(MAX_PAGE)):  # before int(): it refuses strings of over 4300 digits
        return MAX_PAGE
    return min(max(int(text), 1), MAX_PAGE)


class IntegerConverter(routing.IntegerConverter):
    """`<int:…>` in every route (it replaces werkzeug's, under the same name): an id larger than any column holds
    matches no route (404) instead of overflowing the query (500)."""

    def __init__(self, map, *args, **kwargs) -> None:  # noqa: A002 - werkzeug's name
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)
