"""Exporting the filtered contact list to CSV or XLSX, streamed row by row."""

from __future__ import annotations

from collections.abc import Iterator
from zoneinfo import ZoneInfo

from sqlalchemy import select

from app.extensions import db
from app.models import Contact
from app.services import spreadsheets
from app.services.admin import settings
from app.services.contacts.search import SORTS, ContactFilter, matching

BATCH = 2000


def fixed_columns(zone: ZoneInfo) -> list[str]:
    """Times as the pages and the campaign export show them: local, to the second, the zone in the heading."""
    return ["phone", "name", "tags", "opted_out", spreadsheets.time_heading("opted_out_at", zone), "opt_out_source",
            spreadsheets.time_heading("created_at", zone)]


def _rows(criteria: ContactFilter, region: str) -> tuple[list[str], Iterator[list]]:
    attribute_keys = _attribute_keys(criteria, region)
    zone = ZoneInfo(settings.get("timezone"))
    header = fixed_columns(zone) + attribute_keys

    def generate():
        statement = (select(Contact).where(Contact.id.in_(matching(criteria, region).scalar_subquery()))
                     .order_by(*SORTS[criteria.sort]).execution_options(yield_per=BATCH))
        for contact in db.session.scalars(statement):
            yield _row(contact, attribute_keys, zone)

    return header, generate()


def _row(contact: Contact, attribute_keys: list[str], zone: ZoneInfo) -> list:
    return [
        contact.phone,
        contact.name,
        ", ".join(tag.name for tag in contact.tags),
        "yes" if contact.opted_out else "no",
        spreadsheets.local_time(contact.opted_out_at, zone),
        contact.opt_out_source or "",
        spreadsheets.local_time(contact.created_at, zone),
        *[_text(contact.attributes.get(key)) for key in attribute_keys],
    ]


def _text(value) -> str:
    return "" if value is None else str(value)


def _attribute_keys(criteria: ContactFilter, region: str) -> list[str]:
    """Every attribute name among the matching contacts, alphabetically, as extra columns."""
    keys: dict[str, None] = {}
    statement = (select(Contact.attributes).where(Contact.id.in_(matching(criteria, region).scalar_subquery()))
                 .execution_options(yield_per=BATCH))
    for attributes in db.session.scalars(statement):
        keys.update(dict.fromkeys(attributes or {}))
    return sorted(keys, key=str.casefold)


def csv_chunks(criteria: ContactFilter, region: str) -> Iterator[str]:
    header, rows = _rows(criteria, region)
    return spreadsheets.csv_stream(header, rows)


def xlsx(criteria: ContactFilter, region: str):
    header, rows = _rows(criteria, region)
    return spreadsheets.xlsx_file(header, rows, sheet_title="Contacts")
