"""Recipient timezones for quiet hours, and an end date for recurring campaigns

Revision ID: a9e4c2d17b30
Revises: df54aa16ed49
Create Date: 2026-11-22 07:50:00

"""

import sqlalchemy as sa
from alembic import op

revision = "a9e4c2d17b30"
down_revision = "df54aa16ed49"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("campaigns") as batch_op:
        batch_op.add_column(sa.Column("ends_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("contacts") as batch_op:
        batch_op.add_column(sa.Column("timezone", sa.String(length=64), nullable=True))
    with op.batch_alter_table("messages") as batch_op:
        batch_op.add_column(sa.Column("recipient_zone", sa.String(length=64), nullable=True))


def downgrade():
    with op.batch_alter_table("messages") as batch_op:
        batch_op.drop_column("recipient_zone")
    with op.batch_alter_table("contacts") as batch_op:
        batch_op.drop_column("timezone")
    with op.batch_alter_table("campaigns") as batch_op:
        batch_op.drop_column("ends_at")
