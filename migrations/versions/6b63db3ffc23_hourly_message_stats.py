"""Hourly message stats

Revision ID: 6b63db3ffc23
Revises: 687509637504
Create Date: 2026-11-22 04:08:05.586967

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "6b63db3ffc23"
down_revision = "687509637504"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "hourly_message_stats",
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent", sa.Integer(), nullable=False),
        sa.Column("delivered", sa.Integer(), nullable=False),
        sa.Column("read", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("replied", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("hour", name=op.f("pk_hourly_message_stats")),
    )


def downgrade():
    op.drop_table("hourly_message_stats")
