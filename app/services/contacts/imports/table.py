"""What every reader gives the import: a table of rows, each a list of cell values or an `UnreadableRow`."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True)
class UnreadableRow:
    """A row that could not be split into cells; it is reported on its row and not imported."""

    start: str  # the row's first characters, to find it in the file
    reason: str


Row = list[Any] | UnreadableRow


class Table(Protocol):
    sheet_name: str | None

    def estimated_rows(self) -> int | None: ...

    def rows(self) -> Iterator[tuple[int, Row]]: ...


def display_value(value: Any, limit: int = 80) -> str:
    """A cell as short text for previews and problem reports."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, datetime):
        value = value.date().isoformat() if value.time() == datetime.min.time() else value.isoformat(sep=" ")
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
