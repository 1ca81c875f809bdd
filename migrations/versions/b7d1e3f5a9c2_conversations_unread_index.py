"""Index conversations.unread: the nav's unread badge counts unread conversations every few seconds while staff
have a page open, and most conversations have nothing unread, so the count reads only the few that do

Revision ID: b7d1e3f5a9c2
Revises: b5d7f9a1c3e5
Create Date: 2026-12-07 23:50:00

"""

from alembic import op

revision = "b7d1e3f5a9c2"
down_revision = "b5d7f9a1c3e5"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index("ix_conversations_unread", "conversations", ["unread"])


def downgrade():
    op.drop_index("ix_conversations_unread", table_name="conversations")
