"""Trigram indexes for contact search on PostgreSQL

A search for part of a name or number (`LIKE '%kumar%'`) cannot use a b-tree index; pg_trgm's GIN
indexes answer it without scanning a million rows. SQLite has no equivalent and is meant for small
installations, so this migration does nothing there. env.py keeps autogenerate from touching
these indexes (names ending in `_trgm`).

Revision ID: b7c1d2e3f4a5
Revises: 683ffe3a489a
Create Date: 2026-11-22 03:45:00.000000

"""

from alembic import op

revision = "b7c1d2e3f4a5"
down_revision = "683ffe3a489a"
branch_labels = None
depends_on = None


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    # pg_trgm is a trusted extension (PostgreSQL 13+): a database owner may create it.
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.execute("CREATE INDEX ix_contacts_name_trgm ON contacts USING gin (lower(name) gin_trgm_ops)")
    op.execute("CREATE INDEX ix_contacts_wa_id_trgm ON contacts USING gin (wa_id gin_trgm_ops)")


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP INDEX IF EXISTS ix_contacts_wa_id_trgm")
    op.execute("DROP INDEX IF EXISTS ix_contacts_name_trgm")
