"""Spreadsheet rows → contact records and problems, with duplicates within the file caught as they appear."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from app.services.contacts import phones
from app.services.contacts.imports.columns import ColumnMapping, Role
from app.services.contacts.imports.table import Row, UnreadableRow, display_value
from app.services.contacts.tags import MAX_TAG_LENGTH

MAX_NAME_LENGTH = 255
MAX_ATTRIBUTE_LENGTH = 500
TAG_SEPARATORS = str.maketrans({";": ",", "|": ","})


@dataclass(slots=True)
class ContactRecord:
    phone: str  # E.164
    row_number: int
    name: str | None
    attributes: dict[str, Any]
    tag_names: list[str]


@dataclass(slots=True)
class Problem:
    row_number: int
    column: str
    value: str
    reason: str


@dataclass
class Batch:
    """Rows read since the last write, and what they turned into."""

    rows: int = 0
    invalid: int = 0
    duplicates: int = 0
    records: list[ContactRecord] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def is_blank(row: Row) -> bool:
    if isinstance(row, UnreadableRow):
        return False
    return all(value is None or (isinstance(value, str) and not value.strip()) for value in row)


class RecordBuilder:
    """Applies one ColumnMapping to rows; remembers every number seen so later copies count as duplicates."""

    def __init__(self, mapping: ColumnMapping) -> None:
        self.region = mapping.region
        self.phone_index = mapping.phone_column
        self.phone_column = mapping.names[self.phone_index]
        self.name_index = mapping.roles.index(Role.NAME) if Role.NAME in mapping.roles else None
        self.tag_columns = _columns_with(mapping, Role.TAGS)
        self.attribute_columns = _columns_with(mapping, Role.ATTRIBUTE)
        # E.164 digits as an int → first row holding it: ~70 bytes a number, 70 MB for a million.
        self.first_row_of: dict[int, int] = {}

    def add(self, batch: Batch, row_number: int, row: Row) -> None:
        batch.rows += 1
        if isinstance(row, UnreadableRow):
            batch.invalid += 1
            batch.problems.append(Problem(row_number, "", row.start, row.reason))
            return
        cell = row[self.phone_index] if self.phone_index < len(row) else None
        numbers = phones.split_phone_numbers(cell) or [None]
        details = None
        in_this_row: set[int] = set()
        for raw in numbers:
            phone, reason = phones.check_phone(raw, self.region)
            if phone is None:
                batch.invalid += 1
                batch.problems.append(Problem(row_number, self.phone_column, display_value(raw, 255), reason))
                continue
            key = int(phone[1:])
            first_row = self.first_row_of.setdefault(key, row_number)
            if first_row != row_number or key in in_this_row:
                batch.duplicates += 1
                reason = f"Same number as row {first_row}; only the first was imported"
                batch.problems.append(Problem(row_number, self.phone_column, display_value(raw, 255), reason))
                continue
            in_this_row.add(key)
            details = details or self._details(row_number, row, batch)
            batch.records.append(ContactRecord(phone, row_number, *details))

    def _details(self, row_number: int, row: list[Any], batch: Batch) -> tuple[str | None, dict[str, Any], list[str]]:
        name = _text(_cell(row, self.name_index), MAX_NAME_LENGTH) if self.name_index is not None else None
        attributes = {}
        for index, key in self.attribute_columns:
            value = _attribute_value(_cell(row, index))
            if value is not None:
                attributes[key] = value
        return name or None, attributes, self._tags(row_number, row, batch)

    def _tags(self, row_number: int, row: list[Any], batch: Batch) -> list[str]:
        tags = []
        for index, column in self.tag_columns:
            value = _cell(row, index)
            if value in (None, ""):
                continue
            for tag in str(value).translate(TAG_SEPARATORS).split(","):
                tag = " ".join(tag.split())
                if len(tag) > MAX_TAG_LENGTH:
                    reason = f"Tag longer than {MAX_TAG_LENGTH} characters; the contact was imported without it"
                    batch.problems.append(Problem(row_number, column, display_value(tag, 255), reason))
                elif tag:
                    tags.append(tag)
        return tags


def _columns_with(mapping: ColumnMapping, role: Role) -> list[tuple[int, str]]:
    return [(index, mapping.names[index]) for index, each in enumerate(mapping.roles) if each == role]


def _cell(row: list[Any], index: int) -> Any:
    return row[index] if index < len(row) else None


def _text(value: Any, limit: int) -> str | None:
    if value is None:
        return None
    text = " ".join((value if type(value) is str else display_value(value, 10**6)).split())
    return text[:limit] or None


def _attribute_value(value: Any) -> Any:
    """JSON-friendly: whole floats become ints, dates ISO strings, text trimmed; blanks are None (not stored)."""
    if type(value) is str:
        return _text(value, MAX_ATTRIBUTE_LENGTH)
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return None  # JSON has no NaN or infinity
        return int(value) if value.is_integer() else value
    if isinstance(value, datetime | date):
        return display_value(value)
    return _text(value, MAX_ATTRIBUTE_LENGTH)
