"""Contact imports: one uploaded file (or one large bulk upsert through the API), its column mapping, progress
counters and per-row problems."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.clock import utcnow
from app.extensions import db
from app.models.base import UTCDateTime
from app.models.contact import BigId
from app.models.user import User


class ImportStatus(StrEnum):
    MAPPING = "mapping"  # uploaded and checked; waiting for someone to map the columns
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class ImportSource(StrEnum):
    FILE = "file"  # a spreadsheet staff uploaded
    API = "api"  # a bulk upsert too large for one request (POST /api/v1/contacts/bulk), run as a job


FINISHED_STATUSES = frozenset({ImportStatus.COMPLETED, ImportStatus.FAILED, ImportStatus.CANCELLED})


class ContactImport(db.Model):
    __tablename__ = "contact_imports"

    id: Mapped[int] = mapped_column(primary_key=True)
    file_name: Mapped[str] = mapped_column(String(255))  # as uploaded, for people
    stored_name: Mapped[str] = mapped_column(String(255))  # our random name under instance/imports
    file_format: Mapped[str] = mapped_column(String(8))  # csv | xlsx | xls
    file_size: Mapped[int] = mapped_column(BigInteger)
    sheet_name: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), default=ImportStatus.MAPPING, index=True)
    source: Mapped[str] = mapped_column(String(8), default=ImportSource.FILE, server_default=ImportSource.FILE)
    api_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id", ondelete="SET NULL"), index=True)
    has_header: Mapped[bool] = mapped_column(Boolean, default=True)
    columns: Mapped[list[str]] = mapped_column(JSON, default=list)
    preview_rows: Mapped[list[list[str]]] = mapped_column(JSON, default=list)
    mapping: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    total_rows: Mapped[int] = mapped_column(Integer, default=0)  # an estimate until the import finishes
    processed_rows: Mapped[int] = mapped_column(Integer, default=0)
    created_count: Mapped[int] = mapped_column(Integer, default=0)
    updated_count: Mapped[int] = mapped_column(Integer, default=0)
    unchanged_count: Mapped[int] = mapped_column(Integer, default=0)
    duplicate_count: Mapped[int] = mapped_column(Integer, default=0)
    invalid_count: Mapped[int] = mapped_column(Integer, default=0)
    skipped_count: Mapped[int] = mapped_column(Integer, default=0)
    problem_count: Mapped[int] = mapped_column(Integer, default=0)
    message: Mapped[str | None] = mapped_column(Text)
    rq_job_id: Mapped[str | None] = mapped_column(String(64))
    cancel_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    uploaded_by: Mapped[User | None] = relationship(lazy="selectin")

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_STATUSES

    @property
    def percent_done(self) -> int:
        if self.status == ImportStatus.COMPLETED:
            return 100
        if not self.total_rows:
            return 0
        return min(99, self.processed_rows * 100 // self.total_rows)

    def __repr__(self) -> str:
        return f"<ContactImport {self.id} {self.file_name} {self.status}>"


class ContactImportPayload(db.Model):
    """An API import's contacts (the validated JSON) until its job has run: the database, not the web server's disk,
    so a worker on any machine can read it. Deleted when the import finishes."""

    __tablename__ = "contact_import_payloads"

    import_id: Mapped[int] = mapped_column(ForeignKey("contact_imports.id", ondelete="CASCADE"), primary_key=True)
    body: Mapped[bytes] = mapped_column(LargeBinary)


class ContactImportProblem(db.Model):
    """One row (or one number in a row) that was not imported, for the downloadable report."""

    __tablename__ = "contact_import_problems"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    import_id: Mapped[int] = mapped_column(ForeignKey("contact_imports.id", ondelete="CASCADE"), index=True)
    row_number: Mapped[int] = mapped_column(Integer)
    column: Mapped[str] = mapped_column(String(255))
    value: Mapped[str] = mapped_column(String(255))
    reason: Mapped[str] = mapped_column(String(255))
